#!/usr/bin/env python3
"""Generate llama.cpp reference fixtures for one GGUF model.

Usage: fixtures.py MODEL_PATH OUT_DIR [--only long_context|perplexity]

Writes OUT_DIR/{tokenize,greedy,teacher_forced,meta,long_context,perplexity}.json
(with --only NAME: just NAME.json). Run through
scripts/fixtures, which sets up the pinned llama-cpp-python venv.

Conventions (all from llama.cpp, via llama-cpp-python's ctypes API):
  * tokenization: llama_tokenize(add_special=True, parse_special=True|False).
    add_special=True means "add BOS/EOS exactly as the GGUF metadata says".
  * greedy: argmax over raw float32 logits (ties -> lowest id), EOS/EOG does
    NOT stop generation; margins[i] = top1 - top2 logit before choosing ids[i].
    Prompt is decoded in one batch, then one token per llama_decode call.
  * teacher_forced: whole text evaluated in one batch with logits for every
    position; log_softmax in float64 over the full vocabulary.
  * context: n_threads=2, n_ctx=2048, n_batch=n_ubatch=1024, flash attention
    disabled, default f16 KV cache, CPU only.
  * long_context: a ~1200-token text (longer than Gemma 3's 512-token sliding
    window) in its own context on the same model, n_ctx=n_batch=n_ubatch=2048
    (so the whole text is one batch and one ubatch), otherwise as above.
    teacher_forced as above over the whole text; greedy with the first 900
    ids as prompt and 48 generated tokens (positions 900..947).
"""
import ctypes
import datetime
import hashlib
import json
import math
import os
import sys

import numpy as np
import llama_cpp
from llama_cpp import Llama

N_THREADS = 2
N_CTX = 2048
N_BATCH = 1024
N_PREDICT = 32
TOP_K = 10
LC_N_CTX = 2048
LC_N_BATCH = 2048
LC_N_PROMPT = 900
LC_N_PREDICT = 48
LC_MIN_TOKENS, LC_MAX_TOKENS = 1100, 1300


# Silences llama.cpp's own logging (set FIXTURES_VERBOSE=1 to see it).
_QUIET_LOG = llama_cpp.llama_log_callback(lambda level, text, user: None)


def r5(x):
    return round(float(x), 5)


# --------------------------------------------------------------------------
# Shared test strings (identical for every model).
# --------------------------------------------------------------------------

def _long_string():
    parts = [
        "The quick brown fox jumps over the lazy dog. ",
        "Voilà, ça coûte 12,50 € — très cher! Ünïcödé façade naïve café. ",
        "Съешь же ещё этих мягких французских булок, да выпей чаю. ",
        "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. ",
        "صِف خَلقَ خَودِ كَمِثلِ الشَمسِ إِذ بَزَغَت ",
        "דג סקרן שט בים מאוכזב ולפתע מצא חברה. ",
        "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले। ",
        "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า ",
        "我能吞下玻璃而不伤身体。中华人民共和国成立于1949年。 ",
        "いろはにほへと ちりぬるを わかよたれそ つねならむ。東京タワー。 ",
        "키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다. ",
        "def main():\n    for i in range(10):\n        print(f\"{i:>3}\")\n\n",
        "fn main() -> Result<(), Box<dyn Error>> {\n\tlet v: Vec<u8> = vec![1, 2, 3];\n\tOk(())\n}\n",
        "{\"name\": \"wick\", \"version\": [0, 1, 2], \"ok\": true, \"ratio\": 3.14159}\n",
        "<div class=\"a\"><p>Hello &amp; welcome</p></div>\n",
        "👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🇫🇷 🤦🏻‍♂️ ",
        "1234567890123456789 3.141592653589793 -0.0001 1e-9 ",
        "!!!??? ... --- *** ((())) [[[]]] {{{}}} ",
        "don't won't I'LL we've they're it's ",
        "https://example.com/path/to/page?query=1&x=%20y#frag ",
        "    indented    with    spaces\t\ttabs\n\n\nnewlines   \n ",
        "CamelCaseWord snake_case_word SCREAMING_CASE mIxEd CaSe ",
    ]
    s = ""
    i = 0
    while len(s) < 5200:
        s += parts[i % len(parts)]
        i += 1
    return s


