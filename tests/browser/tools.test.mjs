// Tool calling and reasoning through the JS API in headless Chromium, with the real engine:
// SmolLM2 (whose ChatML template has no tools, so the engine's generic JSON format applies):
// `tool_choice` required and named give `message.tool_calls` whose arguments validate against
// the tool's schema under Ajv, with `finish_reason: 'tool_calls'`; streamed deltas add up to the
// same calls in OpenAI's streaming shape; a whole tool-calling loop; the same through the
// official `openai` client over `engine.fetch`; bad tools, tool_choice and messages as typed
// errors; `applyTemplate` with tools equal to the native `wick apply-template --tools`. And the
// tiny random Qwen3 with the real Qwen3 template (a thinking template in the Hermes format):
// reasoning kept apart from the answer (whole and streamed, reasoning first); its 256-token
// context holds no tool definitions, so its calls are left to tests/tools.rs. Run: node --test --test-timeout=1200000 tests/browser/tools.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { withStrings } from './gguf-edit.mjs';
import { MODELS_DIR, REPO, SMOLLM2, SMOLLM2_SHA256, TINY_DIR, packageRoute, serverAndBrowser } from './harness.mjs';

const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather in a city.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 40 }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};
const CONVERT = {
  type: 'function',
  function: {
    name: 'convert_length',
    description: 'Converts a length from one unit to another.',
    parameters: {
      type: 'object',
      properties: { value: { type: 'number' }, from: { type: 'string', enum: ['m', 'km', 'mi', 'ft'] }, to: { type: 'string', enum: ['m', 'km', 'mi', 'ft'] } },
      required: ['value', 'from', 'to'],
      additionalProperties: false,
    },
  },
};
const TOOLS = [WEATHER, CONVERT];
const ASK = [
  { role: 'system', content: 'You are a helpful assistant. Use the tools when they help.' },
  { role: 'user', content: 'What is the weather in Paris right now, in celsius?' },
];
// Greedy, a fixed seed (the call ids come from it), and room for the call.
const GREEDY = { temperature: 0, seed: 7, max_tokens: 120 };

/** The tiny Qwen3 fixture with the real Qwen3 0.6B template (thinks in <think>, calls tools as
 *  Hermes' <tool_call>), written into a temporary folder served at /gen/. */
const QWEN3_THINK = 'qwen3-think.gguf';
let dir;

const routes = async (req, res) => {
  const urlPath = (req.url ?? '/').split('?')[0];
  if (urlPath === `/gen/${QWEN3_THINK}`) {
    const bytes = await fsp.readFile(path.join(dir, QWEN3_THINK));
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.length, 'Cache-Control': 'no-store' });
    res.end(bytes);
    return true;
  }
  return packageRoute('openai')(req, res);
};

function validate(schema, value) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  assert.ok(ajv.validate(schema, value), `${JSON.stringify(value)}: ${JSON.stringify(ajv.errors)}`);
}

/** A call as OpenAI returns it, its arguments valid for the tool of its name. */
function checkCall(call, tools = TOOLS) {
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_[A-Za-z0-9]+$/);
  const tool = tools.find((t) => t.function.name === call.function.name);
  assert.ok(tool, `called ${call.function.name}, not among the tools`);
  assert.equal(typeof call.function.arguments, 'string');
  validate(tool.function.parameters, JSON.parse(call.function.arguments));
}

/** What streamed chunks add up to: content, reasoning, and the calls rebuilt from their deltas
 *  as OpenAI clients rebuild them (by index; id, type and name in the first delta, arguments
 *  concatenated). */
function assemble(chunks) {
  let content = '';
  let reasoning = '';
  const calls = [];
  for (const c of chunks) {
    const d = c.choices[0]?.delta;
    if (!d) continue;
    content += d.content ?? '';
    reasoning += d.reasoning_content ?? '';
    for (const t of d.tool_calls ?? []) {
      if (!calls[t.index]) {
        assert.ok(t.id && t.type === 'function' && typeof t.function.name === 'string', `first delta of call ${t.index}: ${JSON.stringify(t)}`);
        calls[t.index] = { id: t.id, type: t.type, function: { name: t.function.name, arguments: '' } };
      }
      calls[t.index].function.arguments += t.function.arguments ?? '';
    }
  }
  return { content, reasoning, calls, finish: chunks.filter((c) => c.choices[0]?.finish_reason).map((c) => c.choices[0].finish_reason) };
}

