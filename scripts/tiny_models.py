#!/usr/bin/env python3
"""Tiny random-weight GGUF models of architectures no small real model is available for here
(no model hub is reachable), with llama.cpp's logits for them: tests/fixtures/tiny/<name>.gguf
and <name>.json, which tests/architectures.rs (CPU) and tests/gpu_models.rs (GPU) compare wick
against.

The weights are seeded random numbers scaled so that activations stay near unit size and
the logits spread over several units (so top-1 margins are mostly clear); norms are 1 + noise
and biases 0.5 * N(0, 1), so a norm or bias applied to the wrong tensor or skipped shows. The
vocabulary is GPT-2's 256 byte tokens, three merges and three ChatML specials: enough for both
engines to load it.

Each model is a config dict (every hyperparameter; copied into the json) and a per-arch tensor
layout (`layout`), written in llama.cpp's converter layout (names, fused tensors, shapes).
A config may list several recordings (`records`: json name, llama.cpp n_ctx, positions) of
one gguf, or none (`records: []`: a file wick must refuse; llama.cpp is not run).

llama.cpp pads n_ctx to a multiple of 256 (llama-context.cpp), so every n_ctx used here is
a multiple of 256 and the json's n_ctx is the context llama.cpp really ran with.

Usage: scripts/fixtures tiny (the fixtures venv, with the PyPI package gguf added).
The files are deterministic: a rerun rewrites the same bytes unless llama.cpp's numbers moved.
"""
import ctypes
import importlib.metadata
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


# Every config below also names its files (`name`), its llama.cpp recordings (`records`) and
# whatever the arch needs beyond the llama block; QWEN2 / QWEN3 keep their original dicts (and
# so their original json bytes): a missing key means the default in `get`.
#
# Phi 3.5 / Phi-4-mini: fused attn_qkv, fused ffn_up (gate rows then up rows), GQA, partial
# NEOX RoPE (24 of 32 dims, as Phi-4-mini's 96 of 128), untied output, LongRoPE: short and long
# per-dimension divisors chosen by llama.cpp's context size against original_context_length,
# and rope.scaling.attn_factor = sqrt(1 + ln(context / original) / ln(original)) as the
# converter writes it (no rope.scaling.type key, as a real conversion).
_PHI3_ORIG, _PHI3_CTX = 256, 1024
PHI3 = dict(arch='phi3', name='phi3', n_embd=64, n_layer=2, n_head=2, n_kv_head=1, head_dim=32,
            n_ff=128, rope_base=10000.0, rope_dims=24, eps=1e-5, context=_PHI3_CTX, seed=20,
            norm='rms', tied=False, sliding_window=0, general_name='tiny random Phi 3 (wick tests)',
            rope_orig_ctx=_PHI3_ORIG,
            rope_attn_factor=round(float(np.sqrt(1 + np.log(_PHI3_CTX / _PHI3_ORIG) / np.log(_PHI3_ORIG))), 6),
            rope_factors_short=[round(float(x), 4) for x in np.linspace(1.0, 2.0, 12)],
            rope_factors_long=[round(float(x), 4) for x in np.linspace(1.0, 4.0, 12) ** 1.5],
            records=[('phi3', 256, 64), ('phi3_long', 512, 64)])
# Gemma 2: embeddings * sqrt(n_embd), RMSNorm before and after attention and the MLP, gated
# GELU (tanh form), query scale 1/sqrt(key_length), tanh softcaps on attention scores and final
# logits, a sliding window on even layers (0, 2), tied output, key_length != n_embd / n_head.
GEMMA2 = dict(arch='gemma2', name='gemma2', n_embd=64, n_layer=4, n_head=4, n_kv_head=2, head_dim=32,
              n_ff=128, rope_base=10000.0, eps=1e-6, context=256, seed=21, norm='rms',
              sliding_window=16, attn_softcap=2.0, final_softcap=8.0, records=[('gemma2', 256, 64)])
# Gemma 3: Gemma 2's block without soft-caps, plus a per-head RMSNorm of queries and keys; five
# sliding-window layers (rope base 10 000) per global one (the file's rope base), as llama.cpp's
# default pattern of 6 says.
GEMMA3 = dict(arch='gemma3', name='gemma3', n_embd=64, n_layer=6, n_head=4, n_kv_head=2, head_dim=32,
              n_ff=128, rope_base=1000000.0, eps=1e-6, context=256, seed=37, norm='rms',
              head_norms=True, sliding_window=16, records=[('gemma3', 256, 64)])
