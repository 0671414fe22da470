// The model card: what the GGUF file says about the model, and how this tab runs it.
import { h } from './dom.js';
import { formatBytes, formatCount, formatMs, formatParams, plainName } from './format.js';

/** "Q4_1 67% · Q8_0 31% · F32 <1%" from bytes per quantization type. */
function quantMix(quantTypes) {
  const entries = Object.entries(quantTypes ?? {}).filter(([, bytes]) => Number.isFinite(bytes) && bytes > 0);
  const total = entries.reduce((sum, [, bytes]) => sum + bytes, 0);
  if (!total) return '';
  return entries
    .sort((a, b) => b[1] - a[1])
    .map(([type, bytes]) => {
      const percent = (bytes / total) * 100;
      return `${type} ${percent < 1 ? '<1' : Math.round(percent)}%`;
    })
    .join(' · ');
}

/** A card row; the value can come from the file, so its direction controls are made visible. */
function row(label, value, testid) {
  return [h('dt', { text: label }), h('dd', { 'data-testid': testid, text: plainName(value) })];
}

/** Fills the card for an EngineInfo (see wick.d.ts). */
export function renderModelCard(root, info, fileLabel) {
  const card = info.card ?? {};
  const title = card.name || fileLabel || info.modelId;
  const context =
    Number.isFinite(info.context) && info.context !== card.context_length
      ? `${formatCount(card.context_length)} (using ${formatCount(info.context)})`
      : formatCount(card.context_length);
  const shape = [
    card.architecture,
    Number.isFinite(card.block_count) && `${card.block_count} layers`,
    Number.isFinite(card.embedding_length) && `width ${formatCount(card.embedding_length)}`,
    Number.isFinite(card.head_count) && `${card.head_count} heads${card.head_count_kv && card.head_count_kv !== card.head_count ? ` (${card.head_count_kv} KV)` : ''}`,
  ].filter(Boolean);
  // What sets the network apart within its family ("partial RoPE (24 of 32 dimensions, halves)").
  const features = Array.isArray(card.features) ? card.features.filter((f) => typeof f === 'string' && f) : [];
  const mix = quantMix(card.quant_types);
  const build = [info.build === 'threads' ? 'multi-threaded' : info.build === 'simd' ? 'single-threaded' : info.build, info.simd].filter(Boolean).join(', ');
  const loaded = Number.isFinite(info.readMs) && info.readMs > 0 ? `${formatMs(info.loadMs)} (${formatMs(info.readMs)} reading storage)` : formatMs(info.loadMs);

  const parts = [
    h('p', { class: 'card-title', 'data-testid': 'card-name', text: plainName(title) }),
    fileLabel && fileLabel !== title ? h('p', { class: 'card-file', text: plainName(fileLabel) }) : null,
    // One wrapping line of chips: the network's features, in the engine's words.
    features.length
      ? h(
          'ul',
          { class: 'card-features', 'data-testid': 'card-features', 'aria-label': 'Features of the network' },
          features.map((f) => h('li', { text: plainName(f) })),
        )
      : null,
    h(
      'dl',
      { class: 'card-list' },
      row('Architecture', shape.join(' · '), 'card-architecture'),
      row('Parameters', formatParams(card.parameters), 'card-parameters'),
      row('File size', formatBytes(card.file_size), 'card-file-size'),
      row('Quantization', card.file_type || 'Not stated in the file', 'card-quantization'),
      row('Tensor types', mix || '—', 'card-quant-types'),
      row('Context', context, 'card-context'),
      row('Vocabulary', `${formatCount(card.vocab_size)}${card.tokenizer_model ? ` · ${card.tokenizer_model}` : ''}`, 'card-vocab'),
      row('Chat template', chatTemplateNote(card), 'card-chat-template'),
      row('License', card.license || 'Not stated in the file', 'card-license'),
    ),
    h('p', { class: 'card-subtitle', text: 'Runtime' }),
    h(
      'dl',
      { class: 'card-list' },
      row('Backend', info.backend === 'webgpu' ? `WebGPU · ${info.gpu?.name || 'GPU'}${info.gpu?.f16 ? ' · f16' : ''}` : 'CPU (WebAssembly)', 'card-backend'),
      info.gpuNote && info.backend !== 'webgpu' ? row('WebGPU', info.gpuNote, 'card-gpu-note') : null,
      row('Build', build || '—', 'card-build'),
      row('Threads', formatCount(info.threads), 'card-threads'),
      row('Cross-origin isolated', info.crossOriginIsolated ? 'Yes' : 'No', 'card-isolated'),
      row('Load time', loaded, 'card-load-time'),
    ),
    info.crossOriginIsolated
      ? null
      : h('p', {
          class: 'note',
          'data-testid': 'isolation-note',
          text: 'This page is not cross-origin isolated, so wick runs on one thread. Served with COOP/COEP headers it would use every core.',
        }),
  ];
  root.replaceChildren(...parts.filter(Boolean));
}

function chatTemplateNote(card) {
  if (card.chat_template_error) return `Broken: ${card.chat_template_error}. Text completion only`;
  return card.has_chat_template ? 'Yes' : 'None: text completion only';
}

/** The header badge: "CPU · 8 threads" or "WebGPU". */
export function backendBadge(info) {
  if (info.backend === 'webgpu') return 'WebGPU';
  return `CPU · ${info.threads === 1 ? '1 thread' : `${formatCount(info.threads)} threads`}`;
}
