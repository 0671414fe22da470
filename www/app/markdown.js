// Markdown for model output, in two layers:
//
//   parseMarkdown(text)             -> a tree of plain objects ({type, children | text, ...}).
//                                      Pure: no DOM, runs in Node (tests/browser/markdown.test.mjs).
//   renderMarkdown(tree, document)  -> a DocumentFragment built with createElement/textContent only.
//
// Safety is structural: the tree only ever holds NODE_TYPES, raw HTML in the text stays text,
// links exist only for http, https and mailto (anything else stays the text it was written as),
// there are no images (image syntax becomes a link), and nothing from the text reaches a style.
// The parser copes with partial input (the answer while it streams): an unterminated code fence
// runs to the end of the text, unmatched emphasis and brackets are shown as written.
//
// What it reads: ATX headings, paragraphs (a single newline is a line break, as chat output
// means it), bullet and ordered lists (nested, tight or loose), blockquotes, fenced code with a
// language, thematic breaks, GFM tables, emphasis / strong / ~~strikethrough~~ by CommonMark's
// delimiter rules, code spans, inline links, <autolinks>, bare http(s) and www. links, backslash
// escapes and common character references. Not read: raw HTML, reference links, setext headings,
// indented code blocks.

/** Every node type the parser can produce. */
export const NODE_TYPES = Object.freeze([
  'root', 'p', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'ul', 'ol', 'li', 'pre', 'hr',
  'table', 'thead', 'tbody', 'tr', 'th', 'td',
  'text', 'br', 'code', 'em', 'strong', 'del', 'a',
]);

// Containers nested deeper than this (quotes in quotes, emphasis in emphasis) become plain text:
// hostile input cannot make the parser or the renderer recurse without bound.
const MAX_DEPTH = 24;

const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/**
 * The href to use for a link destination, or null when it must not become a link: only absolute
 * http(s) URLs (the URL parser requires their host) and mailto: addresses pass; no relative,
 * protocol-relative, javascript:, data:, vbscript: or any other scheme.
 */
export function safeHref(raw) {
  if (typeof raw !== 'string') return null;
  const s = raw.trim();
  if (!/^(?:https?:\/\/|mailto:)\S/i.test(s)) return null;
  let url;
  try {
    url = new URL(s);
  } catch {
    return null;
  }
  return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
}

export function parseMarkdown(text) {
  const root = { type: 'root', children: parseBlocks(normalize(text).split('\n'), 0) };
  return limitDepth(root);
}

function normalize(text) {
  return String(text ?? '').replace(/\r\n?/g, '\n').replace(/\0/g, '\uFFFD');
}

/**
 * The top-level blocks of `text` (the rest of an answer still being written), and how many of
 * them are final: no text appended later can change them. A block is final once every line its
 * parse looked at is complete: a block reads at most one line past its end (a table's delimiter
 * row), and the last line of the text may still grow. `finalChars` is where the first block
 * that is not final starts (the blank lines before it included), in characters of `text`;
 * `lastLine` the line where the last block starts.
 */
function parseGrowing(text) {
  const lines = normalize(text).split('\n');
  const ends = [];
  const blocks = parseBlocks(lines, 0, ends).map((block) => limitDepth(block, 1));
  let final = 0;
  while (final < blocks.length && ends[final] + 1 < lines.length - 1) final++;
  let lastLine = blocks.length > 1 ? ends[blocks.length - 2] : 0;
  while (lastLine < lines.length - 1 && isBlank(lines[lastLine])) lastLine++;
  let finalChars = 0;
  if (final > 0) {
    // The offset of line ends[final - 1] in the text as given (its line breaks may be \r\n).
    const breaks = /\r\n?|\n/g;
    for (let line = 0; line < ends[final - 1]; line++) breaks.exec(text);
    finalChars = breaks.lastIndex;
  }
  return { blocks, final, finalChars, lastLine };
}

// A paragraph's layout costs in proportion to its length (Chromium lays out an inline formatting
// context as a whole, even after appending 3 characters to a 1 MB one). A streamed paragraph
// longer than this many characters is therefore laid out as pieces of about this size, each its
// own box, so an update lays out only the pieces it changed: 8 kB pieces take about 1 ms.
const PIECE = 8192;

/**
 * Renders a text that only grows (a streamed answer) into `root`, at a cost that does not grow
 * with the answer: finished top-level blocks stay in the DOM as they are, and each update parses
 * and renders only the blocks after them. The DOM it builds equals renderMarkdown(parseMarkdown(text)),
 * except that a long open paragraph is laid out in pieces (see ParagraphStream): with each
 * <span class="para-piece"> replaced by its children, and adjacent text nodes joined, it is equal.
 */
export class MarkdownStream {
  constructor(root, doc, { piece = PIECE } = {}) {
    this.root = root;
    this.doc = doc;
    this.piece = piece;
    this.done = null; // the text of the finished blocks; null until the first update
    this.open = []; // the DOM nodes of the blocks after them (after `para`, when there is one)
    this.para = null; // a long open paragraph, rendered in pieces, when the last block is one
  }

  update(text) {
    text = String(text ?? '');
    if (this.done === null || !text.startsWith(this.done)) {
      // First update, or a text that is not a continuation: start over.
      this.root.replaceChildren();
      this.done = '';
      this.open = [];
      this.para = null;
    }
    if (this.para) {
      const state = this.para.update(text);
      if (state.open) {
        this.#replaceOpen(state.after);
        return;
      }
      // The paragraph is final (its pieces stay and `done` moves past it), or later text made
      // its start something else (a table's header row): the text after `done` renders afresh.
      if (state.final) this.done = text.slice(0, state.end);
      else this.para.el.remove();
      this.para = null;
    }
    this.#renderRest(text);
  }

  /** Parses and renders the text after `done`; a long open paragraph at its end goes on in pieces. */
  #renderRest(text, pieces = true) {
    for (const node of this.open) node.remove();
    this.open = [];
    const rest = text.slice(this.done.length);
    const { blocks, final, finalChars, lastLine } = parseGrowing(rest);
    blocks.forEach((block, k) => {
      const node = renderNode(block, this.doc);
      if (!node) return;
      this.root.appendChild(node);
      if (k >= final) this.open.push(node);
    });
    this.done += rest.slice(0, finalChars);
    if (!pieces || final === blocks.length || blocks[blocks.length - 1].type !== 'p') return;
    // The last block is a paragraph; once it is long and its first line is settled, the blocks
    // before it cannot change any more either (none reads past that line but to classify it,
    // settledLine's job), so they become final, and the paragraph goes on in pieces.
    const from = lineOffset(rest, lastLine);
    if (rest.length - from < this.piece || !settledLine(/^[^\r\n]*/.exec(rest.slice(from))[0])) return;
    const start = this.done.length - finalChars + from;
    const para = new ParagraphStream(this.doc, this.piece, start);
    const state = para.update(text);
    if (!state.open) return; // cannot happen (the paragraph is open): it stays as rendered
    this.open.pop().remove();
    this.open = [];
    this.done = text.slice(0, start);
    this.root.appendChild(para.el);
    this.#replaceOpen(state.after);
    this.para = para;
  }

  /** Renders `blocks` as the open blocks (after the paragraph in pieces, if any). */
  #replaceOpen(blocks) {
    for (const node of this.open) node.remove();
    this.open = blocks.map((block) => renderNode(block, this.doc)).filter(Boolean);
    for (const node of this.open) this.root.appendChild(node);
  }
}

