#!/usr/bin/env node
// The development server for the chat page: www/ at `/`, models/ at `/models/`.
//
// It sends what the browser build needs and what a plain static server gets wrong: COOP/COEP so the
// page is cross-origin isolated (threads need SharedArrayBuffer), the wasm MIME type, and HTTP
// ranges with validators so an interrupted model download resumes. Files are streamed, never read
// whole. No dependencies beyond Node 20.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.gguf': 'application/octet-stream',
};

/** The MIME type for a file name (`.d.ts` is text: `.ts` alone would be video/mp2t). */
export function mimeType(name) {
  if (name.endsWith('.d.ts')) return 'text/plain; charset=utf-8';
  return MIME[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/** A strong validator from size and mtime: it changes whenever the file is replaced or rewritten. */
export function etagOf(stat) {
  return `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
}

function sendText(res, status, text, headers = {}) {
  const body = Buffer.from(`${text}\n`);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length, ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/**
 * Parses a single-range `Range` header against a file size (RFC 9110 §14.1.2).
 * Returns {start, end} (inclusive), 'unsatisfiable', or null when the header is to be ignored
 * (absent, another unit, several ranges, malformed): the whole file is then sent with 200.
 */
export function parseRange(header, size) {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

// If-Range holds an entity tag (strong comparison: a weak tag never matches) or an HTTP date,
// which must equal Last-Modified exactly.
function ifRangeMatches(ifRange, etag, mtime) {
  if (ifRange.startsWith('"') || ifRange.startsWith('W/')) return ifRange === etag;
  const date = Date.parse(ifRange);
  return !Number.isNaN(date) && date === Math.floor(mtime.getTime() / 1000) * 1000;
}

/**
 * Sends one file with validators and range support. `headers` are added to every answer (such
 * as Cache-Control). Missing files and directories answer 404.
 */
export async function sendFile(req, res, file, headers = {}) {
  let handle;
  try {
    handle = await fsp.open(file, 'r');
  } catch {
    return sendText(res, 404, 'not found');
  }
  let stream;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return sendText(res, 404, 'not found');
    const etag = etagOf(stat);
    const common = {
      'Content-Type': mimeType(file),
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'Last-Modified': stat.mtime.toUTCString(),
      ...headers,
    };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, common);
      return res.end();
    }
    let range = parseRange(req.headers.range, stat.size);
    const ifRange = req.headers['if-range'];
    if (range && ifRange && !ifRangeMatches(ifRange, etag, stat.mtime)) range = null;
    if (range === 'unsatisfiable') {
      return sendText(res, 416, 'range not satisfiable', { ...common, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Range': `bytes */${stat.size}` });
    }
    const { start, end } = range ?? { start: 0, end: stat.size - 1 };
    res.writeHead(range ? 206 : 200, {
      ...common,
      'Content-Length': end - start + 1,
      ...(range && { 'Content-Range': `bytes ${start}-${end}/${stat.size}` }),
    });
    if (req.method === 'HEAD' || end < start) return res.end();
    stream = handle.createReadStream({ start, end, highWaterMark: 1 << 20 });
    // A client that goes away mid-file rejects the pipeline: nothing to report, the socket is gone.
    await pipeline(stream, res).catch(() => {});
  } finally {
    if (!stream) await handle.close();
  }
}

/** Maps a URL path below a mount point to a file inside `base`, or null when it would escape. */
export function resolveInside(base, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.split(/[/\\]/).includes('..')) return null;
  const file = path.resolve(base, `.${path.posix.sep}${decoded}`);
  return file === base || file.startsWith(base + path.sep) ? file : null;
}

// sha256sum format: "<hex>  <name>" (or " *<name>" for binary mode).
async function readSums(file) {
  const sums = new Map();
  const text = await fsp.readFile(file, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const m = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line.trim());
    if (m) sums.set(m[2], m[1].toLowerCase());
  }
  return sums;
}

/** The models/*.gguf files present: [{name, url, size, sha256}] (sha256 from models/SHA256SUMS, else null). */
export async function modelIndex(modelsDir) {
  const sums = await readSums(path.join(modelsDir, 'SHA256SUMS'));
  const entries = await fsp.readdir(modelsDir, { withFileTypes: true }).catch(() => []);
  const models = [];
  for (const entry of entries) {
    if (!entry.name.endsWith('.gguf')) continue;
    const stat = await fsp.stat(path.join(modelsDir, entry.name)).catch(() => null);
    if (!stat?.isFile()) continue;
    models.push({
      name: entry.name,
      url: `/models/${encodeURIComponent(entry.name)}`,
      size: stat.size,
      sha256: sums.get(entry.name) ?? null,
    });
  }
  return models.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * An http.Server for the page. `root` is served at `/`, `models` at `/models/`; `isolation` adds
 * COOP/COEP; `extraRoutes(req, res)` is tried first and returns true when it answered.
 */
export function createServer({ root, models, isolation = true, extraRoutes } = {}) {
  const rootDir = path.resolve(root);
  const modelsDir = path.resolve(models);
  return http.createServer(async (req, res) => {
    try {
      res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      // No other site may frame the page: a framing site could overlay it and trick a person
      // into typing into it or deleting stored models (clickjacking). X-Frame-Options is for
      // browsers without CSP frame-ancestors.
      res.setHeader('Content-Security-Policy', "frame-ancestors 'self'");
      res.setHeader('X-Frame-Options', 'SAMEORIGIN');
      if (isolation) {
        res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
        res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
      }
      if (extraRoutes && (await extraRoutes(req, res))) return;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return sendText(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
      }
      const urlPath = (req.url ?? '/').split('?')[0];
      if (urlPath === '/models/index.json') {
        const body = Buffer.from(JSON.stringify(await modelIndex(modelsDir), null, 2));
        res.writeHead(200, { 'Content-Type': mimeType('index.json'), 'Content-Length': body.length, 'Cache-Control': 'no-cache' });
        return res.end(req.method === 'HEAD' ? undefined : body);
      }
      if (urlPath.startsWith('/models/')) {
        const file = resolveInside(modelsDir, urlPath.slice('/models/'.length));
        if (!file) return sendText(res, 400, 'bad path');
        // The engine keeps models in OPFS: a second copy in the HTTP cache would only cost disk.
        return await sendFile(req, res, file, { 'Cache-Control': 'no-store' });
      }
      const file = resolveInside(rootDir, urlPath.endsWith('/') ? `${urlPath}index.html` : urlPath);
      if (!file) return sendText(res, 400, 'bad path');
      return await sendFile(req, res, file, { 'Cache-Control': 'no-cache' });
    } catch (err) {
      console.error(`wick serve: ${req.method} ${req.url}: ${err.stack ?? err}`);
      if (!res.headersSent) sendText(res, 500, 'internal error');
      else res.destroy();
    }
  });
}

function usage() {
  return `usage: scripts/serve [--port N] [--host ADDR] [--no-isolation]
  --port N         port to listen on (default 8080; 0 picks a free one)
  --host ADDR      address to bind (default 127.0.0.1)
  --no-isolation   leave out COOP/COEP: the page is not cross-origin isolated (single-thread build)`;
}

function parseArgs(argv) {
  const opts = { port: 8080, host: '127.0.0.1', isolation: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--port') {
      opts.port = Number(value());
      if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) throw new Error('--port must be 0..65535');
    } else if (arg === '--host') opts.host = value();
    else if (arg === '--no-isolation') opts.isolation = false;
    else if (arg === '-h' || arg === '--help') opts.help = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  return opts;
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`wick serve: ${err.message}\n${usage()}`);
    process.exit(2);
  }
  if (opts.help) return console.log(usage());
  const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const server = createServer({ root: path.join(repo, 'www'), models: path.join(repo, 'models'), isolation: opts.isolation });
  server.on('error', (err) => {
    const hint = err.code === 'EADDRINUSE' ? `: port ${opts.port} is taken, try --port ${opts.port + 1}` : '';
    console.error(`wick serve: ${err.message}${hint}`);
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const { port } = server.address();
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    console.log(`wick: serving the chat page at http://${host}:${port}/`);
    if (!opts.isolation) console.log('wick: --no-isolation: the page is not cross-origin isolated (single-thread build)');
    // OPFS, WebGPU and SharedArrayBuffer need a secure context: localhost, or HTTPS.
    if (!['127.0.0.1', 'localhost', '::1'].includes(opts.host)) {
      console.log('wick: browsers treat only localhost (or HTTPS) as a secure context: remote clients get no OPFS or threads');
    }
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