# SmolLM 3: the llama block (interleaved RoPE) with no RoPE on every fourth layer (3 and 7);
# llama.cpp hardcodes the step (no gguf key), tied output.
SMOLLM3 = dict(arch='smollm3', name='smollm3', n_embd=64, n_layer=8, n_head=4, n_kv_head=2,
               head_dim=16, n_ff=64, rope_base=10000.0, eps=1e-6, context=256, seed=22, norm='rms',
               records=[('smollm3', 256, 64)])
# Granite 3.x dense: the llama block with embedding, residual, attention and logit scales.
GRANITE = dict(arch='granite', name='granite', n_embd=64, n_layer=2, n_head=4, n_kv_head=2,
               head_dim=16, n_ff=128, rope_base=10000.0, eps=1e-5, context=256, seed=23, norm='rms',
               embedding_scale=4.0, residual_scale=0.5, attention_scale=0.125, logit_scale=3.0,
               emb_std=1.5, out_gain=2.0, records=[('granite', 256, 64)])
# OLMo 2: no pre-norms; RMSNorm after attention and after the MLP (before the residual add),
# RMSNorm of the whole q (n_head * head_dim) and k (n_kv_head * head_dim) vectors, NEOX RoPE,
# untied output.
OLMO2 = dict(arch='olmo2', name='olmo2', n_embd=64, n_layer=2, n_head=4, n_kv_head=2, head_dim=16,
             n_ff=128, rope_base=10000.0, eps=1e-6, context=256, seed=24, norm='rms', tied=False,
             records=[('olmo2', 256, 64)])
# StableLM 2 1.6B: LayerNorm with bias, partial NEOX RoPE (25% of head_dim), q/k/v biases,
# untied output, sequential residual (ffn_norm present).
STABLELM = dict(arch='stablelm', name='stablelm', n_embd=64, n_layer=2, n_head=2, n_kv_head=2,
                head_dim=32, n_ff=128, rope_base=10000.0, rope_dims=8, eps=1e-5, context=256, seed=25,
                norm='layer', qkv_bias=True, tied=False, records=[('stablelm', 256, 64)])
# StableLM 2 12B style: per-head LayerNorm (no bias) of q and k, no ffn_norm, so the MLP reads
# the attention norm's output (parallel residual); GQA, no q/k/v biases.
STABLELM_PARALLEL = dict(arch='stablelm', name='stablelm_parallel', n_embd=64, n_layer=2, n_head=4,
                         n_kv_head=2, head_dim=16, n_ff=128, rope_base=10000.0, rope_dims=4, eps=1e-5,
                         context=256, seed=26, norm='layer', qkv_bias=False, tied=False,
                         head_norms=True, parallel=True, records=[('stablelm_parallel', 256, 64)])
# GPT-2: learned positions, LayerNorm with bias, fused qkv with bias, biases on every matmul,
# ungated GELU MLP, tied output (GPT-2 checkpoints have no lm_head), no head_count_kv key.
GPT2 = dict(arch='gpt2', name='gpt2', n_embd=64, n_layer=2, n_head=4, n_kv_head=4, head_dim=16,
            n_ff=256, rope_base=None, eps=1e-5, context=256, seed=27, norm='layer', kv_key=False,
            records=[('gpt2', 256, 64)])
# Falcon 7B: multi-query (one kv head), fused qkv, one LayerNorm (with bias) feeding attention and
# the MLP in parallel, ungated GELU, no matmul biases, NEOX RoPE over the whole head, tied.
FALCON = dict(arch='falcon', name='falcon', n_embd=64, n_layer=2, n_head=4, n_kv_head=1, head_dim=16,
              n_ff=256, rope_base=10000.0, eps=1e-5, context=256, seed=28, norm='layer',
              records=[('falcon', 256, 64)])
# Falcon 40B: as Falcon 7B but attention reads attn_norm_2 (ln_attn) while the MLP reads
# attn_norm (ln_mlp); two kv heads; untied output.
FALCON_NORM2 = dict(arch='falcon', name='falcon_norm2', n_embd=64, n_layer=2, n_head=4, n_kv_head=2,
                    head_dim=16, n_ff=256, rope_base=10000.0, eps=1e-5, context=256, seed=29,
                    norm='layer', attn_norm_2=True, tied=False, records=[('falcon_norm2', 256, 64)])
