// The offline service worker: the page, its scripts and the wasm builds, cached on install from
// pkg/offline.json (scripts/offline-manifest.mjs), so the chat page and every model stored in the
// browser work with no network at all. Registered by app/offline.js as sw.js?v=<version>: a
// deploy with other files installs a new worker, which drops the caches of older versions.
//
// Online, every request goes to the network first (the page always gets what is deployed, and
// the cache takes the fresh copy); only when the network fails does the cache answer (the list
// of the server's models included, so the page shows it offline). Model files are never touched
// here: they live in OPFS (storage.js), and their downloads (large, ranged, resumable) pass
// straight through, as does anything from another origin.

const VERSION = new URL(self.location.href).searchParams.get('v') ?? 'dev';
const CACHE = `wick-app-${VERSION}`;
const PREFIX = 'wick-app-';

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const manifest = await (await fetch('./pkg/offline.json', { cache: 'no-cache' })).json();
    const cache = await caches.open(CACHE);
    // `cache: 'reload'`: what the server has now, not an HTTP-cached copy of an older deploy.
    await cache.addAll(manifest.files.map((f) => new Request(f, { cache: 'reload' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (/\.gguf$/i.test(url.pathname) || request.headers.has('range')) return;
  event.respondWith(networkFirst(request, url));
});

async function networkFirst(request, url) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    // Only files of the manifest's kinds are kept: a page's API calls are not.
    if (response.ok && response.type === 'basic' && /\.(html|css|js|wasm|json)$|\/$/.test(url.pathname)) {
      cache.put(request, response.clone()).catch(() => {});
    }
    return response;
  } catch (error) {
    const cached = (await cache.match(request, { ignoreSearch: true }))
      // An address of the page (/?model=...): the page itself.
      ?? (request.mode === 'navigate' ? await cache.match('./') : undefined);
    if (cached) return cached;
    throw error;
  }
}
