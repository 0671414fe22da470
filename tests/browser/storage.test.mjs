// www/storage.js in headless Chromium: downloads of the real SmolLM2 model into OPFS, resume after
// a cut connection and after a browser restart, every failure kind, and reading a model back.
// Run: node --test tests/browser/
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { modelIdFor } from '../../www/storage.js';
import { MODELS_DIR, SMOLLM2, SMOLLM2_SHA256, launchBrowser, startServer } from './harness.mjs';

const SIZE = fs.statSync(`${MODELS_DIR}/${SMOLLM2}`).size;
const MODEL_URL = `/models/${SMOLLM2}`;
const PART = `${SMOLLM2}.part`;
const PART_STATE = `${SMOLLM2}.part.json`;
const MANIFEST = `${SMOLLM2}.manifest.json`;

test('modelIdFor names a model after its file, sanitized', () => {
  assert.equal(modelIdFor(MODEL_URL), SMOLLM2);
  assert.equal(modelIdFor('https://example.com/m/My%20Model%20(v2).gguf?download=1'), 'My_Model_v2_.gguf');
  assert.equal(modelIdFor(new URL('https://example.com/a/b.gguf')), 'b.gguf');
  assert.equal(modelIdFor({ url: MODEL_URL, id: 'smol' }), 'smol');
  assert.equal(modelIdFor({ id: 'a/b c' }), 'a_b_c');
  assert.equal(modelIdFor(new File([], 'local.gguf')), 'local.gguf');
  assert.equal(modelIdFor({ file: new File([], 'x y.gguf') }), 'x_y.gguf');
  assert.equal(modelIdFor('/models/.hidden.gguf'), '_hidden.gguf');
  assert.equal(modelIdFor('/models/x.part'), 'x_part', 'an id never looks like a partial download');
  const long = modelIdFor(`/models/${'n'.repeat(300)}.gguf`);
  assert.equal(long.length, 128);
  assert.ok(long.endsWith('.gguf'));
  assert.throws(() => modelIdFor('https://example.com/'), { kind: 'invalid_parameter' });
  assert.throws(() => modelIdFor({ file: new Blob([]) }), { kind: 'invalid_parameter' });
});