/**
 * The open paragraph at the end of a streamed answer, once it is long: a <p> laid out as
 * consecutive <span class="para-piece"> boxes (full-width inline blocks, see style.css), parsed
 * in two parts. A prefix that no later text can change (nothing left open in it: parseInline's
 * `settle`; a neutral boundary: cutFits; a line that stays paragraph text: settledLine) is
 * "frozen": parsed and rendered once, its pieces never touched again. Each update parses only
 * the text after the last cut, splits its nodes into pieces, and replaces the pieces from the
 * first one that changed: appending costs O(recent text) in script and in layout. Where text is
 * still open (an emphasis opened 10 kB back), nothing is frozen past it and the pieces after it
 * are compared instead: a late closer re-renders exactly the pieces it changes.
 *
 * A line may end early where one piece ends and the next begins: the accepted price of laying
 * out pieces apart. Pieces end at a space where one is near, so this is rare in prose.
 */
class ParagraphStream {
  constructor(doc, piece, start) {
    this.doc = doc;
    this.piece = piece;
    this.el = doc.createElement('p');
    this.cut = start; // where the text not frozen starts, in characters of the answer
    this.lineStart = start; // where the line holding `cut` starts
    this.context = ''; // the last characters of the frozen source (cutFits looks back at them)
    this.pieces = []; // the open pieces: {key (JSON of its nodes), node}
    this.retryAt = piece; // the length of open source at which to look for a cut again
  }

  /**
   * Shows the paragraph of `text` (the whole answer). Returns {open: true, after} (`after`: the
   * blocks after the paragraph, none final), {final: true, end} (the paragraph is final, the
   * text after it starts at `end`), or {} when the text no longer reads as this paragraph.
   */
  update(text) {
    const raw = text.slice(this.cut);
    const lines = normalize(raw).split('\n');
    // A paragraph line can head a table: the line holding the cut, once the next line comes.
    if (lines.length > 1 && lines[1].includes('|') && TABLE_DELIMITER.test(lines[1])) {
      if (tableAt([normalize(text.slice(this.lineStart, this.cut)) + lines[0], lines[1]], 0)) return {};
    }
    // The paragraph's lines, as parseBlocks reads them.
    let end = 1;
    while (end < lines.length && !isBlank(lines[end]) && !interruptsParagraph(lines[end]) && !tableAt(lines, end)) end++;
    const after = end < lines.length ? this.cut + lineOffset(raw, end) : -1;
    let src = lines.slice(0, end).map((line) => line.trim()).join('\n');
    if (src.length >= this.retryAt) src = this.#freeze(src, raw, lines);
    this.#show(inlineOf(src));
    if (after < 0) return { open: true, after: [] };
    // As parseGrowing: the paragraph read line `end` and, for a table, the line after it.
    if (end + 1 < lines.length - 1) return { final: true, end: after };
    return { open: true, after: parseBlocks(lines.slice(end), 0).map((block) => limitDepth(block, 1)) };
  }

  /**
   * Freezes the longest prefix of `src` (the open source) that can be, if any: renders it as
   * pieces for good and moves the cut past it. Returns the source left open.
   */
  #freeze(src, raw, lines) {
    const settle = { from: Infinity };
    parseInline(src, 0, true, settle);
    let at = this.#lastCut(src, lines, Math.min(settle.from, src.length - 1));
    // Text open at the end of src may close inside the prefix (a code span across the cut):
    // the prefix is checked on its own, and once more before what that leaves open.
    for (let tries = 0; at > 0 && tries < 2; tries++) {
      const check = { from: Infinity };
      const nodes = inlineOf(src.slice(0, at), check);
      if (check.from === Infinity) {
        this.#commit(src, raw, lines, at, nodes);
        return src.slice(at);
      }
      at = this.#lastCut(src, lines, Math.min(check.from, at - 1));
    }
    this.retryAt = src.length + this.piece / 2;
    return src;
  }

  /**
   * The last index c <= limit, and within a piece of it, where src can be cut (cutFits, on a
   * settled line), or 0: after a space if there is one in the last quarter piece (the cut ends
   * a piece, and so maybe a line), anywhere in unbroken text. Linear in the distance looked
   * back and the run of non-space characters it starts in.
   */
  #lastCut(src, lines, limit) {
    let fallback = 0;
    let line = lineIndex(src, limit);
    let run = null;
    for (let c = limit; c > 0 && c > limit - this.piece; c--) {
      if (!run || c <= run.start) run = blockerOf(this.context, src, c);
      // Line 0 is settled: the paragraph started with it, or a cut was made inside it.
      if (cutFits(this.context, src, c, run.blocker) && (line === 0 || settledLine(lines[line]))) {
        if (src[c - 1] === ' ') return c;
        fallback ||= c;
        if (c < limit - this.piece / 4) return fallback;
      }
      if (src[c - 1] === '\n') line--;
    }
    return fallback;
  }

  #commit(src, raw, lines, at, nodes) {
    for (const piece of this.pieces) piece.node.remove();
    this.pieces = [];
    for (const piece of splitPieces(nodes, this.piece)) this.el.appendChild(renderPiece(piece, this.doc));
    // The raw offset of the cut: its line's start, the spaces trimmed off it, the way into it.
    const line = lineIndex(src, at);
    const lineStart = this.cut + lineOffset(raw, line);
    const lead = lines[line].length - lines[line].trimStart().length;
    this.cut = lineStart + lead + (at - (src.lastIndexOf('\n', at - 1) + 1));
    if (line > 0) this.lineStart = lineStart;
    this.context = (this.context + src.slice(0, at)).slice(-CONTEXT);
    this.retryAt = this.piece;
  }

  /** Renders the open part's nodes, keeping the leading pieces that did not change. */
  #show(nodes) {
    const pieces = splitPieces(nodes, this.piece).map((piece) => ({ key: JSON.stringify(piece), nodes: piece }));
    let same = 0;
    while (same < pieces.length && same < this.pieces.length && pieces[same].key === this.pieces[same].key) same++;
    for (const piece of this.pieces.splice(same)) piece.node.remove();
    for (const piece of pieces.slice(same)) {
      piece.node = renderPiece(piece.nodes, this.doc);
      this.el.appendChild(piece.node);
      this.pieces.push({ key: piece.key, node: piece.node });
    }
  }
}

