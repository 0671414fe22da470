// Numbers for people: bytes, rates, durations, parameter counts and generation timings.

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** 98362432 -> "98.4 MB" (decimal units, as disks and downloads count). */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 0) return '—';
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** Bytes per second -> "4.2 MB/s". */
export function formatRate(bytesPerSecond) {
  return Number.isFinite(bytesPerSecond) && bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : '';
}

export function formatCount(n) {
  return Number.isFinite(n) ? integer.format(n) : '—';
}

/** 134515008 -> "135M", 1235814400 -> "1.2B". */
export function formatParams(n) {
  if (!Number.isFinite(n) || n <= 0) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1).replace(/\.0$/, '')}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}K`;
  return String(n);
}

/** Milliseconds -> "850 ms", "2.41 s", "12.5 s". */
export function formatMs(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

/** Tokens per second -> "45.2 tok/s" or "1,234 tok/s". */
function formatTokenRate(perSecond) {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '— tok/s';
  return `${perSecond >= 100 ? integer.format(perSecond) : perSecond.toFixed(1)} tok/s`;
}

// Characters that change the direction of the text around them: embeddings, overrides,
// isolates and marks. A name never needs them, and in a name they can reverse the page's own
// words next to it or make "invoice<U+202E>fdp.exe" read as "invoiceexe.pdf".
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Untrusted text (a model or file name, an id, a card field, an error quoting them) for display:
 * its direction controls shown as visible marks ("[U+202E]") instead of acting. In the DOM it
 * also goes inside an isolating element (dom.js: name()).
 */
export function plainName(value) {
  return String(value ?? '').replace(BIDI_CONTROLS, (c) => `[U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}]`);
}

/** A model file name without its extension, for display (see plainName). */
export function modelLabel(name) {
  return plainName(name).replace(/\.gguf$/i, '');
}

/** The file name at the end of a URL (decoded), or the URL itself. */
export function fileNameOf(url) {
  try {
    const last = new URL(url, document.baseURI).pathname.split('/').filter(Boolean).pop();
    return last ? decodeURIComponent(last) : String(url);
  } catch {
    return String(url);
  }
}

/**
 * One line from a request's last-chunk timings:
 * "Prefill 42 tok · 1,234 tok/s (18 cached) · Decode 64 tok · 45.2 tok/s".
 */
export function formatTimings(timings) {
  if (!timings) return '';
  const cached = timings.cached_n > 0 ? ` (${formatCount(timings.cached_n)} cached)` : '';
  const prefill = `Prefill ${formatCount(timings.prompt_n)} tok · ${formatTokenRate(timings.prompt_per_second)}${cached}`;
  const decode = `Decode ${formatCount(timings.predicted_n)} tok · ${formatTokenRate(timings.predicted_per_second)}`;
  return `${prefill} · ${decode}`;
}

/** Why a generation ended, when it is worth saying. */
export function finishNote(finish) {
  if (finish === 'length') return 'Reached max tokens';
  if (finish === 'aborted') return 'Stopped';
  return '';
}
