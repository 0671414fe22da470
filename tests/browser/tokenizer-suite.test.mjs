// llama.cpp's tokenizer suite (tests/fixtures/vocab/ggml-vocab-*.gguf with .inp/.out, as
// tests/tokenizer_vocab.rs runs it natively) through the real wasm build in headless Chromium:
// the wasm `Tokenizer` class, built from each vocabulary file's bytes, must give llama.cpp's ids
// (`encode(text, addSpecial = false, parseSpecial = false)`) on every case of every supported
// vocabulary, and refuse bert-bge (WordPiece) with a `tokenizer` error. It prints the build time
// in Chromium of the large vocabularies.
//
// Also every tests/fixtures/registry-vocab/*.json, with its GGUF (written by setup, not
// committed): {name, gguf: "models/vocab/<name>.gguf", cases: [{text, ids, ids_special}]}, where
// `ids` is encode(text, false, false) and `ids_special` encode(text, true, true).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO, serverAndBrowser } from './harness.mjs';
import { resolveInside, sendFile } from '../../scripts/serve.mjs';

const VOCAB_DIR = path.join(REPO, 'tests/fixtures/vocab');
const REGISTRY_DIR = path.join(REPO, 'tests/fixtures/registry-vocab');
const SEP = '\n__ggml_vocab_test__\n';

// As tests/tokenizer_vocab.rs: the committed vocabularies and what wick must do with each.
const SUPPORTED = ['llama-spm', 'phi-3', 'gpt-2', 'falcon', 'mpt', 'refact', 'starcoder',
  'deepseek-coder', 'deepseek-llm', 'qwen2', 'qwen35', 'llama-bpe'];
const UNSUPPORTED = ['bert-bge'];
// Vocabularies whose build time the test reports.
const TIMED = ['llama-bpe', 'qwen2', 'qwen35'];

/** The cases of `<file>.inp` / `<file>.out`, split as llama.cpp's test-tokenizer-0 splits them. */
function suiteCases(file) {
  const inp = fs.readFileSync(path.join(VOCAB_DIR, `${file}.inp`), 'utf8');
  const out = fs.readFileSync(path.join(VOCAB_DIR, `${file}.out`), 'utf8');
  const inputs = inp.split(SEP);
  if (inp.endsWith(SEP)) inputs.pop();
  const outputs = out.split('\n');
  if (out.endsWith('\n')) outputs.pop();
  assert.equal(inputs.length, outputs.length, `${file}: .inp and .out have different numbers of cases`);
  return inputs.map((text, i) => ({
    text,
    ids: outputs[i].split(/\s+/).filter(Boolean).map(Number),
  }));
}

/** The registry vocabularies whose GGUF file is present: [{name, file (repo-relative), cases}]. */
function registryVocabs() {
  if (!fs.existsSync(REGISTRY_DIR)) return [];
  return fs.readdirSync(REGISTRY_DIR).filter((f) => f.endsWith('.json')).sort().flatMap((f) => {
    const spec = JSON.parse(fs.readFileSync(path.join(REGISTRY_DIR, f), 'utf8'));
    // scripts/setup writes them (scripts/fetch-vocabs): a missing one is a setup failure.
    assert.ok(fs.existsSync(path.join(REPO, spec.gguf)),
      `registry vocabulary ${spec.name}: ${spec.gguf} is missing; run scripts/fetch-vocabs`);
    return [{ name: spec.name, file: spec.gguf, cases: spec.cases }];
  });
}

/** /fixture/<path>: the vocabulary files (tests/fixtures/vocab/, models/vocab/), for this test only. */
async function fixtureRoute(req, res) {
  const urlPath = (req.url ?? '/').split('?')[0];
  if (!urlPath.startsWith('/fixture/')) return false;
  const rel = decodeURIComponent(urlPath.slice('/fixture/'.length));
  const allowed = ['tests/fixtures/vocab/', 'models/vocab/'].some((dir) => rel.startsWith(dir));
  const file = allowed ? resolveInside(REPO, rel) : null;
  if (!file) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end('bad path\n');
  } else {
    await sendFile(req, res, file, { 'Cache-Control': 'no-store' });
  }
  return true;
}

const env = serverAndBrowser({ server: { extraRoutes: fixtureRoute } });

/**
 * In the page: builds a Tokenizer from the file at `url` (three times, timing each with
 * performance.now(); the bytes are fetched once, before), then encodes every case with each
 * option pair asked for. Returns {buildMs: [..], vocabSize, results: [{ids, ids_special}]}, or
 * {error: {kind, message}} when the build fails.
 */
