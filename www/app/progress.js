// The load state under the model picker: a status line, and while loading a progress bar with
// the phase, bytes of total, rate and "resumed", plus the Cancel button.
import { h, name } from './dom.js';
import { formatBytes, formatMs, formatRate } from './format.js';

const PHASES = {
  // Another tab (or this one) is downloading, storing or deleting the same model: the load
  // waits for it, then goes on with the stored copy.
  waiting: 'Waiting for another tab',
  download: 'Downloading',
  store: 'Saving to browser storage',
  load: 'Loading into the engine',
  gpu: 'Uploading to the GPU',
  ready: 'Ready',
};

export class LoadProgress {
  /** @param els {status, box, bar, fill, phase, detail, cancel, unload} */
  constructor(els) {
    Object.assign(this, els);
    this.idle();
  }

  /** @param parts strings and nodes (a model's label goes in as name(label): isolated) */
  #status(state, ...parts) {
    this.status.dataset.state = state;
    // One span: the status line is a flex row (dot, text), the parts one run of text.
    this.status.replaceChildren(h('span', {}, ...parts.flat()));
  }

  /** The end of a load (or no load): the status line, and Unload while a model is loaded. */
  #settle(state, text, loaded) {
    this.#status(state, text);
    this.box.hidden = true;
    this.cancel.hidden = true;
    this.unload.hidden = !loaded;
  }

  /** Nothing loaded (at first, after an unload, or after the engine's worker died). */
  idle(text = 'No model loaded') {
    this.#settle('idle', text, false);
  }

  /** @param phase the phase it starts with: download, store (a local file) or load (stored) */
  start(label, phase) {
    this.#status('loading', 'Loading ', name(label), '…');
    this.box.hidden = false;
    this.cancel.hidden = false;
    this.cancel.disabled = false;
    this.unload.hidden = true;
    this.update({ phase, loaded: 0, total: 0 });
    this.detail.textContent = 'Starting…';
  }

  /** A Progress event from createEngine. */
  update(p) {
    const phase = Object.hasOwn(PHASES, p?.phase) ? p.phase : 'load';
    const total = Number.isFinite(p.total) && p.total > 0 ? p.total : 0;
    const loaded = Number.isFinite(p.loaded) ? Math.max(0, p.loaded) : 0;
    this.bar.dataset.phase = phase;
    this.phase.textContent = PHASES[phase];
    if (total) {
      const percent = Math.min(100, (loaded / total) * 100);
      this.#indeterminate(false);
      this.bar.setAttribute('aria-valuenow', String(Math.round(percent)));
      this.bar.setAttribute('aria-valuetext', `${PHASES[phase]}: ${Math.round(percent)}%`);
      this.fill.style.setProperty('--progress', `${percent}%`);
    } else {
      this.#indeterminate(true);
    }
    const parts = [];
    if (total) parts.push(`${formatBytes(loaded)} of ${formatBytes(total)}`);
    else if (loaded) parts.push(formatBytes(loaded));
    const rate = phase === 'download' || phase === 'store' ? formatRate(p.rate) : '';
    if (rate) parts.push(rate);
    if (p.resumed) parts.push('resumed');
    if (phase === 'waiting') parts.push('the model is in use in another tab or window; loading continues when it is free');
    this.detail.textContent = parts.join(' · ');
    this.detail.classList.toggle('is-resumed', Boolean(p.resumed));
  }

  #indeterminate(on) {
    this.bar.classList.toggle('is-indeterminate', on);
    if (on) {
      this.bar.removeAttribute('aria-valuenow');
      this.bar.removeAttribute('aria-valuetext');
    }
  }

  ready(info) {
    this.update({ phase: 'ready', loaded: 1, total: 1 });
    this.#settle('ready', `Ready · loaded in ${formatMs(info.loadMs)}`, true);
  }

  /** @param kept the label of the model still loaded from before, if any */
  cancelled(kept) {
    if (kept) this.#settle('ready', ['Loading cancelled · ', name(kept), ' is still loaded'], true);
    else this.idle('Loading cancelled');
  }

  /** @param kept the label of the model still loaded from before, if any */
  failed(title, kept) {
    this.#settle('error', kept ? [`Could not load: ${title} · `, name(kept), ' is still loaded'] : `Could not load: ${title}`, Boolean(kept));
  }

  /** The engine of `label` died (its worker is gone): never "Ready", and nothing loaded. */
  lost(label) {
    this.#settle('lost', ['The engine stopped · ', name(label), ' is no longer loaded'], false);
  }
}
