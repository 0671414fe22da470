// wick's public JS API: an OpenAI-style client for a GGUF model that runs in a Web Worker in
// this tab. Types and docs: wick.d.ts. The page (www/app/) uses exactly this API.
//
//   import { createEngine } from './wick.js';
//   const engine = await createEngine({ model: '/models/SmolLM2-135M-Instruct.Q4_1.gguf' });
//   const stream = await engine.chat.completions.create({ messages, stream: true });
//   for await (const chunk of stream) out += chunk.choices[0].delta.content ?? '';

import { WickError } from './errors.js';
import { createFetch } from './openai-fetch.js';
import { modelIdFor } from './storage.js';

export { WickError } from './errors.js';
export { createFetch } from './openai-fetch.js';
export { listModels, deleteModel, storageEstimate, requestPersistentStorage, modelIdFor } from './storage.js';

let nextId = 1;

/** Loads a model in a new worker; resolves when it is ready to generate. */
export async function createEngine(options = {}) {
  if (options === null || typeof options !== 'object') {
    throw new WickError('invalid_parameter', `createEngine takes an options object, got ${describe(options)}`);
  }
  const { model, onProgress, threads, backend = 'auto', context, sha256, signal, relaxedSimd = true, stallTimeoutMs } = options;
  const source = normalizeSource(model);
  // More threads than cores never helps: the pool's threads spin while a forward pass runs, so
  // extra ones only take turns with the others (256 threads on 2 cores: 50x slower).
  const cores = Math.max(1, navigator.hardwareConcurrency || 1);
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1 && threads <= 256)) {
    throw new WickError('invalid_parameter', `threads must be an integer from 1 to 256, got ${describe(threads)}`);
  }
  const threadCount = Math.min(threads ?? 16, cores);
  if (!['auto', 'cpu', 'webgpu'].includes(backend)) {
    throw new WickError('invalid_parameter', `backend must be 'auto', 'cpu' or 'webgpu', got ${describe(backend)}`);
  }
  if (context !== undefined && !(Number.isInteger(context) && context >= 16 && context <= MAX_U32)) {
    throw new WickError('invalid_parameter', `context must be an integer of at least 16 tokens, got ${describe(context)}`);
  }
  if (sha256 !== undefined && !(typeof sha256 === 'string' && /^[0-9a-fA-F]{64}$/.test(sha256))) {
    throw new WickError('invalid_parameter', `sha256 must be 64 hexadecimal digits, got ${describe(sha256)}`);
  }
  if (typeof relaxedSimd !== 'boolean') {
    throw new WickError('invalid_parameter', `relaxedSimd must be true or false, got ${describe(relaxedSimd)}`);
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new WickError('invalid_parameter', `onProgress must be a function, got ${describe(onProgress)}`);
  }
  if (stallTimeoutMs !== undefined && !(Number.isInteger(stallTimeoutMs) && stallTimeoutMs >= 1)) {
    throw new WickError('invalid_parameter', `stallTimeoutMs must be a positive integer of milliseconds, got ${describe(stallTimeoutMs)}`);
  }
  checkSignal(signal);
  if (signal?.aborted) throw new WickError('aborted', 'loading was cancelled');

  const worker = startWorker();
  const link = new WorkerLink(worker);
  // The embedder's callback throwing must not stop the load, nor surface as an uncaught error
  // from the worker's message handler on every progress message.
  const report = (progress) => {
    try {
      onProgress?.(progress);
    } catch (e) {
      console.error('wick: onProgress threw', e);
    }
  };
  try {
    const info = await link.request({ type: 'load', source, threads: threadCount, backend, context, sha256: sha256 ?? source.sha256, relaxedSimd, stallTimeoutMs },
      { signal, onMessage: (m) => m.type === 'progress' && report(m.progress) });
    return new Engine(link, info);
  } catch (e) {
    worker.terminate();
    throw e;
  }
}

const MAX_U32 = 2 ** 32 - 1;

/**
 * The engine's worker, from worker.js beside this module. A page may import wick from another
 * origin (a CDN), and a Worker's script must be same-origin: then the worker starts from a
 * same-origin blob that imports worker.js, which finds the wasm builds relative to its own URL
 * (the CDN's; module imports are CORS requests). The plain `new Worker(new URL(...))` form stays
 * as it is for the same-origin case: bundlers (Vite, webpack) recognise exactly that form.
 */
