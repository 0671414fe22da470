// Every architecture the engine runs, in the browser, on the tiny random-weight models of
// tests/fixtures/tiny (scripts/tiny_models.py; tests/architectures.rs holds the native engine to
// llama.cpp's logits on them): the wasm CPU path gives the native engine's greedy ids and
// top-1/top-2 margins, and so does WebGPU (Chromium's SwiftShader) for every family the WebGPU
// backend builds. For the others, backend 'webgpu' must fail `gpu_unavailable` saying the backend
// "does not run ... yet": never a wrong answer. Which families those are is the engine's business
// (src/gpu), so this file does not list them. The margins carry the check: a random model repeats
// a token or two whatever its wiring, but a skipped bias or head norm moves its logits by units.
//
// One case per fixture record (<name>.json: the model file and the context llama.cpp ran it
// with, so phi3.gguf runs at 256 tokens, its original context, and at 512, where Phi-3 switches
// to its long RoPE factors), plus the files the engine must refuse by name. Needs www/pkg
// (scripts/build-wasm) and target/release/wick (cargo build --release).
// Run: node --test tests/browser/architectures.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TINY_DIR, launchBrowser, nativeGreedy, startServer, tinyRoute } from './harness.mjs';

const PROMPT = 'the cat sat on the';
const TOKENS = 12;
// Native, wasm and SwiftShader margins mostly agree to ~1e-6 here (the same f32 arithmetic, GELU
// included: the GELU families' looser bound in tests/architectures.rs is for llama.cpp's f16 GELU
// table, not for wick against itself). The Q8_0 fixtures quantize activations to 8 bits, and a
// value on a rounding boundary can round one way natively and the other in wasm: from then on
// the margins differ by hundredths (measured within 12 tokens: smollm3 0.026 at the last token,
// gemma2 0.006; 0.096 by token 18 of smollm3). Wrong wiring costs whole units. An adapter with
// shader-f16 keeps the KV cache in f16, which moves logits by tenths (measured 0.26 on lavapipe,
// tests/gpu_models.rs).
const MARGIN_TOL = 0.05;
const MARGIN_TOL_F16_CACHE = 0.6;

// The families README "What runs" lists for the CPU: every one must have a fixture here.
const ARCHITECTURES = ['llama', 'qwen2', 'qwen3', 'smollm3', 'granite', 'olmo2', 'phi3', 'gemma2',
  'gemma3', 'stablelm', 'gpt2', 'falcon', 'mpt'];

/** {name, file, arch, context} for every fixture record (tests/fixtures/tiny/<name>.json). */
function fixtureCases() {
  return fs.readdirSync(TINY_DIR).filter((f) => f.endsWith('.json')).sort().map((json) => {
    const record = JSON.parse(fs.readFileSync(path.join(TINY_DIR, json), 'utf8'));
    return {
      name: json.slice(0, -'.json'.length),
      file: record.model,
      arch: record.arch ?? record.config.arch,
      context: record.n_ctx ?? record.config.context,
    };
  });
}

const CASES = fixtureCases();
// The .gguf files no record runs: each must be refused by name (tests/architectures.rs says why).
const REFUSED = [
  ['llama_moe.gguf', /mixture of experts/],
  ['llama_unknown_scaling.gguf', /RoPE scaling type `dynamic`/],
];

const nativeRuns = new Map();
/** The native engine's greedy run of a case (each model file and context once). */
function native({ file, context }) {
  const key = `${file}@${context}`;
  if (!nativeRuns.has(key)) nativeRuns.set(key, nativeGreedy(path.join(TINY_DIR, file), PROMPT, TOKENS, { ctx: context }));
  return nativeRuns.get(key);
}

/**
 * Holds a browser run `r` ({ids, margins, f16}) to the native run: ids agree while they can
 * (a divergence is allowed only at a near-tie of the native run, where another correct engine
 * may pick the other token; the rest of the text then differs), and every compared step's margin
 * agrees within the tolerance. Stopping before half the tokens is allowed only at such a tie.
 */
function assertMatchesNative(r, nat, what) {
  const tol = r.f16 ? MARGIN_TOL_F16_CACHE : MARGIN_TOL;
  assert.equal(r.ids.length, TOKENS, `${what}: ${r.ids.length} tokens`);
  let i = 0;
  while (i < TOKENS && r.ids[i] === nat.ids[i]) i++;
  if (i < TOKENS) {
    assert.ok(nat.margins[i] <= 2 * tol,
      `${what} token ${i}: id ${r.ids[i]}, native ${nat.ids[i]} with margin ${nat.margins[i]} (ids ${r.ids} vs native ${nat.ids})`);
  }
  // Up to and including the first divergence, both ran the same tokens: margins compare.
  const compared = Math.min(i + 1, TOKENS);
  for (let j = 0; j < compared; j++) {
    assert.ok(Math.abs(r.margins[j] - nat.margins[j]) <= tol,
      `${what} token ${j}: margin ${r.margins[j]} vs native ${nat.margins[j]} (tolerance ${tol})`);
  }
  return i;
}