# MPT 7B: ALiBi (no RoPE, no position embeddings) with 6 heads (not a power of two), qkv
# clamped to +-clamp_kqv, LayerNorm without bias (no_bias), no matmul biases, ungated GELU, tied.
MPT = dict(arch='mpt', name='mpt', n_embd=96, n_layer=2, n_head=6, n_kv_head=6, head_dim=16,
           n_ff=384, rope_base=None, eps=1e-5, context=256, seed=30, norm='layer', norm_bias=False,
           kv_key=False, max_alibi_bias=8.0, clamp_kqv=1.5, records=[('mpt', 256, 64)])
# The llama block (interleaved RoPE) with RoPE scalings.
_LLAMA = dict(arch='llama', n_embd=64, n_layer=2, n_head=4, n_kv_head=2, head_dim=16, n_ff=128,
              rope_base=10000.0, eps=1e-5, context=256, norm='rms')
LLAMA_LINEAR = dict(_LLAMA, name='llama_linear', seed=31, rope_scaling='linear', rope_factor=4.0,
                    records=[('llama_linear', 256, 64)])
# YaRN: what the converter writes for rope_type yarn without the optional yarn_* keys (which
# llama.cpp's llama / qwen2 loaders do not read anyway).
LLAMA_YARN = dict(_LLAMA, name='llama_yarn', seed=32, rope_scaling='yarn', rope_factor=4.0,
                  rope_orig_ctx=32, records=[('llama_yarn', 256, 64)])
# Llama 3.1's rope_freqs.weight: per-dimension-pair divisors of the rotation frequency.
LLAMA_ROPE_FREQS = dict(_LLAMA, name='llama_rope_freqs', seed=33,
                        rope_freqs=[float(x) for x in np.linspace(1.0, 8.0, 8)],
                        records=[('llama_rope_freqs', 256, 64)])
QWEN2_YARN = dict(arch='qwen2', name='qwen2_yarn', n_embd=64, n_layer=2, n_head=4, n_kv_head=2,
                  head_dim=16, n_ff=128, rope_base=10000.0, eps=1e-6, context=256, seed=34,
                  head_norms=False, qkv_bias=True, rope_scaling='yarn', rope_factor=4.0,
                  rope_orig_ctx=32, records=[('qwen2_yarn', 256, 64)])
# Files wick must refuse (no json; llama.cpp is not run): a Mixtral-style MoE llama, and a
# llama with a rope.scaling.type neither wick nor llama.cpp knows (HF's "dynamic" NTK; llama.cpp
# aborts on it: its enum has none / linear / yarn / longrope).
LLAMA_MOE = dict(_LLAMA, name='llama_moe', seed=35, n_expert=4, n_expert_used=2, records=[])
LLAMA_UNKNOWN_SCALING = dict(_LLAMA, name='llama_unknown_scaling', seed=36, rope_scaling='dynamic',
                             rope_factor=2.0, records=[])

MODELS = (QWEN2, QWEN3, PHI3, GEMMA2, GEMMA3, SMOLLM3, GRANITE, OLMO2, STABLELM, STABLELM_PARALLEL, GPT2,
          FALCON, FALCON_NORM2, MPT, LLAMA_LINEAR, LLAMA_YARN, LLAMA_ROPE_FREQS, QWEN2_YARN,
          LLAMA_MOE, LLAMA_UNKNOWN_SCALING)
# The original two: their json carries neither n_ctx nor arch, so their bytes stay as they were.
LEGACY = ('qwen2', 'qwen3')
DEFAULTS = dict(norm='rms', tied=True, qkv_bias=False, head_norms=False, emb_std=0.5, out_gain=0.5,
                kv_key=True, norm_bias=True, rope_dims=None, rope_scaling=None, n_expert=0,
                parallel=False, attn_norm_2=False)


def get(cfg, key):
    return cfg.get(key, DEFAULTS.get(key))

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


