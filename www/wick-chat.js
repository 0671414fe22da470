// <wick-chat>: a private chat in one tag. The model runs in this tab (wick.js); the conversation
// never leaves it. Every element on a page that names the same model shares one engine (one
// download, one load, one copy in memory); each keeps its own conversation, and the engine
// answers them one at a time.
//
//   <script type="module" src="/path/to/wick-chat.js"></script>
//   <wick-chat model="/models/SmolLM2-135M-Instruct.Q4_1.gguf" system="You are terse."></wick-chat>
//
// Attributes: model (URL; required), sha256, system (system prompt), temperature, top-p, top-k,
// max-tokens, placeholder, show-card (show the model's name, size and how it runs), hide-progress
// (no download/load progress bar). Sampling attributes apply from the next message on.
// Events (on the element, bubbling): ready {info}, progress {phase, loaded, total}, token {text,
// content}, message {role, content, finish_reason}, error {error: WickError}.
// Methods: send(text) -> Promise<string> (the answer), stop(), clear().
// Styling: CSS custom properties (--wick-font, --wick-bg, --wick-fg, --wick-muted, --wick-accent,
// --wick-border, --wick-user-bg, --wick-assistant-bg, --wick-radius, --wick-height) and ::part()
// (container, card, progress, log, message, user, assistant, status, form, input, send, stop).
// Model output is rendered by the page's safe Markdown renderer (app/markdown.js): no HTML from
// the text, links only to http(s)/mailto.
import { createEngine, WickError } from './wick.js';
import { MarkdownStream } from './app/markdown.js';
import { formatBytes, formatParams, plainName } from './app/format.js';
import { h } from './app/dom.js';

/** Engines shared by the elements of this page: key -> {engine: Promise, users, listeners}. */
const shared = new Map();

function acquire(model, sha256, listener) {
  const key = JSON.stringify([new URL(model, document.baseURI).href, sha256 ?? null]);
  let entry = shared.get(key);
  if (!entry) {
    entry = { users: 0, listeners: new Set() };
    entry.engine = createEngine({
      model,
      sha256: sha256 || undefined,
      onProgress: (p) => { for (const l of entry.listeners) l(p); },
    });
    // A failed load is not kept: the next element (or a retry) loads again.
    entry.engine.catch(() => shared.get(key) === entry && shared.delete(key));
    shared.set(key, entry);
  }
  entry.users++;
  entry.listeners.add(listener);
  return {
    engine: entry.engine,
    release() {
      entry.listeners.delete(listener);
      if (--entry.users > 0) return;
      if (shared.get(key) === entry) shared.delete(key);
      entry.engine.then((e) => e.unload(), () => {});
    },
  };
}

