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

// A download whose progress events are kept; `abortAt` aborts it once that many bytes are in.
async function download({ url, id, sha256, abortAt }, onEvent) {
  const progress = [];
  const controller = new AbortController();
  const onProgress = (p) => {
    progress.push(p);
    onEvent?.(p);
    if (abortAt && p.loaded >= abortAt) controller.abort();
  };
  const result = await outcome(() => storage.downloadModel({ url, id, sha256, signal: controller.signal, onProgress, createHasher: testHasher }));
  return { ...result, progress };
}

const ops = {
  download,

  // Two downloads of one id at once: the second must be refused while the first runs.
  async downloadTwice({ url }) {
    let started;
    const running = new Promise((resolve) => (started = resolve));
    const first = download({ url }, started);
    await running;
    const second = await download({ url });
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
  async read({ id, shared }) {
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
      const { size, ms } = await storage.readModel(id, alloc, { onProgress: (p) => progress.push(p) });
      const copy = new Uint8Array(memory.buffer, base, size).slice();
      return { size, ms, views, progress, sha256: hex(await crypto.subtle.digest('SHA-256', copy)), bufferShared: memory.buffer instanceof SharedArrayBuffer };
    });
  },

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
