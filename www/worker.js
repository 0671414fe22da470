// The engine's home: a module Web Worker that downloads and stores the model, loads it into the
// wasm engine and runs requests one token at a time, so the page never blocks. It speaks only
// the small message protocol below with wick.js.
//
// page -> worker: {type:'load', id, source, threads, backend, context, sha256, relaxedSimd, stallTimeoutMs}
//                 {type:'generate', id, mode:'chat'|'completion', messages|prompt, options}
//                 {type:'abort', id}            (a load or a request)
// worker -> page: {type:'progress', id, progress} {type:'loaded', id, info}
//                 {type:'prefilled', id, prompt_tokens, reused_tokens}
//                 {type:'token', id, text, logprob?, delta?}  (logprob: OpenAI's chat entry, when
//                   asked; delta, chat only: {content?, reasoning_content?, tool_calls?} the
//                   answer gained, as the engine's parser reads the text)
//                 {type:'done', id, finish_reason, usage, timings, tokens, message?}  (message,
//                   chat only: {role, content, reasoning_content?, tool_calls?}, the whole answer)
//                 {type:'backend', id, info:{backend, gpu, gpuNote}}  (moved to the CPU)
//                 {type:'error', id, error:{kind, message}}

import { WickError } from './errors.js';
import { downloadModel, storeFile, storedModel, deleteModel, readModel, modelIdFor, recordUnsupported } from './storage.js';

let wasm = null;          // the wasm-bindgen module of the chosen build
let build = null;         // 'threads' | 'simd'
let engine = null;        // WebEngine
let broken = null;        // set when wasm trapped: the instance cannot be trusted any more
let poolReady = null;     // the rayon pool starting (threads build)
let onGpu = false;        // the session runs on WebGPU (steps are awaited)
const aborts = new Map(); // request id -> AbortController
let queue = Promise.resolve(); // requests run one after another (one KV cache)

const post = (msg) => self.postMessage(msg);

self.onmessage = ({ data: msg }) => {
  switch (msg.type) {
    case 'load': return run(msg.id, () => load(msg));
    case 'generate': {
      aborts.set(msg.id, new AbortController());
      queue = queue.then(() => run(msg.id, () => generate(msg)));
      return;
    }
    case 'abort': return aborts.get(msg.id)?.abort();
    // In the queue too: the engine is not re-entrant while a step is awaited (WebGPU).
    case 'tokenize':
    case 'detokenize':
    case 'applyTemplate': {
      queue = queue.then(() => run(msg.id, () => inspectText(msg)));
      return;
    }
    default: post({ type: 'error', id: msg.id, error: { kind: 'worker', message: `unknown message ${msg.type}` } });
  }
};

async function run(id, job) {
  try {
    await job();
  } catch (e) {
    post({ type: 'error', id, error: toErrorData(e) });
  } finally {
    aborts.delete(id);
  }
}

function toErrorData(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    // A Rust panic or an out-of-memory trap: the wasm instance is in an unknown state.
    broken = `the engine crashed (${e.message}); create a new engine`;
    return { kind: 'worker', message: broken };
  }
  return WickError.from(e, 'worker').toJSON();
}

// What the model really gets: its tokenizer and chat template, without generating (llama.cpp
// server's /tokenize, /detokenize and /apply-template).
async function inspectText(msg) {
  if (broken) throw new WickError('worker', broken);
  if (!engine) throw new WickError('invalid_parameter', 'no model is loaded');
  let result;
  if (msg.type === 'tokenize') {
    result = { ids: Array.from(engine.tokenize(msg.text, msg.addSpecial, msg.parseSpecial)) };
  } else if (msg.type === 'detokenize') {
    result = { text: engine.detokenize(Uint32Array.from(msg.ids), msg.skipSpecial) };
  } else {
    result = { text: engine.applyTemplate(JSON.stringify(msg.messages), msg.tools ? JSON.stringify(msg.tools) : '', msg.addGenerationPrompt) };
  }
  post({ type: 'done', id: msg.id, ...result });
}

// ---- choosing and starting a build ----------------------------------------------------------

function canShareMemory() {
  if (!self.crossOriginIsolated || typeof SharedArrayBuffer === 'undefined') return false;
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

// The smallest module that uses relaxed SIMD (i32x4.relaxed_dot_i8x16_i7x16_add_s on three
// zero vectors): browsers that validate it can run the -relaxed builds.
const RELAXED_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0,
  10, 61, 1, 59, 0, ...[0, 1, 2].flatMap(() => [253, 12, ...new Array(16).fill(0)]), 253, 147, 2, 11]);

