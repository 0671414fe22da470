// The npm package (scripts/pack) embedded the three ways a web developer would, in headless
// Chromium on the real model: without a bundler from another origin (a CDN), through an import
// map, and in a Vite app built from the packed tarball. Each loads SmolLM2 and answers.
// Run: node --test tests/browser/package.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, resolveInside, sendFile } from '../../scripts/serve.mjs';
import { MODELS_DIR, REPO, SMOLLM2, launchBrowser, listenLocally, nativeGreedy } from './harness.mjs';

const PACK_DIR = path.join(REPO, 'target/npm');
const PACKAGE_DIR = path.join(PACK_DIR, 'package');
const MODEL = `/models/${SMOLLM2}`;

/** A server on 127.0.0.1 for `root`, logging request paths; `routes` answers first. */
async function serve({ root, isolation = true, routes }) {
  const requests = [];
  const server = createServer({
    root,
    models: MODELS_DIR,
    isolation,
    extraRoutes: async (req, res) => {
      requests.push(req.url.split('?')[0]);
      return (await routes?.(req, res)) ?? false;
    },
  });
  return { ...(await listenLocally(server)), requests };
}

/** `dir` at `prefix` (e.g. '/vendor/wick-llm/'). */
function mount(prefix, dir) {
  return async (req, res) => {
    const urlPath = req.url.split('?')[0];
    if (!urlPath.startsWith(prefix)) return false;
    const file = resolveInside(dir, urlPath.slice(prefix.length));
    if (!file) return false;
    await sendFile(req, res, file, { 'Cache-Control': 'no-cache' });
    return true;
  };
}

const PROMPT = 'The capital of France is';

/** In the page: load the model with the engine module `engineUrl` and continue PROMPT greedily. */
async function loadAndAnswer(page, engineUrl) {
  return page.evaluate(async ({ engineUrl, model, prompt }) => {
    const wick = await import(engineUrl);
    const engine = await wick.createEngine({ model });
    const reply = await engine.completions.create({ prompt, max_tokens: 8, temperature: 0, ignore_eos: true });
    const info = engine.info();
    await engine.unload();
    return { text: reply.choices[0].text, build: info.build, isolated: info.crossOriginIsolated };
  }, { engineUrl, model: MODEL, prompt: PROMPT });
}

