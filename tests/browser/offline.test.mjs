// Offline after the first visit: the service worker (www/sw.js) caches the page, its scripts and
// the wasm builds listed in pkg/offline.json; with the network gone (Playwright's offline mode)
// the page reloads and chats with the model stored in OPFS. A deploy with other files replaces
// the cache. Run: node --test tests/browser/offline.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { REPO, SMOLLM2, serverAndBrowser } from './harness.mjs';

const LOAD_TIMEOUT = 120_000;
const manifest = () => JSON.parse(fs.readFileSync(path.join(REPO, 'www/pkg/offline.json'), 'utf8'));

describe('offline after the first visit', () => {
  let deployed = null; // a version to announce instead of the built one: a new deploy
  const env = serverAndBrowser({
    server: {
      extraRoutes: (req, res) => {
        if (deployed === null || req.url.split('?')[0] !== '/pkg/offline.json') return false;
        const body = JSON.stringify({ ...manifest(), version: deployed });
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' });
        res.end(body);
        return true;
      },
    },
  });

  const cacheState = (page) => page.evaluate(async () => {
    const names = (await caches.keys()).filter((n) => n.startsWith('wick-app-'));
    const sizes = await Promise.all(names.map(async (n) => (await (await caches.open(n)).keys()).length));
    return { names, sizes, controlled: Boolean(navigator.serviceWorker.controller) };
  });

  test('the page, then offline: it reloads from the cache and chats with the stored model', async () => {
    const { version, files } = manifest();
    const page = await env.browser.newPage(env.server.url);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null, null, { timeout: 30_000 });
    const online = await cacheState(page);
    assert.deepEqual(online.names, [`wick-app-${version}`]);
    assert.ok(online.sizes[0] >= files.length, `every file of the manifest cached: ${online.sizes[0]} of ${files.length}`);

    // Store the model (the first visit's download), then lose the network.
    await page.getByTestId('load-button').click();
    await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached', timeout: LOAD_TIMEOUT });
    await env.browser.context.setOffline(true);
    try {
      const before = env.server.requests.length;
      await page.reload();
      await page.waitForSelector(`[data-testid="model-select"] option[data-stored="true"]`, { state: 'attached', timeout: 30_000 });
      await page.getByTestId('load-button').click();
      await page.waitForSelector('[data-testid="status"][data-state="ready"]', { state: 'attached', timeout: LOAD_TIMEOUT });
      await page.getByTestId('prompt').fill('Hi!');
      await page.getByTestId('prompt').press('Enter');
      const answer = page.locator('[data-testid="message"][data-role="assistant"]').last();
      await page.waitForFunction(() => {
        const all = document.querySelectorAll('[data-testid="message"][data-role="assistant"]');
        return all.length && all[all.length - 1].dataset.state === 'done';
      }, null, { timeout: LOAD_TIMEOUT });
      assert.ok((await answer.textContent()).trim().length > 0);
      // Nothing reached the server but the browser's own update check of the service worker
      // (made by the browser process, which Playwright's offline mode does not cover; offline
      // for real it fails, and the installed worker stays).
      assert.deepEqual(env.server.requests.slice(before).filter((r) => !r.path.startsWith('/sw.js?')), [], 'nothing else reached the server');
    } finally {
      await env.browser.context.setOffline(false);
    }
    await page.close();
  });

  test('a deploy with other files installs a new worker and drops the old cache', async () => {
    const { version } = manifest();
    deployed = `${version}-next`;
    try {
      const page = await env.browser.newPage(env.server.url);
      // Installing precaches every file again (tens of MB); on a loaded machine that takes a
      // while, so the wait is long, and a second visit asks for the update again.
      let state;
      let reloaded = false;
      for (const start = Date.now(); Date.now() - start < 150_000; await page.waitForTimeout(250)) {
        state = await cacheState(page);
        if (state.names.length === 1 && state.names[0] === `wick-app-${deployed}`) break;
        if (!reloaded && Date.now() - start > 60_000) {
          reloaded = true;
          await page.reload();
        }
      }
      assert.deepEqual(state.names, [`wick-app-${deployed}`]);
      const script = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).active.scriptURL);
      assert.ok(script.endsWith(`sw.js?v=${encodeURIComponent(deployed)}`), script);
      await page.close();
    } finally {
      deployed = null;
    }
  });
});
