// The conversation view: user and assistant messages, the answer rendered as Markdown while it
// streams (only the message being written is re-rendered), and the conversation as the
// `messages` array sent with every turn.
import { copyWithFeedback, h } from './dom.js';
import { describeError } from './errors-view.js';
import { finishNote, formatTimings } from './format.js';
import { MarkdownStream } from './markdown.js';
import { frameThrottle, keepPinned } from './stream.js';

export class ChatView {
  /**
   * @param list the <ol> of messages  @param scroller the element that scrolls
   * @param on {change(), retry(question)}: retry asks again the question of a failed last turn
   */
  constructor(list, scroller, on) {
    this.list = list;
    this.scroller = scroller;
    this.on = on;
    this.entries = [];
    list.addEventListener('click', (e) => {
      const copy = e.target.closest?.('.code-copy');
      if (copy) copyWithFeedback(copy, copy.closest('.code-block')?.querySelector('code')?.textContent ?? '');
    });
  }

  get isEmpty() {
    return this.entries.length === 0;
  }

  clear() {
    this.entries = [];
    this.list.replaceChildren();
    this.on.change();
  }

  addUser(text) {
    for (const button of this.list.querySelectorAll('.msg-retry')) button.remove();
    const entry = { role: 'user', content: text, state: 'done' };
    entry.el = h(
      'li',
      { class: 'msg msg-user', 'data-testid': 'message', 'data-role': 'user', 'data-state': 'done' },
      h('div', { class: 'msg-content' }, h('div', { class: 'msg-body', text })),
    );
    this.#append(entry);
    return entry;
  }

  /** A new assistant message in the streaming state; returns its handle. */
  addAssistant() {
    const entry = { role: 'assistant', content: '', state: 'streaming' };
    const message = new AssistantMessage(this, entry);
    entry.el = message.el;
    this.#append(entry);
    return message;
  }

  #append(entry) {
    this.entries.push(entry);
    this.list.append(entry.el);
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.on.change();
  }

  /**
   * The conversation for the next request. A turn whose answer failed (or was stopped before
   * its first token) is left out with its question, so roles keep alternating.
   */
  history() {
    const out = [];
    for (let k = 0; k < this.entries.length; k++) {
      const e = this.entries[k];
      if (e.role === 'user') {
        const reply = this.entries[k + 1];
        if (reply && (reply.state === 'error' || (reply.state === 'stopped' && !reply.content))) {
          k++;
          continue;
        }
        out.push({ role: 'user', content: e.content });
      } else if (e.state === 'done' || e.state === 'stopped') {
        out.push({ role: 'assistant', content: e.content });
      }
    }
    return out;
  }

  /** Removes the last turn (a failed one, before it is retried). */
  dropLastTurn() {
    while (this.entries.length) {
      const e = this.entries.pop();
      e.el.remove();
      if (e.role === 'user') break;
    }
    this.on.change();
  }
}

class AssistantMessage {
  constructor(view, entry) {
    this.view = view;
    this.entry = entry;
    this.body = h('div', { class: 'msg-body markdown' }, typingDots());
    this.reasoning = null; // the <details> of a thinking model's reasoning, made when it starts
    this.flag = h('span', { class: 'msg-flag', 'data-testid': 'message-flag', hidden: true });
    this.stats = h('span', { class: 'stats', 'data-testid': 'stats' });
    this.copy = h('button', { type: 'button', class: 'msg-action', text: 'Copy', hidden: true, 'aria-label': 'Copy answer' });
    this.copy.addEventListener('click', () => copyWithFeedback(this.copy, this.entry.content));
    this.footer = h('div', { class: 'msg-footer' }, this.flag, this.stats, this.copy);
    this.el = h(
      'li',
      { class: 'msg msg-assistant', 'data-testid': 'message', 'data-role': 'assistant', 'data-state': 'streaming', 'aria-busy': 'true' },
      h('div', { class: 'msg-avatar', 'aria-hidden': 'true' }),
      h('div', { class: 'msg-content' }, this.body, this.footer),
    );
    this.markdown = new MarkdownStream(this.body, document);
    // Opened while the model thinks: the reasoning so far, then the rest as it streams.
    this.el.addEventListener('toggle', (e) => {
      const r = this.reasoning;
      if (r && e.target === r.el && r.el.open && r.stale) {
        r.body.textContent = this.entry.reasoning;
        r.stale = false;
      }
    }, true);
    this.caret = null;
    this.throttle = frameThrottle(() => this.#render());
  }

  /** Only the blocks still being written are parsed and rendered again (see MarkdownStream). */
  #render() {
    keepPinned(this.view.scroller, () => {
      this.caret?.remove();
      this.markdown.update(this.entry.content);
      this.caret = this.entry.state === 'streaming' ? placeCaret(this.body) : null;
    });
  }

