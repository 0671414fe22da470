// Type declarations for wick.js, the public JS API of wick.
//
//   import { createEngine } from './wick.js';
//   const engine = await createEngine({ model: '/models/SmolLM2-135M-Instruct.Q4_1.gguf' });
//   const stream = await engine.chat.completions.create({ messages, stream: true });
//   for await (const chunk of stream) out += chunk.choices[0].delta.content ?? '';
//
// A tokenizer alone, without the engine or the weights, is not part of this module: each wasm
// build (pkg/<flavour>/wick.js) exports the class `Tokenizer` (src/web/tokenizer.rs):
//   import init, { Tokenizer } from './pkg/simd/wick.js';  await init();
//   const tok = new Tokenizer(ggufHeaderBytes);  // Uint8Array; throws {kind, message}
//   tok.encode(text, addSpecial, parseSpecial);  // Uint32Array;  tok.decode(ids); tok.vocabSize

export type ErrorKind =
  | 'download' | 'integrity' | 'quota' | 'storage' | 'invalid_model' | 'unsupported_model'
  | 'tokenizer' | 'chat_template' | 'context_overflow' | 'invalid_parameter' | 'aborted'
  | 'unsupported_browser' | 'gpu_unavailable' | 'gpu_lost' | 'worker' | 'busy' | 'io';

/**
 * Every failure of the API is a WickError: `kind` for code, `message` for people. An abort (kind
 * 'aborted') is named 'AbortError', as `fetch` names its own, so `err.name === 'AbortError'`
 * checks work; `name` is 'WickError' for every other kind.
 */
export class WickError extends Error {
  readonly name: 'WickError' | 'AbortError';
  readonly kind: ErrorKind;
  readonly details?: unknown;
  /**
   * On the AbortError of a request whose `signal` fired: the completion up to the abort (its
   * text, log-probabilities, `finish_reason: 'aborted'`, usage, timings, token ids); null when the
   * signal had fired before the request was sent.
   */
  readonly partial?: ChatCompletion | Completion | null;
  constructor(kind: ErrorKind, message: string, details?: unknown);
}

/** Where a model comes from. A string is a URL (same origin or CORS-enabled). */
export type ModelSource =
  | string
  | URL
  | File
  | { url: string | URL; id?: string; sha256?: string }
  | { file: File | Blob; id?: string; sha256?: string }
  /** A model already in browser storage (see listModels). */
  | { id: string };

export interface Progress {
  /**
   * waiting: another tab or worker is downloading, storing or deleting the same model (sent once;
   * the load goes on when it is free, or stops at `signal`); download: bytes arriving; store: a
   * local file copied into storage; load: read into the engine; gpu: uploaded to WebGPU.
   */
  phase: 'waiting' | 'download' | 'store' | 'load' | 'gpu' | 'ready';
  loaded: number;
  total: number;
  /** Bytes per second over the last second (download and store). */
  rate?: number;
  /** True when a download continues an interrupted one (HTTP Range). */
  resumed?: boolean;
}

export interface CreateEngineOptions {
  model: ModelSource;
  onProgress?: (p: Progress) => void;
  /**
   * CPU threads, an integer from 1 to 256; default navigator.hardwareConcurrency (at most 16).
   * Clamped to navigator.hardwareConcurrency: the pool's threads spin during a forward pass, so
   * more threads than cores only slow it down. Threads need a cross-origin isolated page.
   */
  threads?: number;
  /**
   * Where the forward pass runs. 'auto' (default): WebGPU on a hardware adapter, else the CPU
   * (a software fallback adapter is slower than the CPU path). 'webgpu': WebGPU or a
   * gpu_unavailable error. 'cpu': WebAssembly SIMD (and threads).
   */
  backend?: 'auto' | 'webgpu' | 'cpu';
  /** Context size in tokens; default min(4096, the model's). */
  context?: number;
  /**
   * Use the relaxed-SIMD build where the browser has relaxed SIMD and that build's kernels pass
   * their self-check against the reference (default true); false always loads plain SIMD128.
   */
  relaxedSimd?: boolean;
  /** Expected SHA-256 (hex) of the model file; checked after download. */
  sha256?: string;
  /** Aborts the download / load (also while it waits for another tab's download of the model). */
  signal?: AbortSignal;
  /**
   * A download that receives no bytes for this long (default 30000 ms) stops with a `download`
   * error; what it stored so far stays, and the next load resumes from there.
   */
  stallTimeoutMs?: number;
}