// The wasm builds, one import each: literal paths, so that a bundler (Vite, webpack) that takes
// in the npm package finds and keeps all four (a path built from a variable it may not follow).
const BUILDS = {
  'threads-relaxed': () => import('./pkg/threads-relaxed/wick.js'),
  threads: () => import('./pkg/threads/wick.js'),
  'simd-relaxed': () => import('./pkg/simd-relaxed/wick.js'),
  simd: () => import('./pkg/simd/wick.js'),
};

// Imports and instantiates the flavour `name` (a folder of www/pkg). A relaxed flavour must also
// pass its kernel self-check: relaxed instructions are engine-defined at the edges of their
// ranges, so on an engine that computes them differently the plain flavour runs instead.
async function instantiate(name) {
  const mod = await BUILDS[name]();
  await mod.default();
  if (name.endsWith('-relaxed')) {
    const failed = mod.kernelCheck();
    if (failed) throw new Error(`its kernels disagree with the reference here (${failed})`);
  }
  return mod;
}

async function startWasm(threads, relaxedSimd = true) {
  if (wasm) return;
  if (!WebAssembly.validate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0, 65, 0, 253, 15, 253, 98, 11]))) {
    throw new WickError('unsupported_browser', 'this browser has no WebAssembly SIMD; wick needs Chrome 91+, Firefox 89+ or Safari 16.4+');
  }
  const relaxed = relaxedSimd && WebAssembly.validate(RELAXED_PROBE);
  // Best first: relaxed before plain, threads before one thread.
  const flavours = [];
  if (threads > 1 && canShareMemory()) flavours.push(...(relaxed ? ['threads-relaxed'] : []), 'threads');
  flavours.push(...(relaxed ? ['simd-relaxed'] : []), 'simd');
  for (const name of flavours) {
    try {
      const mod = await instantiate(name);
      if (name.startsWith('threads')) {
        // The pool's workers boot while the model is read and loaded (nothing before the first
        // forward pass uses rayon); load() awaits this before it reports ready.
        poolReady = mod.initThreadPool(threads);
      }
      wasm = mod;
      build = name.startsWith('threads') ? 'threads' : 'simd';
      return;
    } catch (e) {
      if (name === 'simd') throw e;
      console.warn(`wick: the ${name} build did not start, trying the next one:`, e);
    }
  }
}

// What storage.js hashes a model with while it stores it: SHA-256 and XXH3-64 in one pass (wasm).
function hasher() {
  const h = new wasm.Hasher();
  return { update: (bytes) => h.update(bytes), digest: () => { const d = { sha256: h.sha256(), xxh3: h.xxh3() }; h.free(); return d; } };
}

// ---- loading --------------------------------------------------------------------------------

