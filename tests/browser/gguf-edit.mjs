// Rewrites the metadata of a real GGUF file, keeping its tensors byte for byte: for tests that
// need a real model with hostile or broken metadata (names, licenses, chat templates). GGUF v2/v3:
// header, key/value pairs, tensor infos, padding to the alignment, tensor data; tensor offsets
// are relative to the data, so only the padding before it changes.
import fsp from 'node:fs/promises';

const STRING = 8;
const ARRAY = 9;
// Byte sizes of the fixed-size value types, by GGUF type id.
const FIXED = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Reads a GGUF buffer's parts: {version, kvs: [{key, type, raw}], tensorInfos, alignment, data}. */
function parse(buf) {
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error('not a GGUF file');
  let at = 4;
  const u32 = () => { const v = buf.readUInt32LE(at); at += 4; return v; };
  const u64 = () => { const v = Number(buf.readBigUInt64LE(at)); at += 8; return v; };
  const str = () => { const n = u64(); const s = buf.toString('utf8', at, at + n); at += n; return s; };
  const skipValue = (type) => {
    if (type === STRING) {
      const length = u64(); // read before `at` is: `at += u64()` would add to the old offset
      at += length;
      return;
    }
    if (type === ARRAY) {
      const inner = u32();
      const count = u64();
      for (let i = 0; i < count; i++) skipValue(inner);
      return;
    }
    if (!(type in FIXED)) throw new Error(`unknown GGUF type ${type}`);
    at += FIXED[type];
  };
  const version = u32();
  const tensorCount = u64();
  const kvCount = u64();
  const kvs = [];
  for (let i = 0; i < kvCount; i++) {
    const key = str();
    const type = u32();
    const start = at;
    skipValue(type);
    kvs.push({ key, type, raw: buf.subarray(start, at) });
  }
  const infoStart = at;
  for (let i = 0; i < tensorCount; i++) {
    str();
    const dims = u32();
    at += 8 * dims + 4 + 8;
  }
  const tensorInfos = buf.subarray(infoStart, at);
  const align = kvs.find((kv) => kv.key === 'general.alignment');
  const alignment = align ? align.raw.readUInt32LE(0) : 32;
  const dataStart = Math.ceil(at / alignment) * alignment;
  return { version, tensorCount, kvs, tensorInfos, alignment, data: buf.subarray(dataStart) };
}

function u64le(n) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function u32le(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

function gstring(s) {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([u64le(bytes.length), bytes]);
}

/**
 * Copies the GGUF at `from` to `to` with string metadata set: `strings` maps keys to their new
 * values (a missing key is added).
 */
export async function withStrings(from, to, strings) {
  const parts = parse(await fsp.readFile(from));
  const kvs = parts.kvs.map((kv) => (kv.key in strings ? { key: kv.key, type: STRING, raw: gstring(strings[kv.key]) } : kv));
  for (const [key, value] of Object.entries(strings)) {
    if (!kvs.some((kv) => kv.key === key)) kvs.push({ key, type: STRING, raw: gstring(value) });
  }
  const head = Buffer.concat([
    Buffer.from('GGUF', 'latin1'), u32le(parts.version), u64le(parts.tensorCount), u64le(kvs.length),
    ...kvs.flatMap((kv) => [gstring(kv.key), u32le(kv.type), kv.raw]),
    parts.tensorInfos,
  ]);
  const padding = Buffer.alloc((parts.alignment - (head.length % parts.alignment)) % parts.alignment);
  await fsp.writeFile(to, Buffer.concat([head, padding, parts.data]));
}