function startWorker() {
  const here = new URL(import.meta.url);
  if (typeof location !== 'undefined' && /^https?:$/.test(here.protocol) && here.origin !== location.origin) {
    const source = new URL('worker.js', here).href;
    const blob = new Blob([`import ${JSON.stringify(source)};\n`], { type: 'text/javascript' });
    // Not revoked: the worker fetches it some time after `new Worker` returns, and a URL of a
    // few dozen bytes per engine costs nothing.
    return new Worker(URL.createObjectURL(blob), { type: 'module', name: 'wick' });
  }
  return new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'wick' });
}

/** A value as an error message shows it: JSON where that is faithful (NaN is not "null"). */
function describe(value) {
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return value.toString();
  try {
    const json = JSON.stringify(value);
    if (json === undefined) return String(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

function checkSignal(signal) {
  if (signal !== undefined && signal !== null && !(signal instanceof AbortSignal)) {
    throw new WickError('invalid_parameter', `signal must be an AbortSignal (from an AbortController), got ${describe(signal)}`);
  }
}

/** A model source as the worker takes it: {url} (absolute), {file} or {id}, plus id/sha256. */
function normalizeSource(model) {
  if (model === undefined || model === null || model === '') {
    throw new WickError('invalid_parameter', 'createEngine needs a model: a URL, a File, or {id} of a stored model');
  }
  let s;
  if (typeof model === 'string' || model instanceof URL) s = { url: model };
  else if (typeof Blob !== 'undefined' && model instanceof Blob) s = { file: model };
  else if (typeof model === 'object') s = { ...model };
  else throw new WickError('invalid_parameter', `unsupported model source: ${typeof model}`);
  if (s.url !== undefined) {
    try {
      s.url = new URL(s.url, document.baseURI).href; // the worker resolves against its own URL
    } catch {
      throw new WickError('invalid_parameter', `not a valid URL: ${s.url}`);
    }
  }
  if (s.url === undefined && s.file === undefined && s.id === undefined) {
    throw new WickError('invalid_parameter', 'a model source needs a url, a file or an id');
  }
  s.id = modelIdFor(s);
  return s;
}

/**
 * Request/response over postMessage: every message carries the id of the request it is for.
 * A `worker` error, from the worker or about it, means the engine is gone (a wasm trap leaves
 * the instance in an unknown state): the link dies with it, so every pending and later request
 * fails with that error, and `onLost` hears it once, whatever state its own request was in.
 */
class WorkerLink {
  constructor(worker) {
    this.worker = worker;
    this.pending = new Map(); // id -> {resolve, reject, onMessage}
    this.dead = null;
    this.onLost = null;
    worker.onmessage = ({ data }) => {
      if (data.type === 'error' && data.error?.kind === 'worker') {
        this.#die(WickError.from(data.error));
        return;
      }
      const p = this.pending.get(data.id);
      if (!p) return;
      if (data.type === 'error') {
        this.pending.delete(data.id);
        p.reject(WickError.from(data.error));
      } else if (data.type === 'loaded' || data.type === 'done') {
        this.pending.delete(data.id);
        p.onMessage?.(data);
        p.resolve(data.type === 'loaded' ? data.info : data);
      } else {
        p.onMessage?.(data);
      }
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      this.#die(new WickError('worker', `the wick worker failed: ${e.message || 'it could not start (are wick.js, worker.js and pkg/ served?)'}`));
    };
    worker.onmessageerror = () => this.#die(new WickError('worker', 'a message from the wick worker could not be read'));
  }

  #die(error) {
    if (this.dead) return;
    this.worker.terminate();
    this.dead = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    this.onLost?.(error);
  }

  /** Sends `msg` and resolves with the final answer; `onMessage` sees every message on the way. */
  request(msg, { signal, onMessage } = {}) {
    if (this.dead) return Promise.reject(this.dead);
    const id = msg.id ?? nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => this.worker.postMessage({ type: 'abort', id });
      signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (v) => { done(); resolve(v); },
        reject: (e) => { done(); reject(e); },
        onMessage,
      });
      this.worker.postMessage({ ...msg, id });
    });
  }

  /** Ends the worker on purpose: no `onLost`. */
  close(reason) {
    this.onLost = null;
    this.#die(new WickError('worker', reason));
  }
}

