#!/usr/bin/env python3
"""llama.cpp native CPU benchmark (via llama-cpp-python's low-level API).

Usage:
  ~/.cache/wick/llamacpp-venv/bin/python scripts/llamacpp_bench.py MODEL \
      --threads N [--prompt-tokens 128] [--gen-tokens 128] [--reps 3]

(The venv is created by scripts/fixtures.)

Per rep (fresh KV cache each time; one untimed warmup rep first):
  prefill: one llama_decode of exactly --prompt-tokens tokens of a fixed
           English text (BOS as the model's metadata says, truncated or
           padded by repeating the text), logits for the last position only.
  decode:  --gen-tokens greedy tokens, one llama_decode per token, argmax of
           the logits, EOS ignored. Timed including the argmax.
Prints one JSON line with medians and all runs.
"""
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np
import llama_cpp

_QUIET_LOG = llama_cpp.llama_log_callback(lambda level, text, user: None)

TEXT = (
    "The river rose slowly through the night, and by morning the low fields "
    "along its banks had turned into a wide, shallow lake. Farmers stood at "
    "the edge of the water and watched their fences disappear one post at a "
    "time. In the village, the baker opened his shop as usual, because people "
    "still needed bread, and the schoolteacher rang the bell at eight o'clock "
    "even though only half of the children had arrived. Nobody could remember "
    "a flood like this one. The oldest woman in the valley said that her "
    "mother had told her about a great flood many years ago, when the bridge "
    "was carried away and the church bells rang for three days. Engineers "
    "from the city came to measure the height of the water and to inspect the "
    "dams upstream. They wrote numbers in small notebooks, spoke quietly to "
    "one another, and promised that the water would fall within a week. "
)


def tokenize(vocab, text, n):
    b = text.encode("utf-8")
    cap = len(b) + 16
    buf = (llama_cpp.llama_token * cap)()
    k = llama_cpp.llama_tokenize(vocab, b, len(b), buf, cap, True, False)
    if k < 0:
        raise RuntimeError("tokenize failed")
    ids = list(buf[:k])
    body = ids[1:] if llama_cpp.llama_vocab_get_add_bos(vocab) else ids
    while len(ids) < n:  # pad by repeating the text body
        ids += body
    return ids[:n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    if not a.verbose:
        llama_cpp.llama_log_set(_QUIET_LOG, ctypes.c_void_p(0))

    llama_cpp.llama_backend_init()
    mp = llama_cpp.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = llama_cpp.llama_model_load_from_file(a.model.encode(), mp)
    if not model:
        sys.exit("failed to load model")
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    cp = llama_cpp.llama_context_default_params()
    cp.n_ctx = a.prompt_tokens + a.gen_tokens + 16
    cp.n_batch = max(a.prompt_tokens, 1)
    cp.n_ubatch = max(a.prompt_tokens, 1)
    cp.n_seq_max = 1
    cp.n_threads = a.threads
    cp.n_threads_batch = a.threads
    cp.no_perf = True
    ctx = llama_cpp.llama_init_from_model(model, cp)
    if not ctx:
        sys.exit("failed to create context")
    batch = llama_cpp.llama_batch_init(max(a.prompt_tokens, 1), 0, 1)
    mem = llama_cpp.llama_get_memory(ctx)
    prompt = tokenize(vocab, TEXT, a.prompt_tokens)

    def decode(ids, pos0):
        batch.n_tokens = len(ids)
        for i, t in enumerate(ids):
            batch.token[i] = t
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i == len(ids) - 1 else 0
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed")
        llama_cpp.llama_synchronize(ctx)
        p = llama_cpp.llama_get_logits_ith(ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(p, shape=(n_vocab,))))

    def rep():
        llama_cpp.llama_memory_clear(mem, True)
        t0 = time.perf_counter()
        tok = decode(prompt, 0)
        t1 = time.perf_counter()
        pos = len(prompt)
        for _ in range(a.gen_tokens):
            tok = decode([tok], pos)
            pos += 1
        t2 = time.perf_counter()
        return {
            "prefill_s": round(t1 - t0, 6),
            "decode_s": round(t2 - t1, 6),
            "prefill_tok_s": round(len(prompt) / (t1 - t0), 3),
            "decode_tok_s": round(a.gen_tokens / (t2 - t1), 3),
        }

    rep()  # warmup
    runs = [rep() for _ in range(a.reps)]
    print(json.dumps({
        "engine": "llama.cpp",
        "llama_cpp_python": llama_cpp.__version__,
        "model": os.path.basename(a.model),
        "threads": a.threads,
        "prompt_tokens": len(prompt),
        "gen_tokens": a.gen_tokens,
        "flash_attn": "auto (llama.cpp default)",
        "prefill_tok_s": round(statistics.median(r["prefill_tok_s"] for r in runs), 3),
        "decode_tok_s": round(statistics.median(r["decode_tok_s"] for r in runs), 3),
        "runs": runs,
        "loadavg": open("/proc/loadavg").read().split()[:3],
    }))
    llama_cpp.llama_batch_free(batch)
    llama_cpp.llama_free(ctx)
    llama_cpp.llama_model_free(model)


if __name__ == "__main__":
    main()