describe('the npm package', () => {
  let pages; // the embedding site: pages at /, models at /models/
  let cdn; // the package on another origin, with CORS
  let browser;
  let work; // temporary files: the pages, the Vite app
  let expected; // the native CLI's greedy continuation of PROMPT

  before(async () => {
    execFileSync(path.join(REPO, 'scripts/pack'), { stdio: 'inherit' });
    expected = nativeGreedy(path.join(MODELS_DIR, SMOLLM2), PROMPT, 8).text;
    work = await fsp.mkdtemp(path.join(os.tmpdir(), 'wick-package-'));
    await fsp.writeFile(path.join(work, 'blank.html'), '<!doctype html><title>an embedding page</title><link rel="icon" href="data:,">\n');
    pages = await serve({ root: work });
    cdn = await serve({
      root: PACKAGE_DIR,
      isolation: false,
      routes: (req, res) => {
        // What a CDN sends for a package: anyone may read it, and an isolated page may embed it.
        res.setHeader('Access-Control-Allow-Origin', '*');
        res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
        return false;
      },
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await pages?.close();
    await cdn?.close();
    if (work) await fsp.rm(work, { recursive: true, force: true });
  });

  test('the tarball holds the API, its types, the worker, the element and the four wasm builds, and nothing else', () => {
    const tarball = fs.readdirSync(PACK_DIR).find((f) => /^wick-llm-.+\.tgz$/.test(f));
    assert.ok(tarball, 'scripts/pack made a tarball');
    const listing = execFileSync('tar', ['-tzf', path.join(PACK_DIR, tarball)], { encoding: 'utf8' }).trim().split('\n').sort();
    for (const f of ['wick.js', 'worker.js', 'errors.js', 'storage.js', 'openai-fetch.js', 'wick.d.ts', 'wick-chat.js', 'app/markdown.js', 'app/format.js', 'app/dom.js', 'package.json', 'README.md']) {
      assert.ok(listing.includes(`package/${f}`), `${f} in ${listing.join(' ')}`);
    }
    for (const flavour of ['simd', 'threads', 'simd-relaxed', 'threads-relaxed']) {
      assert.ok(listing.includes(`package/pkg/${flavour}/wick.js`) && listing.includes(`package/pkg/${flavour}/wick_bg.wasm`), flavour);
    }
    assert.ok(listing.some((f) => /^package\/pkg\/threads\/snippets\/.+workerHelpers/.test(f)), 'the thread pool helper');
    assert.deepEqual(listing.filter((f) => !/^package\/(pkg\/|app\/(markdown|format|dom)\.js$|[^/]+$)/.test(f)), []);
    // Every relative import of the package's own modules is a file of the package.
    for (const file of listing.filter((f) => /^package\/(app\/)?[^/]+\.js$/.test(f))) {
      const source = fs.readFileSync(path.join(PACK_DIR, file), 'utf8');
      for (const [, target] of source.matchAll(/(?:from|import\()\s*'(\.\.?\/[^']+)'/g)) {
        const resolved = path.posix.join(path.posix.dirname(file), target);
        assert.ok(listing.includes(resolved), `${file} imports ${target}, which the package lacks`);
      }
    }
    const manifest = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'package.json'), 'utf8'));
    assert.equal(manifest.name, 'wick-llm');
    assert.equal(manifest.type, 'module');
    assert.deepEqual(manifest.exports['.'], { types: './wick.d.ts', default: './wick.js' });
  });

  test('without a bundler, imported from another origin: threads on an isolated page, its files from the CDN', async () => {
    const page = await browser.newPage(`${pages.url}blank.html`);
    cdn.requests.length = 0;
    const result = await loadAndAnswer(page, `${cdn.url}wick.js`);
    assert.equal(result.text, expected, 'the greedy continuation the native CLI makes');
    assert.equal(result.isolated, true);
    assert.equal(result.build, 'threads', 'the threaded build runs from the CDN');
    assert.ok(cdn.requests.includes('/worker.js'), `worker.js came from the CDN: ${cdn.requests}`);
    assert.ok(cdn.requests.some((p) => /^\/pkg\/threads(-relaxed)?\/wick_bg\.wasm$/.test(p)), `the wasm came from the CDN: ${cdn.requests}`);
    assert.ok(!pages.requests.some((p) => p.endsWith('.js') || p.endsWith('.wasm')), `no engine file from the page's origin: ${pages.requests}`);
    await page.close();
  });

  test('without a bundler, on a page that is not cross-origin isolated: the single-thread build', async () => {
    const plain = await serve({ root: work, isolation: false });
    try {
      const page = await browser.newPage(`${plain.url}blank.html`);
      const result = await loadAndAnswer(page, `${cdn.url}wick.js`);
      assert.equal(result.text, expected);
      assert.equal(result.isolated, false);
      assert.equal(result.build, 'simd');
      await page.close();
    } finally {
      await plain.close();
    }
  });

  test('through an import map (www/examples/importmap.html, with the packaged files): `import { createEngine } from "wick-llm"`', async () => {
    // The example maps "wick-llm" to ../wick.js: its site here serves the package at /.
    const site = await serve({ root: PACKAGE_DIR, routes: mount('/examples/', path.join(REPO, 'www/examples')) });
    try {
      const page = await browser.newPage(`${site.url}examples/importmap.html`);
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Ready'), null, { timeout: 120_000 });
      await page.fill('#question', 'What is the capital of France?');
      await page.press('#question', 'Enter');
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Done'), null, { timeout: 120_000 });
      assert.ok((await page.textContent('#answer')).trim().length > 0, 'an answer');
      assert.match(await page.textContent('#status'), /threads build/);
      assert.ok(site.requests.includes('/worker.js') && site.requests.includes('/wick.js'), site.requests.join(' '));
      await page.close();
    } finally {
      await site.close();
    }
  });

  test('in a Vite app built from the tarball (www/examples/vite-app): the built app loads the model and answers', async () => {
    const app = path.join(work, 'vite-app');
    await fsp.cp(path.join(REPO, 'www/examples/vite-app'), app, { recursive: true });
    const tarball = fs.readdirSync(PACK_DIR).find((f) => /^wick-llm-.+\.tgz$/.test(f));
    // The package has no dependencies: installing its tarball needs no registry.
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', '--no-save', path.join(PACK_DIR, tarball)], { cwd: app, stdio: 'inherit' });
    execFileSync(path.join(REPO, 'node_modules/.bin/vite'), ['build', '--logLevel', 'warn'], { cwd: app, stdio: 'inherit' });
    const built = await serve({ root: path.join(app, 'dist') });
    try {
      const page = await browser.newPage(`${built.url}`);
      await page.fill('#question', 'What is the capital of France?');
      await page.click('#ask');
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Done'), null, { timeout: 120_000 });
      assert.ok((await page.textContent('#answer')).trim().length > 0, 'an answer');
      assert.match(await page.textContent('#status'), /threads build/);
      // Everything came from the built app: no request left it for the package's source.
      assert.ok(!built.requests.some((p) => p.includes('node_modules')), built.requests.join(' '));
      await page.close();
    } finally {
      await built.close();
    }
  });
});