const SAMPLING_KEYS = ['max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'frequency_penalty', 'presence_penalty', 'seed', 'stop', 'ignore_eos'];

/** The engine's sampling options from an OpenAI-style request, checked before any work starts. */
function samplingOptions(req) {
  const o = {};
  for (const k of SAMPLING_KEYS) if (req[k] !== undefined && req[k] !== null) o[k] = req[k];
  const num = (k, ok, what, from = o) => {
    if (from[k] !== undefined && from[k] !== null && !(typeof from[k] === 'number' && ok(from[k]))) {
      throw new WickError('invalid_parameter', `${k} must be ${what}, got ${describe(from[k])}`);
    }
  };
  // Integers the engine holds in 32 bits on wasm32 (usize): larger ones are refused here, in
  // these words, not by the engine's deserializer in its own.
  const tokens = (v) => Number.isInteger(v) && v >= 1 && v <= MAX_U32;
  num('max_tokens', tokens, `an integer from 1 to ${MAX_U32}`);
  // OpenAI's newer name for max_tokens.
  num('max_completion_tokens', tokens, `an integer from 1 to ${MAX_U32}`, req);
  if (req.max_completion_tokens !== undefined && req.max_completion_tokens !== null) {
    if (o.max_tokens !== undefined && o.max_tokens !== req.max_completion_tokens) {
      throw new WickError('invalid_parameter', `max_tokens (${o.max_tokens}) and max_completion_tokens (${req.max_completion_tokens}) differ: give one of them`);
    }
    o.max_tokens = req.max_completion_tokens;
  }
  num('temperature', (v) => v >= 0 && v <= 100, 'a number from 0 to 100');
  num('top_p', (v) => v > 0 && v <= 1, 'a number above 0 and at most 1');
  num('top_k', (v) => Number.isInteger(v) && v >= 0 && v <= MAX_U32, `an integer from 0 to ${MAX_U32}`);
  num('min_p', (v) => v >= 0 && v <= 1, 'a number from 0 to 1');
  num('repetition_penalty', (v) => v > 0 && v <= 10, 'a number above 0 and at most 10');
  num('frequency_penalty', (v) => v >= -2 && v <= 2, 'a number from -2 to 2');
  num('presence_penalty', (v) => v >= -2 && v <= 2, 'a number from -2 to 2');
  num('seed', (v) => Number.isSafeInteger(v) && v >= 0, 'a non-negative integer');
  if (typeof o.stop === 'string') o.stop = [o.stop];
  if (o.stop !== undefined && !(Array.isArray(o.stop) && o.stop.every((s) => typeof s === 'string' && s.length > 0))) {
    throw new WickError('invalid_parameter', `stop must be a non-empty string or an array of them, got ${describe(o.stop)}`);
  }
  if (o.ignore_eos !== undefined && typeof o.ignore_eos !== 'boolean') {
    throw new WickError('invalid_parameter', `ignore_eos must be true or false, got ${describe(o.ignore_eos)}`);
  }
  // A request without a seed is still reproducible from its seed, which we pick here.
  if (o.seed === undefined) o.seed = crypto.getRandomValues(new Uint32Array(1))[0];
  return o;
}

/** The most alternatives a token's log-probability may list (OpenAI's limit). */
const MAX_TOP_LOGPROBS = 20;

/**
 * How many alternatives per token the engine is to report, or undefined for no
 * log-probabilities. Chat: OpenAI's `logprobs: true` with `top_logprobs` 0 to 20; completions:
 * the legacy `logprobs: N`, 0 to 20.
 */
function logprobOptions(mode, req) {
  const top = (k, v) => {
    if (!(Number.isInteger(v) && v >= 0 && v <= MAX_TOP_LOGPROBS)) {
      throw new WickError('invalid_parameter', `${k} must be an integer from 0 to ${MAX_TOP_LOGPROBS}, got ${describe(v)}`);
    }
    return v;
  };
  const { logprobs, top_logprobs: n } = req;
  if (mode === 'completion') return logprobs === undefined || logprobs === null ? undefined : top('logprobs', logprobs);
  if (logprobs !== undefined && logprobs !== null && typeof logprobs !== 'boolean') {
    throw new WickError('invalid_parameter', `logprobs must be true or false (top_logprobs says how many alternatives), got ${describe(logprobs)}`);
  }
  if (n !== undefined && n !== null) {
    top('top_logprobs', n);
    if (logprobs !== true) throw new WickError('invalid_parameter', 'top_logprobs needs logprobs: true');
  }
  return logprobs === true ? n ?? 0 : undefined;
}

/** OpenAI's request fields that change nothing here, checked for their type; and `n`. */
function checkOpenAIFields(req) {
  if (req.n !== undefined && req.n !== null && req.n !== 1) {
    throw new WickError('invalid_parameter', `n must be 1: wick generates one choice per request (send the request again for another), got ${describe(req.n)}`);
  }
  const types = { user: 'string', store: 'boolean', parallel_tool_calls: 'boolean' };
  for (const [k, type] of Object.entries(types)) {
    if (req[k] !== undefined && req[k] !== null && typeof req[k] !== type) {
      throw new WickError('invalid_parameter', `${k} must be a ${type === 'boolean' ? 'true or false' : type}, got ${describe(req[k])}`);
    }
  }
  const md = req.metadata;
  if (md !== undefined && md !== null && !(typeof md === 'object' && !Array.isArray(md) && Object.values(md).every((v) => typeof v === 'string'))) {
    throw new WickError('invalid_parameter', `metadata must be an object of strings, got ${describe(md)}`);
  }
}

/** Whether a streamed request ends with a chunk of usage (OpenAI's `stream_options`). */
function includeUsage(req) {
  const so = req.stream_options;
  if (so === undefined || so === null) return false;
  if (req.stream !== true) throw new WickError('invalid_parameter', 'stream_options is only for stream: true');
  if (typeof so !== 'object' || Array.isArray(so) || (so.include_usage !== undefined && typeof so.include_usage !== 'boolean')) {
    throw new WickError('invalid_parameter', `stream_options must be {include_usage: true | false}, got ${describe(so)}`);
  }
  return so.include_usage === true;
}

/**
 * Structured output, as the engine takes it: OpenAI's `response_format` (`{type: 'json_object'}`,
 * `{type: 'json_schema', json_schema: {name, schema, strict}}`, `{type: 'text'}`), or wick's
 * `grammar` (`{type: 'lark', grammar}`, `{type: 'regex', pattern}`). Undefined for free text.
 */
function structuredOutput(req) {
  const rf = req.response_format;
  const g = req.grammar;
  if (rf !== undefined && rf !== null && (!isObject(rf) || !['text', 'json_object', 'json_schema'].includes(rf.type))) {
    throw new WickError('invalid_parameter', `response_format must be {type: 'text' | 'json_object' | 'json_schema', ...}, got ${describe(rf)}`);
  }
  const fromFormat = (() => {
    if (!rf || rf.type === 'text') return undefined;
    if (rf.type === 'json_object') return { type: 'json_object' };
    const js = rf.json_schema;
    if (!isObject(js) || !(isObject(js.schema) || typeof js.schema === 'boolean')) {
      throw new WickError('invalid_parameter', `response_format.json_schema must be {name, schema: {...}, strict}, got ${describe(js)}`);
    }
    return { type: 'json_schema', schema: js.schema };
  })();
  if (g === undefined || g === null) return fromFormat;
  if (fromFormat) throw new WickError('invalid_parameter', 'give response_format or grammar, not both');
  if (isObject(g) && g.type === 'lark' && typeof g.grammar === 'string') return { type: 'lark', grammar: g.grammar };
  if (isObject(g) && g.type === 'regex' && typeof g.pattern === 'string') return { type: 'regex', pattern: g.pattern };
  throw new WickError('invalid_parameter', `grammar must be {type: 'lark', grammar: string} or {type: 'regex', pattern: string}, got ${describe(g)}`);
}

function checkBooleans(options) {
  for (const [k, v] of Object.entries(options)) {
    if (typeof v !== 'boolean') throw new WickError('invalid_parameter', `${k} must be true or false, got ${describe(v)}`);
  }
}

const ROLES = ['system', 'developer', 'user', 'assistant', 'tool'];
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const bad = (message) => new WickError('invalid_parameter', message);

/** A message's `content` as OpenAI allows it: a string, or an array of `{type: 'text', text}`. */
function checkContent(content, at) {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw bad(`${at}.content must be a string or an array of {type: 'text', text} parts, got ${describe(content)}`);
  return content.map((p, j) => {
    if (!isObject(p) || p.type !== 'text' || typeof p.text !== 'string') {
      throw bad(`${at}.content[${j}] must be {type: 'text', text: string} (wick reads text only), got ${describe(p)}`);
    }
    return { type: 'text', text: p.text };
  });
}

/** An assistant message's `tool_calls`: [{id, type: 'function', function: {name, arguments}}]. */
function checkToolCalls(calls, at) {
  if (!Array.isArray(calls)) throw bad(`${at}.tool_calls must be an array, got ${describe(calls)}`);
  return calls.map((c, j) => {
    const here = `${at}.tool_calls[${j}]`;
    if (!isObject(c)) throw bad(`${here} must be {id, type: 'function', function: {name, arguments}}, got ${describe(c)}`);
    if (typeof c.id !== 'string' || !c.id) throw bad(`${here}.id must be a non-empty string, got ${describe(c.id)}`);
    if (c.type !== undefined && c.type !== 'function') throw bad(`${here}.type must be 'function', got ${describe(c.type)}`);
    const f = c.function;
    if (!isObject(f)) throw bad(`${here}.function must be {name, arguments}, got ${describe(f)}`);
    if (typeof f.name !== 'string' || !f.name) throw bad(`${here}.function.name must be a non-empty string, got ${describe(f.name)}`);
    if (typeof f.arguments !== 'string') throw bad(`${here}.function.arguments must be a string (JSON text, as OpenAI returns it), got ${describe(f.arguments)}`);
    return { id: c.id, type: 'function', function: { name: f.name, arguments: f.arguments } };
  });
}

/**
 * OpenAI-shaped chat messages, checked field by field and passed on with the fields the engine
 * reads (others, such as the `refusal: null` of a message sent back as it came, are dropped).
 */
function checkMessages(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw bad('messages must be a non-empty array of {role, content}');
  }
  return messages.map((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw bad(`${at} must be a message object {role, content}, got ${describe(m)}`);
    if (!ROLES.includes(m.role)) throw bad(`${at}.role must be one of ${ROLES.map((r) => `'${r}'`).join(', ')}, got ${describe(m.role)}`);
    const out = { role: m.role };
    const hasCalls = m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls !== null;
    if (hasCalls) {
      out.tool_calls = checkToolCalls(m.tool_calls, at);
    } else if (m.tool_calls !== undefined && m.tool_calls !== null) {
      throw bad(`${at}.tool_calls: only assistant messages have tool calls`);
    }
    if ((m.content === null || m.content === undefined) && hasCalls && out.tool_calls.length > 0) {
      out.content = null; // an assistant turn that only called tools
    } else {
      out.content = checkContent(m.content, at);
    }
    if (m.name !== undefined && m.name !== null) {
      if (typeof m.name !== 'string') throw bad(`${at}.name must be a string, got ${describe(m.name)}`);
      out.name = m.name;
    }
    if (m.role === 'assistant' && m.reasoning_content !== undefined && m.reasoning_content !== null) {
      if (typeof m.reasoning_content !== 'string') throw bad(`${at}.reasoning_content must be a string, got ${describe(m.reasoning_content)}`);
      out.reasoning_content = m.reasoning_content;
    }
    if (m.role === 'tool') {
      if (typeof m.tool_call_id !== 'string' || !m.tool_call_id) {
        throw bad(`${at}.tool_call_id must be the id of the call this message answers, got ${describe(m.tool_call_id)}`);
      }
      out.tool_call_id = m.tool_call_id;
    }
    return out;
  });
}

