// Storage drills: many downloads cut at random (seeded) points, storage faults and several tabs
// on one model, in headless Chromium through tests/browser/pages/storage.html, each retried to
// completion. Every drill counts cases, those that ended with the right model, wrong models
// stored (the number that must stay 0) and bytes fetched again. storage-drill.test.mjs runs a
// CI-sized round; scripts/drill the long one, with a table.
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { MODELS_DIR, SMOLLM2, launchBrowser, startServer } from './harness.mjs';

/** mulberry32: a small seeded generator, so a failing case can be run again. */
export function random(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (list) => list[Math.floor(next() * list.length)] };
}

const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

/** "GGUF" and then seeded bytes: the store checks only the magic and the hash. */
function syntheticModel(size, seed) {
  const bytes = Buffer.alloc(size);
  const rng = random(seed);
  for (let i = 0; i < size; i += 4) bytes.writeUInt32LE((rng.next() * 2 ** 32) >>> 0, i);
  bytes.write('GGUF', 0, 'latin1');
  return bytes;
}

// What a fault does to one response: how many body bytes go out before it strikes.
const FAULTS = ['reset', 'short', 'stall', 'status500', 'long', 'replace'];

/**
 * The drill's file server (/drill/<name>): every served file has versions (a replace fault moves
 * it to the next one: other bytes, same size, new validators) and a plan, the faults its next
 * requests get, in order; then it is served whole, with Range and If-Range (unless the file's
 * server ignores If-Range, as some do). Counts the body bytes it sends per file.
 */
class DrillFiles {
  constructor(makeBytes) {
    this.makeBytes = makeBytes;
    this.files = new Map();
  }

  add(name, { plan = [], ignoresIfRange = false, seed = 0 } = {}) {
    const file = { name, plan, ignoresIfRange, seed, version: 0, sent: 0 };
    this.#setVersion(file, 0);
    this.files.set(name, file);
    return file;
  }

  #setVersion(file, version) {
    file.version = version;
    file.bytes = this.makeBytes(file.seed * 1000 + version);
    file.sha256 = sha256(file.bytes);
    file.etag = `"${file.sha256.slice(0, 16)}"`;
    file.lastModified = new Date(Date.UTC(2025, 0, 1) + (file.seed * 1000 + version) * 1000).toUTCString();
  }

  /** The route: true when it answered. */
  route = (req, res) => {
    const m = /^\/drill\/([^/?]+)/.exec(req.url);
    const file = m && this.files.get(m[1]);
    if (!file) return false;
    const fault = file.plan.shift() ?? null;
    const size = file.bytes.length;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (range && (!ifRange || file.ignoresIfRange || ifRange === file.etag || ifRange === file.lastModified)) start = Number(range[1]);
    if (fault?.kind === 'status500') {
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal server error\n');
      return true;
    }
    if (start >= size) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      res.end();
      return true;
    }
    let body = file.bytes.subarray(start);
    const headers = {
      'Content-Type': 'application/octet-stream',
      'Content-Length': body.length,
      'Accept-Ranges': 'bytes',
      ETag: file.etag,
      'Last-Modified': file.lastModified,
      'Cache-Control': 'no-store',
      ...(start > 0 && { 'Content-Range': `bytes ${start}-${size - 1}/${size}` }),
    };
    if (fault?.kind === 'long') {
      // More body than announced: past Content-Range on a resume, past Content-Length otherwise.
      body = Buffer.concat([body, Buffer.alloc(1 + fault.at % 4096, 0x55)]);
      if (start > 0) headers['Content-Length'] = body.length;
    }
    if (fault?.kind === 'short' || fault?.kind === 'reset' || fault?.kind === 'replace') headers.Connection = 'close';
    res.writeHead(start > 0 ? 206 : 200, headers);
    const cut = fault && fault.kind !== 'long' ? Math.min(fault.at, body.length) : body.length;
    const out = body.subarray(0, cut);
    file.sent += out.length;
    res.write(out, () => {
      if (!fault || fault.kind === 'long') res.end();
      else if (fault.kind === 'short') res.end();
      else if (fault.kind === 'reset' || fault.kind === 'replace') res.socket?.destroy();
      // stall: the connection stays open and silent until the client gives up
    });
    // Replaced while a download of it was cut short (a whole body was not cut: it is that version).
    if (fault?.kind === 'replace' && cut < body.length) this.#setVersion(file, file.version + 1);
    return true;
  };
}