def layout(cfg, n_vocab):
    """The tensors of cfg's arch in write order, as llama.cpp's converter names and shapes them
    (numpy shapes: rows, cols; ggml's ne is reversed). Kinds: emb (Q8_0, std), mat (Q8_0,
    gain / sqrt(cols)), norm (f32 1 + 0.3 N), bias (f32 0.5 N), f32 (random, std), const (given
    f32 values). The order is also the random draw order: QWEN2 / QWEN3 keep theirs."""
    arch, d, hd, ff = cfg['arch'], cfg['n_embd'], cfg['head_dim'], cfg['n_ff']
    q_dim, kv_dim = cfg['n_head'] * hd, cfg['n_kv_head'] * hd
    og = get(cfg, 'out_gain')
    ln_bias = get(cfg, 'norm') == 'layer' and get(cfg, 'norm_bias')
    t = [('emb', 'token_embd.weight', (n_vocab, d), get(cfg, 'emb_std'))]
    if arch == 'gpt2':
        t.append(('f32', 'position_embd.weight', (cfg['context'], d), 0.5))
    if arch == 'phi3':
        t.append(('const', 'rope_factors_long.weight', cfg['rope_factors_long']))
        t.append(('const', 'rope_factors_short.weight', cfg['rope_factors_short']))
    if 'rope_freqs' in cfg:
        t.append(('const', 'rope_freqs.weight', cfg['rope_freqs']))

    def norm(name, n):
        t.append(('norm', name + '.weight', n))
        if ln_bias:
            t.append(('bias', name + '.bias', n))

    for i in range(cfg['n_layer']):
        p = f'blk.{i}.'
        if arch != 'olmo2':
            norm(p + 'attn_norm', d)
        if get(cfg, 'attn_norm_2'):
            norm(p + 'attn_norm_2', d)
        if arch in ('phi3', 'gpt2', 'falcon', 'mpt'):
            t.append(('mat', p + 'attn_qkv.weight', (q_dim + 2 * kv_dim, d), 1.0))
            if arch == 'gpt2':
                t.append(('bias', p + 'attn_qkv.bias', q_dim + 2 * kv_dim))
        else:
            t.append(('mat', p + 'attn_q.weight', (q_dim, d), 1.0))
            t.append(('mat', p + 'attn_k.weight', (kv_dim, d), 1.0))
            t.append(('mat', p + 'attn_v.weight', (kv_dim, d), 1.0))
        if get(cfg, 'qkv_bias'):
            for name, n in (('attn_q.bias', q_dim), ('attn_k.bias', kv_dim), ('attn_v.bias', kv_dim)):
                t.append(('bias', p + name, n))
        if get(cfg, 'head_norms'):
            if arch == 'stablelm':  # one LayerNorm weight per head: ne [head_dim, n_head]
                t.append(('norm', p + 'attn_q_norm.weight', (cfg['n_head'], hd)))
                t.append(('norm', p + 'attn_k_norm.weight', (cfg['n_kv_head'], hd)))
            else:
                t.append(('norm', p + 'attn_q_norm.weight', hd))
                t.append(('norm', p + 'attn_k_norm.weight', hd))
        if arch == 'olmo2':
            t.append(('norm', p + 'attn_q_norm.weight', q_dim))
            t.append(('norm', p + 'attn_k_norm.weight', kv_dim))
        t.append(('mat', p + 'attn_output.weight', (d, q_dim), og))
        if arch == 'gpt2':
            t.append(('bias', p + 'attn_output.bias', d))
        if arch in ('gemma2', 'gemma3', 'olmo2'):
            t.append(('norm', p + 'post_attention_norm.weight', d))
        if arch not in ('olmo2', 'falcon') and not get(cfg, 'parallel'):
            norm(p + 'ffn_norm', d)
        if get(cfg, 'n_expert'):
            ne = cfg['n_expert']
            t.append(('f32', p + 'ffn_gate_inp.weight', (ne, d), 1.0 / np.sqrt(d)))
            t.append(('mat', p + 'ffn_gate_exps.weight', (ne, ff, d), 1.0))
            t.append(('mat', p + 'ffn_up_exps.weight', (ne, ff, d), 1.0))
            t.append(('mat', p + 'ffn_down_exps.weight', (ne, d, ff), og))
        elif arch == 'phi3':
            t.append(('mat', p + 'ffn_up.weight', (2 * ff, d), 1.0))  # gate rows, then up rows
            t.append(('mat', p + 'ffn_down.weight', (d, ff), og))
        elif arch in ('gpt2', 'falcon', 'mpt'):
            t.append(('mat', p + 'ffn_up.weight', (ff, d), 1.0))
            if arch == 'gpt2':
                t.append(('bias', p + 'ffn_up.bias', ff))
            t.append(('mat', p + 'ffn_down.weight', (d, ff), og))
            if arch == 'gpt2':
                t.append(('bias', p + 'ffn_down.bias', d))
        else:
            t.append(('mat', p + 'ffn_gate.weight', (ff, d), 1.0))
            t.append(('mat', p + 'ffn_up.weight', (ff, d), 1.0))
            t.append(('mat', p + 'ffn_down.weight', (d, ff), og))
        if arch in ('gemma2', 'gemma3', 'olmo2'):
            t.append(('norm', p + 'post_ffw_norm.weight', d))
    norm('output_norm', d)
    if not get(cfg, 'tied'):
        # Untied: an output projection whose logits spread over a few units.
        t.append(('mat', 'output.weight', (n_vocab, d), 4.0))
    return t