/** OpenAI's `tools` (functions only) and `tool_choice`, checked; the engine's options for them. */
function toolOptions(req) {
  const { tools, tool_choice: choice } = req;
  const o = {};
  const names = [];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) throw bad(`tools must be an array of {type: 'function', function: {name, description, parameters}}, got ${describe(tools)}`);
    o.tools = tools.map((t, i) => {
      const at = `tools[${i}]`;
      if (!isObject(t) || t.type !== 'function') throw bad(`${at} must be {type: 'function', function: {name, description, parameters}} (wick has function tools only), got ${describe(t)}`);
      const f = t.function;
      if (!isObject(f)) throw bad(`${at}.function must be {name, description, parameters}, got ${describe(f)}`);
      if (typeof f.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(f.name)) {
        throw bad(`${at}.function.name must be 1 to 64 letters, digits, '_' or '-', got ${describe(f.name)}`);
      }
      if (names.includes(f.name)) throw bad(`${at}.function.name: ${describe(f.name)} is defined twice`);
      names.push(f.name);
      const fn = { name: f.name };
      if (f.description !== undefined && f.description !== null) {
        if (typeof f.description !== 'string') throw bad(`${at}.function.description must be a string, got ${describe(f.description)}`);
        fn.description = f.description;
      }
      if (f.parameters !== undefined && f.parameters !== null) {
        if (!isObject(f.parameters)) throw bad(`${at}.function.parameters must be a JSON schema object, got ${describe(f.parameters)}`);
        fn.parameters = f.parameters;
      }
      if (f.strict !== undefined && f.strict !== null && typeof f.strict !== 'boolean') {
        throw bad(`${at}.function.strict must be true or false, got ${describe(f.strict)}`);
      }
      return { type: 'function', function: fn };
    });
  }
  if (choice === undefined || choice === null) return o;
  if (typeof choice === 'string') {
    if (!['auto', 'none', 'required'].includes(choice)) {
      throw bad(`tool_choice must be 'auto', 'none', 'required' or {type: 'function', function: {name}}, got ${describe(choice)}`);
    }
  } else if (!isObject(choice) || choice.type !== 'function' || !isObject(choice.function) || typeof choice.function.name !== 'string') {
    throw bad(`tool_choice must be 'auto', 'none', 'required' or {type: 'function', function: {name}}, got ${describe(choice)}`);
  } else if (!names.includes(choice.function.name)) {
    throw bad(`tool_choice names the function ${describe(choice.function.name)}, which is not among the tools${names.length ? ` (${names.join(', ')})` : ''}`);
  }
  if (choice === 'required' && names.length === 0) throw bad("tool_choice 'required' needs tools");
  o.tool_choice = typeof choice === 'string' ? choice : { type: 'function', function: { name: choice.function.name } };
  return o;
}