// How far back cutFits looks into text frozen earlier: the longest entity (34 characters).
const CONTEXT = 40;
// Characters that are neither markup nor space nor half of a surrogate pair, nor the h/w that
// may start a bare URL (which looks at the character before it).
const NEUTRAL = /[^\s!-/:-@[-`{-~hHwW\ud800-\udfff]/;

/**
 * Whether paragraph source `src` (after frozen text ending in `context`) may be cut before
 * index c, as far as the characters around the cut go (what is still open before it is for
 * parseInline's `settle`). Both sides neutral, or a space before a neutral character: an escape,
 * a delimiter run's flanking, a backtick run and a bare URL's start look at the character before
 * them, and the parse of the text after the cut sees none. And no `<` or URL start (`blocker`,
 * from blockerOf) in the run of non-space characters before the cut, nor an `&` or the start of
 * an `http` just before it, which text after the cut could still make an autolink, a longer (or
 * new) bare URL or an entity.
 */
function cutFits(context, src, c, blocker) {
  const before = src[c - 1];
  if (!NEUTRAL.test(src[c]) || !(before === ' ' || NEUTRAL.test(before))) return false;
  if (before === ' ') return true;
  const near = c < CONTEXT ? context.slice(c - CONTEXT) + src.slice(0, c) : src.slice(c - CONTEXT, c);
  return c <= blocker && !near.includes('&') && !/ht(?:t(?:ps?)?)?$/i.test(near);
}

/**
 * The run of non-space characters that holds index c - 1 of src: {start, blocker}, where
 * blocker is the first index in it (negative: in the frozen text) of a `<` or a URL start.
 * Frozen text was checked when it was cut, but for its last characters (a URL start may span a cut).
 */
function blockerOf(context, src, c) {
  let k = c - 1;
  while (k >= 0 && !/\s/.test(src[k])) k--;
  const start = k + 1;
  const lead = start === 0 ? context.slice(context.search(/\S*$/)) : '';
  const at = (lead + src.slice(start, c)).search(/<|https?:\/\/|www\./i);
  return { start, blocker: at < 0 ? Infinity : start - lead.length + at };
}

/**
 * Whether a line read as paragraph text stays paragraph text however it grows: appending to it
 * cannot make it a fence, heading, rule, list item or table delimiter row. (Whether it heads a
 * table depends on the next line, which ParagraphStream checks when it comes.)
 */
function settledLine(line) {
  if (indentOf(line) >= 4) return true;
  const t = line.trimStart();
  if (/^[ \t|:-]*$/.test(t)) return false;
  const c = t[0];
  if (c === '`' || c === '~' || c === '#') {
    const run = /^(?:`+|~+|#+)/.exec(t)[0].length;
    return t.length > run || (c === '#' && run > 6);
  }
  if (c === '-' || c === '*' || c === '_' || c === '+') {
    if (t[1] === ' ' || t[1] === '\t') return false;
    for (const ch of t) if (ch !== c && ch !== ' ' && ch !== '\t') return true;
    return false;
  }
  if (c >= '0' && c <= '9') {
    const digits = /^\d+/.exec(t)[0].length;
    if (digits > 9) return true;
    if (t[digits] !== '.' && t[digits] !== ')') return t.length > digits;
    return /[^ \t]/.test(t.slice(digits + 1));
  }
  return c !== '>';
}

/** Inline nodes of a paragraph's source, as parseGrowing gives them (depth limited). */
function inlineOf(src, settle = null) {
  return limitDepth({ type: 'p', children: parseInline(src, 0, true, settle) }, 1).children;
}

/** Which line of src holds index c. */
function lineIndex(src, c) {
  let line = 0;
  for (let k = src.indexOf('\n'); k >= 0 && k < c; k = src.indexOf('\n', k + 1)) line++;
  return line;
}

/** Where line `n` starts in `text` (whose line breaks may be \r\n or \r). */
function lineOffset(text, n) {
  const breaks = /\r\n?|\n/g;
  for (let line = 0; line < n; line++) breaks.exec(text);
  return n > 0 ? breaks.lastIndex : 0;
}

/**
 * Inline nodes in consecutive groups of about `size` characters of text, for pieces. Only text
 * at the top level is split, at a space in the last quarter of the piece where there is one
 * (anywhere in unbroken text, but never inside a surrogate pair); other nodes stay whole. The
 * last piece may run a quarter over rather than leave a scrap of a line on its own.
 */
function splitPieces(nodes, size) {
  const pieces = [];
  let piece = [];
  let length = 0;
  const close = () => {
    pieces.push(piece);
    piece = [];
    length = 0;
  };
  nodes.forEach((node, k) => {
    const slack = k === nodes.length - 1 ? size / 4 : 0;
    if (node.type !== 'text') {
      piece.push(node);
      length += node.type === 'br' ? 1 : plainText(node).length;
      if (length >= size) close();
      return;
    }
    let text = node.text;
    while (length + text.length > size + slack) {
      const room = size - length;
      let at = text.lastIndexOf(' ', room - 1) + 1;
      if (at <= room - size / 4) {
        if (piece.length && room < size / 4) at = 0; // end this piece before the text instead
        else at = room - (/[\ud800-\udbff]/.test(text[room - 1]) ? 1 : 0);
      }
      if (at > 0) piece.push({ type: 'text', text: text.slice(0, at) });
      text = text.slice(at);
      close();
    }
    if (text) {
      piece.push({ type: 'text', text });
      length += text.length;
    }
  });
  if (piece.length) pieces.push(piece);
  return pieces;
}

function renderPiece(nodes, doc) {
  const span = doc.createElement('span');
  span.className = 'para-piece';
  appendAll(span, nodes, doc);
  return span;
}

// ---------------------------------------------------------------------------------------------
// Blocks

const FENCE_OPEN = /^( {0,3})(`{3,}|~{3,})(.*)$/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$/;
const HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}>/;
const LIST_MARKER = /^( {0,3})(?:([-+*])|(\d{1,9})([.)]))(?=[ \t]|$)/;
const TABLE_DELIMITER = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
const LANGUAGE = /^[\w#+.-]{1,32}$/;

const isBlank = (line) => /^[ \t]*$/.test(line);

/** Columns of leading whitespace (a tab advances to the next multiple of 4). */
function indentOf(line) {
  let col = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === ' ') col++;
    else if (line[i] === '\t') col += 4 - (col % 4);
    else break;
  }
  return col;
}

