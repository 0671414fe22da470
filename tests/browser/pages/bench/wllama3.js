// wllama 3.x (llama.cpp's server-context in one wasm64 build), served from node_modules.
import { Wllama } from '/bench/wllama3/index.js';
import { modelUrl, quietLogger, timeStream } from './common.js';

export async function open({ model, threads, context }) {
  const w = new Wllama({ default: '/bench/wllama3/wasm/wllama.wasm' }, { logger: quietLogger, suppressNativeLog: true });
  // n_gpu_layers 0: the CPU (wasm) path, as wick's; its WebGPU backend would start otherwise.
  await w.loadModelFromUrl(modelUrl('wllama3', model), { n_threads: threads, n_ctx: context, n_gpu_layers: 0 });
  return {
    info: { threads: w.getNumThreads(), build: w.isMultithread() ? 'multi' : 'single' },
    async count(prompt) {
      return (await w.createCompletion({ prompt, max_tokens: 1, temperature: 0, cache_prompt: false })).usage.prompt_tokens;
    },
    async generate(prompt, n) {
      const t0 = performance.now();
      const stream = await w.createCompletion({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, cache_prompt: false, stream: true });
      const r = await timeStream(t0, stream, (c) => c.choices[0]?.text);
      const t = r.last.timings;
      return {
        ...r,
        promptN: t?.prompt_n,
        cachedN: t?.cache_n,
        genN: t?.predicted_n,
        // llama.cpp's own timings (llama-server's t_prompt_processing / t_token_generation).
        reported: t && { prefill: t.prompt_per_second, decode: t.predicted_per_second },
      };
    },
    close: () => w.exit(),
  };
}
