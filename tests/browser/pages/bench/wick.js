// wick through its public API (/wick.js), the model from OPFS after the first visit.
import { createEngine } from '/wick.js';
import { timeStream } from './common.js';

export async function open({ model, threads, context, backend = 'cpu', relaxedSimd = true }) {
  const engine = await createEngine({ model: `/models/${model}`, threads, context, backend, relaxedSimd });
  const info = engine.info();
  return {
    info: { threads: info.threads, build: info.backend === 'webgpu' ? `webgpu:${info.gpu?.name}` : `${info.build} ${info.simd}` },
    async count(prompt) {
      return (await engine.completions.create({ prompt, max_tokens: 1, temperature: 0 })).usage.prompt_tokens;
    },
    async generate(prompt, n) {
      const t0 = performance.now();
      const stream = await engine.completions.create({ prompt, max_tokens: n, temperature: 0, ignore_eos: true, stream: true });
      const r = await timeStream(t0, stream, (c) => c.choices[0].text);
      const { usage, timings } = r.last;
      return {
        ...r,
        promptN: usage.prompt_tokens - timings.cached_n,
        cachedN: timings.cached_n,
        genN: usage.completion_tokens,
        reported: { prefill: timings.prompt_per_second, decode: timings.predicted_per_second },
      };
    },
    close: () => engine.unload(),
  };
}
