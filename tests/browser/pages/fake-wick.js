// A stand-in for www/wick.js with the same exports, for tests/browser/page-states.test.mjs: the
// real page (index.html, app/*) runs against it without a model or a wasm build. An engine streams
// `window.fakeWick.answer` a few characters at a time (after `window.fakeWick.reasoning` as
// `delta.reasoning_content`, when set, as a thinking model streams); every request is kept in
// `window.fakeWick.requests`; `window.fakeWick.kill()` makes its worker
// die as a crash would (pending requests fail with a `worker` error, then `lost`), and an abort
// is answered only after `abortDelayMs`, as a worker busy in a step answers it.
import { WickError } from '/errors.js';

export { WickError };

const control = {
  answer: 'Hello! Here is [the bank](https://evil.example/login) you asked about.',
  reasoning: '',
  stepMs: 40,
  requests: [],
  card: {},
  abortDelayMs: 400,
  created: 0,
  engines: [],
  kill() {
    for (const engine of control.engines) engine.die(new WickError('worker', 'the wick worker failed: out of memory'));
  },
};
window.fakeWick = control;

export const listModels = async () => [];
export const deleteModel = async () => {};
export const storageEstimate = async () => null;
export const requestPersistentStorage = async () => false;
export const modelIdFor = (source) => String(source?.url ?? source);

class FakeEngine extends EventTarget {
  constructor() {
    super();
    this.pending = new Set();
    this.lost = null;
    this.chat = { completions: { create: (req) => this.#create(req) } };
    this.completions = { create: (req) => this.#create(req) };
  }

  info() {
    return {
      modelId: 'fake', backend: 'cpu', build: 'simd', threads: 1, context: 2048, loadMs: 5, crossOriginIsolated: true,
      card: { name: 'Fake', architecture: 'llama', has_chat_template: true, chat_template_error: null, ...control.card },
    };
  }

  async unload() {
    this.lost ??= new WickError('worker', 'the engine was unloaded');
  }

  die(error) {
    if (this.lost) return;
    this.lost = error;
    for (const fail of this.pending) fail(error);
    this.pending.clear();
    this.dispatchEvent(new CustomEvent('lost', { detail: error }));
  }

  async #create(req) {
    if (this.lost) throw this.lost;
    control.requests.push(JSON.parse(JSON.stringify({ ...req, signal: undefined })));
    const engine = this;
    return {
      async *[Symbol.asyncIterator]() {
        let fail;
        const dead = new Promise((_, reject) => {
          fail = reject;
          engine.pending.add(reject);
        });
        dead.catch(() => {});
        const sleep = (ms) => Promise.race([new Promise((r) => setTimeout(r, ms)), dead]);
        const text = control.answer;
        for (let i = 0; i < control.reasoning.length; i += 3) {
          await sleep(control.stepMs);
          yield { choices: [{ delta: { reasoning_content: control.reasoning.slice(i, i + 3) }, text: '', finish_reason: null }] };
        }
        for (let i = 0; i < text.length; i += 3) {
          if (req.signal?.aborted) {
            await sleep(control.abortDelayMs);
            engine.pending.delete(fail);
            // As wick.js: an aborted stream throws an AbortError carrying the partial result.
            const e = new WickError('aborted', 'the request was aborted');
            e.partial = { choices: [{ message: { role: 'assistant', content: text.slice(0, i) }, text: text.slice(0, i), finish_reason: 'aborted' }], usage: null, timings: null };
            throw e;
          }
          await sleep(control.stepMs);
          yield { choices: [{ delta: { content: text.slice(i, i + 3) }, text: text.slice(i, i + 3), finish_reason: null }] };
        }
        engine.pending.delete(fail);
        yield { choices: [{ delta: {}, text: '', finish_reason: 'stop' }] };
      },
    };
  }
}

export async function createEngine(options = {}) {
  control.created++;
  options.onProgress?.({ phase: 'load', loaded: 1, total: 1 });
  await new Promise((r) => setTimeout(r, 30));
  const engine = new FakeEngine();
  control.engines.push(engine);
  return engine;
}
