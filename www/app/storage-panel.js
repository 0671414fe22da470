// The Storage panel: models kept in this browser (with Delete), how much space they use, and
// the request to keep them persistently. A model this version of wick cannot run (its load failed
// with unsupported_model: listModels' `unsupported`) is marked so, with the reason.
import { h } from './dom.js';
import { formatBytes, plainName } from './format.js';

export class StoragePanel {
  /**
   * @param els {list, usage, usageBar, usageFill, persist, persistStatus, summary}
   * @param api {listModels, deleteModel, storageEstimate, requestPersistentStorage}
   * @param on {loadedId() -> id|null, deleted(id), error(err)}
   */
  constructor(els, api, on) {
    Object.assign(this, els);
    this.api = api;
    this.on = on;
    this.persist.addEventListener('click', () => this.#persist());
  }

  async refresh() {
    const [models, estimate] = await Promise.all([
      this.api.listModels().catch((err) => {
        this.on.error(err);
        return [];
      }),
      this.api.storageEstimate().catch(() => null),
    ]);
    this.#renderList(models);
    this.#renderUsage(estimate, models);
  }

  #renderList(models) {
    const loadedId = this.on.loadedId();
    if (!models.length) {
      this.list.replaceChildren(
        h('li', { class: 'storage-empty', text: 'No models stored yet. A model you load is kept here and opens next time without downloading.' }),
      );
      return;
    }
    const rows = [...models]
      .sort((a, b) => String(b.storedAt).localeCompare(String(a.storedAt)))
      .map((m) => {
        const loaded = m.id === loadedId;
        const remove = h('button', {
          type: 'button',
          class: 'btn small danger-ghost',
          'data-testid': 'delete-model',
          'data-model-id': m.id,
          text: 'Delete',
          'aria-label': `Delete ${plainName(m.name)}`,
          disabled: loaded,
          title: loaded ? 'This model is loaded: unload it first' : 'Delete it from this browser',
        });
        remove.addEventListener('click', () => this.#delete(m, remove));
        const reason = m.unsupported?.reason;
        return h(
          'li',
          { class: `storage-row${reason ? ' is-unsupported' : ''}`, 'data-testid': 'storage-row', 'data-model-id': m.id, 'data-runnable': reason ? 'false' : 'true' },
          h(
            'div',
            { class: 'storage-main' },
            h('bdi', { class: 'storage-name', text: plainName(m.name), title: plainName(m.name) }),
            h(
              'span',
              { class: 'storage-meta' },
              [formatBytes(m.size), sourceLabel(m.source), storedDate(m.storedAt)].filter(Boolean).join(' · '),
            ),
          ),
          loaded ? h('span', { class: 'tag', text: 'loaded' }) : null,
          reason ? h('span', { class: 'tag warn', text: "can't run" }) : null,
          remove,
          reason
            ? h('p', { class: 'storage-unsupported', 'data-testid': 'storage-unsupported', text: `This version of wick cannot run it: ${plainName(reason)}` })
            : null,
        );
      });
    this.list.replaceChildren(...rows);
  }

  #renderUsage(estimate, models) {
    const storedBytes = models.reduce((sum, m) => sum + (Number.isFinite(m.size) ? m.size : 0), 0);
    this.summary.textContent = models.length ? `${models.length} stored · ${formatBytes(storedBytes)}` : 'Nothing stored';
    if (!estimate || !Number.isFinite(estimate.quota) || estimate.quota <= 0) {
      this.usage.textContent = 'This browser does not report its storage use.';
      this.usageBar.hidden = true;
    } else {
      const percent = Math.min(100, (estimate.usage / estimate.quota) * 100);
      this.usage.textContent = `${formatBytes(estimate.usage)} used of ${formatBytes(estimate.quota)} available to this site`;
      this.usageBar.hidden = false;
      this.usageBar.setAttribute('aria-valuenow', String(Math.round(percent)));
      this.usageFill.style.setProperty('--progress', `${percent}%`);
      this.usageBar.classList.toggle('is-high', percent > 85);
    }
    const persisted = Boolean(estimate?.persisted);
    this.persist.disabled = persisted;
    this.persist.textContent = persisted ? 'Kept persistently' : 'Keep models persistently';
    if (persisted) this.#persistStatus('granted', 'The browser keeps stored models even when disk space runs low.');
    else if (!this.persistStatus.dataset.state) this.#persistStatus('', 'The browser may remove stored models when disk space runs low.');
  }

  #persistStatus(state, text) {
    this.persistStatus.dataset.state = state;
    this.persistStatus.textContent = text;
  }

  async #persist() {
    this.persist.disabled = true;
    try {
      const granted = await this.api.requestPersistentStorage();
      if (granted) {
        this.#persistStatus('granted', 'Granted: the browser keeps stored models even when disk space runs low.');
      } else {
        this.#persistStatus('denied', 'Not granted. Browsers often grant it to sites you bookmark, install or use often; try again later.');
      }
    } catch (err) {
      this.#persistStatus('denied', 'This browser cannot keep storage persistently.');
      this.on.error(err);
    }
    await this.refresh();
    if (this.persistStatus.dataset.state === 'denied') this.persist.disabled = false;
  }

  async #delete(model, button) {
    if (model.id === this.on.loadedId()) return;
    button.disabled = true;
    button.textContent = 'Deleting…';
    try {
      await this.api.deleteModel(model.id);
      this.on.deleted(model.id);
    } catch (err) {
      this.on.error(err);
    }
    await this.refresh();
  }
}

function sourceLabel(source) {
  if (typeof source !== 'string' || !source) return '';
  if (source.startsWith('file:')) return 'local file';
  try {
    const url = new URL(source);
    return url.origin === location.origin ? 'this server' : url.host;
  } catch {
    return '';
  }
}

function storedDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : `stored ${date.toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: 'numeric' })}`;
}
