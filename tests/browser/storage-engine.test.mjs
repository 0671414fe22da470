// The worker's side of storage (www/worker.js through the public API, with the real SmolLM2):
// a stored model survives a replacement that fails and an engine that cannot read it, a second
// tab waits for the first one's download instead of failing, and a damaged stored model is
// caught before it runs. Needs www/pkg (scripts/build-wasm) and models/ (scripts/fetch-models).
// Run: node --test tests/browser/storage-engine.test.mjs
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SMOLLM2, SMOLLM2_SHA256, launchBrowser, startServer } from './harness.mjs';

const MODEL_URL = `/models/${SMOLLM2}`;
const OTHER_SHA256 = 'ab'.repeat(32);

describe('stored models and the engine', () => {
  let server;
  let browser;
  let storage; // a storage.html tab: files written past the engine, raw OPFS access

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const page = await browser.newPage(`${server.url}test/storage.html`);
    await page.waitForFunction(() => window.ready);
    storage = (op, args) => page.evaluate(([o, a]) => window.rpc(o, a), [op, args]);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  async function apiTab() {
    const page = await browser.newPage(`${server.url}test/api.html`);
    await page.waitForFunction(() => window.ready);
    return page;
  }

  /** createEngine in `page`, unloaded again at once; progress and errors come back as data. */
  const load = (page, options) => page.evaluate(async (options) => {
    const progress = [];
    try {
      const engine = await window.wick.createEngine({ backend: 'cpu', ...options, onProgress: (p) => progress.push(p) });
      const info = engine.info();
      await engine.unload();
      return { info, progress };
    } catch (e) {
      return { error: { kind: e.kind, message: e.message }, progress };
    }
  }, options);

  const stored = (page, id) => page.evaluate(async (id) => (await window.wick.listModels()).find((m) => m.id === id) ?? null, id);
  const modelRequests = () => server.requests.filter((r) => r.path.includes(SMOLLM2));

  test('a download of other bytes under a stored id keeps the stored model when it fails', async () => {
    const page = await apiTab();
    const id = 'keep.gguf';
    const first = await load(page, { model: { url: MODEL_URL, id }, sha256: SMOLLM2_SHA256 });
    assert.equal(first.error, undefined, JSON.stringify(first.error));
    const model = await stored(page, id);

    // A hash list that does not match the server's file (stale), then a cut connection.
    const mismatch = await load(page, { model: { url: MODEL_URL, id }, sha256: OTHER_SHA256 });
    assert.equal(mismatch.error?.kind, 'integrity');
    assert.deepEqual(await stored(page, id), model, 'the stored model is still there');
    const cut = await load(page, { model: { url: `/fault/cut/${SMOLLM2}?run=keep`, id }, sha256: OTHER_SHA256 });
    assert.equal(cut.error?.kind, 'download');
    assert.deepEqual(await stored(page, id), model);

    server.requests.length = 0;
    const again = await load(page, { model: { id } });
    assert.equal(again.error, undefined, JSON.stringify(again.error));
    assert.deepEqual(modelRequests(), [], 'loaded from storage');
    await page.close();
  });

  test('a model stored earlier that the engine cannot read stays stored', async () => {
    const id = 'stored-corrupt.gguf';
    assert.equal((await storage('download', { url: '/fault/corrupt/stored.gguf', id })).error, undefined);
    const page = await apiTab();
    const r = await load(page, { model: { id } });
    assert.equal(r.error?.kind, 'invalid_model');
    assert.match(r.error.message, /\(model "stored-corrupt\.gguf" was stored earlier and stays stored; delete it from the stored models, or with deleteModel\("stored-corrupt\.gguf"\), to free its space\)$/);
    assert.ok(await stored(page, id), 'still stored');
    // What this very load downloaded and cannot read goes again.
    const fresh = await load(page, { model: { url: '/fault/corrupt/fresh.gguf', id: 'fresh-corrupt.gguf' } });
    assert.equal(fresh.error?.kind, 'invalid_model');
    assert.equal(await stored(page, 'fresh-corrupt.gguf'), null);
    // Unless the load named its SHA-256 and the bytes matched: they are what the person asked
    // for, so they stay (a later version may read them), and the message says so.
    const vouchedUrl = '/fault/corrupt/vouched.gguf?size=65536';
    const body = Buffer.from(await (await fetch(`${server.url}${vouchedUrl.slice(1)}`)).arrayBuffer());
    const sha256 = createHash('sha256').update(body).digest('hex');
    const vouched = await load(page, { model: { url: vouchedUrl, id: 'vouched-corrupt.gguf' }, sha256 });
    assert.equal(vouched.error?.kind, 'invalid_model');
    assert.match(vouched.error.message, /\(model "vouched-corrupt\.gguf" matched the SHA-256 it was loaded with and stays stored;/);
    assert.ok(await stored(page, 'vouched-corrupt.gguf'), 'kept');
    await page.close();
  });

  test('a second tab waits for the first one\'s download, then loads the stored copy', async () => {
    const [a, b] = [await apiTab(), await apiTab()];
    const id = 'two-tabs.gguf';
    server.requests.length = 0;
    await a.evaluate(([url, id]) => {
      window.progress = [];
      window.loading = window.wick.createEngine({ model: { url, id }, backend: 'cpu', onProgress: (p) => window.progress.push(p) })
        .then((engine) => engine.unload().then(() => 'ok'), (e) => `${e.kind}: ${e.message}`);
    }, [MODEL_URL, id]);
    await a.waitForFunction(() => window.progress.some((p) => p.phase === 'download' && p.loaded > 0));
    const second = await load(b, { model: { url: MODEL_URL, id } });
    assert.equal(await a.evaluate(() => window.loading), 'ok');
    assert.equal(second.error, undefined, JSON.stringify(second.error));
    assert.equal(second.progress[0].phase, 'waiting', 'it said it waits');
    assert.deepEqual(second.progress[0], { phase: 'waiting', loaded: 0, total: 0 });
    assert.ok(!second.progress.some((p) => p.phase === 'download'), 'and downloaded nothing');
    assert.deepEqual(modelRequests().map((r) => r.range), [null], 'one download, by the first tab');
    await a.close();
    await b.close();
  });

  const damaged = /^stored model "(flipped|old)\.gguf" is damaged: its bytes have XXH3 checksum [0-9a-f]{16}, not the [0-9a-f]{16} they had when stored; delete it and load it again$/;

  test('a bit flipped in a stored model is caught before it runs, whether or not the load names its sha256', async () => {
    const id = 'flipped.gguf';
    assert.equal((await storage('download', { url: MODEL_URL, id })).value?.sha256, SMOLLM2_SHA256);
    const page = await apiTab();
    for (const sha256 of [undefined, SMOLLM2_SHA256]) {
      const r = await load(page, { model: { id }, sha256 });
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.equal(r.info.storageCheck, 'xxh3', 'checked against its checksum, not hashed with SHA-256 again');
    }
    await storage('flipBit', { name: id, at: 60_000_000 });
    for (const sha256 of [undefined, SMOLLM2_SHA256]) {
      const r = await load(page, { model: { id }, sha256 });
      assert.equal(r.error?.kind, 'integrity', `sha256 ${sha256 ? '' : 'not '}named`);
      assert.match(r.error.message, damaged);
    }
    assert.ok(await stored(page, id), 'it stays stored: deleting it is for the person');
    await page.close();
  });

  test('a model stored before checksums loads, gets its checksum recorded, and a later flipped bit is caught', async () => {
    const id = 'old.gguf';
    assert.equal((await storage('download', { url: MODEL_URL, id })).error, undefined);
    const manifest = await storage('manifest', { id });
    const { xxh3, ...old } = manifest; // as storage.js wrote it before checksums
    const page = await apiTab();
    for (const [sha256, check] of [[SMOLLM2_SHA256, 'sha256'], [undefined, 'first use']]) {
      await storage('manifest', { id, write: old });
      const first = await load(page, { model: { id }, sha256 });
      assert.equal(first.error, undefined, JSON.stringify(first.error));
      assert.equal(first.info.storageCheck, check);
      assert.deepEqual(await storage('manifest', { id }), manifest, 'its checksum is recorded');
      const then = await load(page, { model: { id }, sha256 });
      assert.equal(then.info?.storageCheck, 'xxh3');
    }
    await storage('flipBit', { name: id, at: 30_000_000 });
    const r = await load(page, { model: { id } });
    assert.equal(r.error?.kind, 'integrity');
    assert.match(r.error.message, damaged);
    await page.close();
  });

  // The numbers in www/storage.js (readModel) come from here.
  test('what checking a stored model costs: reading it with no check, with its XXH3, with its SHA-256', async () => {
    const id = 'timed.gguf';
    assert.equal((await storage('download', { url: MODEL_URL, id })).error, undefined);
    const { xxh3, ...old } = await storage('manifest', { id });
    const page = await apiTab();
    const runs = 5;
    const xxh3Runs = [];
    const sha256Runs = [];
    let build;
    for (let i = 0; i < runs; i++) {
      const { info } = await load(page, { model: { id }, sha256: SMOLLM2_SHA256 });
      build = `${info.build} build, ${info.simd}`;
      xxh3Runs.push(info.phases);
      await storage('manifest', { id, write: old });
      const legacy = await load(page, { model: { id }, sha256: SMOLLM2_SHA256 });
      assert.equal(legacy.info.storageCheck, 'sha256');
      sha256Runs.push(legacy.info.phases);
    }
    const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
    const size = (await stored(page, id)).size;
    const check = median(xxh3Runs.map((p) => p.checkMs));
    console.log(`reading ${SMOLLM2} (${(size / 1e6).toFixed(1)} MB) from storage (${build}), median of ${runs}: no check ${median(xxh3Runs.map((p) => p.readMs - p.checkMs)).toFixed(0)} ms, `
      + `with its XXH3 ${median(xxh3Runs.map((p) => p.readMs)).toFixed(0)} ms (the checksum ${check.toFixed(1)} ms, ${(size / 1e3 / check).toFixed(0)} MB/s), `
      + `with its SHA-256 ${median(sha256Runs.map((p) => p.readMs)).toFixed(0)} ms`);
    await page.close();
  });
});
