#!/usr/bin/env python3
"""Copy llama.cpp's tokenizer test vocabularies into tests/fixtures/vocab/.

Usage: scripts/vocab_fixtures.py [LLAMA_CPP_DIR]
(default: /work/ref/llama_cpp_python-0.3.36/vendor/llama.cpp, llama-cpp-python 0.3.36's pinned tree)

Copies models/ggml-vocab-<name>.gguf{,.inp,.out} unchanged for the vocabularies small enough to
commit; the larger ones are read by tests/tokenizer_vocab.rs from $WICK_VOCAB_DIR.
"""
import pathlib
import shutil
import sys

COMMITTED = [
    "llama-spm", "phi-3", "gpt-2", "falcon", "mpt", "refact", "starcoder", "deepseek-coder",
    "deepseek-llm", "qwen2", "qwen35", "llama-bpe", "bert-bge",
]

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1
                   else "/work/ref/llama_cpp_python-0.3.36/vendor/llama.cpp") / "models"
dst = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "vocab"
dst.mkdir(parents=True, exist_ok=True)
for name in COMMITTED:
    for ext in ("", ".inp", ".out"):
        f = src / f"ggml-vocab-{name}.gguf{ext}"
        shutil.copyfile(f, dst / f.name)
        print(f"{f} -> {dst / f.name}")
