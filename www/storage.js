// The model store: GGUF files in the Origin Private File System (OPFS).
//
// Layout, in the directory `wick-models/`:
//   <id>                the model's bytes
//   <id>.manifest.json  {id, name, size, sha256, xxh3, source, storedAt[, unsupported]}, written
//                       last: a model is complete only when its manifest exists and the file has
//                       the size it records. unsupported: {reason, at}, recorded when a load found
//                       that this version of the engine cannot run the model (recordUnsupported)
//   <id>.part           a download or copy in progress
//   <id>.part.json      {url, total, etag, lastModified}: what an interrupted download resumes from
// Everything lives in OPFS, so a download resumes after a reload or a browser restart.
//
// Writing and reading use FileSystemSyncAccessHandle (one handle per file, streamed in chunks), which
// exists only in workers; listing and deleting work on the page too. Writers hold an exclusive Web
// Lock per id (across tabs and workers), readers a shared one, so a model is never replaced or
// deleted while it is being read into an engine. A busy lock is waited for (see withLock): a second
// tab loading a model that the first is downloading gets the stored copy once that has finished.
// A stored model is only ever replaced by bytes that passed their SHA-256 (finish), so a failed,
// aborted or mismatching download leaves the copy stored before it usable.
//
// Two hashes of the bytes are taken as they are written, in one pass: SHA-256, which a download is
// checked against (what was promised), and XXH3-64, a fast checksum that every read checks (what
// was stored: a flipped bit or a torn write on disk). The checksum need not be cryptographic:
// whoever can rewrite OPFS already runs code in this origin.
import { WickError } from './errors.js';

const DIR = 'wick-models';
const MAX_ID = 128;
const CHUNK = 16 << 20;        // read size; also bounds what a read holds outside wasm memory
const FLUSH_EVERY = 64 << 20;  // bounds the bytes a crash can lose from a resumable download
const PROGRESS_MS = 100;
const STALL_MS = 30_000;       // a download that receives nothing for this long is interrupted
const RATE_WINDOW_MS = 1000;
const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const SUFFIXES = ['.part', '.part.json', '.manifest.json'];

// ---------------------------------------------------------------------------------------------
// Ids

function sanitizeId(name) {
  let id = String(name).replace(/[^A-Za-z0-9._-]+/g, '_');
  if (id.length > MAX_ID) {
    const keep = id.toLowerCase().endsWith('.gguf') ? id.slice(-5) : '';
    id = id.slice(0, MAX_ID - keep.length) + keep;
  }
  // An id must not look like another model's bookkeeping file, nor be "." or "..".
  if (SUFFIXES.some((s) => id.endsWith(s))) id = `${id.slice(0, id.lastIndexOf('.'))}_${id.slice(id.lastIndexOf('.') + 1)}`;
  return id.replace(/^\.+/, (dots) => '_'.repeat(dots.length));
}

function checkId(id) {
  if (typeof id !== 'string' || id === '' || sanitizeId(id) !== id) {
    throw new WickError('invalid_parameter', `"${id}" is not a model id (ids are up to ${MAX_ID} characters of A-Z a-z 0-9 . _ -; see modelIdFor)`);
  }
  return id;
}

// Relative URLs resolve against this realm's location: in a worker, the worker script's URL.
function absoluteUrl(url) {
  try {
    return new URL(url, globalThis.location?.href ?? 'http://localhost/');
  } catch {
    throw new WickError('invalid_parameter', `"${url}" is not a URL`);
  }
}

