// A stored model this version of wick cannot run (its load fails with unsupported_model: here
// tests/fixtures/tiny/llama_moe.gguf, a mixture of experts) is never lost, and says why: it stays
// stored, listModels() marks it `unsupported` with the error's message (kept in its manifest, so
// across reloads and browser restarts), a load that runs a model clears the mark, and the chat
// page lists it as not runnable with the reason (Delete still works) instead of offering it as if
// it worked. Also the model card's features. Needs www/pkg (scripts/build-wasm) and
// target/release/wick; the tiny models load in milliseconds. Screenshots go to $WICK_SHOTS when it is set.
// Run: node --test tests/browser/unsupported-model.test.mjs
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO, TINY_DIR, serverAndBrowser, tinyRoute } from './harness.mjs';

const MOE = 'llama_moe.gguf';
const WHY = /^(loading llama_moe\.gguf: )?this model uses a mixture of experts \(4 experts per layer\), which wick does not run$/;
const SHOTS = process.env.WICK_SHOTS;

describe('a stored model this version cannot run', () => {
  const env = serverAndBrowser({ server: { extraRoutes: tinyRoute } });

  async function tab(url) {
    const page = await env.browser.newPage(`${env.server.url}${url}`);
    await page.waitForFunction(() => window.ready);
    return page;
  }
  /** createEngine in an api.html tab, unloaded again at once; errors come back as data. */
  const load = (page, model) => page.evaluate(async (model) => {
    try {
      const engine = await window.wick.createEngine({ model, backend: 'cpu' });
      const info = engine.info();
      await engine.unload();
      return { info };
    } catch (e) {
      return { error: { kind: e.kind, message: e.message } };
    }
  }, model);
  const listed = (page, id) => page.evaluate(async (id) => (await window.wick.listModels()).find((m) => m.id === id) ?? null, id);

  test('listModels keeps it, with the reason, across loads and a browser restart; a load that runs a model clears the mark', async () => {
    let page = await tab('test/api.html');
    const first = await load(page, `/tiny/${MOE}`);
    assert.equal(first.error?.kind, 'unsupported_model', JSON.stringify(first));
    assert.match(first.error.message, WHY);
    const model = await listed(page, MOE);
    assert.ok(model, 'still stored after the failed load');
    assert.equal(model.unsupported?.reason, first.error.message);
    assert.ok(!Number.isNaN(Date.parse(model.unsupported.at)), model.unsupported.at);

    // From storage, it fails the same way and stays; the mark is not rewritten.
    const again = await load(page, { id: MOE });
    assert.equal(again.error?.kind, 'unsupported_model');
    assert.deepEqual(await listed(page, MOE), model);

    await env.browser.reopen();
    page = await tab('test/api.html');
    assert.deepEqual(await listed(page, MOE), model, 'kept across a browser restart');

    // A model marked by an earlier version that this one runs: the load clears the mark.
    assert.equal((await load(page, '/tiny/qwen2.gguf')).error, undefined);
    const storage = await tab('test/storage.html');
    const manifest = await storage.evaluate(() => window.rpc('manifest', { id: 'qwen2.gguf' }));
    assert.equal(manifest.unsupported, undefined);
    await storage.evaluate((m) => window.rpc('manifest', { id: 'qwen2.gguf', write: { ...m, unsupported: { reason: 'an older wick could not', at: '2026-01-01T00:00:00.000Z' } } }), manifest);
    assert.equal((await listed(page, 'qwen2.gguf')).unsupported?.reason, 'an older wick could not');
    const runs = await load(page, { id: 'qwen2.gguf' });
    assert.equal(runs.error, undefined, JSON.stringify(runs.error));
    assert.equal((await listed(page, 'qwen2.gguf')).unsupported, undefined, 'cleared by the load that ran it');
    assert.deepEqual(await storage.evaluate(() => window.rpc('manifest', { id: 'qwen2.gguf' })), manifest, 'the manifest is as it was');

    await page.evaluate((id) => window.wick.deleteModel(id), MOE);
    assert.equal(await listed(page, MOE), null);
    await storage.close();
    await page.close();
  });

  test('the chat page lists it as not runnable, with the reason, across a reload; Delete removes it', async () => {
    const page = await env.browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    const byId = (id) => page.getByTestId(id);
    const shot = async (name) => {
      if (!SHOTS) return;
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
    };
    /** Desktop, then phone (the sidebar a drawer there), scrolled to `testid`. */
    const shots = async (name, testid) => {
      if (!SHOTS) return;
      await byId(testid).scrollIntoViewIfNeeded();
      await page.waitForTimeout(300); // a panel's chevron turns
      await shot(`${name}-desktop`);
      await page.setViewportSize({ width: 390, height: 844 });
      await byId('menu-button').click();
      await page.waitForTimeout(300); // the drawer slides in
      await byId(testid).scrollIntoViewIfNeeded();
      await shot(`${name}-phone`);
      await page.keyboard.press('Escape');
      await page.setViewportSize({ width: 1280, height: 800 });
    };
    const idle = () => page.waitForSelector('[data-testid="status"][data-state="idle"]', { state: 'attached' });

    await page.goto(env.server.url);
    await idle();
    await byId('model-url').fill(`${env.server.url}tiny/${MOE}`);
    await byId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="error"]', { state: 'attached' });
    assert.equal(await byId('error-banner').getAttribute('data-kind'), 'unsupported_model');
    assert.match(await byId('error-message').textContent(), /mixture of experts/);
    await byId('error-dismiss').click();

    const option = page.locator(`[data-testid="model-select"] option[value="stored:${MOE}"]`);
    const row = page.locator(`[data-testid="storage-row"][data-model-id="${MOE}"]`);
    const check = async () => {
      // The picker: listed, marked, and when chosen it says why and offers no plain Load.
      await option.waitFor({ state: 'attached' });
      assert.equal(await option.getAttribute('data-runnable'), 'false');
      assert.match(await option.textContent(), /can't run/);
      await byId('model-select').selectOption(`stored:${MOE}`);
      assert.match(await byId('model-hint').textContent(), /^This version of wick cannot run this model: (loading llama_moe\.gguf: )?this model uses a mixture of experts/);
      assert.match(await byId('model-hint').getAttribute('class'), /is-unsupported/);
      assert.equal(await byId('load-button').textContent(), 'Try again');
      // Storage: the row says why, and Delete is offered.
      if (!(await byId('storage-panel').evaluate((d) => d.open))) await byId('storage-toggle').click();
      assert.equal(await row.getAttribute('data-runnable'), 'false');
      assert.match(await row.getByTestId('storage-unsupported').textContent(), /^This version of wick cannot run it: (loading llama_moe\.gguf: )?this model uses a mixture of experts/);
      assert.equal(await row.getByTestId('delete-model').isEnabled(), true);
    };
    await check();
    await shots('unsupported-storage', 'storage-panel');
    await byId('storage-toggle').click();
    await shots('unsupported-picker', 'model-hint');

    await page.reload();
    await idle();
    await check();

    // Trying again fails the same way and loses nothing.
    await byId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="error"]', { state: 'attached' });
    assert.equal(await byId('error-banner').getAttribute('data-kind'), 'unsupported_model');
    await byId('error-dismiss').click();
    await check();

    await row.getByTestId('delete-model').click();
    await row.waitFor({ state: 'detached' });
    await option.waitFor({ state: 'detached' });
    assert.equal(await page.evaluate(async (id) => (await (await import('/wick.js')).listModels()).some((m) => m.id === id), MOE), false);
    await page.close();
  });

  test("the model card shows the network's features", async () => {
    const page = await env.browser.context.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.goto(env.server.url);
    await page.waitForSelector('[data-testid="status"][data-state="idle"]', { state: 'attached' });
    await page.getByTestId('model-url').fill(`${env.server.url}tiny/gemma2.gguf`);
    await page.getByTestId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached' });
    const features = await page.locator('[data-testid="card-features"] li').allTextContents();
    // All of them, in the engine's words (`wick inspect --json` natively).
    const inspect = JSON.parse(execFileSync(path.join(REPO, 'target/release/wick'), ['inspect', '--json', path.join(TINY_DIR, 'gemma2.gguf')], { encoding: 'utf8' }));
    assert.deepEqual(features, inspect.features);
    assert.ok(features.includes('sliding window 16 on 2 of 4 layers'), features.join(' | '));
    if (SHOTS) {
      await page.getByTestId('card-features').scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(SHOTS, 'card-features-desktop.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.getByTestId('menu-button').click();
      await page.waitForTimeout(300);
      await page.getByTestId('card-features').scrollIntoViewIfNeeded();
      await page.screenshot({ path: path.join(SHOTS, 'card-features-phone.png') });
    }
    await page.close();
  });
});
