// What the engine adapters of the bench page share. An adapter's open() returns
//   { info: {threads, build}, count(prompt), generate(prompt, n), close() }
// and generate() returns { promptN, cachedN, genN, prefillMs, decodeMs, text, reported? }:
// prompt tokens run and reused from the cache, tokens generated, prefillMs from the request to the
// first generated token and decodeMs from there to the last one, both timed in the page (the same
// clock and definition for every engine), and `reported`: the engine's own tok/s where it has them.

/** Times a stream of chunks: `pieceOf(chunk)` is its text; the first chunk is the first token. */
export async function timeStream(t0, stream, pieceOf) {
  let first = null;
  let text = '';
  let last = null;
  for await (const chunk of stream) {
    first ??= performance.now();
    text += pieceOf(chunk) ?? '';
    last = chunk;
  }
  const end = performance.now();
  return { prefillMs: first - t0, decodeMs: end - first, text, last };
}

/** wllama's logger, without its debug and info lines. */
export const quietLogger = { debug() {}, log() {}, warn: console.warn, error: console.error };

/** An absolute URL for a model file served to `engine` (each wllama keeps its own OPFS cache). */
export const modelUrl = (engine, model) => new URL(`/bench/models/${engine}/${model}`, location.href).href;
