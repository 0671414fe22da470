// Shared pieces of the browser tests: the development server in-process (with fault-injection
// routes and the test pages), and headless Chromium with a throwaway profile.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium } from 'playwright-core';
import { createServer, etagOf, resolveInside, sendFile } from '../../scripts/serve.mjs';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MODELS_DIR = path.join(REPO, 'models');
const PAGES_DIR = path.join(REPO, 'tests/browser/pages');

export const SMOLLM2 = 'SmolLM2-135M-Instruct.Q4_1.gguf';
export const SMOLLM2_SHA256 = 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53';

export const TINY_DIR = path.join(REPO, 'tests/fixtures/tiny');

/** `wick run` natively (the release CLI that `cargo test` built) on the model file at
 * `modelPath`: greedy ids and the top-1/top-2 margin of every step. `ctx`: the context size
 * (default: the CLI's, as createEngine's). */
export function nativeGreedy(modelPath, prompt, maxTokens, { ctx } = {}) {
  const out = execFileSync(path.join(REPO, 'target/release/wick'), ['run', modelPath, '--prompt', prompt,
    '--max-tokens', String(maxTokens), '--temperature', '0', '--ignore-eos', '--json',
    ...(ctx ? ['--ctx', String(ctx)] : [])], { encoding: 'utf8' });
  return JSON.parse(out);
}

/** An extraRoutes for startServer: tests/fixtures/tiny/ (the tiny random-weight models) at /tiny/. */
export async function tinyRoute(req, res) {
  const urlPath = (req.url ?? '/').split('?')[0];
  if (!urlPath.startsWith('/tiny/')) return false;
  const file = resolveInside(TINY_DIR, urlPath.slice('/tiny/'.length));
  if (!file) plain(res, 400, 'bad path');
  else await sendFile(req, res, file, { 'Cache-Control': 'no-store' });
  return true;
}

/** An extraRoutes for startServer: node_modules/<name>/ at /node_modules/<name>/, for test pages
 * that import a package's browser build (the page server itself serves www/ only). */
export function packageRoute(name) {
  const dir = path.join(REPO, 'node_modules', name);
  const prefix = `/node_modules/${name}/`;
  return async (req, res) => {
    const urlPath = (req.url ?? '/').split('?')[0];
    if (!urlPath.startsWith(prefix)) return false;
    const file = resolveInside(dir, urlPath.slice(prefix.length));
    if (!file) plain(res, 400, 'bad path');
    else await sendFile(req, res, file, { 'Cache-Control': 'no-cache' });
    return true;
  };
}

export const CHROMIUM = process.env.WICK_CHROMIUM ?? '/usr/bin/chromium';
// From docs/platform.md: quiet, no sandbox (root in a container), no QUIC.
const CHROMIUM_FLAGS = [
  '--headless', '--no-sandbox', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic',
];

const MB = 1 << 20;