/** The line without up to `n` columns of leading whitespace. */
function stripIndent(line, n) {
  let col = 0;
  let i = 0;
  while (i < line.length && col < n) {
    if (line[i] === ' ') {
      col++;
    } else if (line[i] === '\t') {
      const width = 4 - (col % 4);
      if (col + width > n) return ' '.repeat(col + width - n) + line.slice(i + 1);
      col += width;
    } else {
      break;
    }
    i++;
  }
  return line.slice(i);
}

function openFence(line) {
  const m = FENCE_OPEN.exec(line);
  if (!m) return null;
  if (m[2][0] === '`' && m[3].includes('`')) return null;
  const word = m[3].trim().split(/\s+/)[0] ?? '';
  return { indent: m[1].length, char: m[2][0], length: m[2].length, lang: LANGUAGE.test(word) ? word : '' };
}

function closesFence(line, fence) {
  const m = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
  return m !== null && m[1][0] === fence.char && m[1].length >= fence.length;
}

function listMarker(line) {
  const m = LIST_MARKER.exec(line);
  if (!m || HR.test(line)) return null;
  const indent = m[1].length;
  const markerWidth = m[0].length - indent;
  const after = line.slice(m[0].length);
  const spaces = indentOf(after);
  const empty = isBlank(after);
  // 1-4 spaces after the marker set where the content starts; more (or none) means one.
  const gap = empty || spaces > 4 ? 1 : spaces;
  return {
    indent,
    ordered: m[3] !== undefined,
    kind: m[2] ?? m[4],
    start: m[3] !== undefined ? Number(m[3]) : 1,
    contentIndent: indent + markerWidth + gap,
    content: empty ? '' : stripIndent(after, gap),
    empty,
  };
}

/** Whether a line starts a block that ends a paragraph. */
function interruptsParagraph(line) {
  if (indentOf(line) >= 4) return false;
  if (openFence(line) || HEADING.test(line) || HR.test(line) || QUOTE.test(line)) return true;
  const item = listMarker(line);
  return item !== null && !item.empty && (!item.ordered || item.start === 1);
}

function splitRow(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const cells = [];
  let cell = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === '|') {
      cell += '|';
      i++;
    } else if (s[i] === '|') {
      cells.push(cell.trim());
      cell = '';
    } else {
      cell += s[i];
    }
  }
  cells.push(cell.trim());
  return cells;
}

function tableAt(lines, i) {
  const head = lines[i];
  const delimiter = lines[i + 1];
  if (delimiter === undefined || !head.includes('|') || !delimiter.includes('|')) return null;
  if (indentOf(head) >= 4 || !TABLE_DELIMITER.test(delimiter)) return null;
  const header = splitRow(head);
  const aligns = splitRow(delimiter).map((d) => {
    const left = d.startsWith(':');
    const right = d.endsWith(':');
    return left && right ? 'center' : right ? 'right' : left ? 'left' : null;
  });
  return header.length === aligns.length ? { header, aligns } : null;
}

/** `ends`, when given, receives the line index after each block (and its lookahead). */
function parseBlocks(lines, depth, ends = null) {
  if (depth > MAX_DEPTH) {
    const text = lines.join('\n').trim();
    return text ? [{ type: 'p', children: [{ type: 'text', text }] }] : [];
  }
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }

    const fence = openFence(line);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !closesFence(lines[i], fence)) body.push(stripIndent(lines[i++], fence.indent));
      if (i >= lines.length && body[body.length - 1] === '') body.pop(); // still streaming
      i++; // the closing fence
      out.push({ type: 'pre', lang: fence.lang, text: body.join('\n') });
      ends?.push(i);
      continue;
    }

    const heading = HEADING.exec(line);
    if (heading) {
      const content = (heading[2] ?? '').replace(/(?:^|[ \t]+)#+$/, '');
      out.push({ type: `h${heading[1].length}`, children: parseInline(content.trim(), depth) });
      i++;
      ends?.push(i);
      continue;
    }

    if (HR.test(line)) {
      out.push({ type: 'hr' });
      i++;
      ends?.push(i);
      continue;
    }

    if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && !isBlank(lines[i])) {
        if (QUOTE.test(lines[i])) inner.push(lines[i].replace(/^ {0,3}> ?/, ''));
        else if (!interruptsParagraph(lines[i]) && !listMarker(lines[i])) inner.push(lines[i]);
        else break;
        i++;
      }
      out.push({ type: 'blockquote', children: parseBlocks(inner, depth + 1) });
      ends?.push(i);
      continue;
    }

    const item = listMarker(line);
    if (item) {
      i = parseList(lines, i, item, depth, out);
      ends?.push(i);
      continue;
    }

    const table = tableAt(lines, i);
    if (table) {
      i = parseTable(lines, i, table, depth, out);
      ends?.push(i);
      continue;
    }

    const para = [line.trim()];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !interruptsParagraph(lines[i]) && !tableAt(lines, i)) {
      para.push(lines[i].trim());
      i++;
    }
    out.push({ type: 'p', children: parseInline(para.join('\n'), depth) });
    ends?.push(i);
  }
  return out;
}

function parseList(lines, i, first, depth, out) {
  const items = [];
  let loose = false;
  let marker = first;
  while (marker) {
    const body = [marker.content];
    i++;
    let fence = openFence(body[0]);
    let next = null;
    while (i < lines.length) {
      const line = lines[i];
      if (isBlank(line)) {
        let j = i + 1;
        while (j < lines.length && isBlank(lines[j])) j++;
        if (j >= lines.length) {
          i = j;
          break;
        }
        if (fence || belongsToItem(lines[j], marker)) {
          for (; i < j; i++) body.push('');
          if (!fence) loose = true;
          continue;
        }
        const sibling = listMarker(lines[j]);
        if (sibling && sameList(sibling, first)) {
          loose = true;
          i = j;
          next = sibling;
        } else {
          i = j;
        }
        break;
      }
      if (belongsToItem(line, marker)) {
        body.push(stripIndent(line, Math.min(indentOf(line), marker.contentIndent)));
      } else if (fence) {
        // A fence opened inside the item ends with it; its lines keep their own indentation.
        body.push(line);
      } else {
        const sibling = listMarker(line);
        if (sibling) {
          if (sameList(sibling, first)) next = sibling;
          break;
        }
        // Lazy continuation of the item's last paragraph.
        if (isBlank(body[body.length - 1]) || interruptsParagraph(line)) break;
        body.push(line.trim());
      }
      const added = body[body.length - 1];
      if (fence) {
        if (closesFence(added, fence)) fence = null;
      } else {
        fence = openFence(added);
      }
      i++;
    }
    items.push(parseBlocks(body, depth + 1));
    marker = next;
    if (i >= lines.length || !next) break;
  }
  const list = { type: first.ordered ? 'ol' : 'ul', children: [] };
  if (first.ordered && first.start !== 1) list.start = first.start;
  for (const blocks of items) {
    const children = loose ? blocks : blocks.flatMap((b) => (b.type === 'p' ? b.children : [b]));
    list.children.push({ type: 'li', children });
  }
  out.push(list);
  return i;
}