const STYLE = `
:host {
  --_font: var(--wick-font, system-ui, -apple-system, "Segoe UI", sans-serif);
  --_bg: var(--wick-bg, #fff);
  --_fg: var(--wick-fg, #1d1d1f);
  --_muted: var(--wick-muted, #6b6b70);
  --_accent: var(--wick-accent, #2f5bd3);
  --_border: var(--wick-border, #d9d9de);
  --_user-bg: var(--wick-user-bg, #eef2fc);
  --_assistant-bg: var(--wick-assistant-bg, transparent);
  --_radius: var(--wick-radius, 12px);
  display: block;
  height: var(--wick-height, 28rem);
  color: var(--_fg);
  font: 15px/1.55 var(--_font);
}
@media (prefers-color-scheme: dark) {
  :host {
    --_bg: var(--wick-bg, #18181b);
    --_fg: var(--wick-fg, #ececef);
    --_muted: var(--wick-muted, #a0a0a8);
    --_accent: var(--wick-accent, #8aa8ff);
    --_border: var(--wick-border, #3a3a40);
    --_user-bg: var(--wick-user-bg, #262a36);
  }
}
:host([hidden]) { display: none; }
* { box-sizing: border-box; }
.container {
  display: flex; flex-direction: column; height: 100%;
  border: 1px solid var(--_border); border-radius: var(--_radius); background: var(--_bg); overflow: hidden;
}
.card { padding: .5rem .85rem; border-bottom: 1px solid var(--_border); color: var(--_muted); font-size: .85em; }
.card b { color: var(--_fg); font-weight: 600; unicode-bidi: isolate; }
.progress { display: flex; align-items: center; gap: .6rem; padding: .5rem .85rem; border-bottom: 1px solid var(--_border); font-size: .85em; color: var(--_muted); }
.progress progress { flex: 1; height: .4rem; accent-color: var(--_accent); }
.log { flex: 1; overflow-y: auto; padding: .75rem .85rem; display: flex; flex-direction: column; gap: .6rem; }
.msg { max-width: 100%; overflow-wrap: anywhere; }
.user { align-self: flex-end; max-width: 85%; padding: .45rem .75rem; border-radius: var(--_radius); background: var(--_user-bg); white-space: pre-wrap; }
.assistant { background: var(--_assistant-bg); }
.assistant[data-state="streaming"]:empty::after { content: "…"; color: var(--_muted); }
.note { color: var(--_muted); font-size: .85em; }
.status { margin: 0; padding: 0 .85rem .35rem; min-height: 1.2em; color: var(--_muted); font-size: .8em; }
form { display: flex; gap: .5rem; padding: .6rem; border-top: 1px solid var(--_border); }
textarea {
  flex: 1; resize: none; min-height: 2.4rem; max-height: 8rem; padding: .5rem .65rem;
  font: inherit; color: inherit; background: transparent;
  border: 1px solid var(--_border); border-radius: calc(var(--_radius) * .66);
}
textarea:focus-visible, button:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
button {
  padding: 0 1rem; font: inherit; font-weight: 600; cursor: pointer;
  color: var(--_bg); background: var(--_accent); border: 0; border-radius: calc(var(--_radius) * .66);
}
button:disabled { opacity: .45; cursor: default; }
button.stop { color: var(--_fg); background: transparent; border: 1px solid var(--_border); }
[hidden] { display: none !important; }
.markdown p, .markdown ul, .markdown ol, .markdown blockquote, .markdown .code-block, .markdown .table-scroll { margin: 0 0 .7em; }
.markdown > :last-child { margin-bottom: 0; }
.markdown h1, .markdown h2, .markdown h3, .markdown h4, .markdown h5, .markdown h6 { margin: 1em 0 .4em; font-size: 1.05em; line-height: 1.3; }
.markdown ul, .markdown ol { padding-left: 1.4em; }
.markdown blockquote { padding-left: .8em; border-left: 3px solid var(--_border); color: var(--_muted); }
.markdown :not(pre) > code { padding: .1em .35em; border-radius: 4px; background: color-mix(in srgb, var(--_fg) 8%, transparent); font-size: .88em; }
.markdown .para-piece { display: inline-block; width: 100%; vertical-align: top; }
.markdown a { color: var(--_accent); }
.markdown .link-host { margin-left: .3em; color: var(--_muted); font-size: .8em; }
.code-block { border: 1px solid var(--_border); border-radius: calc(var(--_radius) * .66); overflow: hidden; }
.code-head { display: flex; justify-content: space-between; align-items: center; padding: .2rem .3rem .2rem .7rem; border-bottom: 1px solid var(--_border); font-size: .75em; color: var(--_muted); }
.code-copy { padding: .1rem .5rem; font-size: .95em; font-weight: 500; color: var(--_muted); background: transparent; border: 1px solid var(--_border); }
.code-block pre { margin: 0; padding: .6rem .8rem; overflow-x: auto; font-size: .85em; }
.table-scroll { overflow-x: auto; }
.markdown table { border-collapse: collapse; font-size: .92em; }
.markdown th, .markdown td { padding: .3em .6em; border-bottom: 1px solid var(--_border); text-align: left; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

const numberAttr = (el, name) => {
  const v = el.getAttribute(name);
  if (v === null || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new WickError('invalid_parameter', `<wick-chat> attribute ${name} must be a number, got "${v}"`);
  return n;
};

export class WickChatElement extends HTMLElement {
  static observedAttributes = ['model', 'sha256', 'placeholder', 'show-card', 'hide-progress'];

  #root;
  #els;
  #lease = null; // the shared engine this element uses
  #engine = null; // resolved once ready
  #messages = []; // the conversation, as sent to the engine
  #running = null; // {controller} while an answer is being written

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
    const style = h('style', { text: STYLE });
    const card = h('div', { class: 'card', part: 'card', hidden: true });
    const bar = h('progress', { max: '1', value: '0' });
    const progressLabel = h('span', { text: 'Loading…' });
    const progress = h('div', { class: 'progress', part: 'progress', hidden: true }, bar, progressLabel);
    const log = h('div', { class: 'log', part: 'log', role: 'log', 'aria-live': 'polite', 'aria-busy': 'false', 'aria-label': 'Conversation' });
    const status = h('p', { class: 'status', part: 'status', role: 'status' });
    const input = h('textarea', { part: 'input', rows: '1', 'aria-label': 'Message', autocomplete: 'off', disabled: true });
    const send = h('button', { type: 'submit', class: 'send', part: 'send', disabled: true, text: 'Send' });
    const stop = h('button', { type: 'button', class: 'stop', part: 'stop', hidden: true, text: 'Stop' });
    const form = h('form', { part: 'form' }, input, send, stop);
    this.#root.append(style, h('div', { class: 'container', part: 'container' }, card, progress, log, status, form));
    this.#els = { card, bar, progressLabel, progress, log, status, input, send, stop, form };

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = input.value.trim();
      if (text && !this.#running) this.send(text).catch(() => {});
    });
    input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line, Escape stops the answer being written.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit();
      } else if (e.key === 'Escape' && this.#running) {
        e.preventDefault();
        this.stop();
      }
    });
    input.addEventListener('input', () => {
      input.style.height = 'auto';
      input.style.height = `${input.scrollHeight}px`;
    });
    stop.addEventListener('click', () => this.stop());
    log.addEventListener('click', (e) => {
      const copy = e.target.closest?.('.code-copy');
      const code = copy?.closest('.code-block')?.querySelector('code');
      if (code) navigator.clipboard?.writeText(code.textContent).catch(() => {});
    });
  }

  connectedCallback() {
    this.#els.input.placeholder = this.getAttribute('placeholder') ?? 'Message';
    if (!this.#lease) this.#load();
  }

  disconnectedCallback() {
    // Moved within the page: connectedCallback runs again at once and keeps the engine.
    queueMicrotask(() => {
      if (!this.isConnected) this.#unload();
    });
  }

  attributeChangedCallback(name, before, after) {
    if (before === after) return;
    if (name === 'placeholder') this.#els.input.placeholder = after ?? 'Message';
    else if ((name === 'model' || name === 'sha256') && this.isConnected) {
      this.#unload();
      this.clear();
      this.#load();
    } else if ((name === 'show-card' || name === 'hide-progress') && this.#engine) {
      this.#showCard(this.#engine.info());
    }
  }

  /** The engine's info (EngineInfo in wick.d.ts) once ready, else null. */
  get info() {
    return this.#engine?.info() ?? null;
  }

  /** The conversation so far: [{role, content}] (the system prompt not included). */
  get messages() {
    return structuredClone(this.#messages);
  }

  /** Sends `text` as the next user message; resolves to the answer (partial if stopped). */
  async send(text) {
    if (typeof text !== 'string' || !text.trim()) throw new WickError('invalid_parameter', 'send() needs the text of a message');
    if (this.#running) throw new WickError('invalid_parameter', 'an answer is still being written: stop() it or wait for it');
    const { input, send, stop, log, status } = this.#els;
    const controller = new AbortController();
    this.#running = { controller };
    // The input stays usable while the answer streams: the next message can be written, and
    // Escape there stops the answer. Send waits for the answer to end.
    input.value = '';
    input.style.height = 'auto';
    send.disabled = true;
    send.hidden = true;
    stop.hidden = false;
    status.textContent = '';
    this.#messages.push({ role: 'user', content: text });
    this.#append('user', text);
    const answer = this.#append('assistant', '');
    answer.dataset.state = 'streaming';
    const markdown = new MarkdownStream(answer, document);
    log.setAttribute('aria-busy', 'true');
    let content = '';
    let finish = null;
    try {
      const engine = this.#engine ?? (await this.#lease?.engine);
      if (!engine) throw new WickError('invalid_parameter', '<wick-chat> has no model attribute');
      const system = this.getAttribute('system');
      const stream = await engine.chat.completions.create({
        messages: system ? [{ role: 'system', content: system }, ...this.#messages] : this.#messages,
        stream: true,
        signal: controller.signal,
        temperature: numberAttr(this, 'temperature'),
        top_p: numberAttr(this, 'top-p'),
        top_k: numberAttr(this, 'top-k'),
        max_tokens: numberAttr(this, 'max-tokens') ?? 512,
      });
      for await (const chunk of stream) {
        const piece = chunk.choices[0]?.delta?.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (!piece) continue;
        content += piece;
        this.#pinned(() => markdown.update(content));
        this.#emit('token', { text: piece, content });
      }
    } catch (error) {
      if (error?.name === 'AbortError' || error?.kind === 'aborted') {
        finish = 'aborted';
      } else {
        this.#messages.pop();
        answer.remove();
        status.textContent = `${error?.message ?? error}`;
        this.#emit('error', { error });
        this.#finish();
        throw error;
      }
    }
    if (finish === 'aborted') {
      answer.append(Object.assign(document.createElement('p'), { className: 'note', textContent: 'Stopped.' }));
    }
    answer.dataset.state = 'done';
    if (content) this.#messages.push({ role: 'assistant', content });
    else this.#messages.pop(); // stopped before a word: the question goes too, so roles alternate
    this.#emit('message', { role: 'assistant', content, finish_reason: finish });
    this.#finish();
    return content;
  }

  /** Stops the answer being written (it stays, as far as it got). */
  stop() {
    this.#running?.controller.abort();
  }

  /** Stops any answer and forgets the conversation. */
  clear() {
    this.stop();
    this.#messages = [];
    this.#els.log.replaceChildren();
    this.#els.status.textContent = '';
  }

  #finish() {
    const { input, send, stop, log } = this.#els;
    log.setAttribute('aria-busy', 'false');
    // Focus on the Stop button (a click) moves to the input rather than to the page.
    const onStop = this.#root.activeElement === stop;
    stop.hidden = true;
    send.hidden = false;
    input.disabled = send.disabled = !this.#engine;
    this.#running = null;
    if (onStop) input.focus();
  }

  #append(role, text) {
    const el = document.createElement('div');
    el.className = `msg ${role}${role === 'assistant' ? ' markdown' : ''}`;
    el.setAttribute('part', `message ${role}`);
    el.textContent = text;
    this.#pinned(() => this.#els.log.append(el));
    return el;
  }

  /** Runs `change`, keeping the log scrolled to the bottom if it was there. */
  #pinned(change) {
    const log = this.#els.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    change();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true }));
  }

  #load() {
    const model = this.getAttribute('model');
    const { progress, bar, progressLabel, status, input, send } = this.#els;
    if (!model) {
      status.textContent = 'No model: set the model attribute to a GGUF URL.';
      return;
    }
    progress.hidden = this.hasAttribute('hide-progress');
    status.textContent = '';
    const onProgress = (p) => {
      if (p.total) {
        bar.value = p.loaded / p.total;
        progressLabel.textContent = `${p.phase === 'download' ? 'Downloading' : 'Loading'} ${formatBytes(p.loaded)} of ${formatBytes(p.total)}`;
      }
      this.#emit('progress', p);
    };
    const lease = acquire(model, this.getAttribute('sha256'), onProgress);
    this.#lease = lease;
    lease.engine.then(
      (engine) => {
        if (this.#lease !== lease) return;
        this.#engine = engine;
        progress.hidden = true;
        input.disabled = send.disabled = Boolean(this.#running);
        this.#showCard(engine.info());
        this.#emit('ready', { info: engine.info() });
      },
      (error) => {
        if (this.#lease !== lease) return;
        progress.hidden = true;
        status.textContent = `The model could not be loaded: ${error?.message ?? error}`;
        this.#emit('error', { error });
      },
    );
  }

  #unload() {
    this.stop();
    this.#lease?.release();
    this.#lease = null;
    this.#engine = null;
    this.#els.input.disabled = this.#els.send.disabled = true;
  }

  #showCard(info) {
    const { card } = this.#els;
    card.hidden = !this.hasAttribute('show-card');
    const c = info.card ?? {};
    const name = document.createElement('b');
    name.textContent = plainName(c.name || info.modelId);
    const how = info.backend === 'webgpu' ? 'WebGPU' : `${info.threads} thread${info.threads === 1 ? '' : 's'}`;
    card.replaceChildren(name, ` · ${formatParams(c.parameters)} parameters · ${formatBytes(c.file_size)} · ${plainName(c.file_type ?? '')} · ${how} · private: runs in this tab`);
  }
}

if (!customElements.get('wick-chat')) customElements.define('wick-chat', WickChatElement);