export interface SpecialToken { id: number; text: string }

/** What the GGUF file says about the model (the same JSON as `wick inspect --json`). */
export interface ModelCard {
  name: string | null;
  architecture: string;
  /** What sets the model apart within its family, in words, e.g. "partial RoPE (24 of 32
   * dimensions, halves)", "sliding window 4096 on 13 of 26 layers". */
  features: string[];
  file_size: number;
  parameters: number;
  /** The file's declared type, e.g. "Q4_K_M", when it says. */
  file_type: string | null;
  /** Bytes of tensor data per quantization type. */
  quant_types: Record<string, number>;
  context_length: number;
  embedding_length: number;
  block_count: number;
  head_count: number;
  head_count_kv: number;
  vocab_size: number;
  tokenizer_model: string;
  bos_token: SpecialToken | null;
  eos_token: SpecialToken | null;
  eot_tokens: SpecialToken[];
  add_bos: boolean;
  license: string | null;
  has_chat_template: boolean;
}

export interface EngineInfo {
  modelId: string;
  card: ModelCard;
  backend: 'cpu' | 'webgpu';
  /**
   * The WebGPU adapter when backend is 'webgpu'. f16: the adapter has 'shader-f16', so the KV
   * cache is stored in f16 (half the memory; attention computes in f32), else in f32.
   */
  gpu: { name: string; backend: string; device_type: string; max_binding: number; f16: boolean; fallback: boolean } | null;
  /** Why WebGPU is not in use (no adapter, a software fallback under 'auto', the GPU failed). */
  gpuNote: string | null;
  /** 'threads' when the rayon pool runs in Web Workers, 'simd' for the single-thread build. */
  build: 'threads' | 'simd';
  /** The build's instruction set: relaxed SIMD where available and verified, else SIMD128. */
  simd: 'simd128' | 'relaxed-simd';
  threads: number;
  context: number;
  crossOriginIsolated: boolean;
  /** Milliseconds from createEngine to ready, and the part of it spent reading storage. */
  loadMs: number;
  readMs: number;
  /**
   * How the stored bytes were checked on this load: 'xxh3', the checksum taken when the model
   * was stored (every load); for a model stored before checksums, 'sha256' (the load named one)
   * or 'first use' (the checksum is taken now and kept).
   */
  storageCheck: 'xxh3' | 'sha256' | 'first use';
  /** Where the load's time went: starting wasm and threads, reading (checkMs of it: the check), the engine. */
  phases: { wasmMs: number; readMs: number; checkMs: number; engineMs: number };
}

/** A message's text: a string, or OpenAI's content parts (text only; joined in order). */
export type MessageContent = string | { type: 'text'; text: string }[];

/** A tool call as the model made it: `arguments` is JSON text (an object), as OpenAI's. */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/**
 * A chat message, OpenAI-shaped. `developer` is read as `system`. An assistant turn that only
 * called tools has `content: null` and its `tool_calls`; each call's result goes back as a
 * `tool` message with its `tool_call_id`. An answer can be sent back as it came (fields wick
 * does not read, such as `refusal`, are ignored); `reasoning_content` goes to templates that
 * read it. A malformed message is an `invalid_parameter` error naming it (`messages[2].tool_call_id ...`).
 */
export type ChatMessage =
  | { role: 'system' | 'developer' | 'user'; content: MessageContent; name?: string }
  | { role: 'assistant'; content: MessageContent | null; tool_calls?: ToolCall[]; reasoning_content?: string; name?: string }
  | { role: 'tool'; content: MessageContent; tool_call_id: string; name?: string };

/** A function the model may call: `parameters` is its arguments' JSON schema. */
export interface Tool {
  type: 'function';
  function: { name: string; description?: string; parameters?: object; strict?: boolean };
}