async function runInPage(page, url, texts, { special = false } = {}) {
  return page.evaluate(async ([url, texts, special]) => {
    const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
    const buildMs = [];
    let tok;
    try {
      for (let i = 0; i < 3; i++) {
        tok?.free();
        const t0 = performance.now();
        tok = new window.Tokenizer(bytes);
        buildMs.push(performance.now() - t0);
      }
    } catch (e) {
      return { error: { kind: e.kind, message: e.message } };
    }
    const results = texts.map((text) => ({
      ids: Array.from(tok.encode(text, false, false)),
      ...(special ? { ids_special: Array.from(tok.encode(text, true, true)) } : {}),
    }));
    const vocabSize = tok.vocabSize;
    tok.free();
    return { buildMs, vocabSize, results };
  }, [url, texts, special]);
}

const ms = (xs) => xs.map((x) => `${x.toFixed(0)} ms`).join(', ');

test("llama.cpp's vocabulary suite gives identical ids in the wasm build", async () => {
  const page = await env.browser.newPage(`${env.server.url}test/tokenizer.html`);
  await page.waitForFunction(() => window.ready);
  const failures = [];
  const timings = [];
  for (const name of SUPPORTED) {
    const file = `ggml-vocab-${name}.gguf`;
    const cases = suiteCases(file);
    const got = await runInPage(page, `/fixture/tests/fixtures/vocab/${file}`, cases.map((c) => c.text));
    if (got.error) {
      failures.push(`${name}: build failed: ${got.error.kind}: ${got.error.message}`);
      continue;
    }
    let differ = 0;
    cases.forEach((c, i) => {
      const ids = got.results[i].ids;
      if (JSON.stringify(ids) !== JSON.stringify(c.ids)) {
        differ++;
        failures.push(`${name}: ${JSON.stringify(c.text)}\n      want ${JSON.stringify(c.ids)}\n      got  ${JSON.stringify(ids)}`);
      }
    });
    console.log(`${name.padEnd(16)} ${cases.length} cases, ${cases.length - differ} identical, ${differ} differ; build ${ms(got.buildMs)}`);
    if (TIMED.includes(name)) timings.push(`${name} (${got.vocabSize} tokens): ${ms(got.buildMs)}`);
  }
  for (const name of UNSUPPORTED) {
    const file = `ggml-vocab-${name}.gguf`;
    const got = await runInPage(page, `/fixture/tests/fixtures/vocab/${file}`, []);
    if (got.error?.kind !== 'tokenizer') {
      failures.push(`${name}: expected a tokenizer error, got ${JSON.stringify(got.error ?? 'a tokenizer')}`);
    } else {
      console.log(`${name.padEnd(16)} refused as expected: ${got.error.message}`);
    }
  }
  console.log(`tokenizer build time in Chromium (wasm, three builds each):\n  ${timings.join('\n  ')}`);
  await page.close();
  assert.deepEqual(failures, [], `${failures.length} failures:\n${failures.join('\n')}`);
});

test('registry vocabularies give the recorded ids in the wasm build', async (t) => {
  const vocabs = registryVocabs();
  if (vocabs.length === 0) {
    t.skip('no tests/fixtures/registry-vocab/*.json with its GGUF present');
    return;
  }
  const page = await env.browser.newPage(`${env.server.url}test/tokenizer.html`);
  await page.waitForFunction(() => window.ready);
  const failures = [];
  for (const v of vocabs) {
    const got = await runInPage(page, `/fixture/${v.file}`, v.cases.map((c) => c.text), { special: true });
    if (got.error) {
      failures.push(`${v.name}: build failed: ${got.error.kind}: ${got.error.message}`);
      continue;
    }
    let differ = 0;
    v.cases.forEach((c, i) => {
      for (const key of ['ids', 'ids_special']) {
        const ids = got.results[i][key];
        if (JSON.stringify(ids) !== JSON.stringify(c[key])) {
          differ++;
          failures.push(`${v.name} (${key}): ${JSON.stringify(c.text)}\n      want ${JSON.stringify(c[key])}\n      got  ${JSON.stringify(ids)}`);
        }
      }
    });
    console.log(`${v.name.padEnd(16)} ${v.cases.length} cases x 2, ${differ} differ; build ${ms(got.buildMs)}`);
  }
  await page.close();
  assert.deepEqual(failures, [], `${failures.length} failures:\n${failures.join('\n')}`);
});
