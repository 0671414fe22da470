// Small DOM helpers: elements are built with createElement/textContent only (never HTML strings).
import { plainName } from './format.js';

// Keys set as properties rather than attributes.
const PROPERTIES = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'htmlFor', 'title']);

/**
 * h('button', {class: 'btn', text: 'Go', onclick: fn, 'data-testid': 'go'}, ...children)
 * Falsy property values are skipped; `true` sets an empty attribute.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/**
 * Untrusted text inside page text ("<name> is ready"): isolated in a <bdi>, so that its
 * direction cannot reorder the words around it, with its direction controls made visible.
 */
export function name(text) {
  return h('bdi', { class: 'name', text: plainName(text) });
}

/** The element with this id; a missing one is a bug in index.html, reported by name. */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  return el;
}

/** Copies text to the clipboard; resolves to whether it worked. */
async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API refused (permissions, an insecure origin): copy through a selection.
    const area = h('textarea', { class: 'visually-hidden', readonly: true, 'aria-hidden': 'true' });
    area.value = text;
    document.body.append(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
    area.remove();
    return ok;
  }
}

/** Shows "Copied" (or "Copy failed") on a button for a moment, then its own label again. */
export async function copyWithFeedback(button, text) {
  const label = button.dataset.label ?? button.textContent;
  button.dataset.label = label;
  const ok = await copyText(text);
  button.textContent = ok ? 'Copied' : 'Copy failed';
  button.classList.toggle('is-done', ok);
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(
    setTimeout(() => {
      button.textContent = label;
      button.classList.remove('is-done');
    }, 1500),
  );
}

/** Reads a JSON value from localStorage (null when absent, unreadable or blocked). */
export function loadJson(key) {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? null : JSON.parse(raw);
  } catch {
    return null;
  }
}

/** Writes a JSON value to localStorage; storage may be blocked or full, which is not an error here. */
export function saveJson(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private modes and full storage refuse; the page works without remembering.
  }
}
