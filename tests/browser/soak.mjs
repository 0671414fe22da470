// The soak drill (issue 23): many requests on engines with random aborts (before the start,
// during prefill, mid-answer, a stream left early), prompts longer than the context, bad
// parameters and model switches, in headless Chromium through the public API. Within each
// engine's life the wasm memory and the worker's JS heap must not grow after a warm-up, nor the
// page's JS heap over the whole run; the engine must answer a greedy request exactly as at its
// start, and never be lost. soak.test.mjs runs a CI-sized soak; scripts/drill the long one.
import assert from 'node:assert/strict';
import { SMOLLM2, launchBrowser, startServer } from './harness.mjs';

const GEMMA = 'gemma-3-270m-q4_k_m.gguf';
const CONTEXT = 256;
// What may grow after the warm-up: wasm memory not at all (only the allocator grows it, so any
// growth is a leak or a cache that grows with use); JS heaps by a little garbage the collector
// has not reached.
const HEAP_SLACK = 2 << 20;

/** A small deterministic PRNG (xorshift32), so a failing soak can be replayed by its seed. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * A DevTools view of the engine workers' own heaps: Playwright opens no CDP session to a worker,
 * so the page's session auto-attaches to its workers (unflattened) and relays messages to them.
 */
async function workerHeaps(cdp) {
  const workers = [];
  const replies = new Map();
  let id = 0;
  cdp.on('Target.attachedToTarget', ({ sessionId, targetInfo }) => {
    if (targetInfo.type === 'worker' && targetInfo.url.endsWith('/worker.js')) workers.push(sessionId);
  });
  // An unloaded engine's worker goes away: never ask it again.
  cdp.on('Target.detachedFromTarget', ({ sessionId }) => {
    const i = workers.indexOf(sessionId);
    if (i >= 0) workers.splice(i, 1);
  });
  cdp.on('Target.receivedMessageFromTarget', ({ message }) => {
    const reply = JSON.parse(message);
    replies.get(reply.id)?.(reply);
    replies.delete(reply.id);
  });
  await cdp.send('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  // A reply that never comes fails the soak instead of hanging it.
  const send = (sessionId, method) => new Promise((resolve, reject) => {
    const n = ++id;
    const timer = setTimeout(() => reject(new Error(`${method}: no answer from the engine worker in 30 s`)), 30_000);
    replies.set(n, (reply) => {
      clearTimeout(timer);
      if (reply.error) reject(new Error(`${method}: ${reply.error.message}`));
      else resolve(reply.result);
    });
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: n, method }) })
      .catch((err) => { clearTimeout(timer); reject(err); });
  });
  /** The newest engine worker's JS heap after a collection (its wasm memory is not in it). */
  return async () => {
    const session = workers.at(-1);
    if (!session) throw new Error('no engine worker is attached to DevTools');
    await send(session, 'HeapProfiler.collectGarbage');
    return (await send(session, 'Runtime.getHeapUsage')).usedSize;
  };
}

/** Byte counts after a collection: the page's JS heap, the engine worker's, its wasm memory. */
async function memory(page, cdp, workerHeap) {
  await cdp.send('HeapProfiler.collectGarbage');
  const pageHeap = (await cdp.send('Runtime.getHeapUsage')).usedSize;
  const worker = page.workers().filter((w) => w.url().endsWith('/worker.js')).at(-1);
  const engine = await page.evaluate(() => window.engine.info());
  const flavour = `${engine.build}${engine.simd === 'relaxed-simd' ? '-relaxed' : ''}`;
  const wasm = await worker.evaluate(async (flavour) => {
    // The worker's own module instance: importing it again returns the same module, and its
    // init returns the running instance's exports (the memory among them).
    const mod = await import(`/pkg/${flavour}/wick.js`);
    return (await mod.default()).memory.buffer.byteLength;
  }, flavour);
  return { page: pageHeap, worker: await workerHeap(), wasm };
}

/**
 * Runs `requests` requests, switching between SmolLM2 and Gemma 3 every `switchEvery`; throws
 * (an AssertionError) at the first wrong outcome, leak or lost engine. Resolves to a summary:
 * counts per kind and the memory of each engine's life after its warm-up and at its end.
 */