TOKENIZE_STRINGS = [
    # empty / whitespace
    "",
    " ",
    "  ",
    "   ",
    "    ",
    "     ",
    " " * 7,
    " " * 8,
    " " * 13,
    " " * 16,
    " " * 20,
    "\n",
    "\n\n",
    "\n\n\n",
    " \n ",
    "\t",
    "\t\t",
    " \t \n\t\n  \n",
    "\r\n",
    "a\r\nb",
    "   leading spaces",
    "trailing spaces   ",
    "  both sides  ",
    "two  spaces   three    four",
    "line one\nline two\n\nline four",
    "word\tword\t\tword",
    "\n\nHello",
    "Hello\n\n",
    # simple English / case
    "Hello",
    "hello",
    "HELLO",
    "Hello world",
    " Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "mIxEd CaSe WoRdS are HARD to TokEnIzE",
    "CamelCaseIdentifier and snake_case_identifier and SCREAMING_SNAKE",
    "a",
    "I",
    "supercalifragilisticexpialidocious",
    "antidisestablishmentarianism",
    # contractions
    "don't",
    "I'LL",
    "I'll do it, won't you? We've said they're here; it's fine, isn't it?",
    "DON'T STOP, WE'RE ALMOST THERE",
    "'s 't 're 've 'm 'll 'd",
    "rock 'n' roll",
    # numbers
    "0",
    "42",
    "12345678901234567890123456789",
    "3.14159265358979323846",
    "-0.5e-10",
    "1,234,567.89",
    "2024-01-15T12:34:56Z",
    "v1.2.3-rc.4+build.5",
    "Call 555-0123 or +1 (800) 555 0199.",
    "10% of 250 is 25; 1/3 ≈ 0.333",
    # punctuation
    "!!!",
    "...",
    "?!?!?!",
    "--- *** ___ === +++",
    "((([[[{{{}}}]]])))",
    "\"quoted\" 'single' `back`",
    "« guillemets » „Anführung“ “curly” ‘quotes’",
    "@#$%^&*~|\\/<>",
    "—–-…·•",
    # URLs / emails / paths
    "https://www.example.com/path/to/resource?query=value&other=1#section",
    "http://localhost:8080/api/v1/users/42",
    "mailto:someone@example.org",
    "/usr/local/bin/python3 C:\\Windows\\System32",
    # Latin with accents
    "Café naïve façade résumé coöperate",
    "Voilà! Ça coûte très cher à Noël.",
    "Größenwahn über Äpfel und Öl, Straße",
    "El niño comió piñata en España; ¿qué pasó? ¡Olé!",
    "Ærøskøbing på Ålandsøerne",
    "Zażółć gęślą jaźń",
    "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Türkçe: ığüşöç İĞÜŞÖÇ",
    "Tiếng Việt có dấu: Xin chào thế giới",
    # other scripts
    "Привет, мир! Как дела?",
    "Съешь же ещё этих мягких французских булок",
    "Γειά σου Κόσμε! Ελληνικά γράμματα: αβγδε",
    "مرحبا بالعالم",
    "اللغة العربية جميلة جداً.",
    "שלום עולם",
    "नमस्ते दुनिया",
    "हिन्दी भाषा भारत में बोली जाती है।",
    "สวัสดีชาวโลก",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "你好，世界",
    "我爱自然语言处理。今天天气很好！",
    "こんにちは世界",
    "日本語のテキストとカタカナとひらがな、漢字。",
    "안녕하세요 세계",
    "한국어 텍스트 토큰화 테스트입니다.",
    "Բարեւ աշխարհ",
    "გამარჯობა მსოფლიო",
    "ሰላም ለዓለም",
    "வணக்கம் உலகம்",
    "Mixed: English, Русский, 中文, العربية, हिन्दी, 日本語",
    # math / symbols
    "∀x ∈ ℝ: x² ≥ 0, ∑ᵢ aᵢ = ∞, √2 ≈ 1.414",
    "→ ← ↑ ↓ ⇒ ⇔ ∧ ∨ ¬",
    "™ © ® ° ± × ÷",
    # emoji
    "😀",
    "Hello 👋 world 🌍!",
    "👍🏻👍🏼👍🏽👍🏾👍🏿",
    "👨‍👩‍👧‍👦",
    "👩‍💻 🧑🏽‍🚀 🏳️‍🌈 ❤️‍🔥",
    "🇺🇸🇫🇷🇯🇵",
    "🤦🏻‍♂️🤷‍♀️",
    "🔥🔥🔥🔥🔥",
    # code
    "def add(a, b):\n    return a + b\n",
    "import numpy as np\n\nx = np.zeros((3, 4), dtype=np.float32)\nprint(x.shape)\n",
    "class Foo:\n\tdef __init__(self):\n\t\tself.x = [i**2 for i in range(10)]\n",
    "fn main() {\n    let v: Vec<i32> = (0..10).collect();\n    println!(\"{:?}\", v);\n}\n",
    "impl<'a, T: Clone + Send> Iterator for Iter<'a, T> {\n    type Item = &'a T;\n}",
    "{\"key\": \"value\", \"list\": [1, 2.5, null, true], \"nested\": {\"a\": {}}}",
    "<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>Test</title></head>\n<body><p class=\"x\">Hi &amp; bye</p></body>\n</html>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
    "if (x != null && y >= 0) { z += x << 2; } else { z--; }",
    "$ cargo build --release 2>&1 | tee build.log",
    # special tokens as text (both models' specials in the shared list)
    "<|im_start|>user\nhi<|im_end|>\n",
    "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text before<|endoftext|>text after",
    "<start_of_turn>user\nhi<end_of_turn>\n",
    "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
    "<bos>",
    "<eos>",
    "<bos>hello<eos>",
    "<pad> <unk> <mask>",
    "<|notatoken|>",
    "<start_of_turnX>",
    "<im_start> <|im_start <|im_start|",
    "< |endoftext| >",
    "<s> </s> [INST] [/INST]",
    # long
    _long_string(),
]