/** The browser side: one storage.html tab (and worker) per `tabs`, sharing one profile's OPFS. */
async function openTabs(browser, server, count) {
  const tabs = [];
  for (let i = 0; i < count; i++) {
    const page = await browser.newPage(`${server.url}test/storage.html`);
    await page.waitForFunction(() => window.ready);
    tabs.push({ page, rpc: (op, args) => page.evaluate(([o, a]) => window.rpc(o, a), [op, args]) });
  }
  return tabs;
}

const row = (drill) => ({ drill, cases: 0, passed: 0, wrong: 0, refetched: 0, attempts: 0, failures: [] });

/** Is the stored `id` exactly `file`'s current bytes, by its manifest and by its bytes on disk? */
async function storedRight(rpc, id, file) {
  const { value: model } = await rpc('stored', { id });
  if (!model) return { stored: false };
  const onDisk = await rpc('hashFile', { name: id });
  return { stored: true, right: model.sha256 === file.sha256 && onDisk === file.sha256 };
}

/**
 * Downloads cut at random points: each case's file gets 1 to 3 faults at seeded offsets and is
 * downloaded again (as a person would press the button again) until it is stored; then its
 * bytes are checked. Half the cases pass the file's SHA-256, as the page does.
 */
async function downloadDrill({ tab, files, rng, cases, size, stallMs, timeoutMs, maxAttempts = 12 }) {
  const result = row('downloads cut at random (reset, short, stall, 500, long, replaced)');
  for (let i = 0; i < cases; i++) {
    const plan = Array.from({ length: 1 + rng.int(3) }, () => ({ kind: rng.pick(FAULTS), at: rng.int(size) }));
    const name = `cut-${i}.gguf`;
    const file = files.add(name, { plan: [...plan], ignoresIfRange: rng.next() < 0.3, seed: i + 1 });
    const withHash = rng.next() < 0.5;
    let done = null;
    let attempts = 0;
    while (!done && attempts < maxAttempts) {
      attempts++;
      const r = await withTimeout(tab.rpc('download', { url: `/drill/${name}`, sha256: withHash ? file.sha256 : undefined, stallTimeoutMs: stallMs }), timeoutMs)
        .catch(() => ({ error: { kind: 'hung', message: `attempt ${attempts} did not end in ${timeoutMs / 1000} s` } }));
      if (r.error?.kind === 'hung') attempts = maxAttempts;
      if (r.value) done = r.value;
      else if (!['download', 'integrity'].includes(r.error?.kind)) result.failures.push(`${name} ${JSON.stringify(plan)}: ${r.error?.kind}: ${r.error?.message}`);
    }
    result.cases++;
    result.attempts += attempts;
    result.refetched += file.sent - size;
    const check = await storedRight(tab.rpc, name, file);
    if (check.stored && !check.right) {
      result.wrong++;
      result.failures.push(`${name} ${JSON.stringify(plan)}: a wrong model was stored`);
    } else if (done && check.right) {
      result.passed++;
    } else {
      result.failures.push(`${name} ${JSON.stringify(plan)}: not stored after ${attempts} attempts`);
    }
    await tab.rpc('delete', { id: name });
  }
  return result;
}

