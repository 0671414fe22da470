// The chat page's Markdown layer (www/app/markdown.js) in plain Node:
//   node --test tests/browser/markdown.test.mjs
// parseMarkdown is pure; renderMarkdown runs against a small stand-in document below that throws
// on anything the renderer must never do (innerHTML, images, scripts, styles, event attributes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MarkdownStream, NODE_TYPES, parseMarkdown, renderMarkdown, safeHref } from '../../www/app/markdown.js';

const ALLOWED_TYPES = new Set([
  'root', 'p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'ul', 'ol', 'li', 'pre', 'hr',
  'table', 'thead', 'tbody', 'tr', 'th', 'td', 'text', 'br', 'code', 'em', 'strong', 'del', 'a',
]);
const ALLOWED_KEYS = new Set(['type', 'children', 'text', 'href', 'lang', 'start', 'align']);

/** Every node of the tree, depth first. */
function nodes(tree) {
  const out = [];
  const stack = [tree];
  while (stack.length) {
    const node = stack.pop();
    out.push(node);
    if (node.children) for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
  }
  return out;
}
const ofType = (tree, type) => nodes(tree).filter((n) => n.type === type);
const textOf = (node) => nodes(node).map((n) => (n.type === 'br' ? '\n' : n.text ?? '')).join('');
const blocks = (md) => parseMarkdown(md).children;

/** Compact form of inline content: "text", {em: [...]}, {code: "x"}, {a: [href, [...]]}. */
function shape(children) {
  return children.map((n) => {
    if (n.type === 'text') return n.text;
    if (n.type === 'br') return '\n';
    if (n.type === 'code') return { code: n.text };
    if (n.type === 'a') return { a: [n.href, shape(n.children)] };
    return { [n.type]: shape(n.children ?? []) };
  });
}

test('the exported allow-list is exactly the expected node types', () => {
  assert.deepEqual(new Set(NODE_TYPES), ALLOWED_TYPES);
});

test('ATX headings of every level, closing hashes dropped; "#tag" is not a heading', () => {
  const tree = blocks('# One\n## Two ##\n###### Six\n####### seven\n#tag');
  assert.deepEqual(tree.map((b) => b.type), ['h1', 'h2', 'h6', 'p']);
  assert.deepEqual(shape(tree[1].children), ['Two']);
  assert.equal(textOf(tree[3]), '####### seven\n#tag');
});

test('paragraphs split on blank lines; single newlines are line breaks', () => {
  const tree = blocks('first line\nsecond line\n\nnext paragraph');
  assert.deepEqual(tree.map((b) => b.type), ['p', 'p']);
  assert.deepEqual(shape(tree[0].children), ['first line', '\n', 'second line']);
});

test('bullet and ordered lists, nested, tight lists without paragraphs', () => {
  const [list] = blocks('- a\n- b\n  - b1\n  - b2\n- c');
  assert.equal(list.type, 'ul');
  assert.equal(list.children.length, 3);
  const [, b] = list.children;
  assert.equal(b.children[0].text, 'b');
  assert.equal(b.children[1].type, 'ul');
  assert.deepEqual(b.children[1].children.map(textOf), ['b1', 'b2']);
  assert.equal(ofType(list, 'p').length, 0);

  const [ol] = blocks('3. three\n4. four');
  assert.equal(ol.type, 'ol');
  assert.equal(ol.start, 3);
  assert.deepEqual(ol.children.map(textOf), ['three', 'four']);
});

test('a blank line between items makes a loose list (paragraphs in items)', () => {
  const [list] = blocks('1. one\n\n2. two');
  assert.equal(list.type, 'ol');
  assert.deepEqual(list.children.map((li) => li.children[0].type), ['p', 'p']);
});

test('a list item can hold a fenced code block with blank lines', () => {
  const tree = blocks('Steps:\n1. Install\n   ```bash\n   npm i\n\n   npm test\n   ```\n2. Done');
  assert.deepEqual(tree.map((b) => b.type), ['p', 'ol']);
  const [first, second] = tree[1].children;
  const pre = first.children.find((n) => n.type === 'pre');
  assert.deepEqual(pre, { type: 'pre', lang: 'bash', text: 'npm i\n\nnpm test' });
  assert.equal(textOf(second), 'Done');
});

