// The worker's side of storage (www/worker.js through the public API, with the real SmolLM2):
// a stored model survives a replacement that fails and an engine that cannot read it, a second
// tab waits for the first one's download instead of failing, and a damaged stored model is
// caught before it runs. Needs www/pkg (scripts/build-wasm) and models/ (scripts/fetch-models).
// Run: node --test tests/browser/storage-engine.test.mjs
import assert from 'node:assert/strict';
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

  test('a bit flipped in a stored model is caught before it runs when the load names its sha256', async () => {
    const id = 'flipped.gguf';
    assert.equal((await storage('download', { url: MODEL_URL, id })).value?.sha256, SMOLLM2_SHA256);
    const page = await apiTab();
    // What re-hashing costs: the same load without and with the check.
    const plain = await load(page, { model: { id } });
    const checked = await load(page, { model: { id }, sha256: SMOLLM2_SHA256 });
    assert.equal(plain.error ?? checked.error, undefined);
    console.log(`reading ${SMOLLM2} from storage: ${plain.info.readMs.toFixed(0)} ms, with its SHA-256 checked ${checked.info.readMs.toFixed(0)} ms`);

    await storage('flipBit', { name: id, at: 60_000_000 });
    const r = await load(page, { model: { id }, sha256: SMOLLM2_SHA256 });
    assert.equal(r.error?.kind, 'integrity');
    assert.match(r.error.message, /^stored model "flipped\.gguf" is damaged: its bytes have SHA-256 [0-9a-f]{64}, not the b179c95[0-9a-f]+ they had when stored; delete it and load it again$/);
    await page.close();
  });
});