async function load({ id, source, threads, backend = 'auto', context, sha256, relaxedSimd, stallTimeoutMs }) {
  const t0 = performance.now();
  const ctl = new AbortController();
  aborts.set(id, ctl);
  const onProgress = (progress) => post({ type: 'progress', id, progress });
  await startWasm(threads, relaxedSimd);
  const tWasm = performance.now();

  const mid = modelIdFor(source);
  const signal = ctl.signal;
  let stored = await storedModel(mid);
  // Other bytes are wanted under this id. The stored copy stays until the new ones have passed
  // their SHA-256 (storage.js swaps them in only then), so a failed download loses nothing.
  if (stored && sha256 && stored.sha256 !== sha256.toLowerCase()) {
    if (!source.file && !source.url) {
      throw new WickError('integrity', `stored model "${mid}" has SHA-256 ${stored.sha256}, expected ${sha256.toLowerCase()}: load it from its URL or file to replace it`);
    }
    stored = null;
  }
  // Only what this very load stored may be deleted again when the engine cannot read it.
  const fresh = !stored;
  if (!stored && source.file) {
    stored = await storeFile({ file: source.file, id: mid, sha256, signal, onProgress, createHasher: hasher });
  } else if (!stored && source.url) {
    stored = await downloadModel({ url: source.url, id: mid, sha256, signal, onProgress, createHasher: hasher, stallTimeoutMs });
  } else if (!stored) {
    throw new WickError('storage', `no stored model "${mid}": download it first`);
  }
  if (signal.aborted) throw new WickError('aborted', 'loading was cancelled');

  let buffer = null;
  const tRead = performance.now();
  // Every read is checked against the XXH3 checksum recorded when the model was stored (a damaged
  // disk block keeps the size), in wasm where the bytes are. A model stored before checksums gets
  // its SHA-256 checked once when the load names one (see readModel).
  let size, checkMs, check;
  try {
    ({ size, checkMs, check } = await readModel(mid, (n) => {
      buffer = new wasm.ModelBuffer(n);
      return (offset, length) => buffer.view(offset, length);
    }, { onProgress, signal, createHasher: sha256 ? hasher : undefined, checksum: () => buffer.xxh3() }));
  } catch (e) {
    buffer?.free();
    throw e;
  }
  const tEngine = performance.now();
  const readMs = tEngine - tRead;
  if (ctl.signal.aborted) { buffer.free(); throw new WickError('aborted', 'loading was cancelled'); }
  engine?.free();
  engine = null;
  try {
    engine = wasm.WebEngine.load(buffer, context ?? 0); // consumes the buffer
  } catch (e) {
    // A model this version cannot run (unsupported_model: an architecture, quantization or
    // feature it lacks) always stays stored: a later version may run it. Its manifest records
    // why, so the stored models list says so (listModels: `unsupported`) across reloads.
    if (e?.kind === 'unsupported_model') {
      await recordUnsupported(mid, e.message, { sha256: stored.sha256 });
      throw e;
    }
    if (e?.kind !== 'invalid_model') throw e;
    // Just stored, not a model wick can read, and nobody vouched for these bytes: nothing
    // unusable stays behind. Bytes whose SHA-256 the load named and verified are what the
    // person asked for, and what a person stored earlier is theirs: both stay, and only they
    // may delete them.
    if (fresh && !sha256) {
      await deleteModel(mid);
      throw e;
    }
    const why = fresh ? 'matched the SHA-256 it was loaded with' : 'was stored earlier';
    throw new WickError('invalid_model', `${e.message} (model "${mid}" ${why} and stays stored; delete it from the stored models, or with deleteModel("${mid}"), to free its space)`);
  }
  // This version runs it: a record that an earlier one could not goes.
  if (stored.unsupported) await recordUnsupported(mid, null, { sha256: stored.sha256 });
  await poolReady;
  const gpuState = await chooseGpu(backend, onProgress);
  onProgress({ phase: 'ready', loaded: size, total: size });
  post({
    type: 'loaded', id,
    info: {
      modelId: mid,
      card: JSON.parse(engine.cardJson()),
      ...gpuState,
      build,
      simd: wasm.simdFlavour(),
      threads: wasm.threadCount(),
      context: engine.context(),
      crossOriginIsolated: self.crossOriginIsolated === true,
      loadMs: performance.now() - t0,
      readMs,
      // How the stored bytes were checked: 'xxh3', or for a model stored before checksums
      // 'sha256' or 'first use' (see storage.js readModel).
      storageCheck: check,
      // Where a load's time goes: starting wasm (and the thread pool), storage (checkMs of it:
      // its checksum), the engine.
      phases: { wasmMs: tWasm - t0, readMs, checkMs, engineMs: performance.now() - tEngine },
    },
  });
}

// ---- the GPU ------------------------------------------------------------------------------

// 'cpu': stay. 'webgpu': move the session to WebGPU or fail with gpu_unavailable. 'auto': move
// when there is a hardware adapter (a software fallback such as SwiftShader is slower than the
// CPU path, so auto keeps the CPU there). Returns what info() reports.
async function chooseGpu(backend, onProgress) {
  onGpu = false;
  if (backend === 'cpu') return { backend: 'cpu', gpu: null, gpuNote: 'the CPU backend was asked for' };
  let note = null;
  let adapter = null;
  if (!self.navigator?.gpu) {
    note = 'this browser has no WebGPU';
  } else {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
    const fallback = adapter?.info?.isFallbackAdapter ?? adapter?.isFallbackAdapter ?? false;
    if (!adapter) note = 'no WebGPU adapter is available';
    else if (fallback && backend === 'auto') note = 'the only WebGPU adapter is a software fallback, slower than the CPU path';
  }
  if (!note) {
    try {
      onProgress({ phase: 'gpu' });
      const gpu = JSON.parse(await engine.useGpu());
      onGpu = true;
      // wgpu cannot see the adapter's name in a browser; the page's adapter info can.
      const a = adapter.info ?? {};
      const name = a.description || [a.vendor, a.architecture].filter(Boolean).join(' ') || 'WebGPU adapter';
      return { backend: 'webgpu', gpu: { ...gpu, name, fallback: Boolean(a.isFallbackAdapter) }, gpuNote: null };
    } catch (e) {
      note = `WebGPU could not run the model: ${e?.message ?? e}`;
    }
  }
  if (backend === 'webgpu') throw new WickError('gpu_unavailable', `WebGPU was asked for, but ${note}`);
  return { backend: 'cpu', gpu: null, gpuNote: note };
}