test('emphasis, strong, nesting, strikethrough and intraword underscores', () => {
  const [p] = blocks('*a* **b** ***c*** **bold _nested_ more** ~~gone~~ snake_case_name file_name_ 2*3*4');
  assert.deepEqual(shape(p.children), [
    { em: ['a'] }, ' ', { strong: ['b'] }, ' ', { em: [{ strong: ['c'] }] }, ' ',
    { strong: ['bold ', { em: ['nested'] }, ' more'] }, ' ', { del: ['gone'] }, ' snake_case_name file_name_ 2',
    { em: ['3'] }, '4',
  ]);
});

test('delimiter runs follow CommonMark flanking and the rule of three', () => {
  assert.deepEqual(shape(blocks('*foo**bar**baz*')[0].children), [{ em: ['foo', { strong: ['bar'] }, 'baz'] }]);
  assert.deepEqual(shape(blocks('a*"foo"*')[0].children), ['a*"foo"*']);
  assert.deepEqual(shape(blocks('*(note)* and ** spaced **')[0].children), [{ em: ['(note)'] }, ' and ** spaced **']);
});

test('only inline links: brackets without a destination stay text', () => {
  for (const md of ['[label] (https:x)', '[label]', '[label][ref]', '[label](mailto:', '[label]("t")']) {
    const tree = parseMarkdown(md);
    assert.equal(ofType(tree, 'a').length, 0, md);
    assert.equal(textOf(tree), md);
  }
});

test('unmatched delimiters stay literal (an answer cut mid-emphasis)', () => {
  const [p] = blocks('a **bold start and *half');
  assert.deepEqual(shape(p.children), ['a **bold start and *half']);
});

test('inline code: backtick runs, no Markdown inside, unterminated stays text', () => {
  const [p] = blocks('use `npm *i*` and ``a ` b`` then `open');
  assert.deepEqual(shape(p.children), ['use ', { code: 'npm *i*' }, ' and ', { code: 'a ` b' }, ' then `open']);
  const [q] = blocks('`<script>alert(1)</script>`');
  assert.deepEqual(shape(q.children), [{ code: '<script>alert(1)</script>' }]);
});

test('fenced code blocks with a language, ~~~ fences, and the text after', () => {
  const tree = blocks('```python\ndef f():\n    return 1\n```\nafter\n~~~\nraw ``` inside\n~~~');
  assert.deepEqual(tree[0], { type: 'pre', lang: 'python', text: 'def f():\n    return 1' });
  assert.equal(textOf(tree[1]), 'after');
  assert.deepEqual(tree[2], { type: 'pre', lang: '', text: 'raw ``` inside' });
});

test('an unterminated fence (still streaming) runs to the end of the text', () => {
  const partial = 'Here:\n```js\nconst x = "**not bold**";\n# not a heading\n';
  const tree = blocks(partial);
  assert.deepEqual(tree.map((b) => b.type), ['p', 'pre']);
  assert.deepEqual(tree[1], { type: 'pre', lang: 'js', text: 'const x = "**not bold**";\n# not a heading' });
  // Every prefix of a streamed answer parses, and the code never leaks out as Markdown.
  for (let n = 0; n <= partial.length; n++) {
    const types = nodes(parseMarkdown(partial.slice(0, n))).map((x) => x.type);
    assert.ok(!types.includes('h1') && !types.includes('strong'), `prefix ${n}`);
  }
});

test('a language label is only kept when it is a plain word', () => {
  assert.equal(blocks('```c++\nx\n```')[0].lang, 'c++');
  assert.equal(blocks('```js title="a.js"\nx\n```')[0].lang, 'js');
  assert.equal(blocks('```"><img src=x>\nx\n```')[0].lang, '');
});

test('http, https and mailto links; the label is Markdown', () => {
  const [p] = blocks('[the *docs*](https://example.com/a?b=1) and [mail](mailto:me@example.com) and [plain](http://example.org)');
  assert.deepEqual(shape(p.children), [
    { a: ['https://example.com/a?b=1', ['the ', { em: ['docs'] }]] }, ' and ',
    { a: ['mailto:me@example.com', ['mail']] }, ' and ', { a: ['http://example.org/', ['plain']] },
  ]);
});