function fileNameOfUrl(url) {
  const last = absoluteUrl(url).pathname.split('/').pop();
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** The id a source is stored under: its explicit id, else the file name of its URL or File, sanitized. */
export function modelIdFor(source) {
  const explicit = source && typeof source === 'object' && !(source instanceof URL) && !(source instanceof Blob) ? source.id : undefined;
  let name = explicit;
  if (name === undefined || name === null) {
    if (typeof source === 'string' || source instanceof URL) name = fileNameOfUrl(source);
    else if (source instanceof Blob) name = source.name;
    else if (source?.url !== undefined) name = fileNameOfUrl(source.url);
    else if (source?.file instanceof Blob) name = source.file.name;
    else throw new WickError('invalid_parameter', 'a model source is a URL, a File, {url}, {file} or {id}');
  }
  const id = typeof name === 'string' ? sanitizeId(name) : '';
  if (!id) throw new WickError('invalid_parameter', 'cannot name this model (no file name in its URL, or a Blob without a name): pass an id');
  return id;
}

// ---------------------------------------------------------------------------------------------
// OPFS plumbing

const manifestName = (id) => `${id}.manifest.json`;
const partName = (id) => `${id}.part`;
const stateName = (id) => `${id}.part.json`;

async function modelsDir() {
  if (typeof navigator === 'undefined' || !navigator.storage?.getDirectory) {
    throw new WickError('unsupported_browser', 'this browser has no Origin Private File System (OPFS); use a current Chrome, Edge, Firefox or Safari over https or localhost');
  }
  try {
    const root = await navigator.storage.getDirectory();
    return await root.getDirectoryHandle(DIR, { create: true });
  } catch (err) {
    throw new WickError('storage', `browser storage is not available (${err.name}: ${err.message}); private windows may not allow it`);
  }
}

async function fileHandle(dir, name, create = false) {
  try {
    return await dir.getFileHandle(name, { create });
  } catch (err) {
    if (err.name === 'NotFoundError' || err.name === 'TypeMismatchError') return null;
    throw storageError(err, `opening ${name}`);
  }
}

async function readJson(dir, name) {
  const handle = await fileHandle(dir, name);
  if (!handle) return null;
  try {
    return JSON.parse(await (await handle.getFile()).text());
  } catch {
    return null; // torn or foreign: treated as absent, and rewritten by the next complete write
  }
}

async function writeJson(dir, name, value) {
  const handle = await fileHandle(dir, name, true);
  try {
    // A writable stream swaps its file in on close, so readers never see half a manifest.
    const writable = await handle.createWritable();
    await writable.write(JSON.stringify(value));
    await writable.close();
  } catch (err) {
    throw storageError(err, `writing ${name}`);
  }
}

async function removeIfPresent(dir, name) {
  try {
    await dir.removeEntry(name);
  } catch (err) {
    if (err.name !== 'NotFoundError') throw storageError(err, `deleting ${name}`);
  }
}

// Sync access handles exist only in dedicated workers (and not in every browser's).
function requireSyncAccess(fn) {
  if (!globalThis.FileSystemFileHandle?.prototype.createSyncAccessHandle) {
    const where = typeof document === 'undefined' ? 'this browser has no FileSystemSyncAccessHandle' : 'it needs FileSystemSyncAccessHandle, which pages do not have';
    throw new WickError('unsupported_browser', `${fn} runs in a Web Worker: ${where}`);
  }
}

async function openSync(handle, mode) {
  try {
    return await handle.createSyncAccessHandle(mode ? { mode } : undefined);
  } catch (err) {
    throw storageError(err, `opening ${handle.name}`);
  }
}

function storageError(err, doing) {
  if (err instanceof WickError) return err;
  if (err?.name === 'QuotaExceededError') return new WickError('quota', `browser storage is full (${doing}): delete stored models or free disk space`);
  if (err?.name === 'NoModificationAllowedError' || err?.name === 'InvalidModificationError') {
    return new WickError('storage', `${doing}: the file is in use by another tab or worker; close it there or wait for it to finish`);
  }
  return new WickError('storage', `${doing}: ${err?.name ?? 'Error'}: ${err?.message ?? err}`);
}

const lockName = (id) => `wick-model:${id}`;

function requireLocks() {
  if (!navigator.locks?.request) throw new WickError('unsupported_browser', 'this browser has no Web Locks API');
}

/**
 * Runs `work` holding the id's Web Lock. When another tab or worker holds it, reports
 * {phase: 'waiting'} through `onProgress` (so a page can say why nothing moves) and waits for it,
 * abortably through `signal`: Web Locks queue the requests, in order.
 */
async function withLock(id, mode, { signal, onProgress } = {}, work) {
  requireLocks();
  const now = await navigator.locks.request(lockName(id), { mode, ifAvailable: true }, async (lock) => (lock ? { value: await work() } : null));
  if (now) return now.value;
  onProgress?.({ phase: 'waiting', loaded: 0, total: 0 });
  try {
    return await navigator.locks.request(lockName(id), { mode, signal }, work);
  } catch (err) {
    if (signal?.aborted && !(err instanceof WickError)) {
      throw new WickError('aborted', `waiting for model "${id}" (in use in this or another tab) was aborted`);
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the store (page and worker)

/** The manifest of a complete model (its file has the size recorded), or null. */
async function completeManifest(dir, id) {
  const manifest = await readJson(dir, manifestName(id));
  if (!manifest || manifest.id !== id || typeof manifest.size !== 'number') return null;
  const handle = await fileHandle(dir, id);
  if (!handle) return null;
  let size;
  try {
    size = (await handle.getFile()).size;
  } catch (err) {
    throw storageError(err, `reading the size of ${id}`);
  }
  return size === manifest.size ? manifest : null;
}

/** A complete model as the API shows it (the checksum is storage's own business). */
async function completeModel(dir, id) {
  const manifest = await completeManifest(dir, id);
  if (!manifest) return null;
  const { name, size, sha256, source, storedAt, unsupported } = manifest;
  const model = { id, name, size, sha256, source, storedAt };
  if (typeof unsupported?.reason === 'string' && unsupported.reason) {
    model.unsupported = { reason: unsupported.reason, at: String(unsupported.at ?? '') };
  }
  return model;
}

/** The complete models in storage, sorted by name. */
export async function listModels() {
  const dir = await modelsDir();
  const ids = [];
  for await (const name of dir.keys()) {
    if (name.endsWith('.manifest.json')) ids.push(name.slice(0, -'.manifest.json'.length));
  }
  const models = (await Promise.all(ids.map((id) => completeModel(dir, id)))).filter(Boolean);
  return models.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

/** The stored model with this id, or null when it is absent or incomplete. */
export async function storedModel(id) {
  return completeModel(await modelsDir(), checkId(id));
}

/**
 * Removes a model and any partial download of it; nothing to do when absent. It waits while the
 * model is being read into an engine (that takes seconds, and the engine keeps its own copy), but
 * refuses while it is being downloaded or stored: waiting could take minutes, only to delete what
 * that download has just finished.
 */
export async function deleteModel(id) {
  checkId(id);
  const dir = await modelsDir();
  requireLocks();
  const { held = [] } = (await navigator.locks.query?.()) ?? {};
  if (held.some((lock) => lock.name === lockName(id) && lock.mode === 'exclusive')) {
    throw new WickError('storage', `model "${id}" is being downloaded or stored in this or another tab: cancel that, or delete it when it has finished`);
  }
  await withLock(id, 'exclusive', {}, async () => {
    // The bytes go first: should a later step fail, what is left is incomplete, never a manifest
    // that vouches for other bytes.
    for (const name of [id, partName(id), manifestName(id), stateName(id)]) await removeIfPresent(dir, name);
  });
}

/** How much the origin uses and may use, in bytes, and whether storage is persistent. */
export async function storageEstimate() {
  const storage = globalThis.navigator?.storage;
  if (!storage?.estimate) throw new WickError('unsupported_browser', 'this browser does not report storage use (navigator.storage.estimate)');
  const { usage = 0, quota = 0 } = await storage.estimate();
  const persisted = storage.persisted ? await storage.persisted().catch(() => false) : false;
  return { usage, quota, persisted };
}

/** Asks the browser not to evict stored models under storage pressure (page only). */
export async function requestPersistentStorage() {
  try {
    return (await globalThis.navigator?.storage?.persist?.()) ?? false;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing (worker only)

/** Decimal units, three significant digits: "253 MB", "1.19 GB". */
function human(bytes) {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : Number(value.toPrecision(3))} ${units[unit]}`;
}

async function quotaError(needed) {
  const { usage, quota } = await storageEstimate();
  const free = Math.max(0, quota - usage);
  return new WickError(
    'quota',
    `the model needs ${human(needed)} but browser storage has ${human(free)} free (quota ${human(quota)}, used ${human(usage)}): delete stored models or free disk space`,
    { needed, free, quota, usage },
  );
}

async function checkQuota(needed) {
  const { usage, quota } = await storageEstimate();
  if (needed > quota - usage) throw await quotaError(needed);
}

/** Reports progress at most every PROGRESS_MS, with the rate over the last RATE_WINDOW_MS. */
function progressReporter(onProgress, phase, total, resumed, start) {
  const samples = [{ t: performance.now(), loaded: start }];
  let last = -Infinity;
  return (loaded, final = false) => {
    const now = performance.now();
    if (!onProgress || (!final && now - last < PROGRESS_MS)) return;
    last = now;
    samples.push({ t: now, loaded });
    while (samples.length > 2 && now - samples[1].t >= RATE_WINDOW_MS) samples.shift();
    const first = samples[0];
    const rate = now > first.t ? Math.round(((loaded - first.loaded) * 1000) / (now - first.t)) : 0;
    onProgress({ phase, loaded, total: total ?? loaded, rate, ...(phase === 'download' && { resumed }) });
  };
}

function isGguf(bytes) {
  return MAGIC.every((b, i) => bytes[i] === b);
}

function notGguf(head, what, phase) {
  if (head[0] === 0x3c /* < */ && phase === 'download') {
    return new WickError('invalid_model', 'the server sent an HTML page, not a GGUF file (is the URL right?)');
  }
  const shown = Array.from(head.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return new WickError('invalid_model', `${what} is not a GGUF file (it starts with ${shown || 'nothing'}, not "GGUF")`);
}

/**
 * Streams `reader` into `sync` from byte `offset`: GGUF magic checked as soon as 4 bytes are in,
 * every byte hashed, flushed every FLUSH_EVERY, `report(offset)` after every write. Returns the end
 * offset. A failing source is thrown as {interrupted: error}, apart from a failing disk.
 */
async function pump({ reader, sync, offset, total, hasher, report, signal, what, phase }) {
  const head = new Uint8Array(4);
  let headLen = Math.min(offset, 4);
  if (headLen > 0) sync.read(head.subarray(0, headLen), { at: 0 });
  if (headLen === 4 && !isGguf(head)) throw notGguf(head, what, phase);
  let unflushed = 0;
  for (;;) {
    signal?.throwIfAborted();
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      throw { interrupted: err };
    }
    if (chunk.done) return offset;
    const bytes = chunk.value;
    if (total !== null && offset + bytes.length > total) {
      // A 206 whose body runs past the Content-Range it announced: nothing it sent can be trusted.
      throw new WickError('download', `${what} sent more than the ${total} bytes it announced, so it was not stored; start it again`);
    }
    if (headLen < 4) {
      const take = Math.min(4 - headLen, bytes.length);
      head.set(bytes.subarray(0, take), headLen);
      headLen += take;
      if ((headLen === 4 && !isGguf(head)) || head[0] === 0x3c) throw notGguf(head.subarray(0, headLen), what, phase);
    }
    let written = 0;
    while (written < bytes.length) written += sync.write(bytes.subarray(written), { at: offset + written });
    hasher.update(bytes);
    offset += bytes.length;
    unflushed += bytes.length;
    if (unflushed >= FLUSH_EVERY) {
      sync.flush();
      unflushed = 0;
    }
    report(offset);
  }
}

/** Hashes bytes [0, end) already in a part file (a resumed download) through its sync handle. */
function hashExisting(sync, end, hasher) {
  const buf = new Uint8Array(Math.min(CHUNK, end));
  for (let at = 0; at < end; ) {
    const n = sync.read(buf.subarray(0, Math.min(buf.length, end - at)), { at });
    if (n === 0) throw new WickError('storage', `the partial download ended at ${at} of ${end} bytes while it was read back`);
    hasher.update(buf.subarray(0, n));
    at += n;
  }
}

async function discardPart(dir, id) {
  await removeIfPresent(dir, partName(id));
  await removeIfPresent(dir, stateName(id));
}

const abortedDownload = () => new WickError('aborted', 'the download was aborted; start it again to resume');

// A failure while writing a part file, as a WickError. `interrupted` sources (a stalled one too)
// are download errors (resumable) for a URL, io errors for a local file. `end` is where the part
// ends: the bytes kept for a resume.
async function writeFailure(err, { phase, what, end, total, signal, stall }) {
  if (err instanceof WickError) return err;
  const aborted = signal?.aborted || (!stall?.stalled && (err?.name === 'AbortError' || err?.interrupted?.name === 'AbortError'));
  if (aborted) return phase === 'download' ? abortedDownload() : new WickError('aborted', 'storing the model was aborted');
  if (stall?.stalled) err = { interrupted: new Error(`no data came for ${stall.seconds} s`) };
  if (err?.interrupted) {
    const cause = err.interrupted.message ?? String(err.interrupted);
    if (phase !== 'download') return new WickError('io', `could not read ${what} (${cause})`);
    const of = total === null ? 'an unknown size' : human(total);
    return new WickError('download', `the download of ${what} was interrupted at ${human(end)} of ${of} (${end} bytes; ${cause}); start it again to resume`);
  }
  if (err?.name === 'QuotaExceededError') {
    // The write itself hit the quota (the estimate checked before it can be stale: another tab or
    // site may have filled the disk since); what was written is removed again.
    const of = total === null ? '' : ` of ${human(total)}`;
    return new WickError('quota', `browser storage ran full while ${what} was being written (at ${human(end)}${of}): delete stored models or free disk space, then start it again`, { written: end, total });
  }
  return storageError(err, `writing ${what}`);
}

/**
 * Writes `stream` into `<id>.part` from byte `from` (bytes before it are re-hashed from the part)
 * and returns the end offset. On failure the part is removed, except where `resumable` and the
 * source was interrupted (or stalled, see stallWatch) or aborted: a later download continues it.
 */
async function writePart({ dir, id, stream, from, total, hasher, report, signal, stall, what, phase, resumable }) {
  const sync = await openSync(await fileHandle(dir, partName(id), true));
  let end = from;
  let keep = true;
  // Every write moves `end`, so a failure reports the bytes the part really keeps.
  const written = (at, final) => {
    end = at;
    report(at, final);
  };
  try {
    if (from === 0) sync.truncate(0);
    else hashExisting(sync, from, hasher);
    written(from, true);
    const reader = stream.getReader();
    try {
      await pump({ reader, sync, offset: from, total, hasher, report: written, signal, what, phase });
    } finally {
      reader.releaseLock();
    }
    if (total !== null && end < total) throw { interrupted: new Error('the body ended early') };
    if (end < 4) throw notGguf(new Uint8Array(0), what, phase);
    sync.flush();
    report(end, true);
    return end;
  } catch (err) {
    const error = await writeFailure(err, { phase, what, end, total, signal, stall });
    keep = resumable && (error.kind === 'aborted' || Boolean(err?.interrupted) || Boolean(stall?.stalled));
    throw error;
  } finally {
    try {
      sync.flush();
    } catch {
      // the write already failed, and the error on its way says why
    }
    // A handle whose file was cleared away is left open: see partStillThere.
    if (await partStillThere(dir, id)) sync.close();
    if (!keep) await discardPart(dir, id);
  }
}

// Whether the part file is still in the store. When the origin's storage is cleared under an open
// sync handle (site data cleared during a download), Chromium's FileSystemSyncAccessHandle.close()
// can block the worker for good (seen in storage.test.mjs: still blocked after 120 s, the engine
// wedged with it). The file is gone from the store then, so the handle is left open instead: the
// download fails with its typed error, and the path stays locked until this worker ends (a reload).
async function partStillThere(dir, id) {
  try {
    await dir.getFileHandle(partName(id));
    return true;
  } catch {
    return false;
  }
}

/** Checks the digest, then the part becomes the model: old copy out, rename, manifest last. */
async function finish(dir, id, hasher, expected, { name, size, source }) {
  const digest = await hasher.digest();
  const sha256 = String(digest.sha256).toLowerCase();
  const xxh3 = String(digest.xxh3).toLowerCase();
  if (expected && sha256 !== String(expected).toLowerCase()) {
    await discardPart(dir, id);
    throw new WickError('integrity', `${source} has SHA-256 ${sha256}, expected ${String(expected).toLowerCase()}: it is not the file promised, and it was not stored`);
  }
  await removeIfPresent(dir, manifestName(id));
  await removeIfPresent(dir, id);
  try {
    await (await fileHandle(dir, partName(id))).move(id);
  } catch (err) {
    throw storageError(err, `renaming ${partName(id)}`);
  }
  const storedAt = new Date().toISOString();
  await writeJson(dir, manifestName(id), { id, name, size, sha256, xxh3, source, storedAt });
  await removeIfPresent(dir, stateName(id));
  return { id, name, size, sha256, source, storedAt };
}

function checkHasher(createHasher) {
  if (typeof createHasher !== 'function') {
    throw new WickError('invalid_parameter', 'createHasher is required: a function returning {update(bytes), digest()}, the digest {sha256, xxh3} in hex');
  }
}

// If-Range needs a strong validator (RFC 9110 §13.1.5).
const validator = (state) => (state?.etag && !state.etag.startsWith('W/') ? state.etag : state?.lastModified ?? null);

/**
 * A download's watchdog: aborts its fetch when no bytes arrive for `ms` (a dead connection or a
 * stuck server would otherwise hang it for good), which then fails as a resumable download error.
 * `poke()` on every chunk; `signal` also follows the caller's.
 */
function stallWatch(ms, callerSignal) {
  const ctl = new AbortController();
  const follow = () => ctl.abort(callerSignal.reason);
  callerSignal?.addEventListener('abort', follow, { once: true });
  if (callerSignal?.aborted) follow();
  let timer = null;
  const watch = {
    signal: ctl.signal,
    stalled: false,
    seconds: ms / 1000,
    poke() {
      clearTimeout(timer);
      timer = setTimeout(() => {
        watch.stalled = true;
        ctl.abort();
      }, ms);
    },
    stop() {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', follow);
    },
  };
  watch.poke();
  return watch;
}

function request(url, stall, from, state) {
  const headers = {};
  if (from > 0) {
    headers.Range = `bytes=${from}-`;
    // With If-Range the server sends the whole file (200) when it changed since the part was
    // written. Cross-origin, If-Range is not CORS-safelisted: it would need a preflight that many
    // hosts refuse, so there only the 206's own validators are compared (sameFile).
    if (url.startsWith(`${globalThis.location?.origin}/`)) headers['If-Range'] = validator(state);
  }
  // no-store: the bytes go to OPFS; an HTTP-cache copy would double the disk use.
  return fetch(url, { signal: stall.signal, headers, cache: 'no-store' }).catch((err) => {
    if (stall.stalled) throw new WickError('download', `${url} did not answer for ${stall.seconds} s: check the connection, and start it again`);
    if (err?.name === 'AbortError') throw abortedDownload();
    throw new WickError('download', `could not fetch ${url} (${err?.message ?? err}): check the connection; a model on another site must be served with CORS headers (Access-Control-Allow-Origin)`);
  });
}

function contentLength(res) {
  const length = Number(res.headers.get('content-length') ?? NaN);
  return Number.isSafeInteger(length) ? length : null;
}

// Does a 206 continue the part? Its Content-Range must start where the part ends, within the same
// total, and its validator must be the one the part was written with. A header hidden by CORS
// (Access-Control-Expose-Headers) counts as a mismatch: the download then starts over.
function continuesPart(res, from, state) {
  const m = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
  if (!m || Number(m[1]) !== from || Number(m[2]) !== state.total) return false;
  const etag = res.headers.get('etag');
  return etag !== null ? etag === state.etag : res.headers.get('last-modified') === state.lastModified && state.lastModified !== null;
}

/**
 * Drops a response's body unread. Cancelling a body whose connection already failed rejects with
 * that failure (a bare TypeError: network error), which must not replace the typed error the
 * caller is about to throw, or end a download that is about to be requested again.
 */
async function discardBody(res) {
  await res.body?.cancel().catch(() => {});
}

/**
 * Sends the request for a download, resuming the part when it came from the same URL and the
 * server still has the same file. Returns {res, from}: `from` is where the body's bytes start.
 */
async function openDownload(dir, id, url, stall, state) {
  let from = 0;
  if (state?.url === url && state.total > 0 && validator(state)) {
    const part = await fileHandle(dir, partName(id));
    from = part ? (await part.getFile()).size : 0;
    if (from >= state.total) from = 0; // written whole but never finished: fetch it again
  }
  let res = await request(url, stall, from, state);
  if (from > 0) {
    if (res.status === 200) {
      from = 0; // If-Range did not match: the file changed, and this is all of it
    } else if (res.status === 416 || (res.status === 206 && !continuesPart(res, from, state))) {
      await discardBody(res);
      from = 0;
      res = await request(url, stall, 0, state);
    }
  }
  if (!res.ok || !res.body || (res.status === 206 && from === 0)) {
    await discardBody(res);
    // A server that will be back (5xx, 429) leaves a resumable part for the next try.
    if (from === 0 || !(res.status === 429 || res.status >= 500)) await discardPart(dir, id);
    throw new WickError('download', `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''} for ${url}`, { status: res.status });
  }
  if ((res.headers.get('content-type') ?? '').toLowerCase().startsWith('text/html')) {
    await discardBody(res);
    await discardPart(dir, id);
    throw new WickError('invalid_model', 'the server sent an HTML page, not a GGUF file (is the URL right?)');
  }
  return { res, from };
}

/**
 * Downloads `url` into storage as `id` (default modelIdFor(url)), resuming an interrupted download
 * of the same URL; a model already stored under `id` from this URL (with this `sha256`, when
 * given) is returned as it is: another tab may have downloaded it while this one waited. A stored
 * model with other bytes stays usable until the new ones have passed their SHA-256. A download
 * that receives nothing for `stallTimeoutMs` fails as a resumable download error. Worker only.
 * Resolves to the StoredModel.
 */
export async function downloadModel({ url, id, sha256, signal, onProgress, createHasher, stallTimeoutMs = STALL_MS } = {}) {
  requireSyncAccess('downloadModel');
  checkHasher(createHasher);
  if (!url) throw new WickError('invalid_parameter', 'downloadModel needs a url');
  const href = absoluteUrl(url).href;
  id = checkId(id ?? modelIdFor(href));
  const dir = await modelsDir();
  return withLock(id, 'exclusive', { signal, onProgress }, async () => {
    const stored = await completeModel(dir, id);
    if (stored && (sha256 ? stored.sha256 === String(sha256).toLowerCase() : stored.source === href)) return stored;
    const stall = stallWatch(stallTimeoutMs, signal);
    try {
      return await download(dir, id, href, sha256, { signal, stall, onProgress, createHasher });
    } finally {
      stall.stop();
    }
  });
}

/** The download itself, holding the lock: request (resuming when it can), write, verify, swap in. */
async function download(dir, id, href, sha256, { signal, stall, onProgress, createHasher }) {
  let state = await readJson(dir, stateName(id));
  const { res, from } = await openDownload(dir, id, href, stall, state);
  try {
    const total = from > 0 ? state.total : contentLength(res);
    if (total !== null) await checkQuota(total - from);
    if (from === 0) {
      state = { url: href, total, etag: res.headers.get('etag'), lastModified: res.headers.get('last-modified') };
      await writeJson(dir, stateName(id), state);
    }
    const hasher = createHasher();
    const progress = progressReporter(onProgress, 'download', total, from > 0, from);
    const report = (loaded, final) => {
      stall.poke();
      progress(loaded, final);
    };
    const size = await writePart({ dir, id, stream: res.body, from, total, hasher, report, signal, stall, what: href, phase: 'download', resumable: true });
    return await finish(dir, id, hasher, sha256, { name: fileNameOfUrl(href) || id, size, source: href });
  } finally {
    // Frees the connection when the body was not read to its end; a no-op otherwise.
    await discardBody(res);
  }
}

/** Copies a File or Blob into storage as `id` (default: the File's name). Worker only. */
export async function storeFile({ file, id, sha256, signal, onProgress, createHasher } = {}) {
  requireSyncAccess('storeFile');
  checkHasher(createHasher);
  if (!(file instanceof Blob)) throw new WickError('invalid_parameter', 'storeFile needs a File or Blob');
  id = checkId(id ?? modelIdFor(file));
  const name = file.name || id;
  const dir = await modelsDir();
  return withLock(id, 'exclusive', { signal, onProgress }, async () => {
    await checkQuota(file.size);
    const hasher = createHasher();
    const report = progressReporter(onProgress, 'store', file.size, false, 0);
    const size = await writePart({ dir, id, stream: file.stream(), from: 0, total: file.size, hasher, report, signal, what: name, phase: 'store', resumable: false });
    return finish(dir, id, hasher, sha256, { name, size, source: `file:${name}` });
  });
}

/**
 * Reads a stored model into memory the caller owns and checks it. `alloc(size)` returns
 * `view(offset, length)`, a Uint8Array to fill; it is asked again for every chunk because wasm
 * memory may grow (and replace its buffer) in between. Then `checksum()` returns the XXH3-64 (hex)
 * of the bytes read, computed where they are (the worker: ModelBuffer.xxh3, in wasm), which must be
 * the one recorded when they were stored: the size check alone does not see a damaged disk block.
 * While the model is being written (downloaded in another tab) it waits, abortably through
 * `signal`. Worker only.
 *
 * A model stored before checksums were recorded gets one on its first read: with `createHasher`
 * (the load names the SHA-256 it wants) once its bytes have passed the SHA-256 recorded for them,
 * without it from the bytes as they are (trust on first use: damage done before that read goes
 * unnoticed, as it did before checksums). Resolves to {size, ms, checkMs, check}: `check` says how
 * the bytes were checked, 'xxh3' (against the recorded checksum, the usual case) or, for such a
 * model, 'sha256' or 'first use'; `checkMs` is the checksum's share of `ms`.
 */
export async function readModel(id, alloc, { onProgress, signal, createHasher, checksum } = {}) {
  requireSyncAccess('readModel');
  checkId(id);
  if (typeof checksum !== 'function') throw new WickError('invalid_parameter', 'readModel needs checksum(): the XXH3-64 of the bytes it read, in hex');
  const dir = await modelsDir();
  const read = await withLock(id, 'shared', { signal, onProgress }, async () => {
    const manifest = await completeManifest(dir, id);
    if (!manifest) throw new WickError('storage', `model "${id}" is not in browser storage (or its download did not finish): download it first`);
    const started = performance.now();
    // Only a model without a checksum is hashed with SHA-256 as it is read. SmolLM2 (98.4 MB) read
    // by the engine (threads-relaxed build) in headless Chromium on 2 cores, medians of 5 in three
    // runs of storage-engine.test.mjs: 157-165 ms with no check, 190-201 ms with its XXH3
    // (ModelBuffer.xxh3: 18-24 ms, 4-5.5 GB/s in wasm), 739-781 ms with its SHA-256 (about
    // 170 MB/s: 6 s per GB).
    const hasher = manifest.xxh3 ? null : createHasher?.();
    const size = await readInto(dir, id, manifest.size, alloc, hasher, onProgress);
    const summed = performance.now();
    const xxh3 = String(await checksum()).toLowerCase();
    if (manifest.xxh3 && xxh3 !== manifest.xxh3) {
      throw new WickError('integrity', `stored model "${id}" is damaged: its bytes have XXH3 checksum ${xxh3}, not the ${manifest.xxh3} they had when stored; delete it and load it again`);
    }
    if (hasher) {
      const sha256 = String((await hasher.digest()).sha256).toLowerCase();
      if (sha256 !== manifest.sha256) {
        throw new WickError('integrity', `stored model "${id}" is damaged: its bytes have SHA-256 ${sha256}, not the ${manifest.sha256} they had when stored; delete it and load it again`);
      }
    }
    const done = performance.now();
    const check = manifest.xxh3 ? 'xxh3' : hasher ? 'sha256' : 'first use';
    return { manifest, xxh3, size, ms: done - started, checkMs: done - summed, check };
  });
  if (!read.manifest.xxh3) await recordChecksum(dir, id, read.manifest, read.xxh3);
  const { size, ms, checkMs, check } = read;
  return { size, ms, checkMs, check };
}

/** Reads the model's `size` bytes into the caller's memory (see readModel); returns the size. */
async function readInto(dir, id, size, alloc, hasher, onProgress) {
  // Read-only handles may be open in several tabs at once (the same model loaded twice).
  const sync = await openSync(await fileHandle(dir, id), 'read-only');
  try {
    if (sync.getSize() !== size) throw new WickError('storage', `model "${id}" changed while it was opened: download it again`);
    // What alloc and view throw (out of memory) is the caller's and passes through as it is.
    const view = await alloc(size);
    // The hasher gets a copy: a wasm hasher allocates, which may grow the memory `view` is in and
    // so detach the chunk just read.
    const copy = hasher && new Uint8Array(Math.min(CHUNK, size));
    for (let at = 0; at < size; ) {
      const length = Math.min(CHUNK, size - at);
      const into = view(at, length);
      let n;
      try {
        n = sync.read(into, { at });
      } catch (err) {
        throw storageError(err, `reading model "${id}"`);
      }
      if (n !== length) throw new WickError('storage', `reading model "${id}" stopped at byte ${at + n} of ${size}`);
      if (hasher) {
        copy.set(into);
        hasher.update(copy.subarray(0, n));
      }
      at += n;
      onProgress?.({ phase: 'load', loaded: at, total: size });
    }
    return size;
  } finally {
    sync.close();
  }
}

// How long recordUnsupported waits for a model that another tab reads or writes.
const RECORD_WAIT_MS = 10_000;

/**
 * Records on a stored model's manifest why this version of the engine cannot run it: `reason`,
 * the message of the load's unsupported_model error (listModels shows it as `unsupported`, and
 * the page says so instead of offering the model as if it worked), or clears that record
 * (`reason` null) once a load has run the model (a later version that runs it). Only the bytes
 * the load read count: `sha256` must still be the manifest's (the model may have been replaced
 * in between). Best effort: it waits RECORD_WAIT_MS at most for the model's lock, and resolves
 * to whether the manifest now says what was asked; it never throws, so the load's own error
 * (or success) stands. Page or worker.
 */
export async function recordUnsupported(id, reason, { sha256 } = {}) {
  try {
    checkId(id);
    const dir = await modelsDir();
    requireLocks();
    const signal = AbortSignal.timeout(RECORD_WAIT_MS);
    return await navigator.locks.request(lockName(id), { mode: 'exclusive', signal }, async () => {
      const manifest = await completeManifest(dir, id);
      if (!manifest || (sha256 && manifest.sha256 !== String(sha256).toLowerCase())) return false;
      const { unsupported, ...rest } = manifest;
      if (reason ? unsupported?.reason === reason : !unsupported) return true;
      await writeJson(dir, manifestName(id), reason ? { ...rest, unsupported: { reason: String(reason), at: new Date().toISOString() } } : rest);
      return true;
    });
  } catch {
    return false; // not recorded: the next load of the model tries again
  }
}

/**
 * Adds the checksum of a model stored without one to its manifest. Writing a model's files takes
 * its exclusive lock, and this one is asked for only once the read's shared lock is released (a
 * holder of the shared lock that waits for the exclusive one waits for itself, and two tabs
 * reading would wait for each other) and only if it is free now: while other tabs read or write
 * the model, a later load records it. The manifest must still be the one read: the model may have
 * been replaced or deleted in between. A failure here fails nothing (the bytes were checked).
 */
async function recordChecksum(dir, id, read, xxh3) {
  try {
    await navigator.locks.request(lockName(id), { mode: 'exclusive', ifAvailable: true }, async (lock) => {
      if (!lock) return;
      const manifest = await completeManifest(dir, id);
      if (!manifest || manifest.xxh3 || manifest.sha256 !== read.sha256 || manifest.storedAt !== read.storedAt) return;
      await writeJson(dir, manifestName(id), { ...manifest, xxh3 });
    });
  } catch {
    // not recorded: the next load tries again
  }
}
