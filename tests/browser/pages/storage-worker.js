// The worker side of storage.html: each op runs www/storage.js for real and answers with plain
// data, failures included ({error: {kind, message}}), so the test can assert on both.
import * as storage from '/storage.js';

// The engine supplies a streaming SHA-256 from wasm; this one keeps copies of the chunks (update
// must not keep the caller's buffer, which is reused) and digests them at the end.
function testHasher() {
  const chunks = [];
  return {
    update(bytes) {
      chunks.push(bytes.slice());
    },
    async digest() {
      const buf = await new Blob(chunks).arrayBuffer();
      return hex(await crypto.subtle.digest('SHA-256', buf));
    },
  };
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
  // every view() call: a reader that kept an old view would write into a detached buffer.
  async read({ id, shared, verify }) {
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
    const progress = [];
    return outcome(async () => {
      const { size, ms } = await storage.readModel(id, alloc, { onProgress: (p) => progress.push(p), createHasher: verify ? testHasher : undefined });
      const copy = new Uint8Array(memory.buffer, base, size).slice();
      return { size, ms, views, progress, sha256: hex(await crypto.subtle.digest('SHA-256', copy)), bufferShared: memory.buffer instanceof SharedArrayBuffer };
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

  async clear() {
    const dir = await opfsDir();
    for await (const name of dir.keys()) await dir.removeEntry(name);
  },

  // Storage that reports `free` bytes left, as a nearly full disk would.
  setFree({ free }) {
    const quota = 1_200_000_000;
    navigator.storage.estimate = async () => ({ usage: quota - free, quota });
  },
};

onmessage = async ({ data: { seq, op, args } }) => {
  postMessage({ seq, value: await ops[op](args ?? {}) });
};
