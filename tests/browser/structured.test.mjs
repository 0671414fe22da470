// Structured output through the JS API in headless Chromium, with the two real models: every
// schema of tests/fixtures/structured/schemas.json (33 real-world shapes and "any JSON object",
// the suite tests/structured.rs runs natively) sent as OpenAI's `response_format`; every answer
// must end by itself, parse, and validate against its schema under Ajv (formats checked), an
// independent validator. Also: a streamed JSON answer, a regex `grammar`, and bad schemas and
// malformed options as typed errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { REPO, SMOLLM2, SMOLLM2_SHA256, serverAndBrowser } from './harness.mjs';

const GEMMA = 'gemma-3-270m-q4_k_m.gguf';
const CASES = JSON.parse(fs.readFileSync(path.join(REPO, 'tests/fixtures/structured/schemas.json'), 'utf8'));
// As tests/structured.rs: greedy with a mild repetition penalty.
const SAMPLING = { max_tokens: 600, temperature: 0, repetition_penalty: 1.1 };

function validator(schema) {
  // multipleOfPrecision: Ajv divides in binary floating point (-0.83 / 0.01 is not whole).
  const ajv = new Ajv2020({ allErrors: true, strict: false, multipleOfPrecision: 9 });
  addFormats(ajv);
  return ajv.compile(schema ?? { type: 'object' });
}

describe('structured output in the browser', () => {
  const env = serverAndBrowser();
  let page;
  before(async () => {
    page = await env.browser.newPage(`${env.server.url}test/api.html`);
    await page.waitForFunction(() => window.ready);
  });

  for (const model of [SMOLLM2, GEMMA]) {
    test(`every schema's answer parses and validates: ${model}`, async () => {
      const results = await page.evaluate(async ([model, sha256, cases, sampling]) => {
        const engine = await window.wick.createEngine({ model: `/models/${model}`, ...(sha256 ? { sha256 } : {}) });
        const chat = engine.info().card.has_chat_template;
        const out = [];
        for (const c of cases) {
          const response_format = c.schema === null
            ? { type: 'json_object' }
            : { type: 'json_schema', json_schema: { name: c.name, schema: c.schema, strict: true } };
          const started = performance.now();
          try {
            // The Gemma 3 270M file is the base model, without a chat template: a plain prompt.
            const r = chat
              ? await engine.chat.completions.create({ messages: [
                  { role: 'system', content: 'You answer with one JSON object.' },
                  { role: 'user', content: c.prompt }], response_format, ...sampling })
              : await engine.completions.create({
                  prompt: `Task: ${c.prompt}\nAnswer as one JSON object:\n`, response_format, ...sampling });
            out.push({ name: c.name, text: chat ? r.choices[0].message.content : r.choices[0].text,
              finish: r.choices[0].finish_reason, tokens: r.usage.completion_tokens, ms: performance.now() - started });
          } catch (e) {
            out.push({ name: c.name, error: `${e.kind}: ${e.message}` });
          }
        }
        await engine.unload();
        return out;
      }, [model, model === SMOLLM2 ? SMOLLM2_SHA256 : null, CASES, SAMPLING]);
      const failures = [];
      let tokens = 0;
      let ms = 0;
      for (const [i, r] of results.entries()) {
        let problem = r.error;
        if (!problem && r.finish !== 'stop') problem = `ended by ${r.finish}`;
        if (!problem) {
          let value;
          try {
            value = JSON.parse(r.text);
          } catch (e) {
            problem = `does not parse: ${e.message}`;
          }
          if (!problem) {
            const validate = validator(CASES[i].schema);
            if (!validate(value)) problem = `invalid: ${JSON.stringify(validate.errors)}`;
          }
        }
        tokens += r.tokens ?? 0;
        ms += r.ms ?? 0;
        console.log(`${model} ${r.name.padEnd(16)} ${String(r.tokens).padStart(4)} tokens ${problem ? 'BAD' : 'ok '} ${(r.text ?? '').slice(0, 120)}`);
        if (problem) failures.push(`${r.name}: ${problem}\n  ${r.text}`);
      }
      console.log(`${model}: ${results.length} schemas, ${tokens} tokens in ${(ms / 1000).toFixed(1)} s`);
      assert.equal(results.length, CASES.length);
      assert.deepEqual(failures, []);
    });
  }

  test('a streamed JSON answer, a regex grammar, and typed errors', async () => {
    const r = await page.evaluate(async ([model, sha256]) => {
      const engine = await window.wick.createEngine({ model: `/models/${model}`, sha256 });
      const messages = [{ role: 'user', content: 'Give a person as JSON.' }];
      const stream = await engine.chat.completions.create({ messages, stream: true, temperature: 0, max_tokens: 200,
        response_format: { type: 'json_schema', json_schema: { name: 'p', schema: {
          type: 'object', properties: { name: { type: 'string', maxLength: 30 }, age: { type: 'integer', minimum: 0, maximum: 120 } },
          required: ['name', 'age'], additionalProperties: false } } } });
      let streamed = '';
      let chunks = 0;
      for await (const c of stream) {
        streamed += c.choices[0]?.delta?.content ?? '';
        chunks++;
      }
      const date = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'What is the date?' }],
        temperature: 0, max_tokens: 20, grammar: { type: 'regex', pattern: '20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])' } });
      const errors = [];
      for (const bad of [
        { response_format: { type: 'json_schema', json_schema: { name: 'u', schema: { type: 'array', uniqueItems: true } } } },
        { response_format: { type: 'json_schema', json_schema: { name: 'nothing' } } },
        { response_format: { type: 'xml' } },
        { grammar: { type: 'lark', grammar: 'start: undefined_rule' } },
        { response_format: { type: 'json_object' }, grammar: { type: 'regex', pattern: 'a' } },
      ]) {
        try {
          await engine.chat.completions.create({ messages, max_tokens: 8, ...bad });
          errors.push('no error');
        } catch (e) {
          errors.push(`${e.kind}: ${e.message}`);
        }
      }
      // The engine still answers after the refusals.
      const after = await engine.chat.completions.create({ messages, temperature: 0, max_tokens: 60,
        response_format: { type: 'json_schema', json_schema: { name: 'ok', schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false } } } });
      await engine.unload();
      return { streamed, chunks, date: date.choices[0].message.content, errors, after: after.choices[0].message.content };
    }, [SMOLLM2, SMOLLM2_SHA256]);
    let person;
    assert.doesNotThrow(() => { person = JSON.parse(r.streamed); }, `streamed: ${JSON.stringify(r.streamed)}`);
    assert.equal(typeof person.name, 'string');
    assert.ok(Number.isInteger(person.age), r.streamed);
    assert.ok(r.chunks > 3, `streamed in ${r.chunks} chunks`);
    assert.match(r.date, /^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$/);
    assert.equal(r.errors.length, 5);
    for (const e of r.errors) assert.match(e, /^invalid_parameter: /);
    assert.match(r.errors[0], /uniqueItems/);
    assert.equal(typeof JSON.parse(r.after).ok, 'boolean', r.after);
  });
});