def teacher_text():
    return (
        "The lighthouse is a tower or other structure designed to emit light "
        "from a system of lamps and lenses, serving as a navigational aid for "
        "maritime pilots at sea or on inland waterways. Lighthouses mark "
        "dangerous coastlines, hazardous shoals, reefs and rocks, as well as "
        "safe entries to harbors. The earliest known example, the Pharos of "
        "Alexandria, was completed in the third century BC and stood for well "
        "over a thousand years before it was damaged by a series of "
        "earthquakes. Early lighthouses burned wood or coal in open fires, "
        "which produced smoky and unreliable light. In the eighteenth century "
        "the introduction of oil lamps with reflectors greatly improved their "
        "range, and in 1822 the French physicist Augustin Fresnel invented a "
        "compact lens made of concentric rings of glass that could focus the "
        "light into a powerful horizontal beam. Fresnel lenses were soon "
        "installed around the world, and many of them remain in service "
        "today. During the twentieth century most lighthouses were "
        "electrified and later automated, so that the traditional role of "
        "the resident keeper gradually disappeared. Although satellite "
        "navigation has reduced their importance, lighthouses are still "
        "maintained in many countries, and a large number have been preserved "
        "as museums or historic landmarks.\n\n"
        "\"Have you ever climbed to the top of the old lighthouse?\" asked "
        "Maria, shading her eyes against the afternoon sun.\n"
        "\"Only once, when I was a child,\" her grandfather replied. \"There "
        "are one hundred and twelve steps, and I counted every one of them.\"\n"
        "\"Was the keeper still living there back then?\"\n"
        "\"He was. He showed me how to wind the clockwork that turned the "
        "lens, and he let me polish the brass. I think that was the best day "
        "of my whole summer.\"\n"
        "Maria smiled. \"Then let's climb it together tomorrow morning, "
        "before the tourists arrive.\""
    )


