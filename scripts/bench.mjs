// Speed in the browser, side by side: wick and wllama (3.x and 2.x, from node_modules) in the same
// headless Chromium, on the same GGUF files and thread counts, a 128-token prompt and 128
// generated tokens (greedy, EOS ignored), engines alternating run by run. Each run is a fresh page
// that loads the model from the engine's browser storage (a warm load) and generates once; the
// first visit of each engine and model downloads and stores the model and is not measured.
// Prints every run, then per engine, model and thread count the medians and wick's ratios
// against the faster wllama line, with the load average. A benchmark, never a test.
//
// Usage: node scripts/bench.mjs [--reps N] [--engines wick,wllama3,wllama2,wick-simd128,wick-webgpu]
//                               [--models smollm2,gemma]
//                               [--threads 1,2] [--native]
// --models matches parts of the file names in models/; --native runs scripts/bench-native instead
// (wick bench against llama.cpp, natively).
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { launchBrowser, MODELS_DIR, REPO, startServer } from '../tests/browser/harness.mjs';
import { resolveInside, sendFile } from './serve.mjs';

const ENGINES = ['wick', 'wllama3', 'wllama2'];
// Opt-in: wick on WebGPU (Chromium then starts with --enable-unsafe-webgpu; headless it gets only
// the SwiftShader software adapter, so its numbers mean something on a machine with a GPU only).
// wick-simd128: wick with relaxed SIMD turned off (what the relaxed-SIMD build adds).
const OPTIONAL_ENGINES = ['wick-simd128', 'wick-webgpu'];
const MODELS = ['SmolLM2-135M-Instruct.Q4_1.gguf', 'gemma-3-270m-q4_k_m.gguf'];
const PROMPT_TOKENS = 128;
const GEN_TOKENS = 128;
// The prompt: the longest run of words from this text (repeated) that is PROMPT_TOKENS tokens
// long, BOS included where the model adds one, found with the first engine's tokenizer.
const TEXT = 'The old lighthouse keeper climbed the narrow stairs every evening at dusk, carrying a '
  + 'lamp, a notebook and a thermos of strong tea. From the gallery he could see the fishing boats '
  + 'coming home across the bay, the gulls following them in loose spirals, and the lights of the '
  + 'town appearing one by one along the harbour wall. He wrote down the wind, the height of the '
  + 'waves and the colour of the sky, as his father had done before him, although nobody had asked '
  + 'to read the notebooks for many years. On clear nights he counted the ships that passed far out '
  + 'on the shipping lane, and on foggy nights he listened to the horn and to the water below. ';

// Each run generates from this first (8 tokens, not measured), as llama.cpp's own benchmarks
// warm up: a first generation pays for one-off allocations and code tier-up.
const WARMUP = 'Write a short note about the weather:';

function parseArgs(argv) {
  const opts = { reps: 3, engines: ENGINES, models: MODELS, threads: [1, 2], native: false };
  const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
      return argv[++i];
    };
    if (arg === '--reps') opts.reps = Number(value());
    else if (arg === '--engines') opts.engines = list(value());
    else if (arg === '--models') {
      const wanted = list(value()).map((s) => s.toLowerCase());
      opts.models = MODELS.filter((m) => wanted.some((w) => m.toLowerCase().includes(w)));
    } else if (arg === '--threads') opts.threads = list(value()).map(Number);
    else if (arg === '--native') opts.native = true;
    else throw new Error(`unknown argument ${arg}`);
  }
  if (!Number.isInteger(opts.reps) || opts.reps < 1) throw new Error('--reps must be a positive integer');
  const unknown = opts.engines.filter((e) => !ENGINES.includes(e) && !OPTIONAL_ENGINES.includes(e));
  if (unknown.length || !opts.engines.length) throw new Error(`--engines: one or more of ${[...ENGINES, ...OPTIONAL_ENGINES].join(', ')}`);
  if (!opts.models.length) throw new Error(`--models matches none of ${MODELS.join(', ')}`);
  if (!opts.threads.length || opts.threads.some((t) => !Number.isInteger(t) || t < 1)) throw new Error('--threads: positive integers');
  return opts;
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fixed = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const load1 = () => os.loadavg()[0];
/** Prompt tokens run, and "+N" reused from the cache (wick keeps the warm-up's BOS). */
const promptText = (r) => `${r.promptN}${r.cachedN ? `+${r.cachedN}` : ''}`;

