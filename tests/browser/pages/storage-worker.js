// The worker side of storage.html: each op runs www/storage.js for real and answers with plain
// data, failures included ({error: {kind, message}}), so the test can assert on both.
import * as storage from '/storage.js';

// The engine's own hashes (SHA-256 and XXH3-64 in one pass) from the single-thread wasm build,
// which runs on any page: storage records and checks what the engine would. Every op waits for it.
let wasm = null;
const wasmReady = import('/pkg/simd/wick.js').then(async (mod) => {
  // Compiled from bytes fetched past the HTTP cache: with the module streamed from the cache, the
  // headless Chromium here closed the tab when storage.test.mjs cleared the origin's storage
  // (Storage.clearDataForOrigin) after an earlier tab had loaded the same module.
  const bytes = await (await fetch('/pkg/simd/wick_bg.wasm', { cache: 'no-store' })).arrayBuffer();
  await mod.default({ module_or_path: bytes });
  wasm = mod;
});

function testHasher() {
  const h = new wasm.Hasher();
  return { update: (bytes) => h.update(bytes), digest: () => { const d = { sha256: h.sha256(), xxh3: h.xxh3() }; h.free(); return d; } };
}

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

async function outcome(work) {
  try {
    return { value: await work() };
  } catch (err) {
    return { error: { kind: err.kind ?? null, name: err.name, message: err.message } };
  }
}

async function opfsDir() {
  const root = await navigator.storage.getDirectory();
  return root.getDirectoryHandle('wick-models', { create: true });
}

// A download whose progress events are kept; `abortAt` aborts it once that many bytes are in,
// `abortWaiting` as soon as it reports that it waits for another tab.
async function download({ url, id, sha256, abortAt, abortWaiting, stallTimeoutMs }, onEvent) {
  const progress = [];
  const controller = new AbortController();
  const onProgress = (p) => {
    progress.push(p);
    onEvent?.(p);
    if ((abortAt && p.loaded >= abortAt) || (abortWaiting && p.phase === 'waiting')) controller.abort();
  };
  const started = performance.now();
  const result = await outcome(() => storage.downloadModel({ url, id, sha256, signal: controller.signal, onProgress, createHasher: testHasher, stallTimeoutMs }));
  return { ...result, progress, ms: performance.now() - started };
}

const ops = {
  download,

  // A second download (`second` options) of one id once the first one's bytes flow.
  async downloadTwice({ url, second: options }) {
    let started;
    const running = new Promise((resolve) => (started = resolve));
    const first = download({ url }, (p) => p.loaded > 0 && started());
    await running;
    const second = await download({ url, ...options });
    return { first: await first, second };
  },

  async store({ url, name, id, sha256 }) {
    const blob = await (await fetch(url)).blob();
    const file = new File([blob], name);
    const progress = [];
    const result = await outcome(() => storage.storeFile({ file, id, sha256, onProgress: (p) => progress.push(p), createHasher: testHasher }));
    return { ...result, progress };
  },

  // Reads a model into wasm memory (shared like the threads build, or not) that grows by a page on
  // every view() call: a reader that kept an old view would write into a detached buffer. The
  // checksum is summed from that memory in 16 MiB pieces. `sha256`: the load names its SHA-256
  // (storage hashes with it only a model stored without a checksum; `hashers` says whether it did).
  async read({ id, shared, sha256 }) {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared });
    const base = 1024;
    let views = 0;
    const alloc = (size) => {
      memory.grow(Math.ceil((base + size) / 65536));
      return (offset, length) => {
        views++;
        memory.grow(1);
        return new Uint8Array(memory.buffer, base + offset, length);
      };
    };
    let size = 0;
    const checksum = () => {
      const h = new wasm.Hasher();
      for (let at = 0; at < size; at += 16 << 20) h.update(new Uint8Array(memory.buffer, base + at, Math.min(16 << 20, size - at)));
      const sum = h.xxh3();
      h.free();
      return sum;
    };
    const progress = [];
    let hashers = 0;
    const createHasher = sha256 ? () => (hashers++, testHasher()) : undefined;
    return outcome(async () => {
      const onProgress = (p) => progress.push(p);
      const read = await storage.readModel(id, (n) => alloc((size = n)), { onProgress, createHasher, checksum });
      const copy = new Uint8Array(memory.buffer, base, size).slice();
      return { ...read, views, hashers, progress, sha256: hex(await crypto.subtle.digest('SHA-256', copy)), bufferShared: memory.buffer instanceof SharedArrayBuffer };
    });
  },

  // Starts a download and answers once its bytes flow; `finished` answers with its outcome.
  async startDownload(args) {
    let flowing;
    const started = new Promise((resolve) => (flowing = resolve));
    self.running = download(args, (p) => p.loaded > 0 && flowing());
    await Promise.race([started, self.running]);
    return true;
  },
  finished: () => self.running,

  list: () => outcome(() => storage.listModels()),
  stored: ({ id }) => outcome(() => storage.storedModel(id)),
  delete: ({ id }) => outcome(() => storage.deleteModel(id)),
  estimate: () => outcome(() => storage.storageEstimate()),

  // Raw OPFS entries with their sizes, to check what a failure left behind.
  async files() {
    const dir = await opfsDir();
    const files = {};
    for await (const [name, handle] of dir.entries()) files[name] = (await handle.getFile()).size;
    return files;
  },

  // A model's manifest as it is on disk; `write` replaces it (as an older version wrote it).
  async manifest({ id, write }) {
    const handle = await (await opfsDir()).getFileHandle(`${id}.manifest.json`);
    if (write) {
      const writable = await handle.createWritable();
      await writable.write(JSON.stringify(write));
      await writable.close();
    }
    return JSON.parse(await (await handle.getFile()).text());
  },

  // The SHA-256 of a stored file's bytes as they are on disk, read past storage.js.
  async hashFile({ name }) {
    const file = await (await (await opfsDir()).getFileHandle(name)).getFile();
    return hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  },

  // Flips one bit of a stored file in place, as a failing disk would.
  async flipBit({ name, at }) {
    const sync = await (await (await opfsDir()).getFileHandle(name)).createSyncAccessHandle();
    const byte = new Uint8Array(1);
    sync.read(byte, { at });
    byte[0] ^= 0x10;
    sync.write(byte, { at });
    sync.close();
  },

  // Empties the store. A file the previous tab's worker still had open (a tab closes before its
  // worker's handles do) cannot be removed at once; it is tried again for up to 10 s.
  async clear() {
    const dir = await opfsDir();
    for (let tries = 0; ; tries++) {
      try {
        for await (const name of dir.keys()) await dir.removeEntry(name);
        return;
      } catch (err) {
        if (tries >= 100) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  },

  // Storage that reports `free` bytes left, as a nearly full disk would.
  setFree({ free }) {
    const quota = 1_200_000_000;
    navigator.storage.estimate = async () => ({ usage: quota - free, quota });
  },
};

onmessage = async ({ data: { seq, op, args } }) => {
  // Without the wasm build every op fails, and says so, rather than hang the test; so does an op
  // that throws outside `outcome` (a file gone from under `files`, say): the page's rpc would
  // otherwise wait for an answer that never comes.
  const value = await wasmReady.then(
    () => ops[op](args ?? {}),
    (err) => ({ error: { kind: 'test', message: `www/pkg/simd did not load (scripts/build-wasm simd): ${err.message}` } }),
  ).catch((err) => ({ error: { kind: 'test', name: err?.name, message: `op '${op}' threw: ${err?.message ?? err}` } }));
  postMessage({ seq, value });
};
