// www/examples/: each one-idea page loaded once in headless Chromium and used as a person would,
// on the real model and the real wasm build. Run: node --test tests/browser/examples.test.mjs
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { vendor } from '../../scripts/vendor.mjs';
import { MODELS_DIR, SMOLLM2, nativeGreedy, serverAndBrowser } from './harness.mjs';

describe('the examples', () => {
  const env = serverAndBrowser();
  const open = async (name) => {
    const page = await env.browser.newPage(`${env.server.url}examples/${name}`);
    return page;
  };
  const ready = (page) => page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Ready'), null, { timeout: 60_000 });

  test('chat.html streams a reply to each of two turns', async () => {
    const page = await open('chat.html');
    await ready(page);
    for (const [turn, question] of ['What is the capital of France?', 'And of Italy?'].entries()) {
      await page.fill('#question', question);
      await page.press('#question', 'Enter');
      // The form is locked while the reply streams, and free again once it has ended.
      await page.waitForFunction(() => document.getElementById('question').disabled);
      await page.waitForFunction(() => !document.getElementById('question').disabled, null, { timeout: 60_000 });
      const reply = await page.$$eval('#log .assistant', (ps) => ps.map((p) => p.textContent));
      assert.equal(reply.length, turn + 1);
      assert.ok(reply[turn].length > 0 && !reply[turn].startsWith('('), `a reply: ${reply[turn]}`);
    }
    const users = await page.$$eval('#log .user', (ps) => ps.map((p) => p.textContent));
    assert.deepEqual(users, ['What is the capital of France?', 'And of Italy?']);
    await page.close();
  });

  test('abort.html stops a long generation within a token, keeps its text, and the engine runs the next one', async () => {
    const page = await open('abort.html');
    await ready(page);
    for (let run = 0; run < 2; run++) {
      await page.click('#start');
      await page.waitForFunction(() => document.getElementById('out').textContent.length > 20, null, { timeout: 60_000 });
      await page.click('#stop');
      await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Stopped'), null, { timeout: 30_000 });
      // The stream threw an AbortError whose partial result counts what stays on the page.
      assert.match(await page.textContent('#status'), /^Stopped after \d+ tokens$/);
      assert.ok((await page.textContent('#out')).length > 20, 'the text so far stays');
    }
    await page.close();
  });

  test('local-file.html stores a picked GGUF and chats with it; a file that is not a model is a typed error', async () => {
    const page = await open('local-file.html');
    await page.setInputFiles('#file', path.join(MODELS_DIR, SMOLLM2));
    await page.waitForFunction(() => document.getElementById('out').textContent.length > 0, null, { timeout: 120_000 });
    assert.match(await page.textContent('#status'), /^Loaded llama model ".+"; stored: .+/);
    await page.setInputFiles('#file', { name: 'notes.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('not a model at all') });
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Could not'), null, { timeout: 30_000 });
    assert.match(await page.textContent('#status'), /^Could not load it \(invalid_model\): /);
    await page.close();
  });

  test('completion.html continues the prompt greedily, as the native CLI does', async () => {
    const page = await open('completion.html');
    await ready(page);
    await page.click('#go');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Done'), null, { timeout: 60_000 });
    const added = await page.textContent('#out b');
    assert.ok(added.length > 0, 'some text');
    assert.match(await page.textContent('#status'), /^Done: \d+ tokens$/);
    const native = nativeGreedy(path.join(MODELS_DIR, SMOLLM2), 'The three primary colours are', 40);
    // Where llama.cpp-style greedy has a near tie, SIMD128 and AVX2 rounding may pick differently.
    if (Math.min(...native.margins) >= 0.25) assert.ok(native.text.startsWith(added), `${JSON.stringify(added)} begins ${JSON.stringify(native.text)}`);
    await page.close();
  });

  test('json.html extracts a contact as JSON that follows its schema', async () => {
    const page = await open('json.html');
    await ready(page);
    await page.click('#go');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Done'), null, { timeout: 60_000 });
    const contact = JSON.parse(await page.textContent('#out'));
    assert.deepEqual(Object.keys(contact), ['name', 'age', 'job', 'city', 'email']);
    assert.equal(typeof contact.name, 'string');
    assert.ok(contact.age === null || Number.isInteger(contact.age), JSON.stringify(contact));
    // The model reads the name out of the text (greedy, so this is stable).
    assert.match(contact.name, /Maria/, JSON.stringify(contact));
    await page.close();
  });

  test('tools.html runs a tool-calling loop: the model calls the page\'s converter, gets its result, answers', async () => {
    const page = await open('tools.html');
    await ready(page);
    await page.click('#ask button');
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Done'), null, { timeout: 120_000 });
    const calls = await page.$$eval('#log li', (items) => items.map((li) => li.textContent));
    assert.ok(calls.length >= 1, 'the model called the tool');
    // convert_length({"value":3,"from":"km","to":"ft"}) → {"value":3,...,"result":9842.52}
    const [, args, result] = /^convert_length\((.*)\) → (.*)$/.exec(calls[0]);
    const { value, from, to } = JSON.parse(args);
    assert.equal(typeof value, 'number');
    assert.ok(['m', 'km', 'mi', 'ft'].includes(from) && ['m', 'km', 'mi', 'ft'].includes(to), args);
    assert.equal(typeof JSON.parse(result).result, 'number');
    assert.ok((await page.textContent('#answer')).trim().length > 0, 'an answer in words after the result');
    await page.close();
  });

  test('openai.html: the official openai client, unbundled from www/vendor/, streams an answer from the tab', async () => {
    // What scripts/setup does: node_modules/openai's ES modules into www/vendor/openai/.
    vendor('openai');
    const page = await open('openai.html');
    await ready(page);
    assert.match(await page.textContent('#status'), /^Ready: SmolLM2-135M-Instruct\.Q4_1\.gguf$/);
    await page.click('#ask button');
    await page.waitForFunction(() => document.getElementById('usage').textContent !== '', null, { timeout: 60_000 });
    assert.match(await page.textContent('#usage'), /^Done: \d+ tokens$/);
    assert.ok((await page.textContent('#answer')).trim().length > 0, 'an answer');
    await page.close();
  });
});
