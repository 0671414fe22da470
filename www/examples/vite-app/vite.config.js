// wick's worker and its wasm builds must stay files of their own, found by URL at run time:
// keep the package out of Vite's dependency pre-bundling, and build the worker as an ES module
// (it imports the wasm build it chooses). The headers make the page cross-origin isolated, so
// the threaded build runs (`vite` and `vite preview`; a production host must send them too).
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default {
  optimizeDeps: { exclude: ['wick-llm'] },
  worker: { format: 'es' },
  server: { headers: isolation },
  preview: { headers: isolation },
};