/**
 * Whether and which tools are called: 'auto' (the default: the model decides), 'none', 'required'
 * (at least one call), or one named function. With 'required' or a named function the arguments
 * are constrained to the tool's schema where the model's call format allows it.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } };

/** One call in a streamed delta, OpenAI's shape: wick sends each call whole, in one delta. */
export interface ToolCallDelta extends ToolCall { index: number }

/** The answer: `content` null when there are only tool calls; `reasoning_content` the model's
 *  thinking (`<think>...</think>` and the like), kept apart from the answer. */
export interface AssistantMessage {
  role: 'assistant';
  content: string | null;
  reasoning_content?: string;
  tool_calls?: ToolCall[];
  refusal: null;
}

export interface SamplingOptions {
  max_tokens?: number;          // default 256
  /** OpenAI's newer name for max_tokens (both given and different: invalid_parameter). */
  max_completion_tokens?: number;
  temperature?: number;         // default 0.8; 0 is greedy
  top_p?: number;               // default 0.95
  top_k?: number;               // default 40; 0 disables
  min_p?: number;               // default 0.05
  repetition_penalty?: number;  // default 1.0 (off)
  frequency_penalty?: number;   // default 0 (off); -2 to 2: minus count x this, as OpenAI's
  presence_penalty?: number;    // default 0 (off); -2 to 2: minus this once a token appeared
  seed?: number;                // default: random
  stop?: string | string[];
  /** Keep generating through end-of-generation tokens (benchmarks). */
  ignore_eos?: boolean;
  /**
   * Stops the request within one token; the engine stays usable. As with `fetch`, the request
   * then rejects (a stream: throws, after the chunks it already delivered) with an AbortError
   * (`WickError` of kind 'aborted') whose `partial` is the completion so far. A consumer that
   * just `break`s out of its `for await` stops the generation too, without an error.
   */
  signal?: AbortSignal;
  /** Only 1 (one choice per request); anything else is invalid_parameter. */
  n?: 1;
  /** OpenAI's fields that change nothing in a tab, accepted (their types checked) and ignored. */
  user?: string;
  store?: boolean;
  metadata?: Record<string, string>;
  parallel_tool_calls?: boolean;
  /** With stream: true: `include_usage` sends one more chunk at the end, with `choices: []` and
   *  the usage; every other chunk then has `usage: null`. */
  stream_options?: { include_usage?: boolean };
  /**
   * Structured output by constrained decoding (llguidance): the answer is any JSON object, or
   * JSON valid against `json_schema.schema`. A schema keyword the engine cannot enforce
   * (`uniqueItems`, `propertyNames`) is an `invalid_parameter` error naming it.
   */
  response_format?:
    | { type: 'text' }
    | { type: 'json_object' }
    | { type: 'json_schema'; json_schema: { name?: string; description?: string; schema: object | boolean; strict?: boolean } };
  /** wick's own addition: the answer follows a Lark grammar (llguidance's dialect) or matches a
   *  regular expression. Not together with `response_format`. */
  grammar?: { type: 'lark'; grammar: string } | { type: 'regex'; pattern: string };
}

export interface Usage { prompt_tokens: number; completion_tokens: number; total_tokens: number }

/** wick's own addition (as llama.cpp's server does): where the time went. */
export interface Timings {
  prompt_n: number;        // prompt tokens run (the rest were reused from the cache)
  cached_n: number;        // prompt tokens reused from the previous request
  prompt_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_second: number;
}

/** wick's own addition: the generated token ids, and for each the top-1/top-2 logit margin it
 *  was sampled from (where it is below ~0.1, another correct engine may pick another token). */
export interface Tokens { ids: number[]; margins: number[] }

/** 'aborted' only in the `partial` of an AbortError: the request's signal fired. 'tool_calls':
 *  a chat answer that ended after calling tools. */
export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'aborted';

/**
 * One token's log-probability, as OpenAI's chat API gives it: `token` is the text the token
 * decodes to on its own (U+FFFD for a token holding part of a character), `bytes` its UTF-8
 * bytes (the raw ones for such a token). Values are the model's own log-softmax, taken before
 * penalties and any grammar's mask.
 */
