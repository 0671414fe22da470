#!/usr/bin/env node
// Copies the browser-side packages the example pages import from node_modules/ into www/vendor/
// (git-ignored), because the page server serves www/ only. Today that is the official `openai`
// client (www/examples/openai.html): its ESM build (*.mjs, relative imports only, no runtime
// dependencies) imports in a browser without a bundler. A few of its .mjs files import a .js
// twin written to be both CommonJS and an empty ES module, so the .js files come along. scripts/setup runs this after `npm ci`;
// it is idempotent and copies only when the installed version changed.
// Usage: node scripts/vendor.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['openai'];

/** What is copied: a change here re-copies an up-to-date package. */
const LAYOUT = 'mjs+js';

/** Copies node_modules/<name>'s modules (.mjs, .js), package.json and LICENSE to www/vendor/<name>/. */
export function vendor(name, { repo = REPO } = {}) {
  const from = path.join(repo, 'node_modules', name);
  const to = path.join(repo, 'www', 'vendor', name);
  const pkg = path.join(from, 'package.json');
  if (!fs.existsSync(pkg)) throw new Error(`node_modules/${name} is missing: run npm ci (scripts/setup does)`);
  const version = JSON.parse(fs.readFileSync(pkg, 'utf8')).version;
  const stamp = path.join(to, '.version');
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === `${version} ${LAYOUT}`) return { name, version, copied: 0 };
  fs.rmSync(to, { recursive: true, force: true });
  let copied = 0;
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const src = path.join(dir, entry.name);
      const rel = path.relative(from, src);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'src') walk(src);
      } else if (/\.m?js$/.test(entry.name) || rel === 'package.json' || rel === 'LICENSE') {
        fs.mkdirSync(path.dirname(path.join(to, rel)), { recursive: true });
        fs.copyFileSync(src, path.join(to, rel));
        copied++;
      }
    }
  };
  walk(from);
  fs.writeFileSync(stamp, `${version} ${LAYOUT}`);
  return { name, version, copied };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const name of PACKAGES) {
    const r = vendor(name);
    console.log(`www/vendor/${name}: ${r.version}${r.copied ? ` (${r.copied} files copied)` : ' (up to date)'}`);
  }
}