test('javascript:, data:, vbscript:, relative and protocol-relative links become text', () => {
  const sources = [
    '[x](javascript:alert(1))',
    '[x](JavaScript:alert(1))',
    '[x](  javascript:alert(1))',
    '[x](<javascript:alert(1)>)',
    '[x](java\\script:alert(1))',
    '[x](&#106;avascript:alert(1))',
    '[x](data:text/html;base64,PHNjcmlwdD4=)',
    '[x](vbscript:msgbox(1))',
    '[x](/relative/path)',
    '[x](page.html)',
    '[x](//evil.example.com)',
    '[x](file:///etc/passwd)',
    '<javascript:alert(1)>',
    '<data:text/html,hi>',
    '![x](data:image/png;base64,AAAA)',
  ];
  for (const md of sources) {
    const tree = parseMarkdown(md);
    assert.equal(ofType(tree, 'a').length, 0, md);
    assert.ok(textOf(tree).length > 0, md);
  }
  assert.equal(textOf(parseMarkdown('[x](javascript:alert(1))')), '[x](javascript:alert(1))');
});

test('autolinks and bare URLs, without trailing punctuation', () => {
  const [p] = blocks('See <https://a.example/x>, www.example.com/y. or https://en.example.org/wiki/A_(b)).');
  assert.deepEqual(shape(p.children), [
    'See ', { a: ['https://a.example/x', ['https://a.example/x']] }, ', ',
    { a: ['https://www.example.com/y', ['www.example.com/y']] }, '. or ',
    { a: ['https://en.example.org/wiki/A_(b)', ['https://en.example.org/wiki/A_(b)']] }, ').',
  ]);
});

test('image syntax never makes an image: a link to it, or text', () => {
  const [p] = blocks('![a cat](https://example.com/cat.png)');
  assert.deepEqual(shape(p.children), [{ a: ['https://example.com/cat.png', ['a cat']] }]);
});

test('raw HTML stays text', () => {
  const html = '<script>alert(1)</script> <img src=x onerror=alert(1)> <iframe src="https://x"></iframe> <a href="javascript:alert(1)">x</a>';
  const tree = parseMarkdown(html);
  assert.deepEqual(nodes(tree).map((n) => n.type), ['root', 'p', 'text']);
  assert.equal(textOf(tree), html);
  const block = parseMarkdown('<div onclick="alert(1)">\n<style>body{display:none}</style>\n</div>');
  assert.ok(textOf(block).includes('<style>body{display:none}</style>'));
  assert.equal(ofType(block, 'a').length, 0);
});

test('backslash escapes and character references', () => {
  const [p] = blocks('\\*not em\\* \\[x\\](y) \\\\ \\q &lt;b&gt; &amp; &#65;&#x42; &unknown; &#0;');
  assert.deepEqual(shape(p.children), ['*not em* [x](y) \\ \\q <b> & AB &unknown; \uFFFD']);
});

test('blockquotes (nested) and thematic breaks', () => {
  const tree = blocks('> quoted *text*\n> > inner\n\n---\n\n* * *');
  assert.deepEqual(tree.map((b) => b.type), ['blockquote', 'hr', 'hr']);
  assert.equal(tree[0].children[0].type, 'p');
  assert.equal(tree[0].children[1].type, 'blockquote');
});

test('GFM tables with alignment; missing cells are empty; a paragraph line can head a table', () => {
  const tree = blocks('Results:\n| name | n |\n|:-----|--:|\n| a | 1 |\n| b |\n\nafter');
  assert.deepEqual(tree.map((b) => b.type), ['p', 'table', 'p']);
  const [thead, tbody] = tree[1].children;
  assert.deepEqual(thead.children[0].children.map((c) => [c.type, c.align, textOf(c)]), [['th', 'left', 'name'], ['th', 'right', 'n']]);
  assert.deepEqual(tbody.children.map((tr) => tr.children.map(textOf)), [['a', '1'], ['b', '']]);
  // Without its delimiter row (still streaming), or with another cell count, it is just text.
  assert.deepEqual(blocks('| name | n |').map((b) => b.type), ['p']);
  assert.deepEqual(blocks('| name | n |\n|---|').map((b) => b.type), ['p']);
  assert.deepEqual(blocks('| a | b |\n|---|---|\n| `x \\| y` | **z** |')[0].children[1].children[0].children.map((c) => shape(c.children)), [
    [{ code: 'x | y' }],
    [{ strong: ['z'] }],
  ]);
});

