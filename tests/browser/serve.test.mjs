// scripts/serve.mjs: the headers the browser build depends on, HTTP ranges for resumable model
// downloads, path safety, /models/index.json, the command line, and isolation as Chromium sees it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, mimeType } from '../../scripts/serve.mjs';
import { MODELS_DIR, REPO, SMOLLM2, launchBrowser, startServer } from './harness.mjs';

// Raw requests: fetch() would normalize the "/../" paths this test needs to send.
function request(base, urlPath, { method = 'GET', headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(base), { method, path: urlPath, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${server.address().port}/`;
}

describe('scripts/serve.mjs', () => {
  let models;
  let server;
  let base;
  const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  bytes.write('GGUF', 0, 'latin1');

  before(async () => {
    models = await fsp.mkdtemp(path.join(os.tmpdir(), 'wick-serve-'));
    await fsp.writeFile(path.join(models, 'a.gguf'), bytes);
    await fsp.writeFile(path.join(models, 'b.gguf'), 'GGUF');
    await fsp.writeFile(path.join(models, 'notes.txt'), 'not a model');
    await fsp.writeFile(path.join(models, 'SHA256SUMS'), `${'ab'.repeat(32)}  a.gguf\n${'cd'.repeat(32)}  gone.gguf\n`);
    server = createServer({ root: path.join(REPO, 'www'), models });
    base = await listen(server);
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await fsp.rm(models, { recursive: true, force: true });
  });

  test('page files: isolation headers, MIME types, revalidation', async () => {
    const res = await request(base, '/errors.js');
    assert.equal(res.status, 200);
    assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin');
    assert.equal(res.headers['cross-origin-embedder-policy'], 'require-corp');
    assert.equal(res.headers['cross-origin-resource-policy'], 'same-origin');
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['content-security-policy'], "frame-ancestors 'self'");
    assert.equal(res.headers['x-frame-options'], 'SAMEORIGIN');
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(res.body.toString(), fs.readFileSync(path.join(REPO, 'www/errors.js'), 'utf8'));
    const again = await request(base, '/errors.js', { headers: { 'If-None-Match': res.headers.etag } });
    assert.equal(again.status, 304);
    assert.equal((await request(base, '/wick.d.ts')).headers['content-type'], 'text/plain; charset=utf-8');
    for (const [name, type] of [['w.wasm', 'application/wasm'], ['w.mjs', 'text/javascript; charset=utf-8'], ['i.html', 'text/html; charset=utf-8'],
      ['s.css', 'text/css; charset=utf-8'], ['d.json', 'application/json; charset=utf-8'], ['i.svg', 'image/svg+xml'], ['i.png', 'image/png'],
      ['m.gguf', 'application/octet-stream']]) {
      assert.equal(mimeType(name), type, name);
    }
  });

  test('models: validators and single ranges', async () => {
    const full = await request(base, '/models/a.gguf');
    assert.equal(full.status, 200);
    assert.deepEqual(full.body, bytes);
    const { etag, 'last-modified': lastModified } = full.headers;
    assert.equal(full.headers['accept-ranges'], 'bytes');
    assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
    assert.ok(lastModified);
    assert.equal(full.headers['content-type'], 'application/octet-stream');
    assert.equal(full.headers['cross-origin-embedder-policy'], 'require-corp');

    const ranges = [['bytes=10-19', 10, 19], ['bytes=990-', 990, 999], ['bytes=-5', 995, 999], ['bytes=995-5000', 995, 999], ['bytes=0-0', 0, 0]];
    for (const [range, start, end] of ranges) {
      const res = await request(base, '/models/a.gguf', { headers: { Range: range } });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers['content-range'], `bytes ${start}-${end}/1000`, range);
      assert.equal(res.headers['content-length'], String(end - start + 1), range);
      assert.deepEqual(res.body, bytes.subarray(start, end + 1), range);
    }
    for (const range of ['bytes=1000-', 'bytes=-0']) {
      const res = await request(base, '/models/a.gguf', { headers: { Range: range } });
      assert.equal(res.status, 416, range);
      assert.equal(res.headers['content-range'], 'bytes */1000');
    }
    for (const range of ['bytes=0-1,5-6', 'bytes=9-3', 'items=0-1', 'bytes=x-']) {
      const res = await request(base, '/models/a.gguf', { headers: { Range: range } });
      assert.equal(res.status, 200, `${range} is ignored`);
      assert.equal(res.body.length, 1000);
    }

    const matching = [etag, lastModified];
    for (const ifRange of matching) {
      assert.equal((await request(base, '/models/a.gguf', { headers: { Range: 'bytes=500-', 'If-Range': ifRange } })).status, 206, ifRange);
    }
    for (const ifRange of ['"other"', `W/${etag}`, new Date(0).toUTCString()]) {
      const res = await request(base, '/models/a.gguf', { headers: { Range: 'bytes=500-', 'If-Range': ifRange } });
      assert.equal(res.status, 200, `${ifRange}: a changed file comes whole`);
      assert.equal(res.body.length, 1000);
    }

    const head = await request(base, '/models/a.gguf', { method: 'HEAD', headers: { Range: 'bytes=0-99' } });
    assert.equal(head.status, 206);
    assert.equal(head.headers['content-length'], '100');
    assert.equal(head.body.length, 0);
  });

  test('paths cannot leave their folder; missing files are 404', async () => {
    for (const p of ['/../Cargo.toml', '/models/../../Cargo.toml', '/models/..%2f..%2fCargo.toml', '/%2e%2e/Cargo.toml', '/models/%00a.gguf']) {
      const res = await request(base, p);
      assert.equal(res.status, 400, p);
      assert.doesNotMatch(res.body.toString(), /\[package\]/, p);
    }
    const missing = await request(base, '/models/nope.gguf');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.toString(), 'not found\n');
    assert.equal((await request(base, '/models/')).status, 404, 'no directory listings');
    assert.equal((await request(base, '/errors.js', { method: 'POST' })).status, 405);
  });

  test('/models/index.json lists the GGUF files with the hashes SHA256SUMS gives', async () => {
    const res = await request(base, '/models/index.json');
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.deepEqual(JSON.parse(res.body), [
      { name: 'a.gguf', url: '/models/a.gguf', size: 1000, sha256: 'ab'.repeat(32) },
      { name: 'b.gguf', url: '/models/b.gguf', size: 4, sha256: null },
    ]);
  });

  test('without isolation there is no COOP/COEP', async () => {
    const plain = createServer({ root: path.join(REPO, 'www'), models, isolation: false });
    const url = await listen(plain);
    const res = await request(url, '/errors.js');
    plain.closeAllConnections();
    plain.close();
    assert.equal(res.headers['cross-origin-opener-policy'], undefined);
    assert.equal(res.headers['cross-origin-embedder-policy'], undefined);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
  });
});

test('scripts/serve prints its URL and serves the page and the models', async () => {
  const child = spawn(path.join(REPO, 'scripts/serve'), ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const line = await new Promise((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(d.toString().split('\n')[0]));
      child.once('exit', (code) => reject(new Error(`scripts/serve exited with ${code}`)));
    });
    const m = /^wick: serving the chat page at (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(line);
    assert.ok(m, line);
    const res = await request(m[1], `/models/${SMOLLM2}`, { method: 'HEAD' });
    assert.equal(res.status, 200);
    assert.equal(Number(res.headers['content-length']), fs.statSync(path.join(MODELS_DIR, SMOLLM2)).size);
  } finally {
    child.kill();
  }
});

test('Chromium sees the page cross-origin isolated, and not with isolation off', async () => {
  const browser = await launchBrowser();
  try {
    for (const isolation of [true, false]) {
      const server = await startServer({ isolation });
      const page = await browser.newPage(`${server.url}test/storage.html`);
      assert.equal(await page.evaluate(() => crossOriginIsolated), isolation);
      assert.equal(await page.evaluate(() => typeof SharedArrayBuffer === 'function'), isolation);
      await page.close();
      await server.close();
    }
  } finally {
    await browser.close();
  }
});

test('another site cannot frame the page; the page itself can', async () => {
  const browser = await launchBrowser();
  const server = await startServer();
  // Another origin (another port) without COEP: its frames are not held to CORP, so only the
  // page's own frame-ancestors / X-Frame-Options can refuse to be framed there.
  const other = await startServer({ isolation: false });
  try {
    const framed = async (parentUrl) => {
      const page = await browser.newPage(`${parentUrl}test/storage.html`);
      await page.evaluate((src) => new Promise((resolve) => {
        const frame = document.createElement('iframe');
        frame.onload = resolve;
        frame.src = src;
        document.body.append(frame);
      }), server.url);
      // A refused frame is left on Chromium's error page, with no document of the page's.
      const child = page.frames().find((f) => f !== page.mainFrame());
      const title = await child.evaluate(() => document.title).catch(() => null);
      await page.close();
      return { url: child.url(), title };
    };
    const same = await framed(server.url);
    assert.equal(same.url, server.url);
    assert.match(same.title, /wick/i);
    const cross = await framed(other.url);
    assert.notEqual(cross.url, server.url, 'a page of another origin framed the chat page');
    assert.doesNotMatch(cross.title ?? '', /wick/i);
  } finally {
    await browser.close();
    await server.close();
    await other.close();
  }
});
