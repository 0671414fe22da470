// Writes www/pkg/offline.json: the files the page needs with no network (the page, its modules
// and styles, the engine's JS, every wasm build) and a version made of their contents. The
// service worker (www/sw.js) caches exactly these on install; the page registers it as
// sw.js?v=<version>, so a deploy whose files differ installs a new worker and drops the old
// cache. scripts/build-wasm runs this after the wasm builds.
// Usage: node scripts/offline-manifest.mjs
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const www = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../www');

function walk(dir) {
  return fs.readdirSync(path.join(www, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    return e.isDirectory() ? walk(rel) : [rel];
  });
}

// The page and what it loads; not the examples (pages of their own) nor what only they use
// (vendor/: the OpenAI SDK, copied by scripts/vendor.mjs), not the manifest itself.
const files = walk('')
  .filter((f) => !/^(examples|vendor)\//.test(f) && f !== 'pkg/offline.json' && f !== 'sw.js')
  .filter((f) => /\.(html|css|js|wasm|json|svg|png|ico|webmanifest)$/.test(f))
  .sort();
const hash = crypto.createHash('sha256');
for (const f of files) hash.update(`${f}\0`).update(fs.readFileSync(path.join(www, f))).update('\0');
hash.update(fs.readFileSync(path.join(www, 'sw.js')));
const manifest = { version: hash.digest('hex').slice(0, 16), files: ['./', ...files.map((f) => `./${f}`)] };
fs.mkdirSync(path.join(www, 'pkg'), { recursive: true });
fs.writeFileSync(path.join(www, 'pkg/offline.json'), `${JSON.stringify(manifest, null, 1)}\n`);
const bytes = files.reduce((n, f) => n + fs.statSync(path.join(www, f)).size, 0);
console.log(`www/pkg/offline.json: version ${manifest.version}, ${files.length} files, ${(bytes / 1e6).toFixed(1)} MB`);