/** /bench/wllamaN/ is that package's esm/ in node_modules, /bench/models/<engine>/ is models/. */
async function benchRoutes(req, res) {
  const urlPath = req.url.split('?')[0];
  const m = /^\/bench\/(wllama[23]|models\/[a-z0-9]+)\/(.+)$/.exec(urlPath);
  if (!m) return false;
  const isModel = m[1].startsWith('models/');
  const file = resolveInside(isModel ? MODELS_DIR : path.join(REPO, 'node_modules', m[1], 'esm'), m[2]);
  if (!file) res.writeHead(400).end();
  else await sendFile(req, res, file, { 'Cache-Control': isModel ? 'no-store' : 'no-cache' });
  return true;
}

let server = null;
const pageUrl = (engine, model, threads) =>
  `${server.url}test/bench/page.html?engine=${engine}&model=${encodeURIComponent(model)}&threads=${threads}`;

/** Opens `engine` in a fresh page, runs `body(engine)` in it, and closes both. */
async function withEngine(browser, engine, model, threads, body, arg) {
  const page = await browser.newPage(pageUrl(engine, model, threads));
  try {
    return await page.evaluate(body, arg);
  } finally {
    await page.close();
  }
}

/** The first visit: stores the model; the first engine finds the prompt, the others count it. */
function firstVisit(browser, engine, model, prompt) {
  return withEngine(browser, engine, model, 1, async ({ text, target, given }) => {
    const { engine: e } = await window.opened;
    try {
      if (given) return { prompt: given, n: await e.count(given) };
      const words = text.split(' ');
      while (words.length < target * 2) words.push(...text.split(' '));
      const count = (k) => e.count(words.slice(0, k).join(' '));
      let lo = 1;
      let hi = target * 2; // count(lo) < target <= count(hi): every word is a token or more
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if ((await count(mid)) < target) lo = mid;
        else hi = mid;
      }
      const found = words.slice(0, (await count(hi)) === target ? hi : lo).join(' ');
      return { prompt: found, n: await e.count(found) };
    } finally {
      await e.close();
    }
  }, { text: TEXT, target: PROMPT_TOKENS, given: prompt });
}

/** One measured run: warm load, then one generation. */
async function measure(browser, engine, model, threads, prompt) {
  const before = server.requests.length;
  const r = await withEngine(browser, engine, model, threads, async ({ prompt: p, n, warmup }) => {
    const { engine: e, readyMs } = await window.opened;
    try {
      await e.generate(warmup, 8);
      return { readyMs, info: e.info, ...(await e.generate(p, n)) };
    } finally {
      await e.close();
    }
  }, { prompt, n: GEN_TOKENS, warmup: WARMUP });
  const modelRequests = server.requests.slice(before).filter((q) => q.path.split('?')[0].endsWith('.gguf'))
    .map((q) => `${q.method} ${q.path}${q.range ? ` ${q.range}` : ''}`);
  return {
    ...r,
    modelRequests,
    load: load1(),
    prefill: (r.promptN / r.prefillMs) * 1000,
    decode: ((r.genN - 1) / r.decodeMs) * 1000,
  };
}

