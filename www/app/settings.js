// The Settings panel: sampling options, stop strings, the system prompt and engine options.
// Values are kept as typed (in localStorage), checked as they change, and shown inline when
// invalid; read() gives the request options or the names of the invalid fields.
import { h, loadJson, saveJson } from './dom.js';

const STORAGE_KEY = 'wick.settings.v1';
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

/** A parser for a number field: {value} or {error}. Blank is {value: undefined} when optional. */
function numberField({ min, max, above, integer = false, optional = false }) {
  const range =
    above !== undefined
      ? max !== undefined ? `above ${above}, up to ${max}` : `above ${above}`
      : min !== undefined && max !== undefined ? `from ${min} to ${max}` : min !== undefined ? `of ${min} or more` : '';
  const expected = `Enter a ${integer ? 'whole number' : 'number'}${range ? ` ${range}` : ''}`;
  return (raw) => {
    const text = raw.trim().replace(',', '.');
    if (text === '') return optional ? { value: undefined } : { error: expected };
    const value = NUMBER.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) return { error: expected };
    if ((above !== undefined && value <= above) || (min !== undefined && value < min) || (max !== undefined && value > max)) {
      return { error: expected };
    }
    return { value };
  };
}

/** Stop strings, one per line; \n, \t and \\ are escapes so a stop can hold a newline. */
function parseStops(raw) {
  const stops = raw
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/\\([nt\\])/g, (_, c) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\')));
  if (stops.length > 16) return { error: 'At most 16 stop strings' };
  return { value: stops.length ? stops : undefined };
}

const text = (raw) => ({ value: raw.trim() === '' ? undefined : raw });

/** Every setting: name (the request option), where it shows, its default and its parser. */
export const FIELDS = [
  { name: 'temperature', group: 'sampling', label: 'Temperature', initial: '0.8', hint: '0: always the likeliest token', mode: 'decimal', parse: numberField({ min: 0, max: 100 }) },
  { name: 'top_p', group: 'sampling', label: 'Top-p', initial: '0.95', hint: '1: off', mode: 'decimal', parse: numberField({ above: 0, max: 1 }) },
  { name: 'top_k', group: 'sampling', label: 'Top-k', initial: '40', hint: '0: off', mode: 'numeric', parse: numberField({ min: 0, integer: true }) },
  { name: 'min_p', group: 'sampling', label: 'Min-p', initial: '0.05', hint: '0: off', mode: 'decimal', parse: numberField({ min: 0, max: 1 }) },
  { name: 'repetition_penalty', group: 'sampling', label: 'Repetition penalty', initial: '1', hint: '1: off', mode: 'decimal', parse: numberField({ above: 0, max: 10 }) },
  { name: 'max_tokens', group: 'sampling', label: 'Max tokens', initial: '256', hint: 'Per answer', mode: 'numeric', parse: numberField({ min: 1, max: 131072, integer: true }) },
  { name: 'seed', group: 'sampling', label: 'Seed', initial: '', placeholder: 'random', hint: 'Blank: random', mode: 'numeric', parse: numberField({ min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, optional: true }) },
  { name: 'stop', group: 'text', label: 'Stop strings', initial: '', hint: 'One per line; write \\n for a line break', kind: 'textarea', rows: 2, parse: parseStops },
  { name: 'system_prompt', group: 'text', label: 'System prompt', initial: '', hint: 'Sent first in every chat turn; blank: none', kind: 'textarea', rows: 3, parse: text },
  { name: 'context', group: 'engine', label: 'Context size', initial: '', placeholder: 'auto', hint: 'Tokens; blank: up to 4096', mode: 'numeric', parse: numberField({ min: 16, max: 131072, integer: true, optional: true }) },
  { name: 'threads', group: 'engine', label: 'Threads', initial: '', placeholder: 'auto', hint: 'Blank: all cores', mode: 'numeric', parse: numberField({ min: 1, max: 256, integer: true, optional: true }) },
];

const GROUPS = [
  ['sampling', 'Sampling'],
  ['text', 'Prompt'],
  ['engine', 'Engine · used when a model loads'],
];