describe('in Chromium', () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  // A fresh tab (and worker) on an empty store; the request log starts empty too.
  async function openPage() {
    const page = await browser.newPage(`${server.url}test/storage.html`);
    await page.waitForFunction(() => window.ready);
    const rpc = (op, args) => page.evaluate(([o, a]) => window.rpc(o, a), [op, args]);
    const cleared = await rpc('clear');
    assert.equal(cleared?.error, undefined, `the store empties: ${cleared?.error?.message}`);
    server.requests.length = 0;
    return { page, rpc };
  }

  const modelRequests = () => server.requests.filter((r) => r.path.split('?')[0].endsWith(SMOLLM2));

  function assertProgress(progress, { from = 0, resumed = false } = {}) {
    assert.ok(progress.length >= 2, 'a first and a last progress event at least');
    assert.ok(progress.every((p) => p.phase === 'download' && p.total === SIZE && p.resumed === resumed));
    assert.equal(progress[0].loaded, from);
    assert.equal(progress.at(-1).loaded, SIZE);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i].loaded >= progress[i - 1].loaded, 'loaded never goes back');
    assert.ok(progress.at(-1).rate > 0, 'a rate in bytes per second');
  }

  test('downloads SmolLM2 with progress and its SHA-256, lists, reads back and deletes it', async () => {
    const { page, rpc } = await openPage();
    const t0 = performance.now();
    const { value: model, error, progress } = await rpc('download', { url: MODEL_URL });
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(error, undefined);
    assert.deepEqual({ ...model, storedAt: undefined }, {
      id: SMOLLM2, name: SMOLLM2, size: SIZE, sha256: SMOLLM2_SHA256, source: `${server.url}models/${SMOLLM2}`, storedAt: undefined,
    });
    assert.ok(!Number.isNaN(Date.parse(model.storedAt)));
    assertProgress(progress);
    // At most one event per ~100 ms, besides the first and the last.
    assert.ok(progress.length <= seconds * 10 + 3, `${progress.length} progress events in ${seconds.toFixed(2)} s`);
    assert.deepEqual(modelRequests().map((r) => r.range), [null], 'one request, for the whole file');
    console.log(`download: ${(SIZE / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s, ${progress.length} progress events`);

    assert.deepEqual(Object.keys(await rpc('files')).sort(), [SMOLLM2, MANIFEST]);
    assert.deepEqual((await rpc('list')).value, [model]);
    assert.deepEqual(await page.evaluate(() => window.page.listModels()), [model], 'the page sees it too');
    assert.deepEqual((await rpc('stored', { id: SMOLLM2 })).value, model);

    for (const shared of [false, true]) {
      const { value: read, error: readError } = await rpc('read', { id: SMOLLM2, shared });
      assert.equal(readError, undefined);
      assert.equal(read.bufferShared, shared);
      assert.equal(read.size, SIZE);
      assert.equal(read.sha256, SMOLLM2_SHA256, 'the bytes read back are the file');
      assert.equal(read.views, Math.ceil(SIZE / (16 << 20)), 'a view per chunk');
      assert.equal(read.progress.at(-1).loaded, SIZE);
      assert.equal(read.check, 'xxh3');
      // (This page sums the checksum through a Hasher, SHA-256 included: storage-engine.test.mjs
      // times the engine's own, ModelBuffer.xxh3.)
      console.log(`readModel (${shared ? 'shared' : 'plain'} memory): ${read.ms.toFixed(0)} ms`);
    }

    assert.equal((await rpc('delete', { id: SMOLLM2 })).error, undefined);
    assert.deepEqual(await rpc('files'), {});
    assert.deepEqual((await rpc('list')).value, []);
    assert.equal((await rpc('stored', { id: SMOLLM2 })).value, null);
    assert.equal((await rpc('delete', { id: SMOLLM2 })).error, undefined, 'deleting an absent model is fine');
    assert.equal((await rpc('read', { id: SMOLLM2 })).error.kind, 'storage');

    const onPage = await page.evaluate((url) => window.page.downloadModel({ url, createHasher: () => null }).catch((e) => e.toJSON()), MODEL_URL);
    assert.equal(onPage.kind, 'unsupported_browser', 'writing needs a worker');
    assert.match(onPage.message, /^downloadModel runs in a Web Worker/);
    await page.close();
  });

  const damaged = (id, hash, digits, recorded) => new RegExp(`^stored model "${id.replace(/[.]/g, '\\.')}" is damaged: its bytes have ${hash} [0-9a-f]{${digits}}, not the ${recorded} they had when stored; delete it and load it again$`);

  test('every read checks the XXH3 checksum recorded when the model was stored, and no SHA-256', async () => {
    const { rpc } = await openPage();
    const { value: model } = await rpc('download', { url: MODEL_URL });
    const { xxh3 } = await rpc('manifest', { id: SMOLLM2 });
    assert.match(xxh3, /^[0-9a-f]{16}$/, 'the manifest records an XXH3-64');
    for (const sha256 of [false, true]) {
      const { value: read, error } = await rpc('read', { id: SMOLLM2, sha256 });
      assert.equal(error, undefined);
      assert.equal(read.check, 'xxh3');
      assert.equal(read.hashers, 0, 'no SHA-256 of a model that has a checksum, even when the read names one');
      assert.equal(read.sha256, SMOLLM2_SHA256);
    }
    // A flipped bit, as a failing disk would leave it: caught whether or not the read names a SHA-256.
    await rpc('flipBit', { name: SMOLLM2, at: 60_000_000 });
    for (const sha256 of [false, true]) {
      const { error } = await rpc('read', { id: SMOLLM2, sha256 });
      assert.equal(error?.kind, 'integrity');
      assert.match(error.message, damaged(SMOLLM2, 'XXH3 checksum', 16, xxh3));
    }
    assert.deepEqual((await rpc('stored', { id: SMOLLM2 })).value, model, 'it stays stored: deleting it is for the person');
  });

  test('a model stored without a checksum gets one on its first read: after its SHA-256 when the read names one, else as it is', async () => {
    const { rpc } = await openPage();
    await rpc('download', { url: MODEL_URL });
    const manifest = await rpc('manifest', { id: SMOLLM2 });
    const { xxh3, ...old } = manifest; // as storage.js wrote it before checksums

    // Damaged before that first read: the SHA-256 catches it, and no checksum of it is recorded.
    await rpc('manifest', { id: SMOLLM2, write: old });
    await rpc('flipBit', { name: SMOLLM2, at: 1_000_000 });
    const bad = await rpc('read', { id: SMOLLM2, sha256: true });
    assert.equal(bad.error?.kind, 'integrity');
    assert.match(bad.error.message, damaged(SMOLLM2, 'SHA-256', 64, SMOLLM2_SHA256));
    assert.deepEqual(await rpc('manifest', { id: SMOLLM2 }), old);
    await rpc('flipBit', { name: SMOLLM2, at: 1_000_000 }); // and back

    const first = await rpc('read', { id: SMOLLM2, sha256: true });
    assert.equal(first.error, undefined);
    assert.equal(first.value.check, 'sha256');
    assert.equal(first.value.hashers, 1);
    assert.deepEqual(await rpc('manifest', { id: SMOLLM2 }), manifest, 'the checksum the download would have recorded');
    const then = await rpc('read', { id: SMOLLM2, sha256: true });
    assert.equal(then.value?.check, 'xxh3');
    assert.equal(then.value.hashers, 0, 'SHA-256 once');

    // No SHA-256 named: trust on first use.
    await rpc('manifest', { id: SMOLLM2, write: old });
    const trusted = await rpc('read', { id: SMOLLM2 });
    assert.equal(trusted.value?.check, 'first use');
    assert.deepEqual(await rpc('manifest', { id: SMOLLM2 }), manifest);
    await rpc('flipBit', { name: SMOLLM2, at: 90_000_000 });
    const later = await rpc('read', { id: SMOLLM2 });
    assert.equal(later.error?.kind, 'integrity', 'a later flip is caught');
    assert.match(later.error.message, damaged(SMOLLM2, 'XXH3 checksum', 16, xxh3));
  });

  test('a second download of the same model waits for the first and takes its stored copy', async () => {
    const { page, rpc } = await openPage();
    const { first, second } = await rpc('downloadTwice', { url: MODEL_URL });
    assert.equal(first.value?.sha256, SMOLLM2_SHA256, 'the first one is not disturbed');
    assert.equal(second.error, undefined, JSON.stringify(second.error));
    assert.deepEqual(second.value, first.value, 'the model the first one stored');
    assert.deepEqual(second.progress, [{ phase: 'waiting', loaded: 0, total: 0 }], 'it said it waits, and downloaded nothing');
    assert.deepEqual(modelRequests().map((r) => r.range), [null], 'one request: the first download');
    await page.close();
  });

  test('a download waiting for another one can be aborted', async () => {
    const { page, rpc } = await openPage();
    const { first, second } = await rpc('downloadTwice', { url: MODEL_URL, second: { abortWaiting: true } });
    assert.equal(second.error?.kind, 'aborted');
    assert.match(second.error.message, /^waiting for model "SmolLM2-135M-Instruct.Q4_1.gguf" \(in use in this or another tab\) was aborted$/);
    assert.equal(first.value?.sha256, SMOLLM2_SHA256);
    await page.close();
  });

  test('deleting waits for a read but refuses during a download', async () => {
    const { page, rpc } = await openPage();
    await rpc('startDownload', { url: MODEL_URL });
    const refused = await page.evaluate((id) => window.page.deleteModel(id).catch((e) => e.toJSON()), SMOLLM2);
    assert.equal(refused.kind, 'storage');
    assert.match(refused.message, /is being downloaded or stored in this or another tab: cancel that, or delete it when it has finished/);
    assert.equal((await rpc('finished')).value?.sha256, SMOLLM2_SHA256, 'the download went on');

    // The page deletes while the worker reads: the read finishes with the right bytes, then the delete.
    const [read, deleted] = await Promise.all([rpc('read', { id: SMOLLM2 }), page.evaluate((id) => window.page.deleteModel(id).then(() => 'deleted'), SMOLLM2)]);
    assert.equal(deleted, 'deleted');
    if (read.error) assert.match(read.error.message, /is not in browser storage/, 'or the delete came first');
    else assert.equal(read.value.sha256, SMOLLM2_SHA256);
    assert.deepEqual(await rpc('files'), {});
    await page.close();
  });

  // The byte count a download error reports: the bytes its part keeps for the resume.
  const keptBytes = (error) => Number(/interrupted at .* of .* \((\d+) bytes; /.exec(error.message)?.[1]);

  async function cutDownload(rpc, url, args = {}) {
    const { error } = await rpc('download', { url, ...args });
    assert.equal(error?.kind, 'download');
    assert.match(error.message, /interrupted at .* of 98\.4 MB .*start it again to resume/);
    const files = await rpc('files');
    assert.deepEqual(Object.keys(files).sort(), [PART, PART_STATE], 'the part and its state stay, no manifest');
    assert.ok(files[PART] > 0 && files[PART] < SIZE, `part of ${files[PART]} bytes`);
    assert.equal(keptBytes(error), files[PART], `the error tells the bytes kept: ${error.message}`);
    assert.deepEqual((await rpc('list')).value, []);
    assert.equal((await rpc('stored', { id: SMOLLM2 })).value, null);
    return files[PART];
  }

  async function resumedDownload(rpc, url, have) {
    server.requests.length = 0;
    const { value: model, error, progress } = await rpc('download', { url });
    assert.equal(error, undefined);
    assert.equal(model.sha256, SMOLLM2_SHA256);
    assert.equal(model.size, SIZE);
    assertProgress(progress, { from: have, resumed: true });
    assert.deepEqual(modelRequests().map((r) => r.range), [`bytes=${have}-`], 'only the rest is fetched');
    assert.ok(modelRequests()[0].ifRange, 'with If-Range, so a changed file is fetched whole');
    assert.deepEqual(Object.keys(await rpc('files')).sort(), [SMOLLM2, MANIFEST]);
    // The checksum went on from the bytes the part had (read back from it): a read agrees with it.
    const read = await rpc('read', { id: SMOLLM2 });
    assert.equal(read.error, undefined, JSON.stringify(read.error));
    assert.equal(read.value.check, 'xxh3');
  }

  test('an interrupted download resumes with a Range request', async () => {
    const { page, rpc } = await openPage();
    const url = `/fault/cut/${SMOLLM2}?run=same-tab`;
    const have = await cutDownload(rpc, url);
    await resumedDownload(rpc, url, have);
    await page.close();
  });

  test('an interrupted download resumes after the browser restarts', async () => {
    const { page, rpc } = await openPage();
    const url = `/fault/cut/${SMOLLM2}?run=restart`;
    const have = await cutDownload(rpc, url);
    await page.close();
    await browser.reopen();
    const again = await browser.newPage(`${server.url}test/storage.html`);
    await again.waitForFunction(() => window.ready);
    await resumedDownload((op, args) => again.evaluate(([o, a]) => window.rpc(o, a), [op, args]), url, have);
    await again.close();
  });

  test('a download from another origin resumes without a preflight', async () => {
    const { page, rpc } = await openPage();
    const url = `${server.url.replace('127.0.0.1', 'localhost')}cors/fault/cut/${SMOLLM2}?run=cors`;
    const have = await cutDownload(rpc, url);
    server.requests.length = 0;
    const { value: model, error, progress } = await rpc('download', { url });
    assert.equal(error, undefined);
    assert.equal(model.sha256, SMOLLM2_SHA256);
    assert.equal(progress[0].resumed, true);
    assert.deepEqual(modelRequests().map((r) => [r.method, r.range, r.ifRange]), [['GET', `bytes=${have}-`, null]]);
    await page.close();
  });

  test('a download that stops receiving is interrupted after its stall timeout, and resumes', async () => {
    const { page, rpc } = await openPage();
    const url = `/fault/stall/${SMOLLM2}?after=${3 << 20}`;
    const t0 = performance.now();
    const { error } = await rpc('download', { url, stallTimeoutMs: 700 });
    assert.ok(performance.now() - t0 < 15_000, 'the stall did not hang the download');
    assert.equal(error?.kind, 'download');
    assert.match(error.message, /interrupted at 3\.15 MB of 98\.4 MB \(3145728 bytes; no data came for 0\.7 s\); start it again to resume$/);
    assert.deepEqual(await rpc('files'), { [PART]: 3 << 20, [PART_STATE]: (await rpc('files'))[PART_STATE] }, 'the part keeps what came');
    await resumedDownload(rpc, url, 3 << 20);
    await page.close();
  });

  test('a resume whose body runs past its Content-Range is not stored, and starts over', async () => {
    const { page, rpc } = await openPage();
    const url = `/fault/long/${SMOLLM2}?after=${2 << 20}`;
    await cutDownload(rpc, url);
    const { error } = await rpc('download', { url });
    assert.equal(error?.kind, 'download');
    assert.match(error.message, /sent more than the 98362432 bytes it announced, so it was not stored; start it again$/);
    assert.deepEqual(await rpc('files'), {}, 'the part is gone: its server cannot be trusted to continue it');
    const { value: model } = await rpc('download', { url });
    assert.equal(model?.sha256, SMOLLM2_SHA256);
    assert.equal(await rpc('hashFile', { name: SMOLLM2 }), SMOLLM2_SHA256);
    await page.close();
  });

  test('replacing a stored model keeps the old copy until the new one is verified', async () => {
    const { page, rpc } = await openPage();
    const id = SMOLLM2;
    const old = (await rpc('download', { url: '/fault/corrupt/old.gguf', id })).value;
    assert.equal(old?.size, 4 << 20);
    const keepsOld = async (what) => {
      assert.deepEqual((await rpc('list')).value, [old], what);
      assert.equal(await rpc('hashFile', { name: id }), old.sha256, what);
    };
    const cut = await rpc('download', { url: `/fault/cut/${SMOLLM2}?run=replace`, id });
    assert.equal(cut.error?.kind, 'download');
    await keepsOld('a cut download');
    assert.equal((await rpc('download', { url: MODEL_URL, id, abortAt: 30 << 20 })).error?.kind, 'aborted');
    await keepsOld('an aborted download');
    assert.equal((await rpc('download', { url: MODEL_URL, id, sha256: 'a'.repeat(64) })).error?.kind, 'integrity');
    await keepsOld('a download with the wrong SHA-256');
    assert.equal((await rpc('download', { url: '/fault/500/x', id })).error?.kind, 'download');
    await keepsOld('a server error');
    const { value: model } = await rpc('download', { url: MODEL_URL, id, sha256: SMOLLM2_SHA256 });
    assert.equal(model?.sha256, SMOLLM2_SHA256, 'a verified download replaces it');
    assert.deepEqual(Object.keys(await rpc('files')).sort(), [SMOLLM2, MANIFEST]);
    await page.close();
  });

  test('storage running full mid-download is a quota error that leaves nothing behind', async () => {
    const { page, rpc } = await openPage();
    // Chromium's quota for the origin, lowered through DevTools: the estimate does not show it,
    // so the up-front check passes and the write itself fails, as when the disk fills meanwhile.
    const cdp = await browser.context.newCDPSession(page);
    try {
      for (const url of [`/fault/chunked/${SMOLLM2}`, MODEL_URL]) {
        // 20 MB more than the origin uses now (freed space may still count for a while).
        const { usage } = (await rpc('estimate')).value;
        await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url.slice(0, -1), quotaSize: usage + 20_000_000 });
        const { error } = await rpc('download', { url });
        await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url.slice(0, -1) });
        assert.equal(error?.kind, 'quota', url);
        assert.match(error.message, /^browser storage ran full while .* was being written \(at .*\): delete stored models or free disk space, then start it again$/);
        assert.deepEqual(await rpc('files'), {}, url);
      }
    } finally {
      await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.url.slice(0, -1) });
    }
    assert.equal((await rpc('download', { url: MODEL_URL })).value?.sha256, SMOLLM2_SHA256, 'with room again, it downloads');
    await page.close();
  });

  test('storage cleared mid-download fails that download, typed, without wedging the worker; a fresh tab stores the model', async () => {
    const { page, rpc } = await openPage();
    const cdp = await browser.context.newCDPSession(page);
    await rpc('startDownload', { url: `/fault/stall/${SMOLLM2}?run=cleared`, stallTimeoutMs: 1500 });
    await cdp.send('Storage.clearDataForOrigin', { origin: server.url.slice(0, -1), storageTypes: 'file_systems' });
    const { error } = await rpc('finished');
    assert.ok(error?.kind, `the download failed with a typed error (${error?.message})`);
    assert.deepEqual((await rpc('list')).value, []);
    // Chromium's close() of a sync handle whose file was cleared away can block the worker for
    // good, so storage.js leaves that handle open (partStillThere): the path stays locked in this
    // tab, whose next download of the model then either works or fails typed, never hangs.
    const again = await rpc('download', { url: MODEL_URL });
    assert.ok(again.value?.sha256 === SMOLLM2_SHA256 || again.error?.kind, `stored, or a typed error (${again.error?.message})`);
    await page.close();
    const fresh = await openPage();
    const { value: model } = await fresh.rpc('download', { url: MODEL_URL });
    assert.equal(model?.sha256, SMOLLM2_SHA256);
    assert.equal(await fresh.rpc('hashFile', { name: SMOLLM2 }), SMOLLM2_SHA256);
    await fresh.page.close();
  });

  test('an aborted download keeps its part and resumes', async () => {
    const { page, rpc } = await openPage();
    const { error } = await rpc('download', { url: MODEL_URL, abortAt: 30 << 20 });
    assert.equal(error?.kind, 'aborted');
    const files = await rpc('files');
    assert.deepEqual(Object.keys(files).sort(), [PART, PART_STATE]);
    server.requests.length = 0;
    const { value: model, progress } = await rpc('download', { url: MODEL_URL });
    assert.equal(model?.sha256, SMOLLM2_SHA256);
    assert.equal(progress[0].resumed, true);
    assert.deepEqual(modelRequests().map((r) => r.range), [`bytes=${progress[0].loaded}-`]);
    await page.close();
  });

  test('failed downloads say why and leave no usable model', async () => {
    const { page, rpc } = await openPage();
    const cases = [
      ['404', 'download', new RegExp(`^HTTP 404 Not Found for ${server.url}fault/404/`), {}],
      ['500', 'download', /^HTTP 500 Internal Server Error for /, {}],
      ['html', 'invalid_model', /^the server sent an HTML page, not a GGUF file \(is the URL right\?\)$/, {}],
      ['short', 'download', /interrupted at .* of 98\.4 MB \(\d+ bytes; .*start it again to resume$/, { [PART]: 5 << 20, [PART_STATE]: true }],
    ];
    for (const [fault, kind, message, left] of cases) {
      const { error } = await rpc('download', { url: `/fault/${fault}/${SMOLLM2}` });
      assert.equal(error?.kind, kind, `${fault}: ${error?.message}`);
      assert.match(error.message, message);
      assert.deepEqual((await rpc('list')).value, [], fault);
      assert.equal((await rpc('stored', { id: SMOLLM2 })).value, null, fault);
      const files = await rpc('files');
      assert.deepEqual(Object.keys(files).sort(), Object.keys(left).sort(), `${fault} leaves ${JSON.stringify(files)}`);
      if (left[PART]) {
        assert.ok(files[PART] > 0 && files[PART] <= left[PART]);
        assert.equal(keptBytes(error), files[PART], 'the error tells the bytes kept');
      }
      await rpc('clear');
    }

    // Served as JavaScript, not HTML: the magic check catches it.
    const { error } = await rpc('download', { url: '/errors.js', id: 'errors.gguf' });
    assert.equal(error?.kind, 'invalid_model');
    assert.match(error.message, /is not a GGUF file \(it starts with 2f 2f 20 54, not "GGUF"\)/);
    assert.deepEqual(await rpc('files'), {});
    await page.close();
  });

  test('a SHA-256 mismatch is an integrity error and stores nothing', async () => {
    const { page, rpc } = await openPage();
    const { error } = await rpc('download', { url: MODEL_URL, sha256: '0'.repeat(64) });
    assert.equal(error?.kind, 'integrity');
    assert.match(error.message, new RegExp(`SHA-256 ${SMOLLM2_SHA256}, expected 0{64}`));
    assert.deepEqual(await rpc('files'), {});
    const good = await rpc('download', { url: MODEL_URL, sha256: SMOLLM2_SHA256.toUpperCase() });
    assert.equal(good.value?.sha256, SMOLLM2_SHA256, 'the expected hash may be upper case');
    await page.close();
  });

  test('too little storage is refused before anything is written', async () => {
    const { page, rpc } = await openPage();
    await rpc('setFree', { free: 12_000_000 });
    const expected = 'the model needs 98.4 MB but browser storage has 12 MB free (quota 1.2 GB, used 1.19 GB): delete stored models or free disk space';
    const { error } = await rpc('download', { url: MODEL_URL });
    assert.deepEqual(error, { kind: 'quota', name: 'WickError', message: expected });
    assert.deepEqual(await rpc('files'), {});
    const stored = await rpc('store', { url: MODEL_URL, name: SMOLLM2 });
    assert.deepEqual(stored.error, { kind: 'quota', name: 'WickError', message: expected });
    assert.deepEqual(await rpc('files'), {});
    await page.close();
  });

  test('storeFile copies a local file into storage', async () => {
    const { page, rpc } = await openPage();
    const { value: model, error, progress } = await rpc('store', { url: MODEL_URL, name: 'my smol.gguf' });
    assert.equal(error, undefined);
    assert.deepEqual({ ...model, storedAt: undefined }, {
      id: 'my_smol.gguf', name: 'my smol.gguf', size: SIZE, sha256: SMOLLM2_SHA256, source: 'file:my smol.gguf', storedAt: undefined,
    });
    assert.ok(progress.every((p) => p.phase === 'store' && p.total === SIZE && !('resumed' in p)));
    assert.equal(progress.at(-1).loaded, SIZE);

    const notGguf = await rpc('store', { url: '/errors.js', name: 'errors.gguf' });
    assert.equal(notGguf.error?.kind, 'invalid_model');
    const wrongHash = await rpc('store', { url: MODEL_URL, name: 'other.gguf', sha256: 'f'.repeat(64) });
    assert.equal(wrongHash.error?.kind, 'integrity');
    assert.deepEqual(Object.keys(await rpc('files')).sort(), ['my_smol.gguf', 'my_smol.gguf.manifest.json']);
    await page.close();
  });

  test('a GGUF with a good magic and garbage after it is stored (only the engine can tell)', async () => {
    const { page, rpc } = await openPage();
    const { value: model } = await rpc('download', { url: '/fault/corrupt/corrupt.gguf' });
    assert.equal(model?.size, 4 << 20);
    await page.close();
  });
});
