// The raw completion view, for models without a chat template (or by choice): one growing
// document of the text typed in and the model's continuations, the whole document sent as the
// prompt of every run (the engine reuses its cache for the part it has seen).
import { h } from './dom.js';
import { describeError } from './errors-view.js';
import { finishNote, formatTimings } from './format.js';
import { frameThrottle, keepPinned } from './stream.js';

export class CompletionView {
  /**
   * @param doc the document element  @param footer {flag, stats} under it
   * @param scroller the element that scrolls  @param on {change()}
   */
  constructor(doc, footer, scroller, on) {
    this.doc = doc;
    this.footer = footer;
    this.scroller = scroller;
    this.on = on;
    this.segments = [];
  }

  get isEmpty() {
    return this.segments.length === 0;
  }

  /** The document so far: what the next run continues. */
  text() {
    return this.segments.filter((s) => s.state !== 'error').map((s) => s.content).join('');
  }

  clear() {
    this.segments = [];
    this.doc.replaceChildren();
    this.#footer('', '');
    this.on.change();
  }

  addPrompt(text) {
    const segment = { role: 'user', content: text, state: 'done' };
    segment.el = h('span', { class: 'seg seg-user', 'data-testid': 'segment', 'data-role': 'user', 'data-state': 'done', text });
    this.#append(segment);
  }

  /** A continuation in the streaming state; returns its handle. */
  addContinuation() {
    const segment = { role: 'assistant', content: '', state: 'streaming' };
    segment.el = h('span', { class: 'seg seg-assistant', 'data-testid': 'segment', 'data-role': 'assistant', 'data-state': 'streaming', 'aria-busy': 'true' });
    this.#append(segment);
    this.#footer('', 'Writing…');
    const throttle = frameThrottle(() => keepPinned(this.scroller, () => showText(segment)));
    const settle = (state) => {
      throttle.flush();
      segment.state = state;
      segment.el.dataset.state = state;
      segment.el.removeAttribute('aria-busy');
    };
    return {
      setText: (text) => {
        segment.content = text;
        throttle.schedule();
      },
      finish: (state, { timings, finish } = {}) => {
        settle(state);
        const note = state === 'stopped' ? 'Stopped' : finishNote(finish) || (segment.content ? '' : 'The model ended the text here');
        this.#footer(note, formatTimings(timings));
      },
      fail: (error) => {
        settle('error');
        const { title, message } = describeError(error);
        this.#footer(message ? `${title}: ${message}` : title, '', true);
      },
    };
  }

  #append(segment) {
    this.segments.push(segment);
    this.doc.append(segment.el);
    this.scroller.scrollTop = this.scroller.scrollHeight;
    this.on.change();
  }

  #footer(note, stats, isError = false) {
    this.footer.flag.textContent = note;
    this.footer.flag.hidden = !note;
    this.footer.flag.classList.toggle('is-error', isError);
    this.footer.stats.textContent = stats;
  }
}

/** Shows a segment's text: what was added is appended to its text node, not the whole text set again. */
function showText(segment) {
  const node = segment.el.firstChild;
  if (node?.nodeType === Node.TEXT_NODE && segment.content.startsWith(node.data)) {
    node.appendData(segment.content.slice(node.data.length));
  } else {
    segment.el.textContent = segment.content;
  }
}