export interface TokenLogprob { token: string; logprob: number; bytes: number[] }
export interface ChatLogprobEntry extends TokenLogprob {
  /** The `top_logprobs` most likely tokens at this position, most likely first. */
  top_logprobs: TokenLogprob[];
}
/** A chat choice's `logprobs` (null unless the request had `logprobs: true`); streamed, each
 *  chunk's holds the tokens of its own text. */
export interface ChatLogprobs { content: ChatLogprobEntry[]; refusal: null }
/** A legacy completion's `logprobs` (null unless the request had `logprobs: N`). */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  /** Per token, its N most likely alternatives as {text: logprob}. */
  top_logprobs: Record<string, number>[];
  /** Where each token starts in the completion's text: the lengths (UTF-16 units) of the tokens
   *  before it. */
  text_offset: number[];
}

export interface ChatCompletionRequest extends SamplingOptions {
  messages: ChatMessage[];
  stream?: boolean;
  /**
   * Parse special-token text inside message contents as control tokens (default false). Off, a
   * message containing `<|im_end|><|im_start|>system` is tokenized as that text, so what a user
   * types cannot forge roles; the template's own markers are control tokens either way. Raw
   * completions always parse special tokens in their prompt.
   */
  parse_special_tokens?: boolean;
  /** Each generated token's log-probability (choices[0].logprobs.content). */
  logprobs?: boolean;
  /** With logprobs: true, the 0 to 20 most likely tokens at each position (default 0). */
  top_logprobs?: number;
  /** Functions the model may call, rendered through the model's own chat template (a template
   *  without tools gets them in the system message, and answers in a JSON format). */
  tools?: Tool[];
  tool_choice?: ToolChoice;
}
export interface CompletionRequest extends SamplingOptions {
  prompt: string;
  stream?: boolean;
  /** Each generated token's log-probability and its 0 to 20 most likely alternatives (OpenAI's
   *  legacy shape). */
  logprobs?: number;
}

export interface ChatCompletion {
  id: string; object: 'chat.completion'; created: number; model: string;
  choices: [{ index: 0; message: AssistantMessage; logprobs: ChatLogprobs | null; finish_reason: FinishReason }];
  usage: Usage; timings: Timings; tokens: Tokens;
}
/**
 * A streamed piece. The first has `delta: {role: 'assistant', content: ''}`; then each delta
 * carries what the answer gained: `content`, `reasoning_content` (thinking, streamed apart, before
 * the answer), or `tool_calls` (each call whole, with its index). The chunk with a finish_reason
 * carries usage (null with `stream_options.include_usage`, which adds a last chunk of
 * `choices: []` and the usage), timings and token ids.
 */
export interface ChatCompletionChunk {
  id: string; object: 'chat.completion.chunk'; created: number; model: string;
  choices: [{ index: 0; delta: { role?: 'assistant'; content?: string; reasoning_content?: string; tool_calls?: ToolCallDelta[] }; logprobs: ChatLogprobs | null; finish_reason: Exclude<FinishReason, 'aborted'> | null }] | [];
  usage?: Usage | null; timings?: Timings; tokens?: Tokens;
}
export interface Completion {
  id: string; object: 'text_completion'; created: number; model: string;
  choices: [{ index: 0; text: string; logprobs: CompletionLogprobs | null; finish_reason: FinishReason }];
  usage: Usage; timings: Timings; tokens: Tokens;
}
export interface CompletionChunk {
  id: string; object: 'text_completion'; created: number; model: string;
  choices: [{ index: 0; text: string; logprobs: CompletionLogprobs | null; finish_reason: Exclude<FinishReason, 'aborted'> | null }] | [];
  usage?: Usage | null; timings?: Timings; tokens?: Tokens;
}

