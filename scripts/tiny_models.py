#!/usr/bin/env python3
"""Tiny random-weight GGUF models of architectures no small real model is available for here
(no model hub is reachable), with llama.cpp's logits for them: tests/fixtures/tiny/<arch>.gguf
and <arch>.json, which tests/architectures.rs (CPU) and tests/gpu_models.rs (GPU) compare wick
against.

The weights are seeded random numbers scaled so that activations stay near unit size and
the logits spread over several units (so top-1 margins are mostly clear); norms are 1 + noise,
so a norm applied to the wrong tensor or skipped shows. The vocabulary is GPT-2's 256 byte
tokens, three merges and three ChatML specials: enough for both engines to load it.

Usage: scripts/fixtures tiny (the fixtures venv, with the PyPI package gguf added).
The files are deterministic: a rerun rewrites the same bytes unless llama.cpp's numbers moved.
"""
import ctypes
import json
import os
import sys

import numpy as np
import gguf
import llama_cpp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures as F  # noqa: E402  (llama.cpp context helpers)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'tests', 'fixtures', 'tiny')
POSITIONS = 64

# Qwen 3: the llama block plus a per-head RMSNorm of queries and keys before NEOX-style RoPE,
# heads wider than n_embd / n_head (key_length), tied embeddings.
QWEN3 = dict(arch='qwen3', n_embd=64, n_layer=2, n_head=2, n_kv_head=1, head_dim=128, n_ff=128,
             rope_base=10000.0, eps=1e-6, context=256, seed=3, head_norms=True, qkv_bias=False)
# Qwen 2 / 2.5: the llama block with biases on q, k and v, NEOX-style RoPE, tied embeddings.
QWEN2 = dict(arch='qwen2', n_embd=64, n_layer=2, n_head=4, n_kv_head=2, head_dim=16, n_ff=128,
             rope_base=10000.0, eps=1e-6, context=256, seed=2, head_norms=False, qkv_bias=True)


def bytes_to_unicode():
    """GPT-2's byte-level alphabet: byte b is the character this maps it to."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + \
        list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def vocab():
    alphabet = bytes_to_unicode()
    tokens = [alphabet[b] for b in range(256)]
    merges = ['Ġ t', 'h e', 'Ġt he']
    tokens += ['Ġt', 'he', 'Ġthe']
    specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    types = [1] * len(tokens) + [3] * len(specials)
    return tokens + specials, types, merges


def write_model(cfg, path):
    rng = np.random.default_rng(cfg['seed'])
    tokens, types, merges = vocab()
    n_vocab, d, hd, ff = len(tokens), cfg['n_embd'], cfg['head_dim'], cfg['n_ff']
    q_dim, kv_dim = cfg['n_head'] * hd, cfg['n_kv_head'] * hd
    arch = cfg['arch']
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f'tiny random {arch} (wick tests)')
    w.add_context_length(cfg['context'])
    w.add_embedding_length(d)
    w.add_block_count(cfg['n_layer'])
    w.add_feed_forward_length(ff)
    w.add_head_count(cfg['n_head'])
    w.add_head_count_kv(cfg['n_kv_head'])
    if hd * cfg['n_head'] != d:
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_rope_freq_base(cfg['rope_base'])
    w.add_layer_norm_rms_eps(cfg['eps'])
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre('qwen2')
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(n_vocab - 1)
    w.add_bos_token_id(n_vocab - 3)
    w.add_add_bos_token(False)

    def matrix(name, rows, cols, gain=1.0):
        m = (rng.standard_normal((rows, cols)) * gain / np.sqrt(cols)).astype(np.float32)
        q = gguf.quants.quantize(m, gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)

    def norm(name, n):
        w.add_tensor(name, (1.0 + 0.3 * rng.standard_normal(n)).astype(np.float32))

    # Tied: the embeddings are also the output projection (rows of unit norm-ish size, so the
    # logits spread over a few units).
    emb = (rng.standard_normal((n_vocab, d)) * 0.5).astype(np.float32)
    w.add_tensor('token_embd.weight', gguf.quants.quantize(emb, gguf.GGMLQuantizationType.Q8_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    for i in range(cfg['n_layer']):
        p = f'blk.{i}.'
        norm(p + 'attn_norm.weight', d)
        matrix(p + 'attn_q.weight', q_dim, d)
        matrix(p + 'attn_k.weight', kv_dim, d)
        matrix(p + 'attn_v.weight', kv_dim, d)
        if cfg['qkv_bias']:
            for name, n in (('attn_q.bias', q_dim), ('attn_k.bias', kv_dim), ('attn_v.bias', kv_dim)):
                w.add_tensor(p + name, (0.5 * rng.standard_normal(n)).astype(np.float32))
        if cfg['head_norms']:
            norm(p + 'attn_q_norm.weight', hd)
            norm(p + 'attn_k_norm.weight', hd)
        matrix(p + 'attn_output.weight', d, q_dim, 0.5)
        norm(p + 'ffn_norm.weight', d)
        matrix(p + 'ffn_gate.weight', ff, d)
        matrix(p + 'ffn_up.weight', ff, d)
        matrix(p + 'ffn_down.weight', d, ff, 0.5)
    norm('output_norm.weight', d)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def record(cfg):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, cfg['arch'] + '.gguf')
    n_vocab = write_model(cfg, path)
    rng = np.random.default_rng(cfg['seed'] + 1000)
    ids = [int(t) for t in rng.integers(0, n_vocab - 3, POSITIONS)]
    llama_cpp.llama_log_set(F._QUIET_LOG, ctypes.c_void_p(0))
    # An f32 KV cache, as wick's CPU keeps: llama.cpp's f16 one alone moves these logits by up
    # to 0.27 (mean 0.04), which would hide a wiring error of that size.
    ctx = F.Ctx(path, n_ctx=cfg['context'], n_batch=POSITIONS, kv_f32=True)
    logits = ctx.decode(ids, 0, True)
    ctx.free()
    out = {
        'model': os.path.basename(path),
        'sha256': F.sha256(path),
        'llama_cpp_python': llama_cpp.__version__,
        'kv_cache': 'f32',
        'config': cfg,
        'ids': ids,
        # Row i: the logits after ids[..=i], from one batch.
        'logits': [[round(float(v), 5) for v in row] for row in logits],
    }
    F.dump(os.path.join(OUT, cfg['arch'] + '.json'), out)
    print(f"{path}: {os.path.getsize(path)} bytes, {len(ids)} positions, "
          f"logit std {float(np.std(logits)):.3f}", file=sys.stderr)


if __name__ == '__main__':
    for cfg in (QWEN2, QWEN3):
        record(cfg)