function printSummary(runs, opts) {
  console.log(`\nmedians of ${opts.reps} run(s), each after an unmeasured warm-up generation. prefill: prompt tokens run`
    + ` / (request -> first generated token); decode: (generated - 1) / (first -> last token); both timed in the page.`
    + `\nready: navigation -> ready to generate, the model in the engine's browser storage. engine's own: its reported tok/s.`);
  const head = `${'model'.padEnd(32)} ${'thr'.padStart(3)}  ${'engine'.padEnd(8)} ${'runs as'.padEnd(10)} ${'prompt'.padStart(6)} `
    + `${'gen'.padStart(4)} ${'ready ms'.padStart(8)} ${'prefill t/s'.padStart(11)} ${'decode t/s'.padStart(10)}   engine's own (pp / tg)`;
  console.log(head);
  for (const model of opts.models) {
    for (const threads of opts.threads) {
      const rows = {};
      for (const engine of opts.engines) {
        const rs = runs.filter((r) => r.engine === engine && r.model === model && r.threads === threads);
        if (!rs.length) continue;
        const own = rs.filter((r) => r.reported);
        rows[engine] = {
          ready: median(rs.map((r) => r.readyMs)),
          prefill: median(rs.map((r) => r.prefill)),
          decode: median(rs.map((r) => r.decode)),
        };
        const as = `${rs[0].info.threads} ${rs[0].info.build}`;
        const prompts = [...new Set(rs.map(promptText))].join('/');
        const gens = [...new Set(rs.map((r) => r.genN))].join('/');
        const ownText = own.length ? `${fixed(median(own.map((r) => r.reported.prefill)))} / ${fixed(median(own.map((r) => r.reported.decode)))}` : '';
        console.log(`${model.padEnd(32)} ${String(threads).padStart(3)}  ${engine.padEnd(8)} ${as.padEnd(10)} ${prompts.padStart(6)} `
          + `${gens.padStart(4)} ${fixed(rows[engine].ready, 0).padStart(8)} ${fixed(rows[engine].prefill).padStart(11)} `
          + `${fixed(rows[engine].decode).padStart(10)}   ${ownText}`);
      }
      const w = rows.wick;
      const others = ['wllama3', 'wllama2'].filter((e) => rows[e]);
      if (w && others.length) {
        const best = (key, better) => others.reduce((a, b) => (better(rows[b][key], rows[a][key]) ? b : a));
        const pp = best('prefill', (a, b) => a > b);
        const tg = best('decode', (a, b) => a > b);
        const rd = best('ready', (a, b) => a < b);
        console.log(`${''.padEnd(32)} ${''.padStart(3)}  wick speed vs the faster wllama (>1: wick faster): `
          + `ready ${fixed(rows[rd].ready / w.ready, 2)}x (${rd}), prefill ${fixed(w.prefill / rows[pp].prefill, 2)}x (${pp}), `
          + `decode ${fixed(w.decode / rows[tg].decode, 2)}x (${tg})`);
      }
    }
  }
  const loads = runs.map((r) => r.load).sort((a, b) => a - b);
  console.log(`\nload average (1 min) at each run: min ${fixed(loads[0], 2)}, median ${fixed(median(loads), 2)}, `
    + `max ${fixed(loads.at(-1), 2)} (${os.cpus().length} CPUs; the runs' own threads count in it)`);
  const asked = [...new Set(runs.flatMap((r) => r.modelRequests.map((q) => `${r.engine}: ${q}`)))];
  if (asked.length) console.log(`requests for model files during the warm runs:\n  ${asked.join('\n  ')}`);
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`bench: ${err.message}`);
    process.exit(2);
  }
  if (opts.native) {
    const run = spawnSync(path.join(REPO, 'scripts/bench-native'), { stdio: 'inherit', env: { ...process.env, REPS: String(opts.reps) } });
    process.exit(run.status ?? 1);
  }
  server = await startServer({ extraRoutes: benchRoutes });
  const browser = await launchBrowser({ webgpu: opts.engines.includes('wick-webgpu') });
  const runs = [];
  try {
    for (const model of opts.models) {
      let prompt = null;
      for (const engine of opts.engines) {
        const first = await firstVisit(browser, engine, model, prompt);
        prompt ??= first.prompt;
        console.log(`${model}: ${engine} stored it; the prompt is ${first.n} tokens for ${engine}`
          + `${first.n === PROMPT_TOKENS ? '' : ` (not ${PROMPT_TOKENS})`}`);
      }
      for (const threads of opts.threads) {
        for (let rep = 1; rep <= opts.reps; rep++) {
          for (const engine of opts.engines) {
            const r = { engine, model, threads, ...(await measure(browser, engine, model, threads, prompt)) };
            runs.push(r);
            const own = r.reported ? `; engine's own ${fixed(r.reported.prefill)} / ${fixed(r.reported.decode)}` : '';
            console.log(`${model} t${threads} ${engine.padEnd(7)} rep ${rep}: ready ${fixed(r.readyMs, 0)} ms, `
              + `prefill ${fixed(r.prefill)} tok/s (${promptText(r)} tokens), decode ${fixed(r.decode)} tok/s (${r.genN} tokens)${own}; `
              + `${r.info.threads} ${r.info.build}; load ${fixed(r.load, 2)}; "${r.text.slice(0, 40).replace(/\s+/g, ' ')}..."`);
          }
        }
      }
    }
  } finally {
    await browser.close();
    await server.close();
  }
  printSummary(runs, opts);
}

await main();