def write_model(cfg, path, split_max_tensors=0):
    rng = np.random.default_rng(cfg['seed'])
    tokens, types, merges = vocab()
    n_vocab, d, hd, ff = len(tokens), cfg['n_embd'], cfg['head_dim'], cfg['n_ff']
    arch = cfg['arch']
    w = gguf.GGUFWriter(path, arch, split_max_tensors=split_max_tensors)
    # (A general.name containing "phi3" or "phi-3" makes llama.cpp's vocab look up "</s>".)
    w.add_name(cfg.get('general_name', f"tiny random {cfg.get('name', arch)} (wick tests)"))
    w.add_context_length(cfg['context'])
    w.add_embedding_length(d)
    w.add_block_count(cfg['n_layer'])
    w.add_feed_forward_length(ff)
    w.add_head_count(cfg['n_head'])
    if get(cfg, 'kv_key'):
        w.add_head_count_kv(cfg['n_kv_head'])
    if hd * cfg['n_head'] != d:
        w.add_key_length(hd)
        w.add_value_length(hd)
    if cfg['rope_base'] is not None:
        w.add_rope_freq_base(cfg['rope_base'])
    if get(cfg, 'norm') == 'rms':
        w.add_layer_norm_rms_eps(cfg['eps'])
    else:
        w.add_layer_norm_eps(cfg['eps'])
    # Arch extras, as the converters write them.
    if get(cfg, 'rope_dims') is not None:
        w.add_rope_dimension_count(cfg['rope_dims'])
    scaling = get(cfg, 'rope_scaling')
    if scaling is not None:
        w.add_string(gguf.Keys.Rope.SCALING_TYPE.format(arch=arch), scaling)
        w.add_rope_scaling_factor(cfg['rope_factor'])
    if 'rope_orig_ctx' in cfg:
        w.add_rope_scaling_orig_ctx_len(cfg['rope_orig_ctx'])
    if 'rope_attn_factor' in cfg:
        w.add_rope_scaling_attn_factors(cfg['rope_attn_factor'])
    if 'sliding_window' in cfg:
        w.add_sliding_window(cfg['sliding_window'])
    if 'attn_softcap' in cfg:
        w.add_attn_logit_softcapping(cfg['attn_softcap'])
        w.add_final_logit_softcapping(cfg['final_softcap'])
    if 'embedding_scale' in cfg:
        w.add_embedding_scale(cfg['embedding_scale'])
        w.add_residual_scale(cfg['residual_scale'])
        w.add_attention_scale(cfg['attention_scale'])
        w.add_logit_scale(cfg['logit_scale'])
    if 'max_alibi_bias' in cfg:
        w.add_clamp_kqv(cfg['clamp_kqv'])
        w.add_max_alibi_bias(cfg['max_alibi_bias'])
    if arch == 'falcon':
        w.add_tensor_data_layout('jploski')
    if get(cfg, 'n_expert'):
        w.add_expert_count(cfg['n_expert'])
        w.add_expert_used_count(cfg['n_expert_used'])
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre('qwen2')
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(n_vocab - 1)
    w.add_bos_token_id(n_vocab - 3)
    w.add_add_bos_token(False)

    q8 = gguf.GGMLQuantizationType.Q8_0
    for kind, name, *rest in layout(cfg, n_vocab):
        if kind == 'emb':
            shape, std = rest
            m = (rng.standard_normal(shape) * std).astype(np.float32)
            w.add_tensor(name, gguf.quants.quantize(m, q8), raw_dtype=q8)
        elif kind == 'mat':
            shape, gain = rest
            m = (rng.standard_normal(shape) * gain / np.sqrt(shape[-1])).astype(np.float32)
            w.add_tensor(name, gguf.quants.quantize(m, q8), raw_dtype=q8)
        elif kind == 'norm':
            w.add_tensor(name, (1.0 + 0.3 * rng.standard_normal(rest[0])).astype(np.float32))
        elif kind == 'bias':
            w.add_tensor(name, (0.5 * rng.standard_normal(rest[0])).astype(np.float32))
        elif kind == 'f32':
            shape, std = rest
            w.add_tensor(name, (rng.standard_normal(shape) * std).astype(np.float32))
        elif kind == 'const':
            w.add_tensor(name, np.array(rest[0], dtype=np.float32))
        else:
            raise ValueError(kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return n_vocab


def record(cfg):
    os.makedirs(OUT, exist_ok=True)
    name = cfg.get('name', cfg['arch'])
    path = os.path.join(OUT, name + '.gguf')
    n_vocab = write_model(cfg, path)
    legacy = name in LEGACY
    records = [(name, cfg['context'], POSITIONS)] if legacy else cfg['records']
    if not records:
        print(f"{path}: {os.path.getsize(path)} bytes, no recording (wick must refuse it)",
              file=sys.stderr)
    for out_name, n_ctx, positions in records:
        rng = np.random.default_rng(cfg['seed'] + 1000)
        ids = [int(t) for t in rng.integers(0, n_vocab - 3, positions)]
        llama_cpp.llama_log_set(F._QUIET_LOG, ctypes.c_void_p(0))
        # An f32 KV cache, as wick's CPU keeps: llama.cpp's f16 one alone moves these logits by
        # up to 0.27 (mean 0.04), which would hide a wiring error of that size.
        ctx = F.Ctx(path, n_ctx=n_ctx, n_batch=positions, kv_f32=True)
        # llama.cpp pads n_ctx to a multiple of 256; the json must name the context it ran with.
        assert llama_cpp.llama_n_ctx(ctx.ctx) == n_ctx, (out_name, llama_cpp.llama_n_ctx(ctx.ctx))
        logits = ctx.decode(ids, 0, True)
        ctx.free()
        out = {
            'model': os.path.basename(path),
            'sha256': F.sha256(path),
            'llama_cpp_python': llama_cpp.__version__,
            'kv_cache': 'f32',
        }
        if not legacy:
            out['arch'] = cfg['arch']
            out['n_ctx'] = n_ctx
        out.update({
            'config': cfg,
            'ids': ids,
            # Row i: the logits after ids[..=i], from one batch.
            'logits': [[round(float(v), 5) for v in row] for row in logits],
        })
        F.dump(os.path.join(OUT, out_name + '.json'), out)
        print(f"{path} -> {out_name}.json: {os.path.getsize(path)} bytes, n_ctx {n_ctx}, "
              f"{len(ids)} positions, logit std {float(np.std(logits)):.3f}", file=sys.stderr)


def split(name, max_tensors):
    """The model `name` again, the same bytes of every tensor, as gguf-py splits files
    (convert_hf_to_gguf.py --split-max-tensors): <name>-0000i-of-0000n.gguf in tiny/split/, each
    shard a GGUF with `split.no`, `split.count` and `split.tensors.count`, the first holding the
    metadata. llama.cpp, given the first shard, must load them all and give the single file's
    logits (checked here, so the fixture is known good)."""
    cfg = next(c for c in MODELS if c.get('name', c['arch']) == name)
    folder = os.path.join(OUT, 'split')
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        if f.startswith(name + '-'):
            os.remove(os.path.join(folder, f))
    write_model(cfg, os.path.join(folder, name + '.gguf'), split_max_tensors=max_tensors)
    shards = sorted(f for f in os.listdir(folder) if f.startswith(name + '-'))
    single = json.load(open(os.path.join(OUT, name + '.json')))
    llama_cpp.llama_log_set(F._QUIET_LOG, ctypes.c_void_p(0))
    ctx = F.Ctx(os.path.join(folder, shards[0]), n_ctx=single.get('n_ctx', 256), n_batch=64, kv_f32=True)
    logits = ctx.decode(single['ids'], 0, True)
    ctx.free()
    diff = float(np.max(np.abs(np.array(logits) - np.array(single['logits']))))
    assert diff < 1e-4, (name, diff)
    print(f"{folder}: {shards}, llama.cpp's logits from the shards within {diff:.1e} of the single file",
          file=sys.stderr)


# (model, most tensors per shard)
SPLITS = [('qwen3', 10)]

# Files llama.cpp's own quantizer writes from a tiny model, with llama.cpp's logits for them:
# (output, source config, llama_ftype). The Qwen 2 fixture's rows are narrower than 256, so
# llama.cpp falls back to IQ4_NL for every matrix (as it does for such rows in real IQ4_XS
# files); QWEN2_WIDE's rows are 256 wide, so its matrices are IQ4_XS proper. The source is written
# to a temporary folder: only the quantized file and its logits are fixtures.
QWEN2_WIDE = dict(arch='qwen2', name='qwen2_wide', n_embd=256, n_layer=1, n_head=4, n_kv_head=2,
                  head_dim=64, n_ff=256, rope_base=10000.0, eps=1e-6, context=256, seed=40,
                  head_norms=False, qkv_bias=True, records=[])
QUANTIZED = [('qwen2_iq4_xs', QWEN2, 'LLAMA_FTYPE_MOSTLY_IQ4_XS'),
             ('qwen2_wide_iq4_xs', QWEN2_WIDE, 'LLAMA_FTYPE_MOSTLY_IQ4_XS')]
# The IQ2 / IQ3 types, every matrix (embeddings too) in the one type (`pure`), with an importance
# matrix (llama.cpp refuses IQ2_XXS, IQ2_XS, IQ2_S and IQ3_XXS without one): seeded values in
# [0.5, 1.5] per column, standing in for the mean squared activations an imatrix run records.
# Each ftype's default type is the named one, except IQ2_S, which is LLAMA_FTYPE_MOSTLY_IQ2_M's
# (MOSTLY_IQ2_S defaults to IQ2_XS). `scripts/fixtures tiny iq` reruns only these.
IQ_LOW_BIT = [('qwen2_wide_iq2_xxs', QWEN2_WIDE, 'LLAMA_FTYPE_MOSTLY_IQ2_XXS'),
              ('qwen2_wide_iq2_xs', QWEN2_WIDE, 'LLAMA_FTYPE_MOSTLY_IQ2_XS'),
              ('qwen2_wide_iq2_s', QWEN2_WIDE, 'LLAMA_FTYPE_MOSTLY_IQ2_M'),
              ('qwen2_wide_iq3_xxs', QWEN2_WIDE, 'LLAMA_FTYPE_MOSTLY_IQ3_XXS'),
              ('qwen2_wide_iq3_s', QWEN2_WIDE, 'LLAMA_FTYPE_MOSTLY_IQ3_S')]


def importance(src, seed):
    """llama.cpp's imatrix argument for every 2-D tensor of the gguf at `src`: a NULL-terminated
    array of (name, floats, count), and the buffers it points into (kept alive by the caller)."""
    rng = np.random.default_rng(seed)
    reader = gguf.GGUFReader(src)
    keep, entries = [], []
    for t in reader.tensors:
        if len(t.shape) != 2:
            continue
        cols = int(t.shape[0])  # gguf-py lists ne[0] (the row length) first
        buf = (ctypes.c_float * cols)(*rng.uniform(0.5, 1.5, cols).astype(np.float32))
        name = t.name.encode()
        keep += [buf, name]
        entries.append((name, ctypes.cast(buf, ctypes.POINTER(ctypes.c_float)), cols))
    arr = (llama_cpp.llama_model_imatrix_data * (len(entries) + 1))()
    for i, (name, ptr, n) in enumerate(entries):
        arr[i].name, arr[i].data, arr[i].size = name, ptr, n
    arr[len(entries)].name = None
    return arr, keep


def fnv64(values):
    """FNV-1a over the f32 bit patterns of `values`, one 32-bit word at a time (tests/iq_quants.rs
    computes the same over wick's dequantization)."""
    h = 0xcbf29ce484222325
    for w in np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).ravel().tolist():
        h = ((h ^ w) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f'{h:016x}'


def gguf_py_dequantization(out_name, path):
    """An independent dequantization of every quantized tensor of the gguf at `path`: gguf-py's
    numpy dequantizers (`gguf.quants.dequantize`), not llama.cpp's C: per tensor, its type, a hash
    of all its f32 values (`fnv64`) and its first row's values in full, in gguf-py/<out_name>.json
    (a folder of its own: tiny/*.json are llama.cpp recordings)."""
    reader = gguf.GGUFReader(path)
    tensors = {}
    for t in reader.tensors:
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            continue
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        tensors[t.name] = {
            'type': t.tensor_type.name,
            'shape': [int(d) for d in values.shape],
            'fnv64': fnv64(values),
            'row0': [float(v) for v in values.reshape(-1, values.shape[-1])[0]],
        }
    os.makedirs(os.path.join(OUT, 'gguf-py'), exist_ok=True)
    F.dump(os.path.join(OUT, 'gguf-py', out_name + '.json'),
           {'model': os.path.basename(path), 'sha256': F.sha256(path),
            'gguf_py': importlib.metadata.version('gguf'), 'tensors': tensors})


def gguf_py_grids():
    """gguf-py's own copies of the IQ2 / IQ3 grids and sign table (quants.py keeps them as packed
    hex, decoded by its `init_grid`), each grid entry packed as llama.cpp packs it (value j in
    byte j of a little-endian integer), as hex strings, in gguf-py/iq_grids.json."""
    from gguf import quants as Q
    out = {'gguf_py': importlib.metadata.version('gguf'),
           'ksigns_iq2xs': list(np.frombuffer(Q.IQ2_XXS.ksigns, dtype=np.uint8).tolist())}
    for key, cls in [('iq2xxs_grid', Q.IQ2_XXS), ('iq2xs_grid', Q.IQ2_XS), ('iq2s_grid', Q.IQ2_S),
                     ('iq3xxs_grid', Q.IQ3_XXS), ('iq3s_grid', Q.IQ3_S)]:
        cls.init_grid()
        grid = cls.grid.reshape(cls.grid_shape).astype(np.uint64)
        packed = np.zeros(grid.shape[0], dtype=np.uint64)
        for j in range(grid.shape[1]):
            packed |= grid[:, j] << np.uint64(8 * j)
        out[key] = [f'{int(v):0{2 * grid.shape[1]}x}' for v in packed]
    os.makedirs(os.path.join(OUT, 'gguf-py'), exist_ok=True)
    F.dump(os.path.join(OUT, 'gguf-py', 'iq_grids.json'), out)


def quantize(out_name, cfg, ftype, low_bit=False):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, 'source.gguf')
        n_vocab = write_model(cfg, src)
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, ftype)
        params.allow_requantize = True  # the source's matrices are Q8_0
        if low_bit:
            params.pure = True
            imatrix, _keep = importance(src, cfg['seed'] + 2000)
            params.imatrix = imatrix
        dst = os.path.join(OUT, out_name + '.gguf')
        rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
        assert rc == 0, (out_name, rc)
    rng = np.random.default_rng(cfg['seed'] + 1000)
    ids = [int(t) for t in rng.integers(0, n_vocab - 3, POSITIONS)]
    llama_cpp.llama_log_set(F._QUIET_LOG, ctypes.c_void_p(0))
    ctx = F.Ctx(dst, n_ctx=256, n_batch=POSITIONS, kv_f32=True)
    logits = ctx.decode(ids, 0, True)
    ctx.free()
    F.dump(os.path.join(OUT, out_name + '.json'), {
        'model': os.path.basename(dst),
        'sha256': F.sha256(dst),
        'llama_cpp_python': llama_cpp.__version__,
        'kv_cache': 'f32',
        'arch': cfg['arch'],
        'n_ctx': 256,
        'config': dict(cfg, quantized=ftype, **({'pure': True, 'imatrix': 'seeded'} if low_bit else {})),
        'ids': ids,
        'logits': [[round(float(v), 5) for v in row] for row in logits],
    })
    print(f"{dst}: {os.path.getsize(dst)} bytes ({ftype}), logit std {float(np.std(logits)):.3f}",
          file=sys.stderr)
    if low_bit:
        gguf_py_dequantization(out_name, dst)


if __name__ == '__main__':
    only = sys.argv[1:]
    for cfg in MODELS:
        if not only or cfg.get('name', cfg['arch']) in only:
            record(cfg)
    for out_name, cfg, ftype in QUANTIZED:
        if not only or out_name in only:
            quantize(out_name, cfg, ftype)
    for out_name, cfg, ftype in IQ_LOW_BIT:
        if not only or out_name in only or 'iq' in only:
            quantize(out_name, cfg, ftype, low_bit=True)
    if not only or 'iq' in only:
        gguf_py_grids()
    for name, max_tensors in SPLITS:
        if not only or 'split' in only:
            split(name, max_tensors)
