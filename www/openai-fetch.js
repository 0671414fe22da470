// The engine as OpenAI's HTTP API, behind a `fetch`-compatible function: code written for OpenAI
// (the official `openai` npm client, or plain fetch calls) runs unchanged against the model in
// this tab. No network is involved: requests never leave the page.
//
//   import OpenAI from 'openai';
//   const client = new OpenAI({ apiKey: 'unused', baseURL: 'https://wick.invalid/v1',
//     fetch: engine.fetch, dangerouslyAllowBrowser: true });
//   const r = await client.chat.completions.create({ model: 'wick', messages });
//
// Routes (any origin and any path prefix: `baseURL` is only a name):
//   POST .../chat/completions   a chat completion; `stream: true` answers text/event-stream
//   POST .../completions        a legacy completion, the same way
//   GET  .../models             the loaded model;  GET .../models/<id>  it, or 404
// Errors are OpenAI's: an HTTP status and {error: {message, type, param, code}}; an error after
// a stream has started is one `data: {error}` event. `init.signal` aborts as it aborts fetch:
// the promise (or the body's stream) rejects with an AbortError (wick's, with `partial`).

import { WickError } from './errors.js';

const STATUS = {
  invalid_parameter: 400,
  context_overflow: 400,
  chat_template: 400,    // the model has no usable chat template: /completions still works
  not_found: 404,
  method_not_allowed: 405,
  busy: 409,
  gpu_lost: 503,         // the engine moved to the CPU: the same request again succeeds
};

const TYPES = { 400: 'invalid_request_error', 404: 'invalid_request_error', 405: 'invalid_request_error', 409: 'conflict_error' };

/** OpenAI's error body for a WickError (or anything thrown). `code` is wick's error kind, except
 *  a prompt too long for the context, which has OpenAI's code. */
export function errorBody(err) {
  const kind = typeof err?.kind === 'string' ? err.kind : 'internal';
  const status = STATUS[kind] ?? 500;
  // The messages of invalid_parameter errors start with the field they are about (`temperature`,
  // `tools[0].function.name`, `messages[2].tool_calls[0].id`).
  const param = kind === 'invalid_parameter' ? /^([a-z_]+(?:\[\d+\]|\.[a-z_]+)*)[ :]/.exec(err.message ?? '')?.[1] ?? null : null;
  return {
    status,
    body: {
      error: {
        message: String(err?.message ?? err),
        type: TYPES[status] ?? 'server_error',
        param,
        code: kind === 'context_overflow' ? 'context_length_exceeded' : kind,
      },
    },
  };
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8' };

function json(status, value) {
  return new Response(JSON.stringify(value), { status, headers: JSON_HEADERS });
}

function failure(err) {
  const { status, body } = errorBody(err);
  return json(status, body);
}

/** Which route a path is: the last segments after any prefix. */
function route(pathname) {
  const path = pathname.replace(/\/+$/, '');
  if (path.endsWith('/chat/completions')) return { name: 'chat' };
  if (path.endsWith('/completions')) return { name: 'completion' };
  if (path.endsWith('/models')) return { name: 'models' };
  const model = /\/models\/([^/]+)$/.exec(path);
  if (model) return { name: 'model', id: decodeURIComponent(model[1]) };
  return null;
}

function aborted(signal) {
  const e = new WickError('aborted', 'the request was aborted');
  e.cause = signal?.reason;
  return e;
}

/**
 * A `fetch` that answers OpenAI's API from `engine` (an Engine of wick.js). Engines carry one as
 * `engine.fetch`.
 */
export function createFetch(engine) {
  const created = Math.floor(Date.now() / 1000);
  const modelObject = () => ({ id: engine.info().modelId, object: 'model', created, owned_by: 'wick' });

  return async function wickFetch(input, init = {}) {
    const request = typeof Request !== 'undefined' && input instanceof Request ? input : null;
    const url = new URL(request ? request.url : String(input), 'https://wick.invalid/');
    const method = String(init.method ?? request?.method ?? 'GET').toUpperCase();
    const signal = init.signal ?? request?.signal ?? undefined;
    if (signal?.aborted) throw aborted(signal);
    const r = route(url.pathname);
    if (!r) return failure({ kind: 'not_found', message: `no such endpoint: ${method} ${url.pathname} (wick answers /v1/chat/completions, /v1/completions and /v1/models)` });
    const allowed = r.name === 'chat' || r.name === 'completion' ? 'POST' : 'GET';
    if (method !== allowed) return failure({ kind: 'method_not_allowed', message: `${method} ${url.pathname}: use ${allowed}` });

    if (r.name === 'models') return json(200, { object: 'list', data: [modelObject()] });
    if (r.name === 'model') {
      if (r.id === engine.info().modelId) return json(200, modelObject());
      return failure({ kind: 'not_found', message: `the model '${r.id}' is not loaded here (this engine runs '${engine.info().modelId}')` });
    }

    let fields;
    try {
      const text = request && init.body === undefined ? await request.text() : await new Response(init.body ?? '').text();
      fields = JSON.parse(text);
    } catch {
      return failure({ kind: 'invalid_parameter', message: 'the request body must be a JSON object' });
    }
    if (fields === null || typeof fields !== 'object' || Array.isArray(fields)) {
      return failure({ kind: 'invalid_parameter', message: 'the request body must be a JSON object' });
    }
    // `model` names the model at OpenAI; here there is one, whatever the name.
    const params = { ...fields, signal };
    const api = r.name === 'chat' ? engine.chat.completions : engine.completions;
    let result;
    try {
      result = await api.create(params);
    } catch (e) {
      if (e?.kind === 'aborted') throw e;
      return failure(e);
    }
    if (!params.stream) return json(200, result);
    return new Response(eventStream(result), {
      status: 200,
      headers: { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-cache' },
    });
  };
}

/** A stream of chunks as server-sent events: `data: {json}` each, then `data: [DONE]`. */
function eventStream(stream) {
  const encoder = new TextEncoder();
  const chunks = stream[Symbol.asyncIterator]();
  const event = (data) => encoder.encode(`data: ${data}\n\n`);
  return new ReadableStream({
    async pull(controller) {
      try {
        const { value, done } = await chunks.next();
        if (done) {
          controller.enqueue(event('[DONE]'));
          controller.close();
        } else {
          controller.enqueue(event(JSON.stringify(value)));
        }
      } catch (e) {
        // An abort fails the body as fetch's does; any other error is an event, as OpenAI's.
        if (e?.kind === 'aborted') {
          controller.error(e);
        } else {
          controller.enqueue(event(JSON.stringify(errorBody(e).body)));
          controller.close();
        }
      }
    },
    // The reader let go (the SDK's consumer broke out of its loop): stop generating.
    async cancel() {
      await chunks.return?.();
    },
  });
}
