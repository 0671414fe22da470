#!/usr/bin/env python3
"""How well llama.cpp agrees with itself: teacher-forced top-1 tokens with a text run in one batch
vs in chunks of N tokens (N=1: token by token). This is the noise floor any second engine meets
on these tiny 8-bit-activation models (tests/parity.rs and tests/gpu_models.rs cite it).

Usage (in the fixtures venv, see scripts/fixtures):
  ~/.cache/wick/llamacpp-venv/bin/python scripts/llamacpp_self_agreement.py \
      models/SmolLM2-135M-Instruct.Q4_1.gguf tests/fixtures/smollm2/teacher_forced.json 1,8
  (a long_context.json fixture: add --key teacher_forced)
"""
import argparse
import ctypes
import json
import math
import os
import sys

import numpy as np
import llama_cpp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures as F  # noqa: E402  (same context settings as the recorded fixtures)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('fixture')
    ap.add_argument('chunks', help='comma-separated chunk sizes, e.g. 1,8,64')
    ap.add_argument('--key', default=None, help='the object in the fixture that holds ids')
    a = ap.parse_args()
    llama_cpp.llama_log_set(F._QUIET_LOG, ctypes.c_void_p(0))
    d = json.load(open(a.fixture))
    if a.key:
        d = d[a.key]
    ids = d['ids']
    ctx = F.Ctx(a.model, n_ctx=2048, n_batch=2048 if len(ids) > 1024 else 1024)

    def run(chunk):
        ctx.clear()
        rows = []
        for p0 in range(0, len(ids), chunk):
            part = ids[p0:p0 + chunk]
            ctx.decode(part, p0, True, stack=False)
            rows.extend(ctx.row(i) for i in range(len(part)))
        return np.stack(rows)[:-1]

    target = np.array(ids[1:])

    def ppl(logits):
        x = logits.astype(np.float64)
        m = x.max(1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(x - m).sum(1))
        return math.exp(-(x[np.arange(len(target)), target] - lse).mean())

    base = run(len(ids))
    print(f'{len(target)} positions; one batch: perplexity {ppl(base):.4f}')
    for chunk in (int(c) for c in a.chunks.split(',')):
        other = run(chunk)
        agree = (other.argmax(1) == base.argmax(1)).mean()
        print(f'chunks of {chunk}: top-1 agreement with one batch {agree * 100:.2f}%, '
              f'perplexity {ppl(other):.4f}, max |logit difference| {np.abs(other - base).max():.3f}')
    ctx.free()


if __name__ == '__main__':
    main()