test('hostile nesting is flattened, not recursed into', () => {
  const deepQuote = '>'.repeat(5000) + ' x';
  const deepEm = '*a '.repeat(3000) + 'b' + ' c*'.repeat(3000);
  const brackets = '['.repeat(5000) + ']('.repeat(5000);
  for (const md of [deepQuote, deepEm, brackets, '- '.repeat(3000) + 'x']) {
    const tree = parseMarkdown(md);
    assert.ok(nodes(tree).every((n) => ALLOWED_TYPES.has(n.type)));
    assert.ok(depth(tree) <= 30, `depth ${depth(tree)}`);
  }
});

function depth(tree) {
  let max = 0;
  const stack = [[tree, 0]];
  while (stack.length) {
    const [node, d] = stack.pop();
    max = Math.max(max, d);
    for (const child of node.children ?? []) stack.push([child, d + 1]);
  }
  return max;
}

// A small deterministic generator (mulberry32) so a failure names a reproducible case.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = [
  '*', '**', '_', '__', '~~', '~', '`', '``', '```', '~~~', '```js', '[', ']', '(', ')', '![', '](', '<', '>',
  '\\', '\n', '\n\n', '  ', '\t', '# ', '### ', '- ', '* ', '1. ', '2) ', '> ', '| ', ' | ', '|---|', ':--:', '---',
  'text', 'word ', 'x_y', '&amp;', '&#0;', '&#x110000;', '&lt;', 'https://ok.example/p', 'www.w.example', 'mailto:a@b.c',
  'javascript:alert(1)', 'JAVASCRIPT:x', 'data:text/html,<b>', 'vbscript:x', '//evil.example', '/rel',
  '<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '<iframe src=//x>', '<style>*{}</style>', 'on' + 'click=',
  '"', "'", '\u0000', '\r\n', '\u202e', '😀', 'é', '\ud800',
];