// ---- generating -----------------------------------------------------------------------------

// Lets queued messages (an abort) in between two tokens; a MessageChannel round trip is not
// clamped like setTimeout.
const channel = new MessageChannel();
const nextTurn = () => new Promise((resolve) => { channel.port1.onmessage = resolve; channel.port2.postMessage(null); });

async function generate({ id, mode, messages, prompt, options }) {
  if (broken) throw new WickError('worker', broken);
  if (!engine) throw new WickError('worker', 'no model is loaded');
  // A request aborted while it waited still starts, so that its end reports its prompt's
  // tokens; the loop below ends it before any forward pass.
  const signal = aborts.get(id).signal;
  const opts = JSON.stringify(options);
  const t0 = performance.now();
  const pre = mode === 'chat' ? engine.beginChat(JSON.stringify(messages), opts) : engine.beginCompletion(prompt, opts);
  let t1 = null; // the prompt is in the cache
  let promptLeft = pre.prompt_tokens - pre.reused_tokens;
  const prefilled = () => {
    t1 = performance.now();
    post({ type: 'prefilled', id, ...pre });
  };
  const ids = [];
  const margins = [];
  let finish = null;
  let message; // chat: the whole answer, from the last step
  // A step's visible part: text (a completion's), its log-probability, and in chat what the
  // engine's parser made of it.
  const token = (step) => {
    if (step.text || step.logprob || step.delta) post({ type: 'token', id, text: step.text, logprob: step.logprob, delta: step.delta });
    if (step.message) message = step.message;
  };
  while (!finish) {
    if (signal.aborted) {
      const last = engine.abort();
      if (last) token(last);
      finish = 'aborted';
      if (t1 === null) prefilled();
      break;
    }
    let step;
    try {
      step = onGpu ? await engine.stepAsync() : engine.step();
    } catch (e) {
      if (!onGpu || e?.kind !== 'gpu') throw e;
      // The GPU failed (device lost, a driver error): carry on on the CPU from the next request.
      engine.useCpu();
      onGpu = false;
      const note = `the GPU failed (${e.message}); wick moved to the CPU`;
      post({ type: 'backend', id, info: { backend: 'cpu', gpu: null, gpuNote: note } });
      throw new WickError('gpu_lost', `${note}: send the request again`);
    }
    if (step.prompt_left !== undefined) {
      // A chunk of the prompt ran: let an abort in before the next one.
      promptLeft = step.prompt_left;
      if (promptLeft === 0) prefilled();
      await nextTurn();
      continue;
    }
    if (t1 === null) prefilled(); // the whole prompt was already cached
    if (step.id !== undefined && step.id !== null) {
      ids.push(step.id);
      margins.push(step.margin);
    }
    token(step);
    finish = step.finish;
    if (!finish) await nextTurn();
  }
  const t2 = performance.now();
  const n = ids.length;
  const promptN = pre.prompt_tokens - pre.reused_tokens - promptLeft; // what actually ran
  post({
    type: 'done', id, finish_reason: finish,
    usage: { prompt_tokens: pre.prompt_tokens, completion_tokens: n, total_tokens: pre.prompt_tokens + n },
    timings: {
      prompt_n: promptN,
      cached_n: pre.reused_tokens,
      prompt_ms: t1 - t0,
      prompt_per_second: promptN / Math.max(t1 - t0, 1e-3) * 1000,
      predicted_n: n,
      predicted_ms: t2 - t1,
      predicted_per_second: n / Math.max(t2 - t1, 1e-3) * 1000,
    },
    tokens: { ids, margins },
    ...(message && { message }),
  });
}