  setText(text) {
    this.entry.content = text;
    this.#thoughtEnded();
    this.throttle.schedule();
  }

  /**
   * The model's reasoning so far: shown apart from the answer, collapsed ("Thinking…" while it
   * streams, then "Thought for N s"), as plain text; opened, it streams in. It stays out of
   * the conversation sent back (`entry.content` is the answer only), as OpenAI clients do.
   */
  setReasoning(text) {
    if (!this.reasoning) {
      const summary = h('summary', { class: 'msg-reasoning-summary', 'data-testid': 'reasoning-summary', text: 'Thinking…' });
      const body = h('div', { class: 'msg-reasoning-body', 'data-testid': 'reasoning-body' });
      this.reasoning = { el: h('details', { class: 'msg-reasoning', 'data-testid': 'reasoning', 'data-state': 'thinking' }, summary, body), summary, body, started: performance.now(), ended: null };
      keepPinned(this.view.scroller, () => this.body.before(this.reasoning.el));
    }
    this.entry.reasoning = text;
    // Only while it is open does the text cost a layout; closed, it is set once at the end.
    if (this.reasoning.el.open) keepPinned(this.view.scroller, () => { this.reasoning.body.textContent = text; });
    else this.reasoning.stale = true;
  }

  /** The reasoning is over (the answer began, or the turn ended): its summary says how long. */
  #thoughtEnded() {
    const r = this.reasoning;
    if (!r || r.ended !== null) return;
    r.ended = performance.now();
    const s = (r.ended - r.started) / 1000;
    r.summary.textContent = s < 1 ? 'Thought for less than a second' : `Thought for ${Math.round(s)} s`;
    r.el.dataset.state = 'done';
    r.body.textContent = this.entry.reasoning;
    r.stale = false;
  }

  /** state: 'done' or 'stopped'. */
  finish(state, { timings, finish } = {}) {
    this.#thoughtEnded();
    this.#settle(state);
    const note = state === 'stopped' ? 'Stopped' : finishNote(finish);
    this.flag.textContent = note;
    this.flag.hidden = !note;
    this.stats.textContent = formatTimings(timings);
    this.copy.hidden = !this.entry.content;
    if (!this.entry.content) {
      const text = state === 'stopped' ? 'Stopped before the first word.' : 'The model ended its turn without a word.';
      this.body.replaceChildren(h('p', { class: 'msg-empty', text }));
    }
  }

  fail(error) {
    this.#thoughtEnded();
    this.#settle('error');
    const { title, message } = describeError(error);
    const retry = h('button', { type: 'button', class: 'msg-action msg-retry', 'data-testid': 'retry-button', text: 'Retry' });
    retry.addEventListener('click', () => {
      const question = this.view.entries.at(-2);
      if (question?.role === 'user') this.view.on.retry(question.content);
    });
    keepPinned(this.view.scroller, () => {
      this.body.append(h('p', { class: 'msg-error', text: message ? `${title}: ${message}` : title }));
      this.flag.hidden = true;
      this.footer.append(retry);
    });
  }

  /** The final state, and the final render (without caret or typing dots). */
  #settle(state) {
    this.entry.state = state;
    this.el.dataset.state = state;
    this.el.removeAttribute('aria-busy');
    this.throttle.flush();
  }
}

/**
 * The blinking caret goes after the last text of the answer (not after a code block or table);
 * returns it (or null), so that the next render can take it out of a block it keeps.
 */
function placeCaret(body) {
  let target = body;
  for (;;) {
    const last = target.lastChild;
    if (!last || last.nodeType !== Node.ELEMENT_NODE) break;
    if (last.matches('.code-block, .table-scroll, hr, br, .link-host')) return null;
    target = last;
  }
  const caret = h('span', { class: 'caret', 'aria-hidden': 'true' });
  target.append(caret);
  return caret;
}

function typingDots() {
  return h('span', { class: 'typing' }, h('i', { 'aria-hidden': 'true' }), h('i', { 'aria-hidden': 'true' }), h('i', { 'aria-hidden': 'true' }), h('span', { class: 'visually-hidden', text: 'Writing…' }));
}