/** A real model (SmolLM2) cut at random points, through the harness's /fault/cut route. */
async function realModelDrill({ tab, server, rng, cases }) {
  const result = row(`${SMOLLM2} cut at random, resumed`);
  const size = (await fsp.stat(path.join(MODELS_DIR, SMOLLM2))).size;
  const want = sha256(await fsp.readFile(path.join(MODELS_DIR, SMOLLM2)));
  for (let i = 0; i < cases; i++) {
    const url = `/fault/cut/${SMOLLM2}?after=${1 + rng.int(size - 1)}&drill=${rng.int(1e9)}`;
    server.requests.length = 0;
    let model = null;
    for (let attempt = 0; attempt < 4 && !model; attempt++) model = (await tab.rpc('download', { url })).value;
    result.cases++;
    const onDisk = model ? await tab.rpc('hashFile', { name: SMOLLM2 }) : null;
    if (model && (model.sha256 !== want || onDisk !== want)) result.wrong++;
    else if (model) result.passed++;
    else result.failures.push(`${url}: not stored`);
    // The cut request sent `after` bytes; what the resume asked for again of those came twice.
    const after = Number(/after=(\d+)/.exec(url)[1]);
    const resumes = server.requests.filter((r) => r.path.startsWith('/fault/cut/')).slice(1);
    result.attempts += resumes.length + 1;
    for (const r of resumes) result.refetched += after - Number(/^bytes=(\d+)-$/.exec(r.range ?? '')?.[1] ?? 0);
    await tab.rpc('delete', { id: SMOLLM2 });
  }
  return result;
}

/**
 * Two or three tabs download the same model at once, some rounds with the first response cut:
 * one tab downloads, the others wait and then take the stored copy (or resume the part when that
 * download failed). Every tab must end with the right model and none may hang.
 */
async function tabsDownloadDrill({ tabs, files, rng, rounds, size, stallMs, timeoutMs }) {
  const result = row(`${tabs.length} tabs download one model at once`);
  for (let i = 0; i < rounds; i++) {
    const name = `tabs${tabs.length}-${i}.gguf`;
    const plan = rng.next() < 0.5 ? [{ kind: rng.pick(['reset', 'stall', 'status500']), at: rng.int(size) }] : [];
    const file = files.add(name, { plan, seed: 10_000 + tabs.length * 1000 + i });
    const outcomes = await Promise.all(tabs.map(async (tab) => {
      for (let attempt = 0; attempt < 4; attempt++) {
        const r = await withTimeout(tab.rpc('download', { url: `/drill/${name}`, stallTimeoutMs: stallMs }), timeoutMs).catch(() => ({ error: { kind: 'hung' } }));
        if (r.value) return r.value;
        if (r.error?.kind !== 'download') return r.error;
      }
      return { kind: 'gave up' };
    }));
    result.cases++;
    result.refetched += file.sent - size;
    const check = await storedRight(tabs[0].rpc, name, file);
    const allRight = outcomes.every((o) => o.sha256 === file.sha256);
    if (check.stored && !check.right) result.wrong++;
    if (check.right && allRight) result.passed++;
    else result.failures.push(`${name} ${JSON.stringify(plan)}: ${JSON.stringify(outcomes.map((o) => o.sha256 ?? o))}`);
    await tabs[0].rpc('delete', { id: name });
  }
  return result;
}

/**
 * Three tabs at random: download, read (load) and delete one model, with random delays. Allowed
 * outcomes: success, a delete refused while a download runs, a read of a model not (yet or any
 * more) stored. Anything else, a hang, a wrong read or a wrong model stored is a failure.
 */
async function tabsMixDrill({ tabs, files, rng, rounds, timeoutMs }) {
  const result = row('3 tabs download, load and delete one model at random');
  const name = 'mix.gguf';
  const file = files.add(name, { seed: 20_000 });
  for (let i = 0; i < rounds; i++) {
    const ops = tabs.map((tab) => ({ tab, op: rng.pick(['download', 'read', 'delete']), delay: rng.int(60) }));
    const outcomes = await Promise.all(ops.map(async ({ tab, op, delay }) => {
      await new Promise((resolve) => setTimeout(resolve, delay));
      const args = op === 'download' ? { url: `/drill/${name}` } : { id: name };
      const r = await withTimeout(tab.rpc(op, args), timeoutMs).catch(() => ({ error: { kind: 'hung', message: `not done in ${timeoutMs / 1000} s` } }));
      if (!r.error) return op === 'read' ? (r.value.sha256 === file.sha256 ? 'ok' : 'wrong read') : 'ok';
      if (op === 'delete' && /is being downloaded or stored/.test(r.error.message)) return 'ok';
      if (op === 'read' && /is not in browser storage/.test(r.error.message)) return 'ok';
      return `${op}: ${r.error.kind}: ${r.error.message}`;
    }));
    result.cases++;
    const check = await storedRight(tabs[0].rpc, name, file);
    if (check.stored && !check.right) result.wrong++;
    if (outcomes.every((o) => o === 'ok') && (!check.stored || check.right)) result.passed++;
    else result.failures.push(`${JSON.stringify(ops.map((o) => o.op))}: ${outcomes.join('; ')}`);
  }
  result.refetched = Math.max(0, file.sent - file.bytes.length);
  return result;
}