/** A loaded model. Dispatches `lost` (a CustomEvent whose `detail` is the WickError) once if the
 * engine dies (the worker crashed or ran out of memory): create a new engine then. */
class Engine extends EventTarget {
  #link;
  #info;

  constructor(link, info) {
    super();
    this.#link = link;
    this.#info = info;
    this.chat = { completions: { create: (req) => this.#create('chat', req) } };
    this.completions = { create: (req) => this.#create('completion', req) };
    /** OpenAI's HTTP API answered in the tab, for `new OpenAI({fetch: engine.fetch, ...})`. */
    this.fetch = createFetch(this);
    link.onLost = (error) => this.dispatchEvent(new CustomEvent('lost', { detail: error }));
  }

  info() {
    return structuredClone(this.#info);
  }

  /** The `worker` error that ended this engine, or null while it is alive. */
  get lost() {
    return this.#link.dead;
  }

  async unload() {
    this.#link.close('the engine was unloaded');
  }

  /** The model's token ids for `text` (llama.cpp server's /tokenize). `addSpecial`: BOS as the
   * model says (default true); `parseSpecial`: special-token text such as `<|im_start|>` becomes
   * those tokens (default false: it stays text). */
  async tokenize(text, { addSpecial = true, parseSpecial = false } = {}) {
    if (typeof text !== 'string') throw new WickError('invalid_parameter', `text must be a string, got ${describe(text)}`);
    checkBooleans({ addSpecial, parseSpecial });
    return (await this.#link.request({ type: 'tokenize', text, addSpecial, parseSpecial })).ids;
  }

  /** The text of token ids (/detokenize); special tokens included unless `skipSpecial`. */
  async detokenize(ids, { skipSpecial = false } = {}) {
    if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i) && i >= 0 && i <= MAX_U32)) {
      throw new WickError('invalid_parameter', `ids must be an array of token ids, got ${describe(ids)}`);
    }
    checkBooleans({ skipSpecial });
    return (await this.#link.request({ type: 'detokenize', ids, skipSpecial })).text;
  }

  /** The prompt text the model's chat template makes of OpenAI-shaped `messages` (tool calls and
   * tool results included) and `tools`, with the generation prompt unless
   * `addGenerationPrompt: false` (/apply-template): exactly what the model is given. */
  async applyTemplate(messages, { tools, addGenerationPrompt = true } = {}) {
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new WickError('invalid_parameter', 'messages must be a non-empty array of message objects');
    }
    if (tools !== undefined && !Array.isArray(tools)) throw new WickError('invalid_parameter', `tools must be an array, got ${describe(tools)}`);
    checkBooleans({ addGenerationPrompt });
    return (await this.#link.request({ type: 'applyTemplate', messages, tools, addGenerationPrompt })).text;
  }

  async #create(mode, req = {}) {
    if (req === null || typeof req !== 'object') {
      throw new WickError('invalid_parameter', `a request is an object, got ${describe(req)}`);
    }
    const options = samplingOptions(req);
    const grammar = structuredOutput(req);
    if (grammar) options.grammar = grammar;
    const logprobs = logprobOptions(mode, req);
    if (logprobs !== undefined) options.logprobs = logprobs;
    checkOpenAIFields(req);
    const body = mode === 'chat' ? { messages: checkMessages(req.messages) } : { prompt: req.prompt };
    if (mode === 'completion' && typeof req.prompt !== 'string') {
      throw new WickError('invalid_parameter', `prompt must be a string, got ${describe(req.prompt)}`);
    }
    if (mode === 'chat') Object.assign(options, toolOptions(req));
    else if (req.tools !== undefined || req.tool_choice !== undefined) {
      throw new WickError('invalid_parameter', 'tools and tool_choice are for chat completions');
    }
    if (req.stream !== undefined && req.stream !== null && typeof req.stream !== 'boolean') {
      throw new WickError('invalid_parameter', `stream must be true or false, got ${describe(req.stream)}`);
    }
    const usageChunk = includeUsage(req);
    if (mode === 'chat' && req.parse_special_tokens !== undefined) {
      // Off by default: special-token text in a message (`<|im_start|>system`) stays text, so
      // what a user types cannot forge roles. On for callers who build control sequences.
      if (typeof req.parse_special_tokens !== 'boolean') {
        throw new WickError('invalid_parameter', `parse_special_tokens must be true or false, got ${describe(req.parse_special_tokens)}`);
      }
      options.parse_special_tokens = req.parse_special_tokens;
    }
    checkSignal(req.signal);
    if (req.signal?.aborted) throw abortError(null, 'the request was aborted before it started');
    const out = new Output(mode, {
      id: `${mode === 'chat' ? 'chatcmpl' : 'cmpl'}-${crypto.randomUUID()}`,
      created: Math.floor(Date.now() / 1000),
      model: this.#info.modelId,
    }, logprobs !== undefined);
    const chunks = new ChunkQueue();
    const requestId = nextId++;
    const finished = this.#link.request({ type: 'generate', id: requestId, mode, ...body, options }, {
      signal: req.signal,
      onMessage: (m) => {
        if (m.type === 'token') chunks.push(m);
        // The GPU failed and the worker moved to the CPU (the request fails with gpu_lost).
        if (m.type === 'backend') Object.assign(this.#info, m.info);
      },
    });
    // A request whose signal fired rejects (or its stream throws) with an AbortError carrying
    // what was generated, as `fetch` rejects; one that ended before the signal fired is complete.
    const aborted = (done) => done.finish_reason === 'aborted';
    if (!req.stream) {
      const done = await finished;
      for (const m of chunks.items) out.add(m);
      const result = out.whole(done);
      if (aborted(done)) throw abortError(result);
      return result;
    }
    finished.then((done) => chunks.end(done), (e) => chunks.fail(e));
    const link = this.#link;
    return {
      async *[Symbol.asyncIterator]() {
        let complete = false;
        try {
          if (mode === 'chat') yield out.chunk({ role: 'assistant', content: '' }, null, usageChunk);
          for await (const item of chunks) {
            if (item.type === 'token') {
              const piece = out.add(item);
              if (piece) yield piece.chunk(usageChunk);
              continue;
            }
            complete = true;
            if (aborted(item)) throw abortError(out.whole(item));
            yield out.last(item, usageChunk);
            if (usageChunk) yield { ...out.meta, object: out.chunkObject, choices: [], usage: item.usage };
          }
        } finally {
          // The consumer stopped reading early: stop generating too.
          if (!complete) link.worker.postMessage({ type: 'abort', id: requestId });
        }
      },
    };
  }
}

/** The AbortError of a request whose signal fired: `partial` is what it had generated. */
function abortError(partial, message = 'the request was aborted') {
  const e = new WickError('aborted', message);
  e.partial = partial;
  return e;
}

/**
 * A request's output as it arrives: the text and the log-probabilities of its tokens, laid out
 * as OpenAI's chunks and whole completions. A chat answer comes as the engine's parser reads it
 * (`delta`: content, reasoning_content and whole tool calls; a completion's as its text). A
 * token whose text is held back (part of a character, a possible stop string, a tool call still
 * being written) has its log-probability sent with the chunk its text arrives in, or with the
 * last chunk.
 */
class Output {
  constructor(mode, meta, logprobs) {
    this.mode = mode;
    this.meta = meta;
    this.logprobs = logprobs;
    this.chunkObject = mode === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    this.text = '';
    this.reasoning = ''; // chat: reasoning_content so far
    this.calls = [];     // chat: tool calls so far
    this.entries = [];   // every token's logprob entry (OpenAI's chat shape)
    this.pending = [];   // entries not yet sent in a chunk
    this.offset = 0;     // legacy text_offset of the next token: the length of the tokens before it
    this.offsets = [];
  }

