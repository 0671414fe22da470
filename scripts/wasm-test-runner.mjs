#!/usr/bin/env node
// Runs a wasm32-wasip1 binary (a test or bench built by cargo) under Node's WASI, so that
//   CARGO_TARGET_WASM32_WASIP1_RUNNER="node scripts/wasm-test-runner.mjs" \
//   RUSTFLAGS='-C target-feature=+simd128' \
//   cargo test --release --test kernels --target wasm32-wasip1
// works like a native `cargo test`: arguments after the .wasm path are passed to the binary,
// the environment is passed through, the current directory is preopened (read/write) as `.`
// and the repository root under its own path, and the binary's exit code becomes ours.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env, exit, cwd } from 'node:process';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

// node:wasi prints an ExperimentalWarning; keep test output clean.
process.removeAllListeners('warning');

const [wasmPath, ...args] = argv.slice(2);
if (!wasmPath) {
  console.error('usage: node scripts/wasm-test-runner.mjs FILE.wasm [ARGS...]');
  exit(2);
}
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const preopens = { '.': cwd() };
preopens[repo] = repo;
const wasi = new WASI({
  version: 'preview1',
  args: [wasmPath, ...args],
  env,
  preopens,
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
const instance = await WebAssembly.instantiate(module, wasi.getImportObject());
exit(wasi.start(instance) ?? 0);