def long_context_text():
    return (
        "The water cycle describes the continuous movement of water on, above "
        "and below the surface of the Earth. Heat from the sun causes water in "
        "oceans, lakes and rivers to evaporate, while plants release moisture "
        "through their leaves in a process known as transpiration. As the warm, "
        "humid air rises, it cools, and the vapour condenses into tiny droplets "
        "that form clouds. When the droplets grow heavy enough, they fall back "
        "to the ground as rain, snow, sleet or hail. Some of this precipitation "
        "soaks into the soil and replenishes underground aquifers, some is "
        "stored for centuries in glaciers and ice sheets, and the rest flows "
        "across the land in streams that eventually return it to the sea. "
        "Although the total amount of water on the planet has remained nearly "
        "constant for billions of years, its distribution changes with the "
        "seasons and with the climate, which is why droughts and floods can "
        "strike the same region within a few years of each other.\n\n"
        "Printing with movable type transformed the way knowledge spread "
        "across Europe. Around 1440, Johannes Gutenberg, a goldsmith from "
        "Mainz, developed a method of casting individual metal letters that "
        "could be arranged into lines, inked, and pressed onto paper with a "
        "modified wine press. Earlier techniques had existed in China and "
        "Korea, where printers used blocks of wood, clay or bronze, but the "
        "large number of characters in those writing systems made the process "
        "slow. The Latin alphabet, with only a few dozen symbols, was far "
        "better suited to reusable type. Within fifty years, presses were "
        "operating in more than two hundred cities, and millions of books had "
        "been produced. Pamphlets, newspapers and scientific journals followed, "
        "and the falling price of books helped literacy to rise among "
        "merchants, artisans and eventually farmers.\n\n"
        "Honeybees live in highly organised colonies that may contain tens of "
        "thousands of individuals. Each colony has a single queen, whose main "
        "task is to lay eggs, a few hundred male drones, and a large "
        "population of female workers. The workers change jobs as they age: "
        "young bees clean cells and feed larvae, older ones build wax comb and "
        "guard the entrance, and the oldest fly out to collect nectar and "
        "pollen. A forager that discovers a rich patch of flowers returns to "
        "the hive and performs a waggle dance, in which the angle of her run "
        "indicates the direction of the food relative to the sun and the "
        "duration of the waggling indicates its distance. By pollinating "
        "fruit trees, vegetables and wild plants, bees play an essential role "
        "in agriculture, and the decline of many bee populations in recent "
        "decades has worried farmers and scientists alike.\n\n"
        "Volcanoes form where molten rock, called magma, reaches the surface "
        "of a planet. Most of them are found along the boundaries of tectonic "
        "plates, either where plates pull apart, as in Iceland, or where one "
        "plate slides beneath another, as along the Pacific Ring of Fire. "
        "Others, such as the islands of Hawaii, sit above hot spots deep in "
        "the mantle. The character of an eruption depends largely on the "
        "chemistry of the magma. Runny basalt lava tends to flow gently in "
        "long rivers of fire, while thick, gas-rich magma can explode "
        "violently, throwing ash high into the atmosphere. The eruption of "
        "Mount Tambora in 1815 released so much ash and sulphur that global "
        "temperatures dropped the following year, which became known in "
        "Europe and North America as the year without a summer.\n\n"
        "The Silk Road was not a single route but a vast network of trails "
        "that linked China with Central Asia, Persia, Arabia and the "
        "Mediterranean for more than fifteen centuries. Caravans of camels "
        "carried silk, porcelain and tea westward, and returned with glass, "
        "silver, horses and wool. Few merchants travelled the entire "
        "distance; instead, goods passed from hand to hand through a chain of "
        "oasis towns such as Samarkand and Kashgar. Along with trade goods, "
        "the routes carried ideas, religions, languages and inventions. "
        "Buddhism reached China from India along these paths, paper-making "
        "travelled west to the Islamic world, and, less happily, diseases "
        "spread with the travellers.\n\n"
        "Mira had been the only clockmaker in the mountain town of Velden for "
        "as long as anyone could remember. Her shop stood at the corner of the "
        "market square, and its window was crowded with pendulums, cuckoo "
        "birds and brass gears that caught the morning light. One winter "
        "evening, just as she was about to lock the door, a boy came in out of "
        "the snow holding a small wooden box.\n"
        "\"It was my grandfather's,\" he said, setting it carefully on the "
        "counter. \"It stopped the night he died, and nobody has been able to "
        "make it work again.\"\n"
        "Mira opened the lid. Inside was a pocket watch unlike any she had "
        "seen, with a dial of blue enamel and three hands instead of two. She "
        "turned it over, pried open the back, and frowned at the tangle of "
        "springs and wheels.\n"
        "\"Come back in a week,\" she told him. \"I cannot promise anything, "
        "but I will try.\"\n"
        "For six nights she worked by the light of an oil lamp, cleaning each "
        "tiny wheel, straightening a bent pivot, and cutting a new spring from "
        "a strip of steel. On the seventh night, a little after midnight, the "
        "watch began to tick. The third hand, she discovered, did not measure "
        "seconds at all; it moved only when the watch was pointed towards the "
        "north, like a compass hidden inside a clock.\n"
        "When the boy returned, she placed the watch in his palm and showed "
        "him how the strange hand swung slowly around. His eyes widened.\n"
        "\"He always said it would show me the way home,\" the boy whispered. "
        "\"I thought it was just one of his stories.\"\n"
        "Mira smiled and refused to take his coins. After he had gone, she "
        "stood at the window for a long time, watching the lights of the town "
        "flicker on one by one, and listening to the familiar chorus of a "
        "hundred clocks ticking in the dark."
    )


def greedy_prompts(arch):
    if arch == "gemma3":
        chat = ("<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n"
                "<start_of_turn>model\n")
    else:
        chat = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
                "<|im_start|>assistant\n")
    long_prompt = (
        "The history of the bicycle spans more than two centuries. The first "
        "verifiable claim for a practically used bicycle belongs to the German "
        "Baron Karl von Drais, who invented a two-wheeled running machine in "
        "1817. Riders sat on a wooden frame and pushed themselves along with "
        "their feet. In the 1860s, French inventors added pedals to the front "
        "wheel, creating the velocipede, which was popularly called the "
        "boneshaker because of its rigid iron tires and rough ride on cobbled "
        "streets. The next major step was the high-wheeler, or penny-farthing, "
        "whose enormous front wheel allowed a greater distance to be covered "
        "with each turn of the pedals. These machines were fast but dangerous, "
        "and falls over the handlebars were common. In the 1880s the safety "
        "bicycle appeared, with two wheels of equal size and a chain driving "
        "the rear wheel. Combined with the pneumatic tire, invented by John "
        "Boyd Dunlop in 1888, the safety bicycle made cycling comfortable, "
        "practical and popular with men and women alike. By the end of the "
        "nineteenth century, millions of people rode bicycles for work, "
        "transport and pleasure, and the bicycle had become a symbol of "
        "personal freedom. In the twentieth century, the bicycle"
    )
    return [
        ("factual", "The capital of France is"),
        ("factual2", "Water is made of hydrogen and"),
        ("factual3", "The Eiffel Tower is located in the city of"),
        ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"),
        ("story", "Once upon a time, in a small village at the edge of a dark forest,"),
        ("list", "Here is a list of five common fruits:\n1."),
        ("non_english", "La capitale de l'Allemagne est"),
        ("chat", chat),
        ("single_word", "Hello"),
        ("long", long_prompt),
        ("numbers", "1, 2, 3, 4, 5,"),
        ("json", "{\"name\": \"Alice\", \"age\":"),
    ]


