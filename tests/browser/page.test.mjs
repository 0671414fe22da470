// The chat page (www/index.html) in headless Chromium, used as a person would: download the
// default model with a progress bar, chat and watch tokens stream (with no network request), stop an answer and go on,
// see a typed error for a bad URL, and after a browser restart load the stored model with no
// request for it. Run: node --test tests/browser/
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { SMOLLM2, serverAndBrowser } from './harness.mjs';

const LOAD_TIMEOUT = 120_000;

describe('the chat page', () => {
  const env = serverAndBrowser();
  let page;

  before(async () => {
    page = await env.browser.newPage(env.server.url);
  });

  const byId = (id) => page.getByTestId(id);
  const lastAnswer = () => page.locator('[data-testid="message"][data-role="assistant"]').last();

  /** Sends `text` and returns the lengths the answer had while streaming, and its final state. */
  async function send(text, { stopAfterText = false } = {}) {
    const before = await page.locator('[data-testid="message"][data-role="assistant"]').count();
    await byId('prompt').fill(text);
    await byId('prompt').press('Enter');
    const answer = page.locator('[data-testid="message"][data-role="assistant"]').nth(before);
    await answer.waitFor();
    const lengths = [];
    for (;;) {
      const [state, len] = await answer.evaluate((el) => [el.dataset.state, el.textContent.length]);
      if (state !== 'streaming') break;
      if (lengths.at(-1) !== len) lengths.push(len);
      if (stopAfterText && lengths.length >= 3) {
        await byId('stop-button').click();
        stopAfterText = false;
      }
      await page.waitForTimeout(20);
    }
    return { lengths, state: await answer.getAttribute('data-state'), answer };
  }

  test('downloads the default model with progress, then streams a chat answer', async () => {
    const select = byId('model-select');
    await page.waitForFunction(() => document.querySelector('[data-testid="model-select"]')?.selectedOptions[0]?.textContent.includes('SmolLM2'));
    assert.equal(await select.locator('option:checked').getAttribute('data-stored'), 'false');
    // Record every progress state the bar goes through.
    await page.evaluate(() => {
      window.progressSeen = [];
      const bar = document.querySelector('[data-testid="progress"]');
      new MutationObserver(() => window.progressSeen.push([bar.dataset.phase, Number(bar.getAttribute('aria-valuenow'))]))
        .observe(bar, { attributes: true });
    });
    await byId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached', timeout: LOAD_TIMEOUT });
    const seen = await page.evaluate(() => window.progressSeen);
    const downloading = seen.filter(([phase]) => phase === 'download').map(([, v]) => v);
    assert.ok(downloading.some((v) => v > 0 && v < 100), `a partial download shown: ${JSON.stringify(seen)}`);
    assert.match(await byId('card-architecture').textContent(), /llama/);
    assert.match(await byId('backend-badge').textContent(), /2 threads/);

    // Greedy, so the answer is the same on every run.
    await byId('settings-toggle').click();
    await byId('setting-temperature').fill('0');
    await byId('settings-toggle').click();
    // Nothing typed leaves the page: no request at all while chatting.
    env.server.requests.length = 0;
    const sent = [];
    const record = (r) => sent.push(r.url());
    env.browser.context.on('request', record);
    const { lengths, state, answer } = await send('What is the capital of France? Answer in one sentence.');
    env.browser.context.off('request', record);
    assert.deepEqual(sent, []);
    // The browser may check the offline service worker's script for an update meanwhile (its
    // own request, which carries nothing from the page): anything else fails.
    assert.deepEqual(env.server.requests.filter((r) => !r.path.startsWith('/sw.js?')), []);
    assert.equal(state, 'done');
    assert.ok(lengths.length >= 3, `the answer grew while streaming: ${lengths}`);
    assert.match(await answer.textContent(), /Paris/);
    assert.match(await answer.getByTestId('stats').textContent(), /tok\/s/);
  });

  test('stop ends an answer early, and the chat goes on', async () => {
    const stopped = await send('Write a very long story about a dragon who learns to cook.', { stopAfterText: true });
    assert.equal(stopped.state, 'stopped');
    // The stream ended with an AbortError: the answer so far stays, with its timings (from the
    // error's partial result), and a stop the person asked for shows no error.
    assert.doesNotMatch(await stopped.answer.textContent(), /Stopped before the first word/);
    assert.ok((await stopped.answer.textContent()).length >= stopped.lengths[2], 'the text streamed before Stop stays');
    assert.match(await stopped.answer.getByTestId('stats').textContent(), /Decode \d+ tok/);
    assert.equal(await byId('error-banner').isVisible(), false);
    const next = await send('Now say goodbye in one word.');
    assert.equal(next.state, 'done');
    assert.match(await next.answer.getByTestId('stats').textContent(), /cached/);
  });

  test('a bad URL shows a typed error, and the loaded model keeps working', async () => {
    await byId('model-url').fill(`${env.server.url}fault/404/nothing.gguf`);
    await byId('load-button').click();
    const banner = byId('error-banner');
    await banner.waitFor({ state: 'visible' });
    assert.equal(await banner.getAttribute('data-kind'), 'download');
    assert.match(await byId('error-message').textContent(), /404/);
    await byId('error-dismiss').click();
    await byId('model-url').fill('');
    const again = await send('Say hello.');
    assert.equal(again.state, 'done');
  });

  test('after a browser restart the stored model loads with no request for it', async () => {
    await env.browser.reopen();
    page = await env.browser.newPage(env.server.url);
    await page.waitForSelector(`[data-testid="model-select"] option[data-stored="true"]`, { state: 'attached' });
    env.server.requests.length = 0;
    await byId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached', timeout: LOAD_TIMEOUT });
    assert.deepEqual(env.server.requests.filter((r) => r.path.includes(SMOLLM2)), []);
    const { state } = await send('Hi!');
    assert.equal(state, 'done');
  });
});
