// The WebGPU backend in headless Chromium. With --enable-unsafe-webgpu Chromium offers its
// SwiftShader adapter (WebGPU on the CPU): slow, but the same WGSL runs as on a real GPU, so
// this checks the browser path end to end: backend choice, upload, generation, and greedy ids
// equal to the native CPU engine's up to the first near-tie.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MODELS_DIR, SMOLLM2, launchBrowser, nativeGreedy, startServer } from './harness.mjs';

// The issue's bound: ids must agree while both engines' top-1/top-2 margins stay at least this.
const NEAR_TIE = 0.1;
const TOKENS = 10;

async function apiPage(browser, server) {
  const page = await browser.newPage(`${server.url}test/api.html`);
  await page.waitForFunction(() => window.ready);
  return page;
}

function load(page, options) {
  return page.evaluate(async (options) => {
    const phases = [];
    try {
      window.engine = await window.wick.createEngine({ ...options, onProgress: (p) => phases.push(p.phase) });
      return { info: window.engine.info(), phases: [...new Set(phases)] };
    } catch (e) {
      return { error: { kind: e.kind, message: e.message } };
    }
  }, options);
}

function complete(page, prompt) {
  return page.evaluate(async ([prompt, n]) => {
    try {
      return await window.engine.completions.create({ prompt, max_tokens: n, temperature: 0, ignore_eos: true });
    } catch (e) {
      return { error: { kind: e.kind, message: e.message } };
    }
  }, [prompt, TOKENS]);
}

describe('WebGPU in headless Chromium (SwiftShader)', () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser({ webgpu: true });
    page = await apiPage(browser, server);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("backend 'auto' keeps the CPU when the only adapter is a software fallback", async () => {
    const r = await load(page, { model: `/models/${SMOLLM2}` });
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.info.backend, 'cpu');
    assert.match(r.info.gpuNote, /software fallback/);
    await page.evaluate(() => window.engine.unload());
  });

  test("backend 'webgpu' runs on the GPU and matches the native greedy ids up to the first near-tie", async () => {
    const r = await load(page, { model: `/models/${SMOLLM2}`, backend: 'webgpu' });
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.info.backend, 'webgpu');
    assert.ok(r.info.gpu?.name, 'the adapter is named');
    // f16 is used exactly where the adapter offers shader-f16.
    const hasF16 = await page.evaluate(async () => {
      const a = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      return a.features.has('shader-f16');
    });
    assert.equal(r.info.gpu.f16, hasF16, `adapter shader-f16 ${hasF16}, engine f16 ${r.info.gpu.f16}`);
    assert.ok(r.phases.includes('gpu'), `phases ${r.phases}`);
    let compared = 0;
    for (const prompt of ['The capital of France is', 'Once upon a time, in a small village,']) {
      const res = await complete(page, prompt);
      assert.equal(res.error, undefined, JSON.stringify(res.error));
      assert.equal(res.tokens.ids.length, TOKENS);
      const native = nativeGreedy(path.join(MODELS_DIR, SMOLLM2), prompt, TOKENS);
      let i = 0;
      while (i < TOKENS && native.margins[i] >= NEAR_TIE && res.tokens.margins[i] >= NEAR_TIE) {
        assert.equal(res.tokens.ids[i], native.ids[i], `"${prompt}" token ${i}: webgpu ${res.tokens.ids} native ${native.ids}`);
        i++;
      }
      compared += i;
    }
    assert.ok(compared >= 6, `only ${compared} tokens compared before near-ties`);
  });

  test('a chat turn streams on the GPU and the next turn reuses the cached prefix', async () => {
    const r = await page.evaluate(async () => {
      const messages = [{ role: 'user', content: 'Say hi.' }];
      const first = await window.engine.chat.completions.create({ messages, max_tokens: 4, temperature: 0 });
      messages.push(first.choices[0].message, { role: 'user', content: 'Again.' });
      let text = '';
      let last = null;
      for await (const c of await window.engine.chat.completions.create({ messages, max_tokens: 4, temperature: 0, stream: true })) {
        text += c.choices[0].delta.content ?? '';
        last = c;
      }
      return { first: first.timings, second: last.timings, text };
    });
    assert.ok(r.text.length > 0);
    assert.ok(r.second.cached_n >= r.first.prompt_n, `cached ${r.second.cached_n} of ${r.first.prompt_n}`);
  });

  test('a GPU lost while generating fails that request with gpu_lost; the engine goes on on the CPU', async () => {
    // What a driver reset does, without a hook in the engine: in the engine's worker, the next
    // command encoder wgpu asks for destroys its device first.
    const worker = page.workers().find((w) => w.url().endsWith('/worker.js'));
    assert.ok(worker, `the engine's worker among ${page.workers().map((w) => w.url())}`);
    await worker.evaluate(() => {
      const create = GPUDevice.prototype.createCommandEncoder;
      GPUDevice.prototype.createCommandEncoder = function (...args) {
        GPUDevice.prototype.createCommandEncoder = create;
        this.destroy();
        return create.apply(this, args);
      };
    });
    const prompt = 'The capital of France is';
    const lost = await complete(page, prompt);
    assert.equal(lost.error?.kind, 'gpu_lost', JSON.stringify(lost));
    const info = await page.evaluate(() => window.engine.info());
    assert.equal(info.backend, 'cpu');
    assert.match(info.gpuNote, /GPU failed/);

    const again = await complete(page, prompt);
    assert.equal(again.error, undefined, JSON.stringify(again.error));
    const native = nativeGreedy(path.join(MODELS_DIR, SMOLLM2), prompt, TOKENS);
    let i = 0;
    while (i < TOKENS && native.margins[i] >= NEAR_TIE) {
      assert.equal(again.tokens.ids[i], native.ids[i], `token ${i}: ${again.tokens.ids} native ${native.ids}`);
      i++;
    }
    assert.ok(i >= 3, `only ${i} tokens compared before a near-tie`);
  });
});

describe('WebGPU unavailable', () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser(); // no --enable-unsafe-webgpu: no adapter
    page = await apiPage(browser, server);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("backend 'webgpu' without an adapter is a gpu_unavailable error", async () => {
    const r = await load(page, { model: `/models/${SMOLLM2}`, backend: 'webgpu' });
    assert.equal(r.error?.kind, 'gpu_unavailable', JSON.stringify(r));
  });
});