# --------------------------------------------------------------------------
# llama.cpp helpers (low-level API)
# --------------------------------------------------------------------------

def tokenize(vocab, text, add_special, parse_special):
    b = text.encode("utf-8")
    cap = len(b) + 16
    buf = (llama_cpp.llama_token * cap)()
    n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, cap, add_special, parse_special)
    if n < 0:
        cap = -n
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(vocab, b, len(b), buf, cap, add_special, parse_special)
        if n < 0:
            raise RuntimeError("tokenize failed")
    return list(buf[:n])


def detokenize(vocab, ids, remove_special, unparse_special):
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    cap = 64 + 32 * len(ids)
    buf = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, cap, remove_special, unparse_special)
    if n < 0:
        cap = -n + 1
        buf = ctypes.create_string_buffer(cap)
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, cap, remove_special, unparse_special)
    return buf.raw[:n].decode("utf-8", errors="replace")


def meta_str(model, key):
    buf = ctypes.create_string_buffer(4096)
    n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    return buf.value.decode("utf-8", errors="replace") if n >= 0 else None


class Ctx:
    def __init__(self, model_path, n_ctx=N_CTX, n_batch=N_BATCH, model=None, kv_f32=False):
        """n_batch is used for both n_batch and n_ubatch. Pass model to make a
        second context on an already loaded model. kv_f32: an f32 KV cache instead of
        llama.cpp's default f16 (wick's CPU cache is f32)."""
        self.n_batch = n_batch
        self.owns_model = model is None
        if model is None:
            llama_cpp.llama_backend_init()
            mp = llama_cpp.llama_model_default_params()
            mp.n_gpu_layers = 0
            model = llama_cpp.llama_model_load_from_file(model_path.encode(), mp)
            if not model:
                raise RuntimeError("failed to load model")
        self.model = model
        self.vocab = llama_cpp.llama_model_get_vocab(self.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = n_batch
        cp.n_ubatch = n_batch
        cp.n_seq_max = 1
        cp.n_threads = N_THREADS
        cp.n_threads_batch = N_THREADS
        cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        cp.no_perf = True
        if kv_f32:
            cp.type_k = cp.type_v = 0  # GGML_TYPE_F32
        self.swa_full = bool(cp.swa_full)
        self.ctx = llama_cpp.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise RuntimeError("failed to create context")
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)

    def free(self):
        llama_cpp.llama_batch_free(self.batch)
        llama_cpp.llama_free(self.ctx)
        if self.owns_model:
            llama_cpp.llama_model_free(self.model)

    def clear(self):
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx), True)

    def decode(self, ids, pos0, all_logits, stack=True):
        """Decode ids at positions pos0.. in one batch; return float32 logits
        array [n_out, n_vocab] (all rows if all_logits else last row only).
        With all_logits and stack=False, return None; read rows with row(i)."""
        assert len(ids) <= self.n_batch
        b = self.batch
        b.n_tokens = len(ids)
        for i, t in enumerate(ids):
            b.token[i] = t
            b.pos[i] = pos0 + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = 0
            b.logits[i] = 1 if (all_logits or i == len(ids) - 1) else 0
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed: {rc}")
        llama_cpp.llama_synchronize(self.ctx)
        if all_logits and not stack:
            return None
        if all_logits:
            rows = []
            for i in range(len(ids)):
                p = llama_cpp.llama_get_logits_ith(self.ctx, i)
                rows.append(np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy())
            return np.stack(rows)
        p = llama_cpp.llama_get_logits_ith(self.ctx, -1)
        return np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy()[None, :]

    def row(self, i):
        p = llama_cpp.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(p, shape=(self.n_vocab,)).copy()


def top2(logits):
    # argmax with ties -> lowest id (np.argmax semantics)
    i1 = int(np.argmax(logits))
    v1 = float(logits[i1])
    tmp = logits.copy()
    tmp[i1] = -np.inf
    i2 = int(np.argmax(tmp))
    return i1, v1, float(tmp[i2])