test('property: any input gives only allowed node types, safe links and well-formed nodes', () => {
  const next = random(20240611);
  for (let round = 0; round < 3000; round++) {
    const count = 1 + Math.floor(next() * 40);
    let md = '';
    for (let k = 0; k < count; k++) md += PIECES[Math.floor(next() * PIECES.length)];
    let tree;
    assert.doesNotThrow(() => {
      tree = parseMarkdown(md);
    }, `round ${round}: ${JSON.stringify(md)}`);
    for (const node of nodes(tree)) {
      const where = `round ${round}: ${JSON.stringify(md)} -> ${JSON.stringify(node)}`;
      assert.ok(ALLOWED_TYPES.has(node.type), where);
      for (const key of Object.keys(node)) assert.ok(ALLOWED_KEYS.has(key), where);
      if (node.type === 'a') {
        assert.match(node.href, /^(https?:\/\/[^/]|mailto:)/i, where);
        assert.equal(safeHref(node.href), node.href, where);
      }
      if (node.type === 'text' || node.type === 'code' || node.type === 'pre') assert.equal(typeof node.text, 'string', where);
      if (node.type === 'pre') assert.match(node.lang, /^[\w#+.-]{0,32}$/, where);
      if ('align' in node) assert.ok(['left', 'center', 'right'].includes(node.align), where);
      if ('start' in node) assert.ok(Number.isInteger(node.start) && node.start >= 0, where);
    }
    // Markup is shown, not dropped: outside fence info strings, link destinations and
    // autolinks, every "<" of the input is still in the text.
    if (!/```|~~~|\]\(|<[a-zA-Z][a-zA-Z0-9+.-]*:|<[^<>\s]+@/.test(md)) {
      const lt = (s) => s.split('<').length - 1;
      const out = nodes(tree).map((n) => n.text ?? '').join('');
      assert.ok(lt(out) >= lt(md), `round ${round}: ${JSON.stringify(md)}`);
    }
  }
});

test('safeHref accepts only absolute http(s) with a host, and mailto', () => {
  assert.equal(safeHref('https://example.com'), 'https://example.com/');
  assert.equal(safeHref(' HTTP://Example.com/a '), 'http://example.com/a');
  assert.equal(safeHref('mailto:a@b.c'), 'mailto:a@b.c');
  for (const bad of ['javascript:alert(1)', 'java\tscript:alert(1)', 'data:text/html,x', 'vbscript:x', '//x.y', '/a', 'a.html', 'https://', 'http:/x', 'ftp://x.y', '', null, 42]) {
    assert.equal(safeHref(bad), null, String(bad));
  }
});

// ---------------------------------------------------------------------------------------------
// renderMarkdown against a stand-in document

const FORBIDDEN_TAGS = new Set(['img', 'iframe', 'script', 'style', 'object', 'embed', 'link', 'meta', 'svg', 'math', 'form', 'input']);

class FakeNode {
  constructor(doc) {
    this.ownerDocument = doc;
    this.childNodes = [];
  }
  appendChild(child) {
    if (child.nodeName === '#fragment') {
      for (const c of child.childNodes) c.parentNode = this;
      this.childNodes.push(...child.childNodes);
      child.childNodes = [];
    } else {
      child.remove();
      child.parentNode = this;
      this.childNodes.push(child);
    }
    return child;
  }
  append(...children) {
    for (const child of children) this.appendChild(child);
  }
  remove() {
    if (!this.parentNode) return;
    this.parentNode.childNodes = this.parentNode.childNodes.filter((c) => c !== this);
    this.parentNode = null;
  }
  replaceChildren(...children) {
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = [];
    this.append(...children);
  }
  get textContent() {
    return this.childNodes.map((c) => c.textContent).join('');
  }
  set textContent(value) {
    this.childNodes = [new FakeText(this.ownerDocument, String(value))];
  }
  set innerHTML(_) {
    throw new Error('innerHTML used');
  }
  set outerHTML(_) {
    throw new Error('outerHTML used');
  }
  insertAdjacentHTML() {
    throw new Error('insertAdjacentHTML used');
  }
}

class FakeText extends FakeNode {
  constructor(doc, text) {
    super(doc);
    this.nodeName = '#text';
    this.data = text;
  }
  get textContent() {
    return this.data;
  }
}

class FakeElement extends FakeNode {
  constructor(doc, tag) {
    super(doc);
    this.nodeName = tag.toUpperCase();
    this.tagName = tag;
    this.attributes = {};
  }
  setAttribute(name, value) {
    if (/^on/i.test(name) || name === 'style' || name === 'src' || name === 'srcdoc') throw new Error(`attribute ${name}`);
    this.attributes[name] = String(value);
  }
  get style() {
    throw new Error('style used');
  }
}

/** A stand-in node as a string: tag, the properties and attributes set, children. */
function serialize(node) {
  if (node instanceof FakeText) return JSON.stringify(node.data);
  const props = ['className', 'href', 'rel', 'target', 'title', 'start'].filter((k) => node[k] !== undefined).map((k) => `${k}=${JSON.stringify(node[k])}`);
  const attrs = Object.entries(node.attributes ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  const inner = node.childNodes.map(serialize).join(',');
  return node instanceof FakeElement ? `<${node.tagName} ${[...props, ...attrs].join(' ')}>[${inner}]` : `[${inner}]`;
}

function fakeDocument() {
  const doc = {
    created: [],
    createElement(tag) {
      if (FORBIDDEN_TAGS.has(String(tag).toLowerCase())) throw new Error(`created <${tag}>`);
      const el = new FakeElement(doc, tag);
      doc.created.push(el);
      return el;
    },
    createTextNode(text) {
      return new FakeText(doc, text);
    },
    createDocumentFragment() {
      const f = new FakeNode(doc);
      f.nodeName = '#fragment';
      return f;
    },
  };
  return doc;
}

function elements(node) {
  const out = [];
  const stack = [...node.childNodes];
  while (stack.length) {
    const n = stack.shift();
    if (n instanceof FakeElement) out.push(n);
    stack.push(...n.childNodes);
  }
  return out;
}

test('render: elements by createElement/textContent, safe anchors, code blocks with a Copy button', () => {
  const doc = fakeDocument();
  const md = '# Hi\n\n[site](https://example.com) [bad](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n```js\nlet a = "<b>";\n```\n\n| a |\n|---|\n| 1 |';
  const fragment = renderMarkdown(parseMarkdown(md), doc);
  const els = elements(fragment);
  const tags = els.map((e) => e.tagName);
  assert.deepEqual(tags.filter((t) => t === 'a').length, 1);
  const a = els.find((e) => e.tagName === 'a');
  assert.equal(a.href, 'https://example.com/');
  assert.equal(a.rel, 'noopener noreferrer nofollow');
  assert.equal(a.target, '_blank');
  assert.ok(fragment.textContent.includes('[bad](javascript:alert(1)) <img src=x onerror=alert(1)>'));
  const block = els.find((e) => e.className === 'code-block');
  assert.ok(block);
  assert.equal(elements(block).find((e) => e.className === 'code-lang').textContent, 'js');
  assert.equal(elements(block).find((e) => e.className === 'code-copy').textContent, 'Copy');
  assert.equal(elements(block).find((e) => e.tagName === 'code').textContent, 'let a = "<b>";');
  assert.ok(tags.includes('table') && tags.includes('h1'));
});

test('render: a hand-made tree with unknown types, bad hrefs and odd fields stays safe', () => {
  const doc = fakeDocument();
  const tree = {
    type: 'root',
    children: [
      { type: 'img', src: 'https://x/y.png', children: [] },
      { type: 'script', children: [{ type: 'text', text: 'alert(1)' }] },
      { type: 'a', href: 'javascript:alert(1)', children: [{ type: 'text', text: 'click' }] },
      { type: 'td', align: 'left;background:url(x)', children: [] },
      { type: 'pre', lang: '"><script>', text: 'x' },
      { type: 'ol', start: '1" onclick="x', children: [] },
    ],
  };
  const fragment = renderMarkdown(tree, doc);
  const els = elements(fragment);
  assert.ok(!els.some((e) => e.tagName === 'a'));
  assert.ok(fragment.textContent.includes('click'));
  assert.equal(els.find((e) => e.tagName === 'td').className, undefined);
  assert.equal(els.find((e) => e.className === 'code-lang').textContent, 'text');
  assert.equal(els.find((e) => e.tagName === 'ol').start, undefined);
});

// ---------------------------------------------------------------------------------------------
// The streaming renderer and the cost of re-parsing

test('property: streaming any text, in any pieces, renders what a full render of it does', () => {
  const next = random(9241);
  for (let round = 0; round < 400; round++) {
    const count = 1 + Math.floor(next() * 60);
    let md = '';
    for (let k = 0; k < count; k++) md += PIECES[Math.floor(next() * PIECES.length)];
    const doc = fakeDocument();
    const root = doc.createElement('div');
    const stream = new MarkdownStream(root, doc);
    // Streamed in pieces of 1 to 8 characters (cutting through markup, \r\n and surrogates).
    for (let at = 0; at < md.length; ) {
      at = Math.min(md.length, at + 1 + Math.floor(next() * 8));
      stream.update(md.slice(0, at));
      const full = doc.createElement('div');
      full.append(renderMarkdown(parseMarkdown(md.slice(0, at)), doc));
      assert.equal(serialize(root), serialize(full), `round ${round}, prefix ${at}: ${JSON.stringify(md.slice(0, at))}`);
    }
  }
});

/**
 * serialize() of a node with every piece of a long paragraph (<span class="para-piece">)
 * replaced by its children and adjacent text nodes joined: what streaming in pieces must equal.
 */
function serializeUnpieced(node) {
  const parts = [];
  const add = (child) => {
    if (child instanceof FakeText) {
      if (typeof parts[parts.length - 1] === 'string') parts[parts.length - 1] += child.data;
      else parts.push(child.data);
    } else if (child.className === 'para-piece') {
      for (const c of child.childNodes) add(c);
    } else {
      parts.push(serializeUnpieced(child));
    }
  };
  for (const child of node.childNodes) add(child);
  const inner = parts.map((p) => (typeof p === 'string' ? JSON.stringify(p) : p)).join(',');
  if (!(node instanceof FakeElement)) return `[${inner}]`;
  const props = ['className', 'href', 'rel', 'target', 'title', 'start'].filter((k) => node[k] !== undefined).map((k) => `${k}=${JSON.stringify(node[k])}`);
  const attrs = Object.entries(node.attributes ?? {}).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `<${node.tagName} ${[...props, ...attrs].join(' ')}>[${inner}]`;
}

/** Streams md in random slices into a MarkdownStream with pieces of `piece` characters, checking every update. */
function streamAndCompare(md, next, piece, maxSlice, where) {
  const doc = fakeDocument();
  const root = doc.createElement('div');
  const stream = new MarkdownStream(root, doc, { piece });
  for (let at = 0; at < md.length; ) {
    at = Math.min(md.length, at + 1 + Math.floor(next() * maxSlice));
    stream.update(md.slice(0, at));
    const full = doc.createElement('div');
    full.append(renderMarkdown(parseMarkdown(md.slice(0, at)), doc));
    assert.equal(serializeUnpieced(root), serializeUnpieced(full), `${where}, prefix ${at}: ${JSON.stringify(md.slice(0, at))}`);
  }
  return root;
}

// Paragraph text with markup that spans whatever cuts and piece boundaries fall in it.
const PROSE = [
  'word ', 'words ', 'and ', 'qwertyuiop', 'xyz', ' ', ' ', ' ', ' ', '*', '**', '_', '~~', '`', '[', ']', '](', '(', ')',
  'https://ok.example/p ', 'www.w.example', '<', '>', '&amp;', '&am', '\\', '\n', '1. ', '- ', '| ', '|---|', '#', 'é', '😀',
  '[a](https://a.example) ', '`code` ', '*em* ', '**strong** ', '\n\n', '<https://x.example>', 'ht', 'tp://', '\r\n',
];

test('property: long paragraphs streamed in pieces render what a full render does (pieces unwrapped)', () => {
  const next = random(5150);
  for (let round = 0; round < 300; round++) {
    const count = 20 + Math.floor(next() * 150);
    let md = '';
    // Mostly plain words and runs, so that cuts happen; markup everywhere.
    for (let k = 0; k < count; k++) md += next() < 0.6 ? PROSE[Math.floor(next() * 5)] : PROSE[Math.floor(next() * PROSE.length)];
    streamAndCompare(md, next, 8 + Math.floor(next() * 24), 6, `round ${round}`);
  }
  for (let round = 0; round < 150; round++) {
    let md = '';
    for (let k = 0; k < 40; k++) md += PIECES[Math.floor(next() * PIECES.length)] + PROSE[Math.floor(next() * 5)];
    streamAndCompare(md, next, 8, 5, `mixed round ${round}`);
  }
});

test('a long paragraph with emphasis, links and code spans across pieces streams as it renders', () => {
  const next = random(77);
  const words = ['lorem ', 'ipsum ', 'dolor ', 'sit ', 'amet, ', 'qwertyuiopasdfgzxcv', 'consectetur '];
  const text = (n) => {
    let s = '';
    while (s.length < n) s += words[Math.floor(next() * words.length)];
    return s;
  };
  const md =
    `Start ${text(3000)} *an emphasis opened here ${text(12000)} closed late* then \`a code span ${text(9000)} closed\` and ` +
    `[a link label ${text(9000)}](https://example.com/x) then ${'x'.repeat(20000)} and **strong ${text(200)}** ${text(30000)}` +
    `\nsecond line ${text(9000)} *unclosed ${text(9000)}`;
  const root = streamAndCompare(md, next, 8192, 700, 'long paragraph');
  const p = root.childNodes[0];
  assert.equal(p.tagName, 'p');
  assert.ok(p.childNodes.length > 10 && p.childNodes.every((c) => c.className === 'para-piece'), `${p.childNodes.length} pieces`);
});

test('streaming a long paragraph keeps the pieces that did not change', () => {
  const doc = fakeDocument();
  const root = doc.createElement('div');
  const stream = new MarkdownStream(root, doc);
  let md = 'Intro.\n\n';
  for (let k = 0; md.length < 100000; k++) md += `sentence number ${k} of a paragraph that never ends; `;
  stream.update(md);
  const pieces = [...root.childNodes[1].childNodes];
  assert.ok(pieces.length >= 10, `${pieces.length} pieces`);
  stream.update(`${md}and more`);
  const now = root.childNodes[1].childNodes;
  // All but the last piece (or the last two, where a cut moved) are the same nodes.
  assert.ok(pieces.slice(0, -2).every((piece, k) => now[k] === piece));
  // The text of the pieces is the paragraph's, with nothing added between them.
  assert.equal(root.childNodes[1].textContent, `${md}and more`.slice('Intro.\n\n'.length).trim());
});

test('a paragraph in pieces that turns out to head a table renders as the table', () => {
  const doc = fakeDocument();
  const root = doc.createElement('div');
  const stream = new MarkdownStream(root, doc, { piece: 16 });
  const head = `a ${'word '.repeat(40)}| b`;
  stream.update(head);
  assert.equal(root.childNodes[0].childNodes[0].className, 'para-piece');
  for (const md of [`${head}\n-`, `${head}\n-|`, `${head}\n-|-`, `${head}\n-|-\n| 1 | 2 |`]) {
    stream.update(md);
    const full = doc.createElement('div');
    full.append(renderMarkdown(parseMarkdown(md), doc));
    assert.equal(serializeUnpieced(root), serializeUnpieced(full), md);
  }
  assert.equal(root.childNodes[0].className, 'table-scroll');
});

test('the streaming renderer keeps finished blocks and re-renders only the rest', () => {
  const doc = fakeDocument();
  const root = doc.createElement('div');
  const stream = new MarkdownStream(root, doc);
  stream.update('# Title\n\nFirst paragraph.\n\n- a\n- b\n\nStill writ');
  const [heading, first] = root.childNodes;
  stream.update('# Title\n\nFirst paragraph.\n\n- a\n- b\n\nStill writing **this**');
  assert.equal(root.childNodes[0], heading);
  assert.equal(root.childNodes[1], first);
  assert.equal(stream.done, '# Title\n\nFirst paragraph.\n');
  // A text that is not a continuation starts over.
  stream.update('Other');
  assert.equal(serialize(root), '<div >[<p >["Other"]]');
});

test('parsing stays linear: unclosed links, titles and bare URLs do not rescan what follows them', () => {
  // Each of these took 0.3 to 1.4 s when every `[a](` scanned 2 kB ahead and every bare URL
  // re-trimmed itself (64 kB); linear, they take a few milliseconds.
  const cases = {
    'unclosed links': '[a]('.repeat(16384),
    'unclosed titles': '[a](x "t'.repeat(8192),
    'nested destinations': '[a](b'.repeat(13000),
    'paren titles': '[a](x ('.repeat(9362),
    'trailing dots': `http://a${'.'.repeat(65536)}x`,
    'unbalanced parens': `http://a${').'.repeat(32768)}`,
    'invalid URLs': 'x(http://['.repeat(6553),
  };
  for (const [name, md] of Object.entries(cases)) {
    const start = performance.now();
    parseMarkdown(md);
    const ms = performance.now() - start;
    assert.ok(ms < 250, `${name}: ${ms.toFixed(0)} ms for ${md.length} characters`);
  }
});

test('render: a link shows where it really goes (host in punycode, mail address), isolated from its label', () => {
  const linkOf = (md) => {
    const doc = fakeDocument();
    const a = elements(renderMarkdown(parseMarkdown(md), doc)).find((e) => e.tagName === 'a');
    const host = a.childNodes.find((c) => c.className === 'link-host');
    return { a, label: a.childNodes[0], host: host ? host.textContent : null, dir: host?.attributes.dir };
  };
  const deceptive = linkOf('[https://bank.example](https://evil.example/login)');
  assert.equal(deceptive.host, 'evil.example');
  assert.equal(deceptive.dir, 'ltr');
  assert.equal(deceptive.a.title, 'https://evil.example/login');
  assert.equal(deceptive.label.tagName, 'bdi');
  assert.equal(deceptive.label.textContent, 'https://bank.example');
  // A homograph (Cyrillic "а") shows as the punycode it is; a right-to-left override stays in
  // the isolated label and cannot reorder the host after it.
  assert.equal(linkOf('https://ex\u0430mple.com/').host, 'xn--exmple-4nf.com');
  assert.equal(linkOf('[\u202emoc.knab](https://evil.example)').host, 'evil.example');
  assert.equal(linkOf('[support@bank.example](mailto:evil@x.example)').host, 'evil@x.example');
  assert.equal(linkOf('[docs](https://docs.example:8443/a)').host, 'docs.example:8443');
  // An ASCII label that is exactly its address needs no second copy of it.
  for (const md of ['<https://a.example/x>', 'https://a.example/x', 'www.example.com', '<a@b.example>', '[https://a.example/](https://a.example/)']) {
    assert.equal(linkOf(md).host, null, md);
  }
});
