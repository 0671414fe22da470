// Qwen 2 and Qwen 3 in the browser, on the tiny random-weight models of tests/fixtures/tiny
// (scripts/tiny_models.py; tests/architectures.rs holds the native engine to llama.cpp's logits
// on them): the wasm CPU path and WebGPU (Chromium's SwiftShader) give the native engine's greedy
// ids and top-1/top-2 margins. The margins carry the check: a random model repeats a token or
// two whatever its wiring, but a skipped bias or head norm moves its logits by units.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { resolveInside, sendFile } from '../../scripts/serve.mjs';
import { REPO, launchBrowser, nativeGreedy, startServer } from './harness.mjs';

const TINY = path.join(REPO, 'tests/fixtures/tiny');
const PROMPT = 'the cat sat on the';
const TOKENS = 12;
// Native, wasm and SwiftShader margins agree to ~1e-6 here; wrong wiring costs whole units. An
// adapter with shader-f16 keeps the KV cache in f16, which moves logits by tenths (measured 0.26
// on lavapipe, tests/gpu_models.rs).
const MARGIN_TOL = 0.01;
const MARGIN_TOL_F16_CACHE = 0.6;

describe('Qwen 2 and Qwen 3 in headless Chromium (tiny random-weight models)', () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startServer({
      extraRoutes: async (req, res) => {
        const urlPath = (req.url ?? '/').split('?')[0];
        if (!urlPath.startsWith('/tiny/')) return false;
        await sendFile(req, res, resolveInside(TINY, urlPath.slice('/tiny/'.length)), { 'Cache-Control': 'no-store' });
        return true;
      },
    });
    browser = await launchBrowser({ webgpu: true });
    page = await browser.newPage(`${server.url}test/api.html`);
    await page.waitForFunction(() => window.ready);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  for (const [file, arch] of [['qwen2.gguf', 'qwen2'], ['qwen3.gguf', 'qwen3']]) {
    for (const backend of ['cpu', 'webgpu']) {
      test(`${arch} on backend '${backend}' matches the native engine`, async () => {
        const r = await page.evaluate(async ([file, backend, prompt, n]) => {
          try {
            const engine = await window.wick.createEngine({ model: `/tiny/${file}`, backend });
            const res = await engine.completions.create({ prompt, max_tokens: n, temperature: 0, ignore_eos: true });
            const info = engine.info();
            await engine.unload();
            return { ids: res.tokens.ids, margins: res.tokens.margins, backend: info.backend, arch: info.card.architecture, f16: info.gpu?.f16 ?? false };
          } catch (e) {
            return { error: { kind: e.kind, message: e.message } };
          }
        }, [file, backend, PROMPT, TOKENS]);
        assert.equal(r.error, undefined, JSON.stringify(r.error));
        assert.equal(r.backend, backend);
        assert.equal(r.arch, arch);
        const native = nativeGreedy(path.join(TINY, file), PROMPT, TOKENS);
        const tol = r.f16 ? MARGIN_TOL_F16_CACHE : MARGIN_TOL;
        let i = 0;
        // Ids agree up to the first near-tie (none at all on these models without an f16 cache).
        while (i < TOKENS && native.margins[i] > 2 * tol) {
          assert.equal(r.ids[i], native.ids[i], `${arch} ${backend} token ${i}: ${r.ids} vs native ${native.ids}`);
          i++;
        }
        assert.ok(i >= TOKENS / 2, `only ${i} ids compared`);
        r.margins.slice(0, i).forEach((m, j) => assert.ok(Math.abs(m - native.margins[j]) <= tol,
          `${arch} ${backend} token ${j}: margin ${m} vs native ${native.margins[j]}`));
      });
    }
  }
});
