// What a streamed answer costs to show, in headless Chromium with the page's stylesheet and
// ChatView (tests/browser/pages/render.html): one update (render and the layout it forces)
// must not grow with the text already shown. A complexity test with a wide margin, not a
// benchmark. Run: node --test tests/browser/render-cost.test.mjs
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, startServer } from './harness.mjs';

let server;
let browser;
let page;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage(`${server.url}test/render.html`);
  await page.waitForFunction(() => window.ready);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** The cheapest of three updates (each appending two characters) after `text` is shown, in ms. */
function updateCost(text) {
  return page.evaluate((text) => {
    const list = document.getElementById('messages');
    list.replaceChildren();
    const view = new window.ChatView(list, document.getElementById('conversation'), { change() {}, retry() {} });
    const msg = view.addAssistant();
    msg.setText(text);
    msg.throttle.flush();
    const times = [];
    let t = text;
    for (let k = 0; k < 3; k++) {
      t += 'ab';
      const start = performance.now();
      msg.setText(t);
      msg.throttle.flush();
      void msg.el.getBoundingClientRect();
      void msg.el.offsetHeight;
      times.push(performance.now() - start);
    }
    list.replaceChildren();
    return Math.min(...times);
  }, text);
}

test('an update of a 1 MB answer in paragraphs costs what a short one does', async () => {
  // 270 ms per update here when every update re-rendered the whole answer; about 10 ms now.
  const para = `${'The quick brown fox jumps over the lazy dog. '.repeat(9)}\n\n`;
  const text = para.repeat(Math.ceil((1 << 20) / para.length));
  const ms = await updateCost(text);
  assert.ok(ms < 100, `${ms.toFixed(1)} ms per update`);
});

test('an update after 64 kB of unclosed links stays cheap', async () => {
  // 715 ms per update here when each `[a](` scanned 2 kB ahead; about 17 ms now.
  const ms = await updateCost('[a]('.repeat(16384));
  assert.ok(ms < 150, `${ms.toFixed(1)} ms per update`);
});

test('an update of one 1 MB paragraph, unbroken or prose, stays cheap (laid out in pieces)', async () => {
  // One open paragraph used to be parsed, rendered and laid out whole on every update: 210 and
  // 170 ms here (Chromium's inline layout alone is linear in it). In pieces, with the text before
  // the last cut frozen, about 1 ms.
  const unbroken = 'qwertyuiop'.repeat((1 << 20) / 10);
  const prose = 'The quick brown fox jumps over the lazy dog. '.repeat(Math.ceil((1 << 20) / 45));
  for (const [name, text] of [['unbroken', unbroken], ['prose', prose]]) {
    const ms = await updateCost(text);
    assert.ok(ms < 40, `${name}: ${ms.toFixed(1)} ms per update`);
  }
});