describe('every architecture in headless Chromium (tiny random-weight models)', () => {
  let server;
  let browser;
  let page;
  const onGpu = [];
  const notOnGpu = [];

  before(async () => {
    server = await startServer({ extraRoutes: tinyRoute });
    browser = await launchBrowser({ webgpu: true });
    page = await browser.newPage(`${server.url}test/api.html`);
    await page.waitForFunction(() => window.ready);
  });
  after(async () => {
    if (onGpu.length + notOnGpu.length) {
      console.log(`WebGPU (SwiftShader) ran ${onGpu.join(', ') || 'none'}; not yet: ${notOnGpu.join(', ') || 'none'}`);
    }
    await browser?.close();
    await server?.close();
  });

  /** Loads /tiny/<file> on `backend` in a new engine, runs the greedy prompt, unloads. */
  const run = (file, backend, context) => page.evaluate(async ([file, backend, context, prompt, n]) => {
    try {
      const engine = await window.wick.createEngine({ model: `/tiny/${file}`, backend, context });
      try {
        const res = await engine.completions.create({ prompt, max_tokens: n, temperature: 0, ignore_eos: true });
        const info = engine.info();
        return { ids: res.tokens.ids, margins: res.tokens.margins, backend: info.backend, arch: info.card.architecture, context: info.context, f16: info.gpu?.f16 ?? false };
      } finally {
        await engine.unload();
      }
    } catch (e) {
      return { error: { kind: e.kind, message: e.message } };
    }
  }, [file, backend, context, PROMPT, TOKENS]);

  test('the fixtures cover every architecture the engine runs', () => {
    assert.deepEqual([...new Set(CASES.map((c) => c.arch))].sort(), [...ARCHITECTURES].sort());
    const runs = new Set(CASES.map((c) => c.file));
    const ggufs = fs.readdirSync(TINY_DIR).filter((f) => f.endsWith('.gguf'));
    assert.deepEqual(ggufs.filter((f) => !runs.has(f)).sort(), REFUSED.map(([f]) => f).sort(), 'every other file is refused by name');
    assert.ok(CASES.some((c) => c.arch === 'phi3' && c.context > 256), 'Phi-3 past its original context (long RoPE factors)');
  });

  for (const c of CASES) {
    test(`${c.name} (${c.arch}, context ${c.context}) on backend 'cpu' matches the native engine`, async () => {
      const r = await run(c.file, 'cpu', c.context);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.equal(r.backend, 'cpu');
      assert.equal(r.arch, c.arch);
      assert.equal(r.context, c.context);
      assertMatchesNative(r, native(c), `${c.name} cpu`);
    });

    test(`${c.name} (${c.arch}) on backend 'webgpu' matches the native engine, or is refused as not run on WebGPU yet`, async () => {
      const r = await run(c.file, 'webgpu', c.context);
      if (r.error) {
        assert.equal(r.error.kind, 'gpu_unavailable', JSON.stringify(r.error));
        // The IQ2/IQ3 types have no WGSL kernels yet: their files are refused on the GPU by
        // quantization (and run on the CPU); any other refusal must be a family not built.
        const iq = /_iq[23]_(xxs|xs|s)\.gguf$/.test(c.file);
        assert.match(r.error.message, iq
          ? /uses quantization IQ[23]_(XXS|XS|S) \(on the GPU\), which wick does not support/
          : /the WebGPU backend does not run .+ yet/, 'only a family the backend does not build, or an IQ2/IQ3 file, may be refused');
        notOnGpu.push(c.name);
        return;
      }
      assert.equal(r.backend, 'webgpu');
      assert.equal(r.arch, c.arch);
      assertMatchesNative(r, native(c), `${c.name} webgpu${r.f16 ? ' (f16 cache)' : ''}`);
      onGpu.push(c.name);
    });
  }

  test("backend 'auto' with only a software adapter runs on the CPU, and still matches", async () => {
    // SwiftShader is a fallback adapter: 'auto' keeps the CPU (www/worker.js chooseGpu).
    const c = CASES.find((x) => x.name === 'qwen2') ?? CASES[0];
    const r = await run(c.file, 'auto', c.context);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.ok(r.backend === 'cpu' || r.backend === 'webgpu');
    assertMatchesNative(r, native(c), `${c.name} auto (${r.backend})`);
  });

  for (const [file, says] of REFUSED) {
    test(`${file} is refused as unsupported_model, saying why`, async () => {
      const r = await run(file, 'cpu');
      assert.equal(r.error?.kind, 'unsupported_model', JSON.stringify(r));
      assert.match(r.error.message, says);
    });
  }
});