/** Bits flipped in stored models: a load must refuse them (integrity), never hand them out. */
async function bitFlipDrill({ tab, files, rng, cases, fileSize }) {
  const result = row('a bit flipped in a stored model, then loaded');
  for (let i = 0; i < cases; i++) {
    const name = `flip-${i}.gguf`;
    const file = files.add(name, { seed: 30_000 + i });
    await tab.rpc('download', { url: `/drill/${name}` });
    await tab.rpc('flipBit', { name, at: rng.int(fileSize) });
    // Every other read names the SHA-256, as the page does: both are checked against the checksum.
    const r = await tab.rpc('read', { id: name, sha256: i % 2 === 1 });
    result.cases++;
    if (r.error?.kind === 'integrity') result.passed++;
    else result.failures.push(`${name}: ${r.error ? `${r.error.kind}: ${r.error.message}` : 'read without complaint'}`);
    await tab.rpc('delete', { id: name });
    result.refetched += file.sent - fileSize;
  }
  return result;
}

/** `promise`, or a rejection when it has not settled in `ms`. */
function withTimeout(promise, ms) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Runs every drill; resolves to their rows. `cases` downloads cut at random, `tabRounds` rounds of
 * each multi-tab drill, `realCases` cuts of the real SmolLM2 (0: none), on a synthetic model of
 * `fileSize` bytes.
 */
export async function runDrills({ seed = 1, cases = 100, tabRounds = 10, realCases = 0, flips = 5, fileSize = 2 << 20, stallMs = 400, log = () => {} } = {}) {
  const files = new DrillFiles((s) => syntheticModel(fileSize, s));
  const server = await startServer({ extraRoutes: files.route });
  const browser = await launchBrowser();
  const rng = random(seed);
  const timeoutMs = 20_000; // an operation not done by then hangs
  const rows = [];
  try {
    const tabs = await openTabs(browser, server, 3);
    await tabs[0].rpc('clear');
    const run = async (drill) => {
      const t0 = performance.now();
      const r = await drill;
      r.seconds = (performance.now() - t0) / 1000;
      log(`${r.drill}: ${r.passed}/${r.cases} passed, ${r.wrong} wrong stored, ${r.seconds.toFixed(1)} s`);
      rows.push(r);
    };
    await run(downloadDrill({ tab: tabs[0], files, rng, cases, size: fileSize, stallMs, timeoutMs }));
    if (realCases > 0) await run(realModelDrill({ tab: tabs[0], server, rng, cases: realCases }));
    await run(tabsDownloadDrill({ tabs: tabs.slice(0, 2), files, rng, rounds: tabRounds, size: fileSize, stallMs, timeoutMs }));
    await run(tabsDownloadDrill({ tabs, files, rng, rounds: tabRounds, size: fileSize, stallMs, timeoutMs }));
    await run(tabsMixDrill({ tabs, files, rng, rounds: tabRounds * 3, timeoutMs }));
    if (flips > 0) await run(bitFlipDrill({ tab: tabs[0], files, rng, cases: flips, fileSize }));
  } finally {
    await browser.close();
    await server.close();
  }
  return rows;
}

/** The rows as a plain-text table. */
export function table(rows) {
  const head = ['drill', 'cases', 'passed', 'wrong models stored', 'bytes re-downloaded', 'attempts', 'seconds'];
  const body = rows.map((r) => [r.drill, r.cases, r.passed, r.wrong, r.refetched, r.attempts || '', r.seconds?.toFixed(1) ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => String(b[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)].join('\n');
}
