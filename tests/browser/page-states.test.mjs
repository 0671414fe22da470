// The chat page's own states, in headless Chromium, with www/wick.js replaced by a stand-in
// (tests/browser/pages/fake-wick.js): a lost engine, a model named with a right-to-left override,
// a chat template that does not parse, a reply with a deceptive link, a thinking model's reasoning
// (shown apart and collapsed, never sent back). No model or wasm build is needed. Screenshots go to $WICK_SHOTS when it is set. Run: node --test tests/browser/page-states.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { REPO, serverAndBrowser } from './harness.mjs';

const FAKE = fs.readFileSync(path.join(REPO, 'tests/browser/pages/fake-wick.js'), 'utf8');
const SHOTS = process.env.WICK_SHOTS;

describe('the chat page states', () => {
  // page.route replaces wick.js: the offline service worker must not answer for it instead.
  const env = serverAndBrowser({ browser: { serviceWorkers: 'block' } });
  let page;

  /** A fresh page on the stand-in engine, `card` merged into its model card, the model loaded from `url`. */
  async function open({ card = {}, file = 'Fake-Model.gguf', width = 1280 } = {}) {
    page = await env.browser.context.newPage();
    await page.setViewportSize({ width, height: 860 });
    await page.route(/\/wick\.js$/, (route) => route.fulfill({ contentType: 'text/javascript', body: FAKE }));
    await page.goto(env.server.url);
    await page.waitForFunction(() => window.fakeWick && document.querySelector('[data-testid="status"]')?.dataset.state === 'idle');
    await page.evaluate((c) => Object.assign(window.fakeWick.card, c), card);
    if (width < 900) await page.getByTestId('menu-button').click();
    await page.getByTestId('model-url').fill(`${env.server.url}models/${encodeURIComponent(file)}`);
    await page.getByTestId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached' });
  }
  const shot = async (name) => {
    if (!SHOTS) return;
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  };

  test('an engine that dies during a stopped request shows as lost, offers to load again, and loading again works', async () => {
    await open();
    await page.getByTestId('prompt').fill('Tell me a long story.');
    await page.getByTestId('prompt').press('Enter');
    const answer = page.locator('[data-testid="message"][data-role="assistant"]').last();
    await page.waitForFunction(() => document.querySelector('[data-role="assistant"] .msg-body')?.textContent.length > 6);
    await page.getByTestId('stop-button').click();
    // The worker dies before it answers the abort.
    await page.evaluate(() => window.fakeWick.kill());
    await page.waitForSelector('[data-testid="status"][data-state="lost"]', { state: 'attached' });
    assert.equal(await answer.getAttribute('data-state'), 'error');
    assert.equal(await page.getByTestId('error-banner').getAttribute('data-kind'), 'worker');
    assert.doesNotMatch(await page.getByTestId('status').textContent(), /Ready/);
    assert.equal(await page.getByTestId('send-button').isDisabled(), true);
    await page.getByTestId('prompt').fill('Anything?');
    assert.equal(await page.getByTestId('send-button').isDisabled(), true);
    await shot('lost-engine-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('lost-engine-phone');
    await page.setViewportSize({ width: 1280, height: 860 });

    await page.getByTestId('error-action').click();
    await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached' });
    assert.equal(await page.evaluate(() => window.fakeWick.created), 2);
    await page.getByTestId('prompt').fill('Again?');
    await page.getByTestId('prompt').press('Enter');
    await page.waitForSelector('[data-testid="message"][data-role="assistant"][data-state="done"]');
    await page.close();
  });

  test('a model named with a right-to-left override cannot reorder the page text around it', async () => {
    const file = 'invoice\u202Efdp.exe.gguf';
    await open({ file });
    const heading = page.locator('[data-testid="empty-state"] h1');
    // The page's own words read in order; the name sits in an isolating <bdi> with its override
    // shown as a mark, not acting.
    const parts = await heading.evaluate((h) => [...h.childNodes].map((n) => [n.nodeName, n.textContent, n.nodeType === 1 ? getComputedStyle(n).unicodeBidi : null]));
    assert.deepEqual(parts, [['BDI', 'invoice[U+202E]fdp.exe', 'isolate'], ['#text', ' is ready', null]]);
    for (const id of ['header-model', 'card-name', 'status', 'empty-state', 'model-card']) {
      assert.doesNotMatch(await page.getByTestId(id).textContent(), /\u202E/, id);
    }
    assert.doesNotMatch(await page.title(), /\u202E/);
    await shot('bidi-name-desktop');
    await page.close();
    await open({ file, width: 390 });
    await shot('bidi-name-phone');
    await page.close();
  });

  test('a model whose chat template does not parse loads in Complete mode and says why', async () => {
    await open({ card: { has_chat_template: true, chat_template_error: 'unexpected end of input at line 3' } });
    assert.equal(await page.getByTestId('mode-completion').isChecked(), true);
    assert.equal(await page.getByTestId('mode-chat').isDisabled(), true);
    assert.match(await page.getByTestId('empty-lead').textContent(), /chat template is broken \(unexpected end of input at line 3\)/);
    assert.match(await page.getByTestId('card-chat-template').textContent(), /Broken: unexpected end of input/);
    await shot('broken-template-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('broken-template-phone');
    await page.close();
  });

  test('a reply link shows its real host after its label', async () => {
    await open();
    await page.getByTestId('prompt').fill('Where do I log in?');
    await page.getByTestId('prompt').press('Enter');
    await page.waitForSelector('[data-testid="message"][data-role="assistant"][data-state="done"]');
    const link = page.locator('[data-role="assistant"] a');
    assert.equal(await link.getAttribute('href'), 'https://evil.example/login');
    assert.equal(await link.getAttribute('title'), 'https://evil.example/login');
    assert.equal(await link.locator('.link-host').textContent(), 'evil.example');
    assert.equal(await link.locator('.link-host').isVisible(), true);
    await shot('deceptive-link-desktop');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot('deceptive-link-phone');
    await page.close();
  });

  test('a thinking model\'s reasoning streams into a collapsed "Thinking…" apart from the answer, and is not sent back', async () => {
    const reasoning = 'The user says hello. A short, friendly greeting fits; no tools are needed here, and nothing to look up.';
    const answer = 'Hello! How can I help you today?';
    for (const width of [1280, 390]) {
      await open({ width });
      await page.evaluate(([r, a]) => Object.assign(window.fakeWick, { reasoning: r, answer: a, stepMs: 60 }), [reasoning, answer]);
      // On a phone the model panel is still open after loading: Escape closes it.
      if (width < 900) await page.keyboard.press('Escape');
      await page.getByTestId('prompt').fill('Hi there');
      await page.getByTestId('prompt').press('Enter');
      const message = page.locator('[data-testid="message"][data-role="assistant"]').last();
      const details = message.getByTestId('reasoning');
      const summary = message.getByTestId('reasoning-summary');
      const body = message.getByTestId('reasoning-body');
      // While the model thinks: collapsed, "Thinking…", no answer text yet.
      await details.waitFor();
      assert.equal(await summary.textContent(), 'Thinking…');
      assert.equal(await details.evaluate((d) => d.open), false);
      assert.equal(await body.isVisible(), false);
      assert.equal(await message.locator('.msg-body').textContent(), 'Writing…');
      await shot(`reasoning-thinking-collapsed-${width}`);
      // Opened, the reasoning so far, then more as it streams.
      await summary.click();
      // (The details' toggle event, which fills it, is queued after the click.)
      await page.waitForFunction(() => document.querySelector('[data-testid="reasoning-body"]')?.textContent.length > 0);
      const first = await body.textContent();
      assert.ok(first.length > 0 && reasoning.startsWith(first), first);
      await page.waitForFunction((n) => document.querySelector('[data-testid="reasoning-body"]')?.textContent.length > n + 6, first.length);
      await shot(`reasoning-thinking-open-${width}`);
      await summary.click(); // closed again while it streams
      await page.waitForSelector('[data-testid="message"][data-role="assistant"][data-state="done"]');
      assert.match(await summary.textContent(), /^Thought for (\d+ s|less than a second)$/);
      assert.equal(await details.getAttribute('data-state'), 'done');
      assert.equal(await details.evaluate((d) => d.open), false);
      assert.equal(await message.locator('.msg-body').textContent(), answer);
      assert.equal(await body.textContent(), reasoning, 'the whole reasoning, though it was closed while it ended');
      await shot(`reasoning-done-collapsed-${width}`);
      await summary.click();
      await shot(`reasoning-done-open-${width}`);
      // The next turn sends the answer back, without the reasoning (as OpenAI clients do).
      await page.evaluate(() => Object.assign(window.fakeWick, { reasoning: '' }));
      await page.getByTestId('prompt').fill('Thanks');
      await page.getByTestId('prompt').press('Enter');
      await page.waitForFunction(() => document.querySelectorAll('[data-role="assistant"][data-state="done"]').length === 2);
      const sent = await page.evaluate(() => window.fakeWick.requests.at(-1).messages);
      assert.deepEqual(sent.filter((m) => m.role !== 'system'), [
        { role: 'user', content: 'Hi there' }, { role: 'assistant', content: answer }, { role: 'user', content: 'Thanks' }]);
      assert.equal(await page.locator('[data-role="assistant"]').last().getByTestId('reasoning').count(), 0, 'no reasoning, no box');
      await page.close();
    }
  });
});