/** A `fetch` (same signature) that answers OpenAI's HTTP API from an engine, without a network. */
export type WickFetch = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export interface Engine {
  chat: {
    completions: {
      create(req: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
      create(req: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
    };
  };
  completions: {
    create(req: CompletionRequest & { stream: true }): Promise<AsyncIterable<CompletionChunk>>;
    create(req: CompletionRequest & { stream?: false }): Promise<Completion>;
  };
  /**
   * OpenAI's HTTP API answered in the tab, for clients that take a custom fetch (the official
   * `openai` npm client: `new OpenAI({apiKey: 'unused', baseURL: 'https://wick.invalid/v1',
   * fetch: engine.fetch, dangerouslyAllowBrowser: true})`). `POST .../v1/chat/completions` and
   * `.../v1/completions` take the requests above as JSON (`stream: true` answers
   * `text/event-stream`: `data: {chunk}` events, then `data: [DONE]`); `GET .../v1/models` lists
   * the loaded model. Errors are OpenAI's: a status (400 invalid_parameter, context_overflow,
   * chat_template; 404 an unknown path; 405; 409 busy; 503 gpu_lost; 500 otherwise) and
   * `{error: {message, type, param, code}}` (code: wick's kind, `context_length_exceeded` for a
   * prompt too long); an error after a stream started is a `data: {error}` event. `init.signal`
   * aborts as it aborts fetch (the SDK then throws its APIUserAbortError). Never calls the real
   * fetch. Bound: pass it as it is.
   */
  fetch: WickFetch;
  info(): EngineInfo;
  /** Ends the worker and frees its memory; the engine cannot be used afterwards. */
  unload(): Promise<void>;
  /** The model's token ids for `text` (llama.cpp server's /tokenize). `addSpecial` (default
   * true): BOS as the model says; `parseSpecial` (default false): special-token text such as
   * `<|im_start|>` becomes those tokens, else it stays text. */
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): Promise<number[]>;
  /** The text of token ids (/detokenize); special tokens included unless `skipSpecial`. */
  detokenize(ids: number[], options?: { skipSpecial?: boolean }): Promise<string>;
  /** The prompt text the model's chat template makes of OpenAI-shaped messages (tool calls and
   * tool results included) and tools, with the generation prompt unless
   * `addGenerationPrompt: false` (/apply-template): exactly what the model is given. Fails
   * `chat_template` when the model has no usable template. */
  applyTemplate(messages: object[], options?: { tools?: object[]; addGenerationPrompt?: boolean }): Promise<string>;
  /**
   * The `worker` error that ended the engine (a crash, out of memory), or null while it lives.
   * Every request after that fails with the same error: create a new engine.
   */
  readonly lost: WickError | null;
  /** 'lost' fires once when the engine dies, whatever request was running (event.detail: the WickError). */
  addEventListener(type: 'lost', listener: (event: CustomEvent<WickError>) => void, options?: AddEventListenerOptions | boolean): void;
  removeEventListener(type: 'lost', listener: (event: CustomEvent<WickError>) => void, options?: EventListenerOptions | boolean): void;
}

export function createEngine(options: CreateEngineOptions): Promise<Engine>;
/** `engine.fetch` for any object with wick's `chat.completions`, `completions` and `info()`. */
export function createFetch(engine: Pick<Engine, 'chat' | 'completions' | 'info'>): WickFetch;

export interface StoredModel {
  id: string;
  /** File name shown to people. */
  name: string;
  size: number;
  sha256: string;
  /** The URL it came from, or "file:<name>" for a local file. */
  source: string;
  storedAt: string; // ISO date
  /**
   * Present when a load found that this version of wick cannot run the model (an
   * `unsupported_model` error: an architecture, quantization or feature it lacks). `reason` is
   * that error's message, `at` when it was recorded (ISO date). The model stays stored (a later
   * version may run it; deleteModel frees its space), and a load that runs it clears this.
   */
  unsupported?: { reason: string; at: string };
}
export interface StorageEstimate { usage: number; quota: number; persisted: boolean }

/** The complete models in browser storage, sorted by name; those this version cannot run
 *  included, with `unsupported` saying why. */
export function listModels(): Promise<StoredModel[]>;
export function deleteModel(id: string): Promise<void>;
export function storageEstimate(): Promise<StorageEstimate>;
/** Asks the browser to keep stored models under storage pressure (call from the page). */
export function requestPersistentStorage(): Promise<boolean>;
/** The id a source is stored under (its file name, sanitized). */
export function modelIdFor(source: ModelSource): string;