/** `wick apply-template` natively on `model` with `messages` and `tools`. */
function cliTemplate(model, messages, tools) {
  const m = path.join(dir, 'messages.json');
  const t = path.join(dir, 'tools.json');
  return fsp.writeFile(m, JSON.stringify(messages))
    .then(() => fsp.writeFile(t, JSON.stringify(tools)))
    .then(() => JSON.parse(execFileSync(path.join(REPO, 'target/release/wick'),
      ['apply-template', model, '--messages', m, '--tools', t, '--json'], { encoding: 'utf8' })).text);
}

describe('tools and reasoning in the tab', () => {
  const env = serverAndBrowser({ server: { extraRoutes: routes } });
  let page;
  before(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wick-tools-'));
    const template = await fsp.readFile(path.join(REPO, 'tests/fixtures/templates/Qwen-Qwen3-0.6B.jinja'), 'utf8');
    await withStrings(path.join(TINY_DIR, 'qwen3.gguf'), path.join(dir, QWEN3_THINK), { 'tokenizer.chat_template': template });
    page = await env.browser.newPage(`${env.server.url}test/openai.html`);
    await page.waitForFunction(() => window.ready);
    await page.evaluate(async ([model, sha256]) => {
      window.engine = await window.wick.createEngine({ model: `/models/${model}`, sha256 });
    }, [SMOLLM2, SMOLLM2_SHA256]);
  });
  after(() => dir && fsp.rm(dir, { recursive: true, force: true }));

  /** Runs `fn(engine, arg)` in the page; a thrown error comes back as {error}. */
  const inPage = (fn, arg) => page.evaluate(async ([src, arg]) => {
    // A one-token request on another prompt first, so that every request's prompt runs whole
    // (batched and one-by-one passes round differently: requests compared value for value
    // start alike).
    window.fresh = (engine) => engine.completions.create({ prompt: 'Zebra', max_tokens: 1 });
    // eslint-disable-next-line no-eval
    const f = eval(`(${src})`);
    try {
      return await f(window.engine, arg);
    } catch (e) {
      return { error: { name: e.name, kind: e.kind, message: e.message, partial: e.partial } };
    }
  }, [fn.toString(), arg]);

  test('tool_choice required and named: tool_calls that validate, finish_reason tool_calls, streamed deltas that add up', async () => {
    const r = await inPage(async (engine, [messages, tools, greedy]) => {
      await window.fresh(engine);
      const required = await engine.chat.completions.create({ messages, tools, tool_choice: 'required', ...greedy });
      await window.fresh(engine);
      const chunks = [];
      for await (const c of await engine.chat.completions.create({ messages, tools, tool_choice: 'required', stream: true, ...greedy })) chunks.push(c);
      await window.fresh(engine);
      const named = await engine.chat.completions.create({
        messages: [{ role: 'user', content: 'How many feet are 3 kilometres?' }], tools,
        tool_choice: { type: 'function', function: { name: 'convert_length' } }, ...greedy });
      return { required, chunks, named };
    }, [ASK, TOOLS, GREEDY]);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    const choice = r.required.choices[0];
    console.log('required:', JSON.stringify(choice.message));
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.content, null, 'content is null when the answer is only tool calls');
    assert.ok(choice.message.tool_calls.length >= 1);
    for (const call of choice.message.tool_calls) checkCall(call);

    const s = assemble(r.chunks);
    assert.deepEqual(r.chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.deepEqual(s.calls, choice.message.tool_calls, 'the streamed deltas add up to the whole answer\'s calls');
    assert.equal(s.content, '');
    assert.deepEqual(s.finish, ['tool_calls']);
    for (const c of r.chunks) assert.equal(c.object, 'chat.completion.chunk');

    const named = r.named.choices[0];
    console.log('named:', JSON.stringify(named.message));
    assert.equal(named.finish_reason, 'tool_calls');
    assert.deepEqual(named.message.tool_calls.map((c) => c.function.name), ['convert_length']);
    checkCall(named.message.tool_calls[0]);
  });

  test('a tool-calling loop: the call, the tool\'s result as role tool, then an answer in text', async () => {
    const r = await inPage(async (engine, [ask, tools, greedy]) => {
      const messages = [...ask];
      const turns = [];
      const weather = (args) => JSON.stringify({ city: args.city, temperature: 18, unit: args.unit, sky: 'sunny' });
      // The first turn must call; after the tool's result the next one answers (`none`: the
      // application has what it needs, as OpenAI clients end a loop). In between, an `auto`
      // turn gives a valid call or an answer (the model decides; not sent back).
      let auto = null;
      for (const choice of ['required', 'none']) {
        const r = await engine.chat.completions.create({ messages, tools, tool_choice: choice, ...greedy, max_tokens: 160 });
        const m = r.choices[0].message;
        turns.push({ choice, finish: r.choices[0].finish_reason, message: m, prompt_tokens: r.usage.prompt_tokens });
        messages.push(m); // sent back as it came, `refusal: null` and all
        if (!m.tool_calls) break;
        for (const call of m.tool_calls) {
          messages.push({ role: 'tool', tool_call_id: call.id, name: call.function.name, content: weather(JSON.parse(call.function.arguments)) });
        }
        const a = await engine.chat.completions.create({ messages, tools, tool_choice: 'auto', ...greedy, max_tokens: 160 });
        auto = { finish: a.choices[0].finish_reason, message: a.choices[0].message };
      }
      // The same question without the call and its result, for their length in the prompt.
      const before = await engine.chat.completions.create({ messages: ask, tools, tool_choice: 'none', max_tokens: 1 });
      return { turns, auto, before: before.usage.prompt_tokens };
    }, [ASK, TOOLS, GREEDY]);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    for (const t of r.turns) console.log(`${t.choice}: ${t.finish} ${JSON.stringify(t.message)}`);
    console.log(`auto after the result: ${r.auto.finish} ${JSON.stringify(r.auto.message)}`);
    if (r.auto.message.tool_calls) {
      assert.equal(r.auto.finish, 'tool_calls');
      r.auto.message.tool_calls.forEach((c) => checkCall(c));
    } else {
      assert.equal(r.auto.finish, 'stop');
      assert.ok(r.auto.message.content.trim().length > 0);
    }
    assert.equal(r.turns.length, 2);
    assert.equal(r.turns[0].finish, 'tool_calls');
    checkCall(r.turns[0].message.tool_calls[0]);
    const last = r.turns.at(-1);
    assert.equal(last.finish, 'stop');
    assert.equal(last.message.tool_calls, undefined);
    assert.ok(typeof last.message.content === 'string' && last.message.content.trim().length > 0, JSON.stringify(last.message));
    assert.ok(r.turns[1].prompt_tokens > r.before + 20, `the call and its result went back to the model (${r.turns[1].prompt_tokens} prompt tokens, ${r.before} without them)`);
  });

  test('the official openai client over engine.fetch: tools whole and streamed, errors as 400s', async () => {
    const r = await inPage(async (engine, [messages, tools, greedy]) => {
      const { OpenAI } = window;
      const client = new OpenAI({ apiKey: 'unused', baseURL: 'https://wick.invalid/v1', fetch: engine.fetch, dangerouslyAllowBrowser: true });
      const model = engine.info().modelId;
      await window.fresh(engine);
      const direct = await engine.chat.completions.create({ messages, tools, tool_choice: 'required', ...greedy });
      await window.fresh(engine);
      const whole = await client.chat.completions.create({ model, messages, tools, tool_choice: 'required', ...greedy });
      await window.fresh(engine);
      const chunks = [];
      for await (const c of await client.chat.completions.create({ model, messages, tools, tool_choice: 'required', stream: true, ...greedy })) chunks.push(c);
      let bad = null;
      try {
        await client.chat.completions.create({ model, messages, tools, tool_choice: { type: 'function', function: { name: 'launch_rocket' } } });
      } catch (e) {
        bad = { isBadRequest: e instanceof OpenAI.BadRequestError, status: e.status, param: e.param, code: e.code, message: e.message };
      }
      return { direct: direct.choices[0], whole, chunks, bad };
    }, [ASK, TOOLS, GREEDY]);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.whole.object, 'chat.completion');
    assert.deepEqual(r.whole.choices[0].message, r.direct.message, 'the SDK gets what the JS API gives');
    assert.equal(r.whole.choices[0].finish_reason, 'tool_calls');
    const s = assemble(r.chunks);
    assert.deepEqual(s.calls, r.direct.message.tool_calls, 'streamed as server-sent events, the same calls');
    assert.deepEqual(s.finish, ['tool_calls']);
    assert.deepEqual({ ...r.bad, message: undefined }, { isBadRequest: true, status: 400, param: 'tool_choice', code: 'invalid_parameter', message: undefined });
    assert.match(r.bad.message, /launch_rocket.*not among the tools/);
  });

  test('bad tools, tool_choice and messages are invalid_parameter errors naming the field', async () => {
    const cases = [
      [{ tools: WEATHER }, /^tools must be an array/],
      [{ tools: [{ type: 'retrieval' }] }, /^tools\[0\] must be \{type: 'function'/],
      [{ tools: [{ type: 'function', function: { description: 'x' } }] }, /^tools\[0\]\.function\.name must be/],
      [{ tools: [{ type: 'function', function: { name: 'has space' } }] }, /^tools\[0\]\.function\.name must be/],
      [{ tools: [{ type: 'function', function: { name: 'f', parameters: 'object' } }] }, /^tools\[0\]\.function\.parameters must be a JSON schema object/],
      [{ tools: [WEATHER, WEATHER] }, /^tools\[1\]\.function\.name: "get_weather" is defined twice/],
      [{ tools: TOOLS, tool_choice: 'always' }, /^tool_choice must be 'auto', 'none', 'required'/],
      [{ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'launch_rocket' } } }, /^tool_choice names the function "launch_rocket", which is not among the tools \(get_weather, convert_length\)/],
      [{ tool_choice: 'required' }, /^tool_choice 'required' needs tools/],
      [{ messages: [{ role: 'robot', content: 'hi' }] }, /^messages\[0\]\.role must be one of/],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, /^messages\[0\]\.content\[0\] must be \{type: 'text', text: string\}/],
      [{ messages: [{ role: 'user', content: null }] }, /^messages\[0\]\.content must be a string or an array/],
      [{ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] }] },
        /^messages\[1\]\.tool_calls\[0\]\.function\.arguments must be a string/],
      [{ messages: [{ role: 'user', content: 'hi' }, { role: 'tool', content: '18 C' }] }, /^messages\[1\]\.tool_call_id must be/],
      [{ messages: [{ role: 'user', content: 'hi', tool_calls: [] }] }, /^messages\[0\]\.tool_calls: only assistant messages/],
      // The engine's own check, after the JS API's: a response format with tools.
      [{ tools: TOOLS, response_format: { type: 'json_object' } }, /response_format cannot be combined with tools/],
    ];
    const r = await inPage(async (engine, [cases, ask, weather]) => {
      const out = [];
      for (const extra of cases) {
        try {
          await engine.chat.completions.create({ messages: ask, max_tokens: 2, ...extra });
          out.push(null);
        } catch (e) {
          out.push({ kind: e.kind, message: e.message });
        }
      }
      // Shapes that are fine: text parts, developer, an assistant turn of only calls, a tool
      // result with a name; and tools with tool_choice none.
      const ok = await engine.chat.completions.create({ max_tokens: 2, tools: [weather], tool_choice: 'none', messages: [
        { role: 'developer', content: [{ type: 'text', text: 'Be brief.' }] },
        { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }, { type: 'text', text: ' In celsius.' }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo","unit":"celsius"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', name: 'get_weather', content: '{"temperature": 4}' },
      ] }).then((x) => x.choices[0].finish_reason, (e) => `${e.kind}: ${e.message}`);
      return { out, ok };
    }, [cases.map(([extra]) => extra), ASK, WEATHER]);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    for (const [i, [extra, pattern]] of cases.entries()) {
      assert.ok(r.out[i], `${JSON.stringify(extra)} was accepted`);
      assert.equal(r.out[i].kind, 'invalid_parameter', `${JSON.stringify(extra)}: ${JSON.stringify(r.out[i])}`);
      assert.match(r.out[i].message, pattern);
    }
    assert.ok(['length', 'stop'].includes(r.ok), r.ok);
  });

  test('applyTemplate with tools equals the native wick apply-template --tools', async () => {
    const conversation = [
      ...ASK,
      // Content '' rather than null: Qwen 3's template (rendered as it is here) tests it as text.
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_abc', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Paris", "unit": "celsius"}' } }] },
      { role: 'tool', tool_call_id: 'call_abc', name: 'get_weather', content: '{"temperature": 18, "sky": "sunny"}' },
    ];
    const r = await inPage(async (engine, [messages, tools]) => {
      // SmolLM2's template renders no tools (nor a turn of only calls: it reads `content`).
      const smol = await engine.applyTemplate(messages.slice(0, 2), { tools });
      const qwen = await window.wick.createEngine({ model: '/gen/qwen3-think.gguf' });
      const qwen3 = await qwen.applyTemplate(messages, { tools });
      await qwen.unload();
      return { smol, qwen3 };
    }, [conversation, TOOLS]);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.smol, await cliTemplate(path.join(MODELS_DIR, SMOLLM2), conversation.slice(0, 2), TOOLS));
    assert.equal(r.qwen3, await cliTemplate(path.join(dir, QWEN3_THINK), conversation, TOOLS));
    assert.ok(r.qwen3.includes('<tools>') && r.qwen3.includes('"get_weather"') && r.qwen3.includes('<tool_response>'), r.qwen3);
  });

  test('a thinking template (tiny Qwen3, real template): reasoning_content apart from content, whole and streamed first', async () => {
    // The tiny model's weights are random: a regex grammar writes the answer a thinking model
    // writes, and the engine must split it as it streams.
    const pattern = '<think>\\nThe user says hello\\. I greet them\\.\\n</think>\\n\\nHello there!';
    const r = await inPage(async (_, pattern) => {
      const engine = await window.wick.createEngine({ model: '/gen/qwen3-think.gguf' });
      const messages = [{ role: 'user', content: 'hi' }];
      const req = { messages, grammar: { type: 'regex', pattern }, temperature: 0, max_tokens: 100 };
      const whole = await engine.chat.completions.create(req);
      const chunks = [];
      for await (const c of await engine.chat.completions.create({ ...req, stream: true })) chunks.push(c);
      await engine.unload();
      return { whole: whole.choices[0], chunks };
    }, pattern);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    console.log('thinking:', JSON.stringify(r.whole.message));
    assert.equal(r.whole.finish_reason, 'stop');
    assert.equal(r.whole.message.reasoning_content, 'The user says hello. I greet them.');
    assert.equal(r.whole.message.content, 'Hello there!');
    const s = assemble(r.chunks);
    assert.equal(s.reasoning, 'The user says hello. I greet them.');
    assert.equal(s.content, 'Hello there!');
    const kinds = r.chunks.map((c) => c.choices[0]?.delta).filter((d) => d && (d.content || d.reasoning_content)).map((d) => (d.reasoning_content ? 'r' : 'c'));
    assert.ok(kinds.indexOf('c') > kinds.lastIndexOf('r') && kinds.filter((k) => k === 'r').length > 1,
      `reasoning streams in several deltas before the answer: ${kinds.join('')}`);
  });

  test('an aborted tool call keeps what was parsed in error.partial', async () => {
    const r = await inPage(async (engine, [messages, tools, greedy]) => {
      const ctl = new AbortController();
      const chunks = [];
      let error = null;
      try {
        const stream = await engine.chat.completions.create({ messages, tools, tool_choice: 'required', stream: true, signal: ctl.signal, ...greedy });
        let n = 0;
        for await (const c of stream) {
          chunks.push(c);
          if (++n === 1) ctl.abort(); // after the role chunk: the call is still being written
        }
      } catch (e) {
        error = { kind: e.kind, partial: e.partial };
      }
      return { aborted: error, chunks: chunks.length };
    }, [ASK, TOOLS, GREEDY]);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.aborted.kind, 'aborted');
    const m = r.aborted.partial.choices[0];
    assert.equal(m.finish_reason, 'aborted');
    assert.equal(m.message.role, 'assistant');
    // What the parser held when the abort came is given back: an unfinished call is text (the
    // start of the generic format's JSON), nothing is lost.
    assert.equal(typeof m.message.content, 'string');
    assert.ok(m.message.content === '' || m.message.content.startsWith('{'), m.message.content);
  });
});