def log_softmax64(row):
    x = row.astype(np.float64)
    m = x.max()
    return x - (m + math.log(np.exp(x - m).sum()))


def greedy_run(c, pids, n_predict):
    """Prompt in one batch, then one token per decode. Returns (ids, margins,
    number of steps with unrounded margin < 0.1)."""
    c.clear()
    logits = c.decode(pids, 0, False)[0]
    pos = len(pids)
    out, margins, low = [], [], 0
    for step in range(n_predict):
        i1, v1, v2 = top2(logits)
        out.append(i1)
        margins.append(r5(v1 - v2))
        if v1 - v2 < 0.1:
            low += 1
        if step + 1 < n_predict:
            logits = c.decode([i1], pos, False)[0]
            pos += 1
    return out, margins, low


def teacher_forced_positions(ids, row):
    """row(i) -> float32 logits after ids[..=i]. Returns (positions, ppl)."""
    positions, tlp = [], []
    for i in range(len(ids) - 1):
        r = row(i)
        i1, v1, v2 = top2(r)
        lp = log_softmax64(r)
        top = np.argsort(-lp, kind="stable")[:TOP_K]
        t = float(lp[ids[i + 1]])
        tlp.append(t)
        positions.append({
            "top1": i1,
            "top1_logit": r5(v1),
            "top2_logit": r5(v2),
            "target_logprob": r5(t),
            "top": [[int(k), r5(lp[k])] for k in top],
        })
    ppl = math.exp(-sum(tlp) / len(tlp))
    return positions, ppl


def dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_standard(c, model_path, out_dir, arch):
    """tokenize.json, greedy.json, teacher_forced.json, meta.json."""
    vocab = c.vocab
    bos = llama_cpp.llama_vocab_bos(vocab)
    eos = llama_cpp.llama_vocab_eos(vocab)
    eot = llama_cpp.llama_vocab_eot(vocab)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
    add_eos = bool(llama_cpp.llama_vocab_get_add_eos(vocab))

    # ---------------- tokenize.json ----------------
    # Cross-check with the high-level API the brief names.
    hl = Llama(model_path=model_path, vocab_only=True, verbose=False)
    cases = []
    for text in TOKENIZE_STRINGS:
        ids = tokenize(vocab, text, True, True)
        ids_ns = tokenize(vocab, text, True, False)
        hl_ids = hl.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        assert hl_ids == ids, f"high-level/low-level tokenize mismatch for {text!r}"
        cases.append({"text": text, "ids": ids, "ids_no_special": ids_ns})
    del hl
    starts_bos = [bool(cs["ids"]) and cs["ids"][0] == bos for cs in cases]
    if add_bos:
        assert all(starts_bos), "add_bos metadata true but some ids lack BOS"
    bos_observed = all(starts_bos)
    n_bos_prefixed = sum(starts_bos)
    dump(os.path.join(out_dir, "tokenize.json"), {"cases": cases})
    print(f"[{arch}] tokenize: {len(cases)} cases, add_bos={add_bos}, "
          f"cases starting with BOS={n_bos_prefixed}/{len(cases)}", file=sys.stderr)

    # ---------------- greedy.json ----------------
    gcases = []
    low_margin = 0
    for name, prompt in greedy_prompts(arch):
        pids = tokenize(vocab, prompt, True, True)
        out, margins, low = greedy_run(c, pids, N_PREDICT)
        low_margin += low
        gcases.append({
            "name": name,
            "prompt": prompt,
            "prompt_ids": pids,
            "ids": out,
            "margins": margins,
            "text": detokenize(vocab, out, False, True),
            "text_skip_special": detokenize(vocab, out, True, False),
        })
        print(f"[{arch}] greedy {name} ({len(pids)} prompt tokens): "
              f"{gcases[-1]['text']!r}", file=sys.stderr)
    dump(os.path.join(out_dir, "greedy.json"), {"n_predict": N_PREDICT, "cases": gcases})

    # ---------------- teacher_forced.json ----------------
    text = teacher_text()
    ids = tokenize(vocab, text, True, True)
    c.clear()
    L = c.decode(ids, 0, True)
    positions, ppl = teacher_forced_positions(ids, lambda i: L[i])
    dump(os.path.join(out_dir, "teacher_forced.json"),
         {"text": text, "ids": ids, "positions": positions, "ppl": r5(ppl)})
    top1_acc = sum(p["top1"] == ids[i + 1] for i, p in enumerate(positions)) / len(positions)
    print(f"[{arch}] teacher_forced: {len(ids)} tokens, ppl={ppl:.4f}, "
          f"top1 acc={top1_acc:.3f}", file=sys.stderr)

    # ---------------- meta.json ----------------
    ver_fn = getattr(llama_cpp, "llama_version", None)
    meta = {
        "llama_cpp_python_version": llama_cpp.__version__,
        "libllama_version": ver_fn().decode() if ver_fn else None,
        "system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "model_file": os.path.basename(model_path),
        "model_sha256": sha256(model_path),
        "architecture": arch,
        "n_vocab": c.n_vocab,
        "add_bos_metadata": add_bos,
        "add_eos_metadata": add_eos,
        "bos_added": bos_observed,
        "bos_id": bos,
        "eos_id": eos,
        "eot_id": eot,
        "tokenize_cases": len(cases),
        "greedy_n_predict": N_PREDICT,
        "greedy_low_margin_steps_lt_0.1": low_margin,
        "teacher_forced_n_tokens": len(ids),
        "teacher_forced_ppl": r5(ppl),
        "teacher_forced_top1_acc": round(top1_acc, 5),
        "settings": {
            "n_threads": N_THREADS, "n_ctx": N_CTX, "n_batch": N_BATCH,
            "n_ubatch": N_BATCH, "flash_attn": False, "kv_cache_type": "f16",
            "tokenize": "llama_tokenize(add_special=True, parse_special=True); "
                        "ids_no_special: parse_special=False",
            "greedy": "argmax of raw logits, ties->lowest id, EOS does not stop; "
                      "prompt in one batch, then one token per llama_decode",
            "greedy_text": "text = llama_detokenize(remove_special=False, unparse_special=True); "
                           "text_skip_special = llama_detokenize(remove_special=True, unparse_special=False)",
            "teacher_forced": "single batch, logits for all positions, log_softmax in float64",
            "rounding": "floats rounded to 5 decimals",
        },
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "regenerate": f"scripts/fixtures {os.path.basename(os.path.normpath(out_dir))}",
        "regenerate_direct": "~/.cache/wick/llamacpp-venv/bin/python scripts/fixtures.py "
                             f"models/{os.path.basename(model_path)} "
                             f"tests/fixtures/{os.path.basename(os.path.normpath(out_dir))}",
    }
    dump(os.path.join(out_dir, "meta.json"), meta)


