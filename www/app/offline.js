// Registers the offline service worker (../sw.js) under the version of the deployed files
// (pkg/offline.json, written by scripts/offline-manifest.mjs), so the page and its stored models
// keep working with no network. Offline, the manifest cannot be fetched and the worker already
// installed stays in charge.
export async function registerOffline() {
  if (!('serviceWorker' in navigator) || !window.isSecureContext) return null;
  let version;
  try {
    const response = await fetch(new URL('../pkg/offline.json', import.meta.url), { cache: 'no-cache' });
    if (!response.ok) return null; // not built with a manifest (a development checkout)
    ({ version } = await response.json());
  } catch {
    return null; // offline: keep the installed worker
  }
  const url = new URL(`../sw.js?v=${encodeURIComponent(version)}`, import.meta.url);
  return navigator.serviceWorker.register(url, { scope: new URL('../', import.meta.url).pathname, type: 'classic' });
}

registerOffline().catch((e) => console.warn('wick: the offline service worker did not register:', e));