  /** Adds a token message; returns the piece to stream when it made something visible. */
  add({ text, logprob, delta }) {
    if (logprob) {
      this.entries.push(logprob);
      this.pending.push(logprob);
      this.offsets.push(this.offset);
      this.offset += logprob.token.length;
    }
    const shown = this.mode === 'chat' ? this.#delta(delta) : text && { content: text };
    if (!shown) return null;
    this.text += shown.content ?? '';
    const entries = this.#take();
    return { chunk: (usage) => this.chunk(shown, null, usage, entries) };
  }

  /** A chat chunk's `delta` for what the engine's parser read (null when nothing). */
  #delta(d) {
    if (!d) return null;
    const out = {};
    if (d.reasoning_content) {
      out.reasoning_content = d.reasoning_content;
      this.reasoning += d.reasoning_content;
    }
    if (d.content) out.content = d.content;
    if (d.tool_calls?.length) {
      // OpenAI's streaming shape; wick sends each call whole, in its first delta.
      out.tool_calls = d.tool_calls.map((c) => ({ index: c.index, id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } }));
      for (const c of out.tool_calls) this.calls.push({ id: c.id, type: 'function', function: { ...c.function } });
    }
    return Object.keys(out).length ? out : null;
  }

  /** The chat message: the engine's, or (no message came: an error) what the deltas made. */
  #message(m) {
    const calls = m ? m.tool_calls ?? [] : this.calls;
    const reasoning = m ? m.reasoning_content : this.reasoning || undefined;
    const content = m ? m.content ?? null : this.text || (calls.length || reasoning ? null : '');
    return {
      role: 'assistant',
      content,
      ...(reasoning !== undefined && reasoning !== null && { reasoning_content: reasoning }),
      ...(calls.length && { tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.function.name, arguments: c.function.arguments } })) }),
      refusal: null,
    };
  }

  #take() {
    const entries = this.pending;
    this.pending = [];
    return entries;
  }

  /** `logprobs` of a choice for these entries: null when the request did not ask. */
  #logprobs(entries) {
    if (!this.logprobs) return null;
    if (this.mode === 'chat') return { content: entries, refusal: null };
    const first = this.entries.length - entries.length;
    return {
      tokens: entries.map((e) => e.token),
      token_logprobs: entries.map((e) => e.logprob),
      // Most likely first: where two alternatives have the same text, the likelier one stays.
      top_logprobs: entries.map((e) => Object.fromEntries(e.top_logprobs.map((t) => [t.token, t.logprob]).reverse())),
      text_offset: this.offsets.slice(first, first + entries.length),
    };
  }

  chunk(delta, finishReason, usage, entries = []) {
    const choice = this.mode === 'chat'
      ? { index: 0, delta, logprobs: this.#logprobs(entries), finish_reason: finishReason }
      : { index: 0, text: delta.content ?? '', logprobs: this.#logprobs(entries), finish_reason: finishReason };
    return { ...this.meta, object: this.chunkObject, choices: [choice], ...(usage && { usage: null }) };
  }

  /** The chunk that ends a stream: the finish reason, usage (unless a usage chunk follows) and
   *  wick's timings and token ids. */
  last(done, usageChunk) {
    const c = this.chunk({}, done.finish_reason, false, this.#take());
    return { ...c, usage: usageChunk ? null : done.usage, timings: done.timings, tokens: done.tokens };
  }

  /** The whole completion (a non-streamed answer, or what an aborted request had made). */
  whole(done) {
    this.pending = [];
    const logprobs = this.#logprobs(this.entries);
    const choice = this.mode === 'chat'
      ? { index: 0, message: this.#message(done.message), logprobs, finish_reason: done.finish_reason }
      : { index: 0, text: this.text, logprobs, finish_reason: done.finish_reason };
    return { ...this.meta, object: this.mode === 'chat' ? 'chat.completion' : 'text_completion', choices: [choice], ...summary(done) };
  }
}

/** What the last chunk and a whole completion carry beyond the text. */
function summary(done) {
  return { usage: done.usage, timings: done.timings, tokens: done.tokens };
}

/** Token messages as they arrive, then the final message (or an error), as an async iterable. */
class ChunkQueue {
  constructor() {
    this.items = [];
    this.waiting = null;
    this.error = null;
    this.ended = false;
  }
  push(item) { this.items.push(item); this.#wake(); }
  end(done) { this.items.push(done); this.ended = true; this.#wake(); }
  fail(error) { this.error = error; this.#wake(); }
  #wake() { this.waiting?.(); this.waiting = null; }
  async *[Symbol.asyncIterator]() {
    for (;;) {
      if (this.items.length) {
        const item = this.items.shift();
        yield item;
        if (item.type !== 'token') return;
      } else if (this.error) {
        throw this.error;
      } else {
        await new Promise((r) => { this.waiting = r; });
      }
    }
  }
}