export async function runSoak({ requests, switchEvery, seed, log = () => {} }) {
  const server = await startServer();
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage(`${server.url}test/api.html`);
    await page.waitForFunction(() => window.ready);
    const cdp = await page.context().newCDPSession(page);
    const workerHeap = await workerHeaps(cdp);
    const random = rng(seed);
    const models = [SMOLLM2, GEMMA];
    let hasTemplate = true;
    const load = async (model) => {
      hasTemplate = await page.evaluate(async ([model, context]) => {
        await window.engine?.unload();
        window.engine = await window.wick.createEngine({ model: `/models/${model}`, context });
        window.engine.addEventListener('lost', (e) => { window.lost = e.detail.message; });
        return window.engine.info().card.has_chat_template;
      }, [model, CONTEXT]);
    };
    // One request of a random kind; every outcome is data, and each kind has the outcome it must.
    const kinds = ['complete', 'chat', 'abort-early', 'abort-prefill', 'abort-stream', 'leave-stream', 'overflow', 'bad-parameter'];
    const one = (kind, r) => page.evaluate(async ([kind, r, context]) => {
      const engine = window.engine;
      const prompt = `Item ${Math.floor(r * 1000)}: the quick brown fox`;
      const ctl = new AbortController();
      try {
        switch (kind) {
          case 'complete': {
            const out = await engine.completions.create({ prompt, max_tokens: 1 + Math.floor(r * 8), temperature: r });
            return { finish: out.choices[0].finish_reason };
          }
          case 'chat': {
            const out = await engine.chat.completions.create({ messages: [{ role: 'user', content: prompt }], max_tokens: 4, seed: Math.floor(r * 1e6) });
            return { finish: out.choices[0].finish_reason };
          }
          case 'abort-early': {
            ctl.abort();
            await engine.completions.create({ prompt, signal: ctl.signal });
            return { finish: 'not aborted' };
          }
          case 'abort-prefill': {
            // A prompt of most of the context, aborted after a random few milliseconds.
            const long = 'word '.repeat(Math.floor(context * 0.8));
            setTimeout(() => ctl.abort(), Math.floor(r * 30));
            const out = await engine.completions.create({ prompt: long, max_tokens: 8, signal: ctl.signal });
            return { finish: out.choices[0].finish_reason };
          }
          case 'abort-stream': {
            const stream = await engine.completions.create({ prompt, stream: true, max_tokens: 64, ignore_eos: true, signal: ctl.signal });
            let n = 0;
            let finish = null;
            for await (const c of stream) {
              if (++n === 2 + Math.floor(r * 4)) ctl.abort();
              finish = c.choices[0].finish_reason ?? finish;
            }
            return { finish };
          }
          case 'leave-stream': {
            const stream = await engine.chat.completions.create({ messages: [{ role: 'user', content: prompt }], stream: true, max_tokens: 64 });
            for await (const c of stream) if (c.choices[0].delta.content) break; // the iterator's return aborts
            return { finish: 'left' };
          }
          case 'overflow': {
            await engine.completions.create({ prompt: 'word '.repeat(context * 2), max_tokens: 4 });
            return { finish: 'no overflow' };
          }
          case 'bad-parameter': {
            const bad = [{ temperature: -1 }, { max_tokens: 0 }, { top_p: NaN }, { stop: [''] }, { ignore_eos: 'yes' }][Math.floor(r * 5)];
            await engine.completions.create({ prompt, ...bad });
            return { finish: 'accepted' };
          }
        }
      } catch (e) {
        return { error: e.kind ?? String(e) };
      }
      return { finish: 'unknown kind' };
    }, [kind, r, CONTEXT]);
    // Gemma 3 270M is a base model without a chat template: chat requests fail there, typed.
    const chatted = (o) => (hasTemplate ? ['stop', 'length', 'left'].includes(o.finish) : o.error === 'chat_template');
    const expected = {
      complete: (o) => ['stop', 'length'].includes(o.finish),
      chat: chatted,
      'abort-early': (o) => o.error === 'aborted',
      // The abort may land before the request ends (an `aborted` error: an AbortError, as
      // fetch's) or (rarely) after it ended.
      'abort-prefill': (o) => o.error === 'aborted' || ['stop', 'length'].includes(o.finish),
      'abort-stream': (o) => o.error === 'aborted' || ['stop', 'length'].includes(o.finish),
      'leave-stream': chatted,
      overflow: (o) => o.error === 'context_overflow',
      'bad-parameter': (o) => o.error === 'invalid_parameter',
    };


    const greedy = () => page.evaluate(async () => (await window.engine.completions.create({
      prompt: 'The capital of France is', max_tokens: 8, temperature: 0 })).tokens.ids);
    const counts = Object.fromEntries(kinds.map((k) => [k, 0]));
    const lives = [];
    let firstPageHeap = null;
    for (let start = 0, n = 0; start < requests; start += switchEvery, n++) {
      const model = models[n % models.length];
      await load(model);
      const reference = await greedy();
      // The KV cache and the workspace grow with the positions in use, up to the context: one
      // request that fills it makes that growth part of the warm-up, not a leak after it.
      const filled = await page.evaluate(async (context) => (await window.engine.completions.create({
        prompt: 'word '.repeat(Math.floor(context * 0.75)), max_tokens: context, ignore_eos: true, temperature: 0.5,
      })).choices[0].finish_reason, CONTEXT);
      assert.equal(filled, 'length', `${model}: a request that fills the context`);
      const length = Math.min(switchEvery, requests - start);
      // Every kind twice in the warm-up (in order first); then at random.
      const warmUp = Math.min(length, kinds.length * 2);
      const life = { model, requests: length };
      for (let i = 0; i < length; i++) {
        const kind = i < kinds.length ? kinds[i] : kinds[Math.floor(random() * kinds.length)];
        const outcome = await one(kind, random());
        assert.ok(expected[kind](outcome), `request ${start + i} (${kind}, ${model}): ${JSON.stringify(outcome)}`);
        counts[kind]++;
        if (i + 1 === warmUp) life.warm = await memory(page, cdp, workerHeap);
      }
      assert.equal(await page.evaluate(() => window.lost ?? null), null, 'the engine was lost');
      assert.deepEqual(await greedy(), reference, `${model}: greedy ids at the end of its life equal those at its start`);
      life.end = await memory(page, cdp, workerHeap);
      log(`soak: ${model}, requests ${start}-${start + length - 1}: after warm-up ${JSON.stringify(life.warm)}, at the end ${JSON.stringify(life.end)}`);
      assert.ok(life.end.wasm <= life.warm.wasm, `${model}: wasm memory grew from ${life.warm.wasm} to ${life.end.wasm}`);
      assert.ok(life.end.worker <= life.warm.worker + HEAP_SLACK, `${model}: the worker's JS heap grew from ${life.warm.worker} to ${life.end.worker}`);
      firstPageHeap ??= life.warm.page;
      assert.ok(life.end.page <= firstPageHeap + HEAP_SLACK, `the page's JS heap grew from ${firstPageHeap} to ${life.end.page}`);
      lives.push(life);
    }
    return { requests, seed, counts, lives };
  } finally {
    await browser.close();
    await server.close();
  }
}