export class Settings {
  /** @param {HTMLDetailsElement} panel  @param {HTMLElement} body  @param {HTMLElement} summary */
  constructor(panel, body, summary) {
    this.panel = panel;
    this.summary = summary;
    this.inputs = new Map();
    this.errors = new Map();
    const saved = loadJson(STORAGE_KEY);
    this.raw = Object.fromEntries(
      FIELDS.map((f) => [f.name, typeof saved?.[f.name] === 'string' ? saved[f.name] : f.initial]),
    );
    body.replaceChildren(...GROUPS.map(([group, title]) => this.#group(group, title)), this.#footer());
    for (const f of FIELDS) this.#check(f);
    this.#summarize();
  }

  #group(group, title) {
    const fields = FIELDS.filter((f) => f.group === group);
    return h(
      'fieldset',
      { class: `settings-group settings-${group}` },
      h('legend', { text: title }),
      h('div', { class: 'settings-grid' }, fields.map((f) => this.#field(f))),
    );
  }

  #field(f) {
    const id = `setting-${f.name}`;
    const common = {
      id,
      name: f.name,
      'data-testid': id,
      'aria-describedby': `${id}-hint ${id}-error`,
      oninput: () => this.#changed(f),
      onchange: () => this.#changed(f),
    };
    let input;
    if (f.kind === 'textarea') {
      input = h('textarea', { ...common, rows: f.rows, spellcheck: f.name === 'system_prompt' ? 'true' : 'false' });
    } else {
      input = h('input', { ...common, type: 'text', inputmode: f.mode, autocomplete: 'off', spellcheck: 'false', placeholder: f.placeholder ?? f.initial });
    }
    input.value = this.raw[f.name];
    const error = h('p', { class: 'field-error', id: `${id}-error`, 'data-testid': `${id}-error`, hidden: true });
    this.inputs.set(f.name, input);
    this.errors.set(f.name, error);
    return h(
      'div',
      { class: `field${f.kind === 'textarea' ? ' field-wide' : ''}` },
      h('label', { for: id, text: f.label }),
      input,
      h('p', { class: 'field-hint', id: `${id}-hint`, text: f.hint }),
      error,
    );
  }

  #footer() {
    return h(
      'div',
      { class: 'settings-footer' },
      h('button', { type: 'button', class: 'btn ghost small', 'data-testid': 'settings-reset', text: 'Reset to defaults', onclick: () => this.reset() }),
    );
  }

  #changed(f) {
    this.raw[f.name] = this.inputs.get(f.name).value;
    saveJson(STORAGE_KEY, this.raw);
    this.#check(f);
    this.#summarize();
  }

  /** Parses one field and shows its error (or clears it). */
  #check(f) {
    const result = f.parse(this.raw[f.name]);
    const input = this.inputs.get(f.name);
    const error = this.errors.get(f.name);
    input.setAttribute('aria-invalid', result.error ? 'true' : 'false');
    error.textContent = result.error ?? '';
    error.hidden = !result.error;
    return result;
  }

  #summarize() {
    const { invalid } = this.read({ quiet: true });
    if (invalid.length) {
      this.summary.textContent = invalid.length === 1 ? '1 value to fix' : `${invalid.length} values to fix`;
      this.summary.classList.add('is-invalid');
      return;
    }
    const r = this.raw;
    const parts = [`temp ${r.temperature.trim()}`, `top-p ${r.top_p.trim()}`, `max ${r.max_tokens.trim()}`];
    if (r.seed.trim()) parts.push(`seed ${r.seed.trim()}`);
    this.summary.textContent = parts.join(' · ');
    this.summary.classList.remove('is-invalid');
  }

  reset() {
    for (const f of FIELDS) {
      this.raw[f.name] = f.initial;
      this.inputs.get(f.name).value = f.initial;
      this.#check(f);
    }
    saveJson(STORAGE_KEY, this.raw);
    this.#summarize();
  }

  /**
   * The current values: {invalid: [names], sampling, systemPrompt, engine}. Unless quiet,
   * invalid fields show their errors.
   */
  read({ quiet = false } = {}) {
    const values = {};
    const invalid = [];
    for (const f of FIELDS) {
      const result = quiet ? f.parse(this.raw[f.name]) : this.#check(f);
      if (result.error) invalid.push(f.name);
      else values[f.name] = result.value;
    }
    const sampling = {};
    for (const name of ['temperature', 'top_p', 'top_k', 'min_p', 'repetition_penalty', 'max_tokens', 'seed', 'stop']) {
      if (values[name] !== undefined) sampling[name] = values[name];
    }
    const engine = {};
    if (values.context !== undefined) engine.context = values.context;
    if (values.threads !== undefined) engine.threads = values.threads;
    return { invalid, sampling, systemPrompt: values.system_prompt, engine };
  }

  /** Opens the panel at a field (the first invalid one). */
  reveal(name) {
    this.panel.open = true;
    const input = this.inputs.get(name);
    input?.scrollIntoView({ block: 'center', behavior: 'smooth' });
    input?.focus({ preventScroll: true });
  }
}
