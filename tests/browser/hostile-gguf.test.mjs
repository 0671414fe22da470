// A hostile GGUF file through the real chat page and the real engine (issue 23's drills): the
// real SmolLM2 with its metadata rewritten (tests/browser/gguf-edit.mjs) so that its name,
// license and chat template carry markup, script, a javascript: link and a right-to-left
// override, dropped on the page as a person's local file. Nothing it says may run or become an
// element; the page's own text stays in order; the broken template leaves raw completion, which
// still answers. Run: node --test tests/browser/hostile-gguf.test.mjs
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { withStrings } from './gguf-edit.mjs';
import { MODELS_DIR, SMOLLM2, serverAndBrowser } from './harness.mjs';

const PWN = (where) => `window.__pwned=(window.__pwned||[]).concat('${where}')`;
const NAME = `<img src=x onerror="${PWN('name')}">\u202Efdp.exe`;
const LICENSE = `<script>${PWN('license')}</script><a href="javascript:${PWN('link')}">MIT</a>`;
// Does not parse (an unclosed for); its error message may quote it.
const TEMPLATE = `<svg onload="${PWN('template')}">{% for m in messages %}{{ m.content }}`;

const env = serverAndBrowser();
let dir;

before(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'wick-hostile-'));
  await withStrings(path.join(MODELS_DIR, SMOLLM2), path.join(dir, 'report.gguf'), {
    'general.name': NAME, 'general.license': LICENSE, 'tokenizer.chat_template': TEMPLATE,
  });
});
after(() => fsp.rm(dir, { recursive: true, force: true }));

test('a GGUF with hostile metadata loads as text: nothing runs, the page reads in order, completion answers', async () => {
  const page = await env.browser.newPage(env.server.url);
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await page.waitForSelector('[data-testid="status"][data-state="idle"]', { state: 'attached' });
  await page.getByTestId('model-file').setInputFiles(path.join(dir, 'report.gguf'));
  await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached', timeout: 120_000 });

  // The file's words are shown as words, with the override as a visible mark.
  const name = await page.getByTestId('card-name').textContent();
  assert.ok(name.includes('<img src=x onerror='), name);
  assert.ok(name.includes('[U+202E]fdp.exe'), name);
  assert.ok((await page.getByTestId('card-license').textContent()).includes('<script>'));
  assert.match(await page.getByTestId('card-chat-template').textContent(), /Broken/);
  const heading = page.locator('[data-testid="empty-state"] h1');
  // The page's own words sit outside the one isolating <bdi> that holds the model's label.
  const parts = await heading.evaluate((h) => [...h.childNodes].map((n) => [n.nodeName, n.textContent]));
  assert.equal(parts.filter(([node]) => node === 'BDI').length, 1, JSON.stringify(parts));
  assert.ok(parts.every(([node, text]) => node === 'BDI' || !/[<\u202E]/.test(text)), JSON.stringify(parts));
  for (const id of ['header-model', 'card-name', 'status', 'empty-state', 'model-card']) {
    assert.doesNotMatch(await page.getByTestId(id).textContent(), /\u202E/, id);
  }

  // The broken template: Complete mode, and the real engine answers there.
  assert.equal(await page.getByTestId('mode-completion').isChecked(), true);
  assert.equal(await page.getByTestId('mode-chat').isDisabled(), true);
  await page.getByTestId('settings-toggle').click();
  await page.getByTestId('setting-temperature').fill('0'); // greedy: " Paris" (as natively)
  await page.getByTestId('settings-toggle').click();
  await page.getByTestId('prompt').fill('The capital of France is');
  await page.getByTestId('prompt').press('Enter');
  const answer = page.locator('[data-testid="segment"][data-role="assistant"]').last();
  await page.waitForSelector('[data-testid="segment"][data-role="assistant"][data-state="done"]', { timeout: 60_000 });
  assert.match(await answer.textContent(), /Paris/);

  // Nothing the file said became code or an element.
  const found = await page.evaluate(() => ({
    pwned: window.__pwned ?? null,
    elements: document.querySelectorAll('img, svg[onload], iframe, object, embed, [onerror], [onload]').length,
    scripts: [...document.scripts].filter((s) => s.textContent.includes('__pwned')).length,
    links: [...document.querySelectorAll('a[href]')].filter((a) => !/^(https?:|mailto:|#)/.test(a.getAttribute('href'))).map((a) => a.getAttribute('href')),
  }));
  assert.deepEqual(found, { pwned: null, elements: 0, scripts: 0, links: [] });
  assert.deepEqual(dialogs, []);
});
