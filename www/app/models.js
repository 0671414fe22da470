// The model picker: the models this server offers (models/index.json), the ones stored in this
// browser, a URL typed in, or a local .gguf file (file input, or dropped anywhere on the page).
// It turns a choice into a load request {label, model, sha256?} for createEngine.
import { h, loadJson, saveJson } from './dom.js';
import { fileNameOf, formatBytes, modelLabel, plainName } from './format.js';

const DEFAULT_MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';
const CHOICE_KEY = 'wick.model';

/** The server's model list; [] when it has none (a plain static host) or answers oddly. */
async function fetchIndex() {
  const indexUrl = new URL('models/index.json', document.baseURI);
  let list;
  try {
    const response = await fetch(indexUrl, { cache: 'no-cache' });
    if (!response.ok) return [];
    list = await response.json();
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list
    .filter((m) => m && typeof m.name === 'string' && typeof m.url === 'string')
    .map((m) => ({
      name: m.name,
      url: new URL(m.url, indexUrl).href,
      size: Number.isFinite(m.size) ? m.size : null,
      sha256: typeof m.sha256 === 'string' && m.sha256 ? m.sha256.toLowerCase() : null,
    }));
}

export class ModelPicker {
  /**
   * @param els {select, hint, url, urlError, load, file, fileButton, overlay}
   * @param api {listModels, modelIdFor}
   * @param on {load(request), error(err)}
   */
  constructor(els, api, on) {
    Object.assign(this, els);
    this.api = api;
    this.on = on;
    this.server = [];
    this.stored = [];
    this.entries = [];
    this.busy = false;
    this.select.addEventListener('change', () => {
      this.url.value = '';
      this.#urlChanged();
      saveJson(CHOICE_KEY, this.select.value);
      this.#describe();
    });
    this.url.addEventListener('input', () => this.#urlChanged());
    this.url.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') {
        e.preventDefault();
        this.#loadClicked();
      }
    });
    this.load.addEventListener('click', () => this.#loadClicked());
    this.file.addEventListener('change', () => {
      const file = this.file.files?.[0];
      this.file.value = '';
      if (file) this.#loadFile(file);
    });
    this.#setUpDrop();
  }

  /** Reads the server's list (once) and the stored models, and rebuilds the select. */
  async refresh() {
    const [server] = await Promise.all([fetchIndex(), this.refreshStored({ render: false })]);
    this.server = server;
    this.#render();
  }

  /** Re-reads the stored models (after a load or a delete). */
  async refreshStored({ render = true } = {}) {
    try {
      this.stored = await this.api.listModels();
    } catch (err) {
      this.stored = [];
      this.on.error(err);
    }
    if (render) this.#render();
  }

  setBusy(busy) {
    this.busy = busy;
    for (const el of [this.select, this.url, this.load, this.file]) el.disabled = busy;
    this.fileButton.classList.toggle('is-disabled', busy);
    this.fileButton.setAttribute('aria-disabled', String(busy));
  }

  /** Selects the entry for a model that just loaded, and clears the URL box. */
  showLoaded(modelId) {
    const entry = this.entries.find((e) => e.id === modelId);
    if (entry) {
      this.select.value = entry.key;
      saveJson(CHOICE_KEY, entry.key);
    }
    this.url.value = '';
    this.#urlChanged();
    this.#describe();
  }

  #idOf(source) {
    try {
      return this.api.modelIdFor(source);
    } catch {
      return null;
    }
  }

  #render() {
    const storedById = new Map(this.stored.map((m) => [m.id, m]));
    const server = this.server.map((m) => {
      const id = this.#idOf(m.url);
      const copy = storedById.get(id);
      // A stored file of the same name only counts when it is the same file.
      const stored = Boolean(copy) && (!m.sha256 || !copy.sha256 || copy.sha256.toLowerCase() === m.sha256);
      return { key: `server:${m.name}`, id, name: m.name, size: m.size ?? copy?.size ?? null, url: m.url, sha256: m.sha256, stored, unsupported: stored ? copy.unsupported?.reason ?? null : null };
    });
    const claimed = new Set(server.filter((e) => e.stored).map((e) => e.id));
    const local = this.stored
      .filter((m) => !claimed.has(m.id))
      .map((m) => ({ key: `stored:${m.id}`, id: m.id, name: m.name, size: m.size, source: m.source, stored: true, unsupported: m.unsupported?.reason ?? null }));
    this.entries = [...server, ...local];

    const previous = this.select.value || loadJson(CHOICE_KEY);
    const option = (e) =>
      h('option', {
        value: e.key,
        'data-stored': e.stored ? 'true' : 'false',
        // A stored model this version cannot run is listed (to say why, and to delete it) but
        // not as if it worked.
        'data-runnable': e.unsupported ? 'false' : 'true',
        text: `${modelLabel(e.name)}${e.unsupported ? " (stored, can't run)" : e.stored ? ' (stored)' : ''}`,
        title: `${plainName(e.name)}${e.size ? ` · ${formatBytes(e.size)}` : ''}`,
      });
    const groups = [];
    if (server.length) groups.push(h('optgroup', { label: 'On this server' }, server.map(option)));
    if (local.length) groups.push(h('optgroup', { label: 'Stored in this browser' }, local.map(option)));
    if (!this.entries.length) groups.push(h('option', { value: '', text: 'No models listed', disabled: true }));
    this.select.replaceChildren(...groups);

    const pick =
      this.entries.find((e) => e.key === previous) ??
      this.entries.find((e) => e.name === DEFAULT_MODEL) ??
      this.entries[0];
    this.select.value = pick ? pick.key : '';
    this.#describe();
  }

  #selected() {
    return this.entries.find((e) => e.key === this.select.value) ?? null;
  }

  #describe() {
    const entry = this.#selected();
    this.hint.classList.remove('is-error', 'is-unsupported');
    this.#setLoadLabel();
    if (!entry) {
      this.hint.textContent = 'This server lists no models: paste a URL or open a .gguf file.';
    } else if (entry.unsupported) {
      this.hint.classList.add('is-unsupported');
      this.hint.textContent = `This version of wick cannot run this model: ${plainName(entry.unsupported)}. It stays stored; delete it under Storage to free ${entry.size ? formatBytes(entry.size) : 'its space'}.`;
    } else if (entry.stored) {
      const from = entry.source?.startsWith('file:') ? 'from a local file' : entry.source ? `from ${hostOf(entry.source)}` : '';
      const size = entry.size ? `${formatBytes(entry.size)}, stored` : 'Stored';
      this.hint.textContent = `${size} in this browser${from ? ` ${from}` : ''}: loads without the network.`;
    } else {
      this.hint.textContent = `Downloads ${entry.size ? formatBytes(entry.size) : 'the file'} once, then stays in this browser.`;
    }
  }

  /** "Load URL" for a typed address, "Try again" for a stored model this version cannot run. */
  #setLoadLabel() {
    const hasUrl = this.url.value.trim() !== '';
    this.load.textContent = hasUrl ? 'Load URL' : this.#selected()?.unsupported ? 'Try again' : 'Load';
  }

  #urlChanged() {
    const hasUrl = this.url.value.trim() !== '';
    this.#setLoadLabel();
    this.select.classList.toggle('is-overridden', hasUrl);
    this.url.setAttribute('aria-invalid', 'false');
    this.urlError.hidden = true;
  }

  #urlError(message) {
    this.url.setAttribute('aria-invalid', 'true');
    this.urlError.textContent = message;
    this.urlError.hidden = false;
    this.url.focus();
  }

  #loadClicked() {
    if (this.busy) return;
    const raw = this.url.value.trim();
    if (raw) {
      let url;
      try {
        url = new URL(raw, document.baseURI);
      } catch {
        return this.#urlError('That is not a web address.');
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return this.#urlError('Enter an http:// or https:// address.');
      return this.on.load({ label: fileNameOf(url.href), model: url.href });
    }
    const entry = this.#selected();
    if (!entry) {
      this.hint.textContent = 'Pick a model, paste a URL or open a .gguf file.';
      this.hint.classList.add('is-error');
      return;
    }
    saveJson(CHOICE_KEY, entry.key);
    if (entry.stored) return this.on.load({ label: entry.name, model: { id: entry.id } });
    return this.on.load({ label: entry.name, model: entry.url, ...(entry.sha256 && { sha256: entry.sha256 }) });
  }

  #loadFile(file) {
    if (this.busy) return;
    this.on.load({ label: file.name, model: file });
  }

  /** The whole page is a drop zone for .gguf files while something is dragged over it. */
  #setUpDrop() {
    let depth = 0;
    const hasFiles = (e) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
    const hide = () => {
      depth = 0;
      this.overlay.hidden = true;
    };
    window.addEventListener('dragenter', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      depth++;
      this.overlay.hidden = false;
      this.overlay.classList.toggle('is-busy', this.busy);
    });
    window.addEventListener('dragover', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = this.busy ? 'none' : 'copy';
    });
    window.addEventListener('dragleave', (e) => {
      if (!hasFiles(e)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) hide();
    });
    window.addEventListener('drop', (e) => {
      if (!hasFiles(e)) return;
      e.preventDefault();
      hide();
      const files = Array.from(e.dataTransfer.files ?? []);
      const file = files.find((f) => /\.gguf$/i.test(f.name)) ?? files[0];
      if (file) this.#loadFile(file);
    });
    window.addEventListener('blur', hide);
  }
}

function hostOf(url) {
  try {
    return new URL(url).host || url;
  } catch {
    return url;
  }
}