def write_long_context(c, model_path, out_dir, arch):
    """long_context.json: a text longer than Gemma 3's sliding window,
    teacher-forced and greedy, in its own n_ctx=n_batch=n_ubatch=2048 context
    on the model already loaded in c."""
    vocab = c.vocab
    text = long_context_text()
    ids = tokenize(vocab, text, True, True)
    assert LC_MIN_TOKENS <= len(ids) <= LC_MAX_TOKENS, len(ids)
    assert LC_N_PROMPT + LC_N_PREDICT <= LC_N_CTX
    lc = Ctx(model_path, n_ctx=LC_N_CTX, n_batch=LC_N_BATCH, model=c.model)

    lc.clear()
    lc.decode(ids, 0, True, stack=False)
    positions, ppl = teacher_forced_positions(ids, lc.row)
    top1_acc = sum(p["top1"] == ids[i + 1] for i, p in enumerate(positions)) / len(positions)
    print(f"[{arch}] long_context teacher_forced: {len(ids)} tokens, ppl={ppl:.4f}, "
          f"top1 acc={top1_acc:.3f}", file=sys.stderr)

    pids = ids[:LC_N_PROMPT]
    out, margins, low = greedy_run(lc, pids, LC_N_PREDICT)
    gtext = detokenize(vocab, out, False, True)
    print(f"[{arch}] long_context greedy ({len(pids)} prompt tokens, "
          f"{low} steps with margin < 0.1): {gtext!r}", file=sys.stderr)
    swa = meta_str(c.model, f"{arch}.attention.sliding_window")
    swa_full = lc.swa_full
    lc.free()

    dump(os.path.join(out_dir, "long_context.json"), {
        "text": text,
        "teacher_forced": {
            "ids": ids,
            "positions": positions,
            "ppl": r5(ppl),
            "top1_acc": round(top1_acc, 5),
        },
        "greedy": {
            "n_prompt": LC_N_PROMPT,
            "n_predict": LC_N_PREDICT,
            "prompt_ids": pids,
            "ids": out,
            "margins": margins,
            "low_margin_steps_lt_0.1": low,
            "text": gtext,
            "text_skip_special": detokenize(vocab, out, True, False),
        },
        "settings": {
            "model_file": os.path.basename(model_path),
            "architecture": arch,
            "sliding_window_metadata": int(swa) if swa is not None else None,
            "llama_cpp_python_version": llama_cpp.__version__,
            "n_threads": N_THREADS, "n_ctx": LC_N_CTX, "n_batch": LC_N_BATCH,
            "n_ubatch": LC_N_BATCH, "flash_attn": False, "kv_cache_type": "f16",
            "swa_full": swa_full,
            "tokenize": "llama_tokenize(add_special=True, parse_special=True)",
            "teacher_forced": "whole text in one llama_decode (one ubatch), logits for "
                              "all positions, log_softmax in float64; positions[i] "
                              "predicts ids[i+1]; top = 10 [id, logprob] pairs",
            "greedy": "prompt = teacher_forced.ids[:n_prompt] decoded in one batch, then "
                      "one token per llama_decode at positions n_prompt.., argmax of raw "
                      "logits, ties->lowest id, EOS does not stop; margins[i] = top1 - "
                      "top2 logit before choosing ids[i]",
            "greedy_text": "text = llama_detokenize(remove_special=False, unparse_special=True); "
                           "text_skip_special = llama_detokenize(remove_special=True, unparse_special=False)",
            "rounding": "floats rounded to 5 decimals",
        },
    })