function plain(res, status, text, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${text}\n`);
}

// Streams bytes [0, count) of a model with the headers of the whole file, then `after(res)`.
async function sendTruncated(res, file, count, after) {
  const stat = await fsp.stat(file);
  res.writeHead(200, {
    'Content-Type': 'application/octet-stream',
    'Content-Length': stat.size,
    'Accept-Ranges': 'bytes',
    ETag: etagOf(stat),
    'Last-Modified': stat.mtime.toUTCString(),
    'Cache-Control': 'no-store',
    Connection: 'close',
  });
  const stream = fs.createReadStream(file, { start: 0, end: Math.min(count, stat.size) - 1 });
  stream.pipe(res, { end: false });
  stream.on('end', () => after(res));
}

// Deterministic garbage after a valid magic: the store accepts it, the engine must not.
function corruptGguf(size) {
  const bytes = Buffer.alloc(size);
  bytes.write('GGUF', 0, 'latin1');
  let x = 0x9e3779b9;
  for (let i = 4; i < size; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/**
 * /fault/<kind>/<model file>[?after=N|size=N] for the storage and engine tests:
 *   404, 500   that status, a text body
 *   html       200 text/html, a login page (a wrong URL behind a portal)
 *   short      the model's headers (full Content-Length) but only `after` bytes (default 5 MiB), then the connection closes
 *   cut        the first request without Range for this URL (query included: add one for a fresh cut) gets
 *              `after` bytes (default 20 MiB), then the socket is destroyed; Range requests (the resume) and
 *              later requests are served normally, with the same validators
 *   stall      as cut, but the first request's connection then stays open and silent (until the client
 *              gives up or the server closes)
 *   long       as cut, but a Range request (the resume) gets a 206 whose body runs `extra` bytes (default
 *              1000) past the Content-Range it announces
 *   chunked    200 with no Content-Length (chunked), the whole model: no size is known in advance
 *   corrupt    200, "GGUF" then `size` bytes (default 4 MiB) of garbage
 */
function faultRoutes() {
  const cutDone = new Set();
  // The first request without Range for this URL gets `after` bytes then `after(res)`; true when it did.
  const firstCut = async (req, res, file, count, after) => {
    if (req.headers.range || cutDone.has(req.url)) return false;
    cutDone.add(req.url);
    await sendTruncated(res, file, count, after);
    return true;
  };
  return async (req, res) => {
    const url = new URL(req.url, 'http://test/');
    const m = /^\/fault\/([a-z0-9]+)\/(.+)$/.exec(url.pathname);
    if (!m) return false;
    const [, kind, name] = m;
    const file = resolveInside(MODELS_DIR, name);
    const param = (key, fallback) => Number(url.searchParams.get(key) ?? fallback);
    switch (kind) {
      case '404': plain(res, 404, 'not found'); break;
      case '500': plain(res, 500, 'internal server error'); break;
      case 'html':
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        res.end('<!doctype html><title>Sign in</title><p>Please sign in to download this file.</p>\n');
        break;
      case 'short':
        await sendTruncated(res, file, param('after', 5 * MB), (r) => r.end());
        break;
      case 'cut':
        if (!(await firstCut(req, res, file, param('after', 20 * MB), (r) => r.socket?.destroy()))) {
          await sendFile(req, res, file, { 'Cache-Control': 'no-store' });
        }
        break;
      case 'stall':
        if (!(await firstCut(req, res, file, param('after', 5 * MB), () => {}))) {
          await sendFile(req, res, file, { 'Cache-Control': 'no-store' });
        }
        break;
      case 'long': {
        if (await firstCut(req, res, file, param('after', 5 * MB), (r) => r.socket?.destroy())) break;
        const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
        if (!range) {
          await sendFile(req, res, file, { 'Cache-Control': 'no-store' });
          break;
        }
        const whole = await fsp.readFile(file);
        const stat = await fsp.stat(file);
        const start = Number(range[1]);
        const body = Buffer.concat([whole.subarray(start), Buffer.alloc(param('extra', 1000), 0x55)]);
        res.writeHead(206, {
          'Content-Type': 'application/octet-stream',
          'Content-Length': body.length,
          'Content-Range': `bytes ${start}-${whole.length - 1}/${whole.length}`,
          ETag: etagOf(stat),
          'Last-Modified': stat.mtime.toUTCString(),
          'Cache-Control': 'no-store',
        });
        res.end(body);
        break;
      }
      case 'chunked':
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Cache-Control': 'no-store' });
        fs.createReadStream(file).pipe(res);
        break;
      case 'corrupt': {
        const body = corruptGguf(param('size', 4 * MB));
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length });
        res.end(body);
        break;
      }
      default: plain(res, 400, `unknown fault ${kind}`);
    }
    return true;
  };
}

/**
 * /cors/<path> is <path> as a strict model host on another origin serves it (load it through
 * http://localhost:<port>/ from a page on 127.0.0.1): CORS for any origin, Content-Range exposed
 * but not ETag, and every preflight refused. Returns false after rewriting req.url so the other
 * routes answer.
 */
function crossOriginHost(req, res) {
  if (!req.url.startsWith('/cors/')) return false;
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', 'Content-Range');
  if (req.method === 'OPTIONS') {
    plain(res, 403, 'preflight refused');
    return true;
  }
  req.url = req.url.slice('/cors'.length);
  return false;
}

/** tests/browser/pages/ at /test/. */
async function testPages(req, res) {
  const urlPath = req.url.split('?')[0];
  if (!urlPath.startsWith('/test/')) return false;
  const file = resolveInside(PAGES_DIR, urlPath.slice('/test/'.length));
  if (!file) plain(res, 400, 'bad path');
  else await sendFile(req, res, file, { 'Cache-Control': 'no-cache' });
  return true;
}

/**
 * The development server on 127.0.0.1 (a secure context) and a free port, plus the test routes.
 * `requests` logs {method, path, range, ifRange} of every request, in arrival order.
 */
export async function startServer({ isolation = true, extraRoutes } = {}) {
  const requests = [];
  const faults = faultRoutes();
  const server = createServer({
    root: path.join(REPO, 'www'),
    models: MODELS_DIR,
    isolation,
    extraRoutes: async (req, res) => {
      requests.push({ method: req.method, path: req.url, range: req.headers.range ?? null, ifRange: req.headers['if-range'] ?? null });
      return (await extraRoutes?.(req, res)) || (await testPages(req, res)) || crossOriginHost(req, res) || faults(req, res);
    },
  });
  return { ...(await listenLocally(server)), requests };
}

/** Starts `server` on 127.0.0.1 (a secure context) and a free port: {url, close()}. */
export async function listenLocally(server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    }),
  };
}

/**
 * Prints the browser's console errors and warnings, and uncaught page errors, to the test output
 * (pages and their workers). Returns the list of what it printed.
 */
export function forwardConsole(context, log = (line) => console.error(line)) {
  const seen = [];
  const note = (line) => {
    seen.push(line);
    log(line);
  };
  context.on('console', (msg) => {
    if (msg.type() !== 'error' && msg.type() !== 'warning') return;
    const where = msg.worker() ? `worker ${msg.worker().url()}` : msg.page()?.url() ?? 'browser';
    note(`[browser ${msg.type()}] ${msg.text()} (${where})`);
  });
  context.on('weberror', (err) => note(`[browser uncaught] ${err.error().stack ?? err.error()}`));
  return seen;
}

/**
 * Headless Chromium in a persistent context (OPFS and quota behave as for a person; an incognito
 * context does not). A fresh temporary profile unless `profileDir` is given; `reopen()` closes the
 * browser and starts it again on the same profile (a restart: what OPFS keeps must survive it).
 * `close()` removes the profile it created. `args`: more Chromium flags. `serviceWorkers:
 * 'block'` keeps the page's offline service worker (www/sw.js) out, for tests that replace the
 * page's files with page.route (a service worker's requests pass it by).
 */
export async function launchBrowser({ webgpu = false, profileDir, args = [], serviceWorkers = 'allow' } = {}) {
  const owned = !profileDir;
  const dir = profileDir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), 'wick-profile-')));
  const launch = () => chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(webgpu ? ['--enable-unsafe-webgpu'] : []), ...args],
    serviceWorkers,
  });
  let context;
  try {
    context = await launch();
  } catch (err) {
    if (owned) await fsp.rm(dir, { recursive: true, force: true });
    throw err;
  }
  const browser = {
    context,
    profileDir: dir,
    console: forwardConsole(context),
    /** A new tab, at `url` when given. */
    async newPage(url) {
      const page = await browser.context.newPage();
      if (url) await page.goto(url);
      return page;
    },
    async reopen() {
      await browser.context.close();
      browser.context = await launch();
      browser.console = forwardConsole(browser.context);
      return browser;
    },
    async close() {
      await browser.context.close();
      if (owned) await fsp.rm(dir, { recursive: true, force: true });
    },
  };
  return browser;
}

/**
 * The test server and a headless Chromium for the tests of the enclosing file or describe:
 * started before them, closed after. Returns {server, browser}, filled in once they run.
 */
export function serverAndBrowser({ server: serverOptions, browser: browserOptions } = {}) {
  const env = { server: null, browser: null };
  before(async () => {
    env.server = await startServer(serverOptions);
    env.browser = await launchBrowser(browserOptions);
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  return env;
}
