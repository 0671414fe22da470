// Warm start in the browser: how long a second visit takes from navigation to "ready to
// generate", for each model already in OPFS. Headless Chromium, the threads build (the page is
// cross-origin isolated), the public API page. Prints each run, the medians and the load average.
// A benchmark, never a test. Usage: node scripts/bench-load.mjs [--reps N]
import os from 'node:os';
import { launchBrowser, startServer } from '../tests/browser/harness.mjs';

const reps = Number(process.argv[process.argv.indexOf('--reps') + 1]) || 7;
const MODELS = ['SmolLM2-135M-Instruct.Q4_1.gguf', 'gemma-3-270m-q4_k_m.gguf'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const server = await startServer();
const browser = await launchBrowser();
try {
  const rows = [];
  for (const model of MODELS) {
    // A first visit downloads and stores the model; it is not measured.
    const first = await browser.newPage(`${server.url}test/api.html`);
    await first.waitForFunction(() => window.ready);
    await first.evaluate(async (m) => (await window.wick.createEngine({ model: `/models/${m}` })).unload(), model);
    await first.close();
    const runs = [];
    for (let i = 0; i < reps; i++) {
      const page = await browser.newPage(`${server.url}test/api.html`);
      const r = await page.evaluate(async (m) => {
        while (!window.wick) await new Promise((res) => setTimeout(res, 1));
        const engine = await window.wick.createEngine({ model: `/models/${m}` });
        const ready = performance.now(); // since this page's navigation started
        const info = engine.info();
        await engine.unload();
        return { ready, ...info.phases, build: info.build, threads: info.threads };
      }, model);
      runs.push(r);
      console.log(`${model} run ${i + 1}: ready ${r.ready.toFixed(0)} ms after navigation (wasm ${r.wasmMs.toFixed(0)}, read ${r.readMs.toFixed(0)}, engine ${r.engineMs.toFixed(0)}; ${r.build}, ${r.threads} threads)  load ${os.loadavg()[0].toFixed(2)}`);
      await page.close();
    }
    rows.push({ model, ready: median(runs.map((r) => r.ready)), read: median(runs.map((r) => r.readMs)), engine: median(runs.map((r) => r.engineMs)) });
  }
  console.log('\nmedian warm load, navigation to ready:');
  for (const r of rows) console.log(`  ${r.model.padEnd(34)} ${r.ready.toFixed(0).padStart(5)} ms   (read ${r.read.toFixed(0)} ms, engine ${r.engine.toFixed(0)} ms)`);
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
} finally {
  await browser.close();
  await server.close();
}
