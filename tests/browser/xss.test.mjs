// Hostile answers, streamed a few characters at a time through the page's real renderer
// (ChatView and MarkdownStream in tests/browser/pages/render.html, headless Chromium): no script
// runs, and only allowed elements, attributes and link schemes appear at any point.
// Run: node --test tests/browser/xss.test.mjs
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchBrowser, startServer } from './harness.mjs';

const JS = ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', ' javascript:alert(1)', 'java\tscript:alert(1)', 'javascript&#58;alert(1)',
  '&#106;avascript:alert(1)', 'data:text/html,<script>alert(1)</script>', 'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'vbscript:msgbox(1)', 'file:///etc/passwd', '//evil.example', '\\\\evil.example', 'jav&#x09;ascript:alert(1)', 'javascript://%0aalert(1)'];
const LINK_FORMS = (u) => [`[x](${u})`, `[x](<${u}>)`, `[x](${u} "t")`, `![x](${u})`, `<${u}>`, `[${u}](${u})`, `[x](${u})\n`];
const PAYLOADS = [
  ...JS.flatMap(LINK_FORMS),
  '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '<svg onload=alert(1)>', '<svg><script>alert(1)</script></svg>',
  '<math><mtext><img src=x onerror=alert(1)></mtext></math>', '<iframe src="javascript:alert(1)"></iframe>', '<iframe srcdoc="<script>alert(1)</script>">',
  '<a href="javascript:alert(1)">x</a>', '<body onload=alert(1)>', '<details open ontoggle=alert(1)>', '<style>*{background:url(javascript:alert(1))}</style>',
  '<div style="background:url(javascript:alert(1))">x</div>', '<link rel=stylesheet href=//evil.example/x.css>', '<meta http-equiv=refresh content="0;url=javascript:alert(1)">',
  '<object data="javascript:alert(1)">', '<embed src="javascript:alert(1)">', '<form action="javascript:alert(1)"><input type=submit>', '<base href="javascript:alert(1)//">',
  '<input onfocus=alert(1) autofocus>', '<video><source onerror=alert(1)>', '<template><script>alert(1)</script></template>', '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
  '&lt;script&gt;alert(1)&lt;/script&gt;', '&#60;img src=x onerror=alert(1)&#62;', '```"><img src=x onerror=alert(1)>\ncode\n```', '```js onload=alert(1)\nx\n```',
  '`<img src=x onerror=alert(1)>`', '| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | [x](javascript:alert(1)) |', '| a |\n|:-:|\n| x |" onmouseover="alert(1) |',
  '> <script>alert(1)</script>', '- [x](javascript:alert(1))\n  - <img src=x onerror=alert(1)>', '1. **[x](javascript:alert(1))**', '*<img src=x onerror=alert(1)>*',
  '[a](https://ok.example "title\\" onmouseover=\\"alert(1)")', '[a](https://ok.example/"onmouseover="alert(1))', '[<img src=x onerror=alert(1)>](https://ok.example)',
  'https://ok.example/<script>alert(1)</script>', 'www.ok.example/"><svg onload=alert(1)>', '<https://ok.example/" onmouseover="alert(1)>',
  '[x](https://ok.example)<!-- <script>alert(1)</script> -->', '<![CDATA[<script>alert(1)</script>]]>', '\u202e[cod.exe](https://evil.example)', '[\u202egnp.exe](javascript:alert(1))',
  '[x](https://ex\u0430mple.com)', '[[[[x](javascript:alert(1))]]]', '[x](javascript:alert(1)', '**[x](javascript:alert(1)**)', '[x]( javascript:alert(1) )',
  '<scr<script>ipt>alert(1)</script>', '<IMG SRC=JaVaScRiPt:alert(1)>', '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>', '<a href=&#106;avascript:alert(1)>x</a>',
  '\u0000<script>alert(1)</script>', '[x](https://ok.example)\u0000onclick=alert(1)', '# <img src=x onerror=alert(1)>', '---\n<script>alert(1)</script>\n---',
  '<x onclick=alert(1)>click</x>', '[x](mailto:a@b.example?body=<script>alert(1)</script>)', 'expression(alert(1))', '{{constructor.constructor("alert(1)")()}}',
];

let server;
let browser;
let page;
before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage(`${server.url}test/render.html`);
  await page.waitForFunction(() => window.ready);
  await page.evaluate(() => {
    window.alerts = 0;
    window.alert = window.confirm = window.prompt = () => window.alerts++;
  });
  page.on('dialog', (d) => d.dismiss());
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test(`${PAYLOADS.length} hostile answers streamed in pieces: no script, only allowed elements, attributes and links`, async () => {
  assert.ok(PAYLOADS.length >= 100);
  const problems = await page.evaluate((payloads) => {
    const TAGS = new Set(['P', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'BLOCKQUOTE', 'UL', 'OL', 'LI', 'PRE', 'HR', 'TABLE', 'THEAD', 'TBODY', 'TR', 'TH', 'TD',
      'BR', 'CODE', 'EM', 'STRONG', 'DEL', 'A', 'BDI', 'SPAN', 'DIV', 'BUTTON']);
    const ATTRS = new Set(['class', 'href', 'rel', 'target', 'title', 'dir', 'start', 'type', 'aria-label', 'aria-hidden']);
    const out = [];
    const list = document.getElementById('messages');
    const check = (root, what) => {
      for (const el of root.querySelectorAll('*')) {
        if (!TAGS.has(el.tagName)) out.push(`${what}: <${el.tagName}>`);
        for (const a of el.attributes) if (!ATTRS.has(a.name)) out.push(`${what}: ${el.tagName}[${a.name}]`);
        if (el.tagName === 'A' && !/^(https?:\/\/[^/]|mailto:)/i.test(el.getAttribute('href'))) out.push(`${what}: href ${el.getAttribute('href')}`);
      }
    };
    payloads.forEach((payload, n) => {
      const text = `Answer ${n}: ${payload} and after.`;
      list.replaceChildren();
      const view = new window.ChatView(list, document.getElementById('conversation'), { change() {}, retry() {} });
      const msg = view.addAssistant();
      // Split every 1 to 5 characters, so pieces cut through the payload.
      for (let at = 0; at < text.length; ) {
        at = Math.min(text.length, at + 1 + ((n + at) % 5));
        msg.setText(text.slice(0, at));
        msg.throttle.flush();
        check(msg.body, `payload ${n} at ${at}`);
      }
      msg.finish('done');
      check(msg.body, `payload ${n} final`);
    });
    return out;
  }, PAYLOADS);
  await page.waitForTimeout(200); // anything scheduled by an injected handler would run by now
  assert.deepEqual(problems.slice(0, 20), []);
  assert.equal(await page.evaluate(() => window.alerts), 0);
});
