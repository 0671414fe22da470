// wllama 2.x (its own llama.cpp binding), from node_modules: 2.3.7, the last release with wasm32
// builds (single- and multi-thread; 2.4.0 went to memory64 as 3.x did).
// Its createCompletion stops at end-of-generation tokens, so generate() runs the same loop as
// createCompletion does (tokenize, decode the prompt, then sample / accept / decode per token)
// without that stop.
import { Wllama } from '/bench/wllama2/index.js';
import { modelUrl, quietLogger } from './common.js';

export async function open({ model, threads, context }) {
  const w = new Wllama({
    'single-thread/wllama.wasm': '/bench/wllama2/single-thread/wllama.wasm',
    'multi-thread/wllama.wasm': '/bench/wllama2/multi-thread/wllama.wasm',
  }, { logger: quietLogger, suppressNativeLog: true });
  await w.loadModelFromUrl(modelUrl('wllama2', model), { n_threads: threads, n_ctx: context });
  const tokenize = async (prompt) => {
    const ids = await w.tokenize(prompt, true);
    if (w.mustAddBosToken() && ids[0] !== w.getBOS()) ids.unshift(w.getBOS());
    return ids;
  };
  return {
    info: { threads: w.getNumThreads(), build: w.isMultithread() ? 'multi' : 'single' },
    count: async (prompt) => (await tokenize(prompt)).length,
    async generate(prompt, n) {
      const t0 = performance.now();
      await w.samplingInit({ temp: 0 });
      const ids = await tokenize(prompt);
      await w.kvClear();
      await w.samplingAccept(ids);
      await w.decode(ids, {});
      let tok = await w.samplingSample();
      const first = performance.now();
      const out = [tok.piece];
      for (let i = 1; i < n; i++) {
        await w.samplingAccept([tok.token]);
        await w.decode([tok.token], {});
        tok = await w.samplingSample();
        out.push(tok.piece);
      }
      const end = performance.now();
      const bytes = new Uint8Array(out.reduce((s, p) => s + p.length, 0));
      out.reduce((at, p) => (bytes.set(p, at), at + p.length), 0);
      return { promptN: ids.length, cachedN: 0, genN: out.length, prefillMs: first - t0, decodeMs: end - first, text: new TextDecoder().decode(bytes) };
    },
    close: () => w.exit(),
  };
}