/** An indented line is the item's content; so is a deeper list marker (lenient nesting). */
function belongsToItem(line, marker) {
  const indent = indentOf(line);
  if (indent >= marker.contentIndent) return true;
  return indent > marker.indent && listMarker(line.trimStart()) !== null;
}

function sameList(a, b) {
  return a.ordered === b.ordered && a.kind === b.kind;
}

function parseTable(lines, i, { header, aligns }, depth, out) {
  const cellsOf = (cells, type) =>
    aligns.map((align, c) => {
      const cell = { type, children: parseInline(cells[c] ?? '', depth + 1) };
      if (align) cell.align = align;
      return cell;
    });
  const table = { type: 'table', children: [{ type: 'thead', children: [{ type: 'tr', children: cellsOf(header, 'th') }] }] };
  i += 2;
  const rows = [];
  while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|') && !interruptsParagraph(lines[i])) {
    rows.push({ type: 'tr', children: cellsOf(splitRow(lines[i]), 'td') });
    i++;
  }
  if (rows.length) table.children.push({ type: 'tbody', children: rows });
  out.push(table);
  return i;
}

// ---------------------------------------------------------------------------------------------
// Inlines

const ASCII_PUNCT = /[!-/:-@[-`{-~]/;
const AUTOLINK = /<([A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*)>/y;
const EMAIL_AUTOLINK =
  /<([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)>/y;
// Characters with no meaning of their own, taken in one step.
const PLAIN_RUN = /[^\\`\n*_~[!<&hHwW]+/y;
const BARE_URL = /(?:https?:\/\/|www\.)[^\s<>]+/iy;
const ENTITY = /&(?:#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/y;
const NAMED_ENTITIES = {
  amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', copy: '\u00a9', reg: '\u00ae',
  trade: '\u2122', hellip: '\u2026', mdash: '\u2014', ndash: '\u2013', laquo: '\u00ab', raquo: '\u00bb',
  times: '\u00d7', divide: '\u00f7', middot: '\u00b7', deg: '\u00b0', plusmn: '\u00b1', euro: '\u20ac',
  larr: '\u2190', rarr: '\u2192', uarr: '\u2191', darr: '\u2193', le: '\u2264', ge: '\u2265', ne: '\u2260',
};

const isSpace = (c) => c === '' || /\s/u.test(c);
const isPunct = (c) => c !== '' && /[\p{P}\p{S}]/u.test(c);

/** The whole code point that ends just before index i ('' at the start). */
function charBefore(s, i) {
  if (i <= 0) return '';
  const low = s.charCodeAt(i - 1);
  return low >= 0xdc00 && low <= 0xdfff && i >= 2 ? s.slice(i - 2, i) : s[i - 1];
}

/** The whole code point at index i ('' at the end). */
function charAt(s, i) {
  if (i >= s.length) return '';
  return String.fromCodePoint(s.codePointAt(i));
}

/**
 * Code spans: a run of n backticks up to the next run of exactly n. Returns Map(start -> {end,
 * text}); an escaped backtick (outside code) cannot open one, so its span starts one later.
 * `settle` (see parseInline) learns where the first run without a closer is.
 */
function findCodeSpans(src, settle = null) {
  const runs = [];
  for (let i = 0; i < src.length; i++) {
    if (src[i] !== '`') continue;
    let j = i;
    while (src[j] === '`') j++;
    let slashes = 0;
    while (src[i - 1 - slashes] === '\\') slashes++;
    runs.push({ pos: i, len: j - i, escaped: slashes % 2 === 1 });
    i = j - 1;
  }
  const byLength = new Map();
  runs.forEach((run, index) => {
    if (!byLength.has(run.len)) byLength.set(run.len, []);
    byLength.get(run.len).push(index);
  });
  const spans = new Map();
  for (let r = 0; r < runs.length; r++) {
    const run = runs[r];
    const pos = run.escaped ? run.pos + 1 : run.pos;
    const len = run.escaped ? run.len - 1 : run.len;
    if (len === 0) continue;
    const candidates = byLength.get(len) ?? [];
    let lo = 0;
    let hi = candidates.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (candidates[mid] <= r) lo = mid + 1;
      else hi = mid;
    }
    if (lo === candidates.length) {
      if (settle) settle.from = Math.min(settle.from, run.pos);
      continue;
    }
    const closer = candidates[lo];
    let text = src.slice(pos + len, runs[closer].pos).replace(/\n/g, ' ');
    if (text.length > 2 && text.startsWith(' ') && text.endsWith(' ') && text.trim() !== '') text = text.slice(1, -1);
    spans.set(pos, { end: runs[closer].pos + len, text });
    r = closer;
  }
  return spans;
}

/** Map('[' index -> matching ']' index), skipping escapes and code spans. */
function matchBrackets(src, codeSpans, settle = null) {
  const open = [];
  const pairs = new Map();
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') i++;
    else if (c === '`' && codeSpans.has(i)) i = codeSpans.get(i).end - 1;
    else if (c === '[') open.push(i);
    else if (c === ']' && open.length) pairs.set(open.pop(), i);
  }
  if (settle && open.length) settle.from = Math.min(settle.from, open[0]);
  return pairs;
}

/**
 * What link parsing needs to know about one block of inline text, computed once and only when
 * the block has a `](`: every link then costs time proportional to its own length, however many
 * unclosed `[a](` the text holds (a streamed answer is re-parsed often, and each of them used to
 * rescan what follows it).
 *   stop[k]   the first index >= k holding whitespace or a control character (ends a destination)
 *   lower[k]  the first index m > k where the parenthesis depth, counted from k, falls below 0
 *             (m - 1 is the `)` that closes the destination), or src.length + 1
 */
function linkScan(src) {
  const n = src.length;
  const stop = new Int32Array(n + 1);
  stop[n] = n;
  for (let k = n - 1; k >= 0; k--) stop[k] = /[\s\x00-\x1f]/.test(src[k]) ? k : stop[k + 1];
  // depth[k]: unescaped `(` minus `)` in src[0..k). A backslash before ASCII punctuation escapes
  // it; a destination never starts inside a run of backslashes, so these pairs are its pairs.
  const depth = new Int32Array(n + 1);
  for (let k = 0; k < n; k++) {
    const c = src[k];
    if (c === '\\' && k + 1 < n && ASCII_PUNCT.test(src[k + 1])) {
      depth[k + 1] = depth[k];
      depth[k + 2] = depth[k];
      k++;
      continue;
    }
    depth[k + 1] = depth[k] + (c === '(' ? 1 : c === ')' ? -1 : 0);
  }
  // Next smaller element, with a stack: linear.
  const lower = new Int32Array(n + 1).fill(n + 1);
  const stack = [];
  for (let m = 0; m <= n; m++) {
    while (stack.length && depth[stack[stack.length - 1]] > depth[m]) lower[stack.pop()] = m;
    stack.push(m);
  }
  return { stop, lower, tails: new Map(), titles: new Map() };
}

const isLinkSpace = (c) => c === ' ' || c === '\t' || c === '\n';

/**
 * Where a link title that opens at `q` ends (the index after its closing quote), or -1. A scan
 * that passes another title opener of the same kind would end where that one ends, so the last
 * scan per kind answers the openers inside it: the total work stays linear.
 */
function titleEnd(src, q, scan) {
  const quote = src[q];
  const close = quote === '(' ? ')' : quote;
  const last = scan.titles.get(quote);
  if (last && q > last.start && q < last.stop) return last.end;
  let j = q + 1;
  while (j < src.length && src[j] !== close) j += src[j] === '\\' ? 2 : 1;
  const end = j < src.length ? j + 1 : -1;
  scan.titles.set(quote, { start: q, stop: Math.min(j, src.length), end });
  return end;
}

/** From the end of a destination: optional spaces and title, then `)`. The index after it, or -1. */
function linkTail(src, from, scan) {
  if (scan.tails.has(from)) return scan.tails.get(from);
  let j = from;
  while (j < src.length && isLinkSpace(src[j])) j++;
  if (src[j] === '"' || src[j] === "'" || src[j] === '(') {
    j = titleEnd(src, j, scan);
    if (j >= 0) while (j < src.length && isLinkSpace(src[j])) j++;
  }
  const end = j >= 0 && src[j] === ')' ? j + 1 : -1;
  scan.tails.set(from, end);
  return end;
}

/** A destination without angle brackets, backslash escapes of ASCII punctuation removed. */
function unescapeDestination(raw) {
  return raw.replace(/\\([!-/:-@[-`{-~])/g, '$1');
}

/** `[label](destination "title")` (or `![alt](...)`) from the '[' at `open`. */
function inlineLink(src, open, brackets, depth, image, links) {
  const close = brackets.get(open);
  if (close === undefined || src[close + 1] !== '(') return null;
  links.scan ??= linkScan(src);
  const scan = links.scan;
  let j = close + 2;
  while (j < src.length && isLinkSpace(src[j])) j++;
  let dest;
  let end;
  if (src[j] === '<') {
    // Up to the next `>`; a `<` or a line break first means no destination. Openers cannot
    // nest inside one another here, so this scan is linear over all links.
    let k = j + 1;
    dest = '';
    while (k < src.length && src[k] !== '>' && src[k] !== '\n' && src[k] !== '<') {
      if (src[k] === '\\' && ASCII_PUNCT.test(src[k + 1] ?? '')) k++;
      dest += src[k++];
    }
    if (src[k] !== '>') return linkFailed(links, open);
    end = linkTail(src, k + 1, scan);
  } else {
    const stop = Math.min(scan.stop[j], scan.lower[j] - 1);
    end = linkTail(src, stop, scan);
    if (end >= 0) dest = unescapeDestination(src.slice(j, stop));
  }
  if (end < 0) return linkFailed(links, open);
  const start = image ? open - 1 : open;
  const href = safeHref(dest);
  if (!href) return { end, node: { type: 'text', text: src.slice(start, end) } };
  const label = src.slice(open + 1, close);
  const children = label.trim() ? parseInline(label, depth + 1, false) : [{ type: 'text', text: href }];
  return { end, node: { type: 'a', href, children } };
}

/**
 * A `[label](` that is not a link (yet): later text may complete it, so for parseInline's
 * `settle` nothing from here on is settled.
 */
function linkFailed(links, open) {
  if (links.settle) links.settle.from = Math.min(links.settle.from, open);
  return null;
}

function autolink(src, i) {
  AUTOLINK.lastIndex = i;
  let m = AUTOLINK.exec(src);
  if (m) {
    const href = safeHref(m[1]);
    return href ? { end: AUTOLINK.lastIndex, node: { type: 'a', href, children: [{ type: 'text', text: m[1] }] } } : null;
  }
  EMAIL_AUTOLINK.lastIndex = i;
  m = EMAIL_AUTOLINK.exec(src);
  if (m) {
    const href = safeHref(`mailto:${m[1]}`);
    return href ? { end: EMAIL_AUTOLINK.lastIndex, node: { type: 'a', href, children: [{ type: 'text', text: m[1] }] } } : null;
  }
  return null;
}

const URL_TRAIL = /[?!.,:;*_~'"]/;

/**
 * A bare http(s):// or www. URL at i, without trailing punctuation (and without a `)` it does
 * not open). One that fails (no valid URL) is not tried again from inside the same run of
 * characters: each such run is read once, not once per `h` or `w` in it.
 */
function bareUrl(src, i, links) {
  if (i < links.urlsFrom) return null;
  const before = charBefore(src, i);
  if (before !== '' && !/[\s*_~(]/.test(before)) return null;
  BARE_URL.lastIndex = i;
  const m = BARE_URL.exec(src);
  if (!m) return null;
  const raw = m[0];
  let opens = 0;
  let closes = 0;
  for (const c of raw) {
    if (c === '(') opens++;
    else if (c === ')') closes++;
  }
  let end = raw.length;
  for (;;) {
    const c = raw[end - 1];
    if (URL_TRAIL.test(c)) {
      end--;
    } else if (c === ')' && opens < closes) {
      end--;
      closes--;
    } else {
      break;
    }
  }
  const url = raw.slice(0, end);
  const href = /^www\.$/i.test(url) || /^https?:\/\/$/i.test(url) ? null : safeHref(/^www\./i.test(url) ? `https://${url}` : url);
  if (!href) {
    links.urlsFrom = i + raw.length;
    return null;
  }
  return { end: i + url.length, node: { type: 'a', href, children: [{ type: 'text', text: url }] } };
}

function entity(src, i) {
  ENTITY.lastIndex = i;
  const m = ENTITY.exec(src);
  if (!m) return null;
  let text;
  if (m[3] !== undefined) {
    text = Object.hasOwn(NAMED_ENTITIES, m[3]) ? NAMED_ENTITIES[m[3]] : null;
  } else {
    const code = m[1] !== undefined ? Number(m[1]) : parseInt(m[2], 16);
    const valid = code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff);
    text = valid ? String.fromCodePoint(code) : '\uFFFD';
  }
  return text === null ? null : { end: ENTITY.lastIndex, text };
}

/**
 * Inline content of one block. Emphasis follows CommonMark's delimiter-run algorithm over a
 * linked list of items: {node} for finished nodes, {delim} for runs of * _ or ~~.
 *
 * `settle`, when given, gets `from`: the first index of src where something is still open that
 * later text could close (a backtick run, a `[`, a `[label](` without its `)`, an emphasis
 * opener), or Infinity. With nothing open, src parses the same whatever follows it, as long as
 * the boundary itself is neutral (see cutFits): MarkdownStream freezes such prefixes.
 */
function parseInline(src, depth, allowLinks = true, settle = null) {
  if (depth > MAX_DEPTH) return src ? [{ type: 'text', text: src }] : [];
  const codeSpans = findCodeSpans(src, settle);
  const brackets = allowLinks ? matchBrackets(src, codeSpans, settle) : null;
  const links = { scan: null, urlsFrom: 0, settle };
  const head = { prev: null, next: null };
  let tail = head;
  let text = '';
  const append = (item) => {
    item.prev = tail;
    item.next = null;
    tail.next = item;
    tail = item;
  };
  const flush = () => {
    if (text) append({ node: { type: 'text', text } });
    text = '';
  };
  const push = (node) => {
    flush();
    append({ node });
  };

  let i = 0;
  while (i < src.length) {
    PLAIN_RUN.lastIndex = i;
    if (PLAIN_RUN.test(src)) {
      text += src.slice(i, PLAIN_RUN.lastIndex);
      i = PLAIN_RUN.lastIndex;
      continue;
    }
    const c = src[i];
    if (c === '\\') {
      const next = src[i + 1];
      if (next === '\n') {
        push({ type: 'br' });
        i += 2;
      } else if (next !== undefined && ASCII_PUNCT.test(next)) {
        text += next;
        i += 2;
      } else {
        text += c;
        i++;
      }
      continue;
    }
    if (c === '`') {
      const span = codeSpans.get(i);
      if (span) {
        push({ type: 'code', text: span.text });
        i = span.end;
      } else {
        while (src[i] === '`') text += src[i++];
      }
      continue;
    }
    if (c === '\n') {
      text = text.replace(/[ \t]+$/, '');
      push({ type: 'br' });
      i++;
      while (src[i] === ' ' || src[i] === '\t') i++;
      continue;
    }
    if (c === '*' || c === '_' || c === '~') {
      let j = i;
      while (src[j] === c) j++;
      const count = j - i;
      if (c === '~' && count !== 2) {
        text += src.slice(i, j);
        i = j;
        continue;
      }
      const before = charBefore(src, i);
      const after = charAt(src, j);
      const left = !isSpace(after) && (!isPunct(after) || isSpace(before) || isPunct(before));
      const right = !isSpace(before) && (!isPunct(before) || isSpace(after) || isPunct(after));
      const canOpen = c === '_' ? left && (!right || isPunct(before)) : left;
      const canClose = c === '_' ? right && (!left || isPunct(after)) : right;
      flush();
      append({ delim: { char: c, count, orig: count, canOpen, canClose, pos: i } });
      i = j;
      continue;
    }
    if (allowLinks) {
      let found = null;
      if (c === '[') found = inlineLink(src, i, brackets, depth, false, links);
      else if (c === '!' && src[i + 1] === '[') found = inlineLink(src, i + 1, brackets, depth, true, links);
      else if (c === '<') found = autolink(src, i);
      else if (c === 'h' || c === 'H' || c === 'w' || c === 'W') found = bareUrl(src, i, links);
      if (found) {
        if (found.node.type === 'text') text += found.node.text;
        else push(found.node);
        i = found.end;
        continue;
      }
    }
    if (c === '&') {
      const ref = entity(src, i);
      if (ref) {
        text += ref.text;
        i = ref.end;
        continue;
      }
    }
    text += c;
    i++;
  }
  flush();
  const opener = processEmphasis(head);
  if (settle && opener) settle.from = Math.min(settle.from, opener.delim.pos);
  const nodes = [];
  for (let item = head.next; item; item = item.next) nodes.push(itemNode(item));
  return mergeText(nodes);
}

function itemNode(item) {
  return item.node ?? { type: 'text', text: item.delim.char.repeat(item.delim.count) };
}

function mergeText(nodes) {
  const out = [];
  for (const node of nodes) {
    if (node.type === 'text') {
      if (!node.text) continue;
      const last = out[out.length - 1];
      if (last?.type === 'text') {
        out[out.length - 1] = { type: 'text', text: last.text + node.text };
        continue;
      }
    }
    out.push(node);
  }
  return out;
}

/** Returns the lowest delimiter left on the stack (one that a later closer could still match), or null. */
function processEmphasis(head) {
  let first = null;
  let last = null;
  for (let item = head.next; item; item = item.next) {
    if (!item.delim) continue;
    item.below = last;
    item.above = null;
    if (last) last.above = item;
    else first = item;
    last = item;
  }
  const unstack = (d) => {
    if (d.below) d.below.above = d.above;
    else first = d.above;
    if (d.above) d.above.below = d.below;
  };
  const unlink = (item) => {
    item.prev.next = item.next;
    if (item.next) item.next.prev = item.prev;
  };
  // Where the search for an opener may stop, per closer kind (CommonMark's openers_bottom).
  const bottoms = new Map();
  let closer = first;
  while (closer) {
    const d = closer.delim;
    if (!d.canClose) {
      closer = closer.above;
      continue;
    }
    const key = `${d.char}${d.canOpen ? 1 : 0}${d.orig % 3}`;
    const bottom = bottoms.has(key) ? bottoms.get(key) : null;
    let opener = closer.below;
    while (opener && opener !== bottom) {
      const o = opener.delim;
      if (o.char === d.char && o.canOpen) {
        const oddMatch =
          d.char !== '~' && (o.canClose || d.canOpen) && (o.orig + d.orig) % 3 === 0 && !(o.orig % 3 === 0 && d.orig % 3 === 0);
        if (!oddMatch) break;
      }
      opener = opener.below;
    }
    if (!opener || opener === bottom) {
      bottoms.set(key, closer.below);
      const next = closer.above;
      if (!d.canOpen) unstack(closer);
      closer = next;
      continue;
    }
    const o = opener.delim;
    const use = d.char === '~' ? 2 : o.count >= 2 && d.count >= 2 ? 2 : 1;
    const type = d.char === '~' ? 'del' : use === 2 ? 'strong' : 'em';
    const children = [];
    for (let item = opener.next; item !== closer; item = item.next) children.push(itemNode(item));
    for (let x = closer.below; x && x !== opener; x = x.below) unstack(x);
    const wrapped = { node: { type, children: mergeText(children) }, prev: opener, next: closer };
    opener.next = wrapped;
    closer.prev = wrapped;
    o.count -= use;
    d.count -= use;
    if (o.count === 0) {
      unlink(opener);
      unstack(opener);
    }
    if (d.count === 0) {
      const next = closer.above;
      unlink(closer);
      unstack(closer);
      closer = next;
    }
  }
  return first;
}

// ---------------------------------------------------------------------------------------------
// Depth limit

function plainText(node) {
  let out = '';
  const stack = [node];
  while (stack.length) {
    const n = stack.pop();
    if (typeof n.text === 'string') out += n.text;
    if (Array.isArray(n.children)) for (let k = n.children.length - 1; k >= 0; k--) stack.push(n.children[k]);
  }
  return out;
}

/**
 * Replaces containers nested deeper than MAX_DEPTH (counting every level) by their text. `level`
 * is the node's own (1 for a top-level block).
 */
function limitDepth(top, level = 0) {
  const visit = (node, level) => {
    if (!Array.isArray(node.children)) return node;
    if (level > MAX_DEPTH) return { type: 'text', text: plainText(node) };
    let flattened = false;
    for (let k = 0; k < node.children.length; k++) {
      const child = node.children[k];
      const kept = visit(child, level + 1);
      if (kept !== child) {
        node.children[k] = kept;
        flattened = true;
      }
    }
    if (flattened) node.children = mergeText(node.children);
    return node;
  };
  return visit(top, level);
}

// ---------------------------------------------------------------------------------------------
// DOM

const ELEMENT_FOR = {
  p: 'p', h1: 'h1', h2: 'h2', h3: 'h3', h4: 'h4', h5: 'h5', h6: 'h6', blockquote: 'blockquote',
  ul: 'ul', ol: 'ol', li: 'li', table: 'table', thead: 'thead', tbody: 'tbody', tr: 'tr', th: 'th',
  td: 'td', em: 'em', strong: 'strong', del: 'del',
};
const ALIGNS = new Set(['left', 'center', 'right']);

/**
 * DOM nodes for a tree from parseMarkdown. Fenced code becomes
 * <div class="code-block"><div class="code-head"><span class="code-lang"/><button class="code-copy"/></div><pre><code/></pre></div>;
 * the page handles the Copy buttons by delegation.
 */
export function renderMarkdown(tree, doc) {
  const fragment = doc.createDocumentFragment();
  appendAll(fragment, tree?.children, doc);
  return fragment;
}

function appendAll(parent, children, doc) {
  if (!Array.isArray(children)) return;
  for (const child of children) {
    const node = renderNode(child, doc);
    if (node) parent.appendChild(node);
  }
}

function renderNode(node, doc) {
  if (!node || typeof node !== 'object') return null;
  switch (node.type) {
    case 'text':
      return doc.createTextNode(String(node.text ?? ''));
    case 'br':
    case 'hr':
      return doc.createElement(node.type);
    case 'code': {
      const code = doc.createElement('code');
      code.textContent = String(node.text ?? '');
      return code;
    }
    case 'pre':
      return renderCodeBlock(node, doc);
    case 'a': {
      const href = safeHref(node.href);
      if (!href) {
        const span = doc.createElement('span');
        appendAll(span, node.children, doc);
        return span;
      }
      const a = doc.createElement('a');
      a.href = href;
      a.rel = 'noopener noreferrer nofollow';
      a.target = '_blank';
      a.title = href;
      // The label is isolated so that direction overrides in it cannot reorder what follows.
      const label = doc.createElement('bdi');
      appendAll(label, node.children, doc);
      a.appendChild(label);
      const dest = destination(href, plainText(node));
      if (dest) {
        const host = doc.createElement('span');
        host.className = 'link-host';
        host.setAttribute('dir', 'ltr');
        host.textContent = dest;
        a.appendChild(host);
      }
      return a;
    }
    default: {
      if (!Object.hasOwn(ELEMENT_FOR, node.type)) return null;
      const el = doc.createElement(ELEMENT_FOR[node.type]);
      if (node.type === 'ol' && Number.isInteger(node.start) && node.start >= 0) el.start = node.start;
      if ((node.type === 'th' || node.type === 'td') && ALIGNS.has(node.align)) el.className = `align-${node.align}`;
      appendAll(el, node.children, doc);
      if (node.type === 'table') {
        const scroller = doc.createElement('div');
        scroller.className = 'table-scroll';
        scroller.appendChild(el);
        return scroller;
      }
      return el;
    }
  }
}

/**
 * What a link shows of where it really goes, after its label: the host (punycode for a
 * non-ASCII one, so look-alike letters show as what they are) or the mail address. Null when
 * the label is already exactly that address in plain ASCII (an autolink, a bare URL): a label
 * can say anything, so every other link shows its destination, not only on hover.
 */
function destination(href, label) {
  const url = new URL(href);
  const shown = url.protocol === 'mailto:' ? url.pathname : url.host;
  const text = label.trim();
  if (/^[\x21-\x7e]+$/.test(text) && [text, `https://${text}`, `mailto:${text}`].some((t) => safeHref(t) === href)) return null;
  return shown;
}

function renderCodeBlock(node, doc) {
  const block = doc.createElement('div');
  block.className = 'code-block';
  const head = doc.createElement('div');
  head.className = 'code-head';
  const lang = doc.createElement('span');
  lang.className = 'code-lang';
  lang.textContent = LANGUAGE.test(node.lang ?? '') ? node.lang : 'text';
  const copy = doc.createElement('button');
  copy.type = 'button';
  copy.className = 'code-copy';
  copy.textContent = 'Copy';
  copy.setAttribute('aria-label', 'Copy code');
  head.append(lang, copy);
  const pre = doc.createElement('pre');
  const code = doc.createElement('code');
  code.textContent = String(node.text ?? '');
  pre.appendChild(code);
  block.append(head, pre);
  return block;
}