# (text name, chunk size): llama-perplexity's numbers on the fixture texts (perplexity.json).
PPL_CASES = [("long_context", 256), ("long_context", 512), ("teacher", 128)]


def write_perplexity(c, model_path, out_dir, arch):
    """perplexity.json: what llama.cpp's llama-perplexity computes on the fixture texts, with
    its conventions: the text tokenized once with BOS as the model adds it, tokens // n_ctx
    chunks of n_ctx tokens each decoded from an empty cache with its first token replaced by
    BOS (when the model adds one), and log p(token j+1) summed for j in [n_ctx/2, n_ctx-1)."""
    texts = {"long_context": long_context_text(), "teacher": teacher_text()}
    add_bos = llama_cpp.llama_vocab_get_add_bos(c.vocab)
    bos = llama_cpp.llama_vocab_bos(c.vocab)
    cases = []
    for name, n_ctx in PPL_CASES:
        ids = tokenize(c.vocab, texts[name], True, False)
        assert len(ids) >= 2 * n_ctx, (name, len(ids), n_ctx)
        pc = Ctx(model_path, n_ctx=n_ctx, n_batch=n_ctx, model=c.model)
        first = n_ctx // 2
        n_chunk = len(ids) // n_ctx
        nll, count = 0.0, 0
        for i in range(n_chunk):
            chunk = list(ids[i * n_ctx:(i + 1) * n_ctx])
            if add_bos:
                chunk[0] = bos
            pc.clear()
            pc.decode(chunk, 0, True, stack=False)
            for j in range(first, n_ctx - 1):
                nll -= float(log_softmax64(pc.row(j))[chunk[j + 1]])
                count += 1
        pc.free()
        ppl = math.exp(nll / count)
        print(f"[{arch}] perplexity {name} n_ctx={n_ctx}: {len(ids)} tokens, {n_chunk} chunks, "
              f"{count} scored, ppl={ppl:.4f}", file=sys.stderr)
        cases.append({"text": name, "n_ctx": n_ctx, "tokens": len(ids), "chunks": n_chunk,
                      "scored": count, "perplexity": r5(ppl)})
    dump(os.path.join(out_dir, "perplexity.json"), {
        "texts": texts,
        "cases": cases,
        "settings": {
            "model_file": os.path.basename(model_path),
            "llama_cpp_python_version": llama_cpp.__version__,
            "n_threads": N_THREADS, "n_batch": "n_ctx", "n_ubatch": "n_ctx",
            "flash_attn": False, "kv_cache_type": "f16",
            "tokenize": "llama_tokenize(add_special=True, parse_special=False), as llama-perplexity",
            "method": "llama-perplexity's: chunks of n_ctx from an empty cache, first token BOS "
                      "when the model adds one, log_softmax in float64 of positions n_ctx/2 .. "
                      "n_ctx-2 predicting the next token",
        },
    })


def main():
    args = sys.argv[1:]
    only = None
    if len(args) == 4 and args[2] == "--only":
        only = args[3]
        args = args[:2]
    if len(args) != 2 or only not in (None, "long_context", "perplexity"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    model_path, out_dir = args
    os.makedirs(out_dir, exist_ok=True)
    if not os.environ.get("FIXTURES_VERBOSE"):
        llama_cpp.llama_log_set(_QUIET_LOG, ctypes.c_void_p(0))

    c = Ctx(model_path)
    arch = meta_str(c.model, "general.architecture")
    if only is None:
        write_standard(c, model_path, out_dir, arch)
    if only in (None, "long_context"):
        write_long_context(c, model_path, out_dir, arch)
    if only in (None, "perplexity"):
        write_perplexity(c, model_path, out_dir, arch)
    c.free()


if __name__ == "__main__":
    main()
