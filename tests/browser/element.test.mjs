// <wick-chat> (www/wick-chat.js) used as a page author and a person would: one tag on a plain page
// streams an answer, keyboard and ARIA, events and methods, styling from outside through parts
// and custom properties, and two elements on one page sharing one engine. Real model, real wasm.
// Run: node --test tests/browser/element.test.mjs
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SMOLLM2, serverAndBrowser } from './harness.mjs';

// Records the element's events (they bubble) from before the page's scripts run.
const RECORD_EVENTS = () => {
  window.__events = [];
  for (const type of ['ready', 'progress', 'token', 'message', 'error']) {
    document.addEventListener(type, (e) => {
      if (e.target?.localName !== 'wick-chat') return;
      const d = e.detail ?? {};
      window.__events.push({ type, id: e.target.id, text: d.text, content: d.content, finish: d.finish_reason, error: d.error?.message });
    }, true);
  }
};

const events = (page, type) => page.evaluate((t) => window.__events.filter((e) => e.type === t), type);
const ready = (page, selector = 'wick-chat') =>
  page.waitForFunction((s) => document.querySelector(s)?.shadowRoot.querySelector('textarea')?.disabled === false, selector, { timeout: 120_000 });

describe('<wick-chat>', () => {
  const env = serverAndBrowser();

  test('one tag on a plain page (examples/element.html): Enter sends, the answer streams into a polite live log, events fire', async () => {
    const page = await env.browser.context.newPage();
    await page.addInitScript(RECORD_EVENTS);
    await page.goto(`${env.server.url}examples/element.html`);
    await ready(page);
    assert.ok((await events(page, 'progress')).length > 0, 'progress events while it loads');
    assert.equal((await events(page, 'ready')).length, 1);
    // show-card: the model's name and how it runs.
    assert.match(await page.locator('wick-chat [part="card"]').textContent(), /smollm2.*135M parameters.*Q4_1.*private/is);
    const log = page.locator('wick-chat [part="log"]');
    assert.equal(await log.getAttribute('role'), 'log');
    assert.equal(await log.getAttribute('aria-live'), 'polite');

    await page.locator('wick-chat textarea').fill('Name three colours.');
    await page.locator('wick-chat textarea').press('Enter');
    await page.waitForFunction(() => window.__events.some((e) => e.type === 'message'), null, { timeout: 120_000 });
    const [message] = await events(page, 'message');
    const tokens = await events(page, 'token');
    assert.ok(tokens.length > 1, 'the answer streamed in pieces');
    assert.equal(tokens.map((t) => t.text).join(''), message.content);
    assert.ok(message.content.trim().length > 0);
    assert.equal(await page.locator('wick-chat [part~="user"]').textContent(), 'Name three colours.');
    // Rendered as Markdown: the same words, whatever the markup (list numbers are CSS markers).
    const letters = (t) => t.replace(/[^\p{L}]/gu, '');
    assert.equal(letters(await page.locator('wick-chat [part~="assistant"]').textContent()), letters(message.content), 'the answer as shown');
    assert.equal(await log.getAttribute('aria-busy'), 'false');
    assert.equal(await page.locator('wick-chat textarea').inputValue(), '', 'the input is cleared');
    assert.deepEqual(await events(page, 'error'), []);
    await page.close();
  });

  test('stop() by Escape keeps the partial answer; clear() forgets; send() resolves to the answer; a bad attribute is a typed error', async () => {
    const page = await env.browser.context.newPage();
    await page.addInitScript(RECORD_EVENTS);
    await page.goto(`${env.server.url}examples/element.html`);
    await ready(page);
    await page.locator('wick-chat').evaluate((el) => el.setAttribute('max-tokens', '400'));
    await page.locator('wick-chat textarea').fill('Write a long story about a dragon who learns to bake bread.');
    await page.locator('wick-chat textarea').press('Enter');
    await page.waitForFunction(() => window.__events.filter((e) => e.type === 'token').length >= 5, null, { timeout: 120_000 });
    // The input stays usable while the answer streams; Escape there stops it.
    await page.locator('wick-chat textarea').press('Escape');
    await page.waitForFunction(() => window.__events.some((e) => e.type === 'message'), null, { timeout: 30_000 });
    const [stopped] = await events(page, 'message');
    assert.equal(stopped.finish, 'aborted');
    assert.ok(stopped.content.length > 0);
    assert.match(await page.locator('wick-chat [part~="assistant"]').textContent(), /Stopped\.$/);
    const conversation = await page.locator('wick-chat').evaluate((el) => el.messages);
    assert.deepEqual(conversation.map((m) => m.role), ['user', 'assistant'], 'the partial answer stays in the conversation');

    // The engine answers again after the stop; send() resolves to the answer.
    const answer = await page.locator('wick-chat').evaluate((el) => { el.setAttribute('max-tokens', '16'); return el.send('And in one word?'); });
    assert.ok(answer.length > 0);
    assert.equal(await page.locator('wick-chat [part~="message"]').count(), 4);
    await page.locator('wick-chat').evaluate((el) => el.clear());
    assert.equal(await page.locator('wick-chat [part~="message"]').count(), 0);
    assert.deepEqual(await page.locator('wick-chat').evaluate((el) => el.messages), []);

    const bad = await page.locator('wick-chat').evaluate(async (el) => {
      el.setAttribute('temperature', 'warm');
      try {
        await el.send('Hi');
        return null;
      } catch (e) {
        return { kind: e.kind, message: e.message };
      }
    });
    assert.equal(bad?.kind, 'invalid_parameter');
    assert.match(bad.message, /temperature/);
    await page.close();
  });

  test('two elements on one page share one engine (one download, one worker) and keep their own conversations; parts and custom properties style them', async () => {
    const before = env.server.requests.length;
    const page = await env.browser.context.newPage();
    await page.addInitScript(RECORD_EVENTS);
    await page.goto(`${env.server.url}test/two-chats.html`);
    await ready(page, '#first');
    await ready(page, '#second');
    const requests = env.server.requests.slice(before).map((r) => r.path.split('?')[0]);
    assert.equal(requests.filter((p) => p === '/worker.js').length, 1, `one worker: ${requests}`);
    assert.ok(requests.filter((p) => p === `/models/${SMOLLM2}`).length <= 1, `one download at most: ${requests}`);
    assert.equal(await page.locator('#second [part="progress"]').isHidden(), true, 'hide-progress');

    // Both at once: the shared engine answers them one after the other.
    const [a, b] = await page.evaluate(() => Promise.all([
      document.getElementById('first').send('What is the capital of France?'),
      document.getElementById('second').send('What is the capital of France?'),
    ]));
    // (Not necessarily the same text: the second reuses the first's cached prompt, and these
    // greedy answers have near-ties that batched and single-token passes break differently.)
    assert.ok(a.length > 0 && b.length > 0, 'both answered');
    assert.deepEqual(await page.locator('#first').evaluate((el) => el.messages.length), 2);
    await page.locator('#first').evaluate((el) => el.send('And of Italy?'));
    assert.equal(await page.locator('#first').evaluate((el) => el.messages.length), 4);
    assert.equal(await page.locator('#second').evaluate((el) => el.messages.length), 2, 'conversations stay apart');

    const style = await page.locator('#second').evaluate((el) => ({
      user: getComputedStyle(el.shadowRoot.querySelector('[part~="user"]')).color,
      send: getComputedStyle(el.shadowRoot.querySelector('[part="send"]')).backgroundColor,
    }));
    assert.deepEqual(style, { user: 'rgb(1, 2, 3)', send: 'rgb(200, 0, 100)' });
    // Removing one element leaves the other's engine running.
    await page.locator('#first').evaluate((el) => el.remove());
    assert.ok((await page.locator('#second').evaluate((el) => el.send('Thanks!'))).length > 0);
    await page.close();
  });
});
