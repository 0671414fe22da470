// Typed errors shared by the page, the worker and embedders. An error crosses the worker
// boundary as data ({kind, message}) and becomes a WickError again on the other side.

/** Every kind an embedder may see (see wick.d.ts for what each means). tests/error_kinds.rs
 *  holds this list, wick.d.ts's ErrorKind and the kinds the wasm engine emits to each other. */
export const ERROR_KINDS = Object.freeze([
  'download',          // the model source failed: HTTP status, network, CORS, a short body
  'integrity',         // the bytes are not what was promised (SHA-256 mismatch, size mismatch)
  'quota',             // browser storage cannot hold the model
  'storage',           // OPFS itself failed (not available, a file locked by another tab)
  'invalid_model',     // not a GGUF file, truncated, corrupt, inconsistent metadata
  'unsupported_model', // an architecture or quantization wick does not run
  'tokenizer',
  'chat_template',     // no template for chat, or the template failed to render
  'context_overflow',  // the prompt does not fit the context
  'invalid_parameter', // a request option out of range
  'aborted',           // the caller's AbortSignal fired
  'unsupported_browser', // no WebAssembly SIMD, no OPFS, no module workers
  'gpu_unavailable',   // backend 'webgpu' asked for, but no usable WebGPU adapter
  'gpu_lost',          // the GPU failed while generating; the engine moved to the CPU: send again
  'worker',            // the worker died (out of memory, a crash): create a new engine
  'busy',              // the engine was still running a step (a call not awaited first)
  'io',
]);

export class WickError extends Error {
  /** @param {string} kind one of ERROR_KINDS  @param {string} message what to do about it */
  constructor(kind, message, details) {
    super(message);
    // An abort is named as `fetch` names its own, so `err.name === 'AbortError'` checks (and
    // the OpenAI SDK's) recognise it; `kind` says 'aborted' either way.
    this.name = kind === 'aborted' ? 'AbortError' : 'WickError';
    this.kind = kind;
    if (details !== undefined) this.details = details;
  }

  toJSON() {
    return { kind: this.kind, message: this.message, details: this.details };
  }

  /** Rebuilds an error sent as data (or wraps any thrown value). */
  static from(value, fallbackKind = 'worker') {
    if (value instanceof WickError) return value;
    if (value && typeof value === 'object' && typeof value.kind === 'string') {
      return new WickError(value.kind, String(value.message ?? value.kind), value.details);
    }
    if (value && value.name === 'AbortError') return new WickError('aborted', 'the request was aborted');
    if (value && value.name === 'QuotaExceededError') {
      return new WickError('quota', 'browser storage is full: delete stored models or free disk space');
    }
    return new WickError(fallbackKind, String(value?.message ?? value));
  }
}
