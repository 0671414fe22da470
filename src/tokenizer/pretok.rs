//! Byte-level BPE pre-tokenization: the regular expressions that split text into words before
//! merging, chosen by `tokenizer.ggml.pre` exactly as llama.cpp chooses them (its
//! `llm_tokenizer_bpe` constructor), with llama.cpp's per-type flags.
//!
//! llama.cpp applies the expressions one after another, each splitting the pieces of the one
//! before and keeping both the matches and the text between them; that is a chain of
//! `tokenizers` `Split` pre-tokenizers with the `Isolated` behaviour.
//!
//! Where llama.cpp runs a hand-written splitter (the GPT-2 and Llama 3 expressions), the
//! expression here is the one that splitter implements. Where llama.cpp rewrote an expression for
//! C++ `std::regex` (no `\p{Lu}`, collapsed categories), the rewrite is kept, because it is what
//! llama.cpp actually matches (for example, every non-ASCII letter counts as both "not a-z" and
//! "not A-Z" in the Tekken and GPT-4o rewrites).

/// GPT-2's expression (also what llama.cpp's custom GPT-2 splitter implements).
pub(crate) const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";

const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";

const BAILINGMOE: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";

const DEEPSEEK3: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;

// Cased letters (llama.cpp writes them as literal characters; escaped here so no tool can
// normalize them).
const DEEPSEEK_LLM_LETTERS: &str = concat!(
    r"\s?[",
    r"A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}",
    r"\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}",
    r"\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}",
    r"\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}",
    r"\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}",
    r"\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}",
    r"\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}",
    r"\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}",
    r"\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}",
    r"\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}",
    r"\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}",
    r"\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}",
    r"\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}",
    r"\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}",
    r"\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}",
    r"\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}",
    r"]+"
);

// llama.cpp matches expressions without `\p{..}` with `std::wregex` after replacing every non-ASCII
// whitespace character by U+000B, so a literal range never matches such a character; the ranges
// below exclude whitespace to behave the same (U+3000 ideographic space, U+2000.. spaces).
const DEEPSEEK_LLM_PUNCT: &str =
    r"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3001}-\x{3002}]+";
const DEEPSEEK_CJK: &str = r"[\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}--\s]+";

const EXAONE_MOE: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+";

/// How a byte-level BPE vocabulary is pre-tokenized, and llama.cpp's flags for its pre type.
#[derive(Clone, Debug)]
pub(crate) struct PreTokenizer {
    /// Applied in order, each to the pieces of the one before.
    pub regexes: Vec<&'static str>,
    /// Use a whole word as one token when it is in the vocabulary (Llama 3 and others).
    pub ignore_merges: bool,
    /// The default `add_bos` when the file does not say.
    pub add_bos: bool,
    /// llama.cpp's `clean_spaces` (decode post-pass).
    pub clean_spaces: bool,
    /// The pre type has no BOS token by default (GLM).
    pub no_bos: bool,
    /// Whether llama.cpp knows this pre type (unknown ones fall back to GPT-2's expression).
    pub known: bool,
}

impl PreTokenizer {
    /// The pre-tokenizer for `tokenizer.ggml.pre = pre` (empty when the key is absent).
    pub fn for_pre(pre: &str) -> Self {
        let mut p = Self {
            regexes: vec![GPT2],
            ignore_merges: false,
            add_bos: false,
            clean_spaces: true,
            no_bos: false,
            known: true,
        };
        let starcoder: Vec<&'static str> = vec![r"\p{N}", GPT2];
        match pre {
            // llama.cpp's DEFAULT type (also used when the key is missing).
            "" | "default" => {
                p.regexes = vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", r"[0-9][0-9][0-9]"];
            }
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" | "jina-v5-nano" => {
                p.regexes = vec![LLAMA3];
                p.ignore_merges = true;
                p.add_bos = true;
            }
            "dbrx" | "smaug-bpe" => p.regexes = vec![LLAMA3],
            "jais-2" => {
                p.regexes = vec![
                    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1}",
                ]
            }
            "deepseek-llm" => {
                p.regexes = vec![
                    r"[\r\n]",
                    DEEPSEEK_LLM_LETTERS,
                    DEEPSEEK_LLM_PUNCT,
                    r"\s+$",
                    DEEPSEEK_CJK,
                    r"\p{N}+",
                ];
                p.clean_spaces = false;
            }
            "deepseek-coder" => {
                p.regexes = vec![
                    r"[\r\n]",
                    r"\s?\p{L}+",
                    r"\s?\p{P}+",
                    DEEPSEEK_CJK,
                    r"\p{N}",
                ];
                p.clean_spaces = false;
            }
            "deepseek-v3" | "hunyuan-dense" | "joyai-llm" | "hy_v4" => {
                p.regexes = vec![r"\p{N}{1,3}", r"[一-龥぀-ゟ゠-ヿ]+", DEEPSEEK3];
                p.clean_spaces = false;
            }
            "falcon" => {
                p.regexes = vec![r"[\p{P}\$\+<=>\^~\|`]+", GPT2, r"[0-9][0-9][0-9]"];
            }
            "starcoder" | "refact" | "codeshell" | "exaone" | "minerva-7b" | "mellum2" => {
                p.regexes = starcoder;
            }
            "command-r" | "smollm" => {
                p.regexes = starcoder;
                p.clean_spaces = false;
            }
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en"
            | "jina-v2-code" | "roberta-bpe" | "exaone4" | "mpt" | "olmo" | "jais" => {}
            "trillion" | "granite-docling" => p.clean_spaces = false,
            "stablelm2" | "megrez" => p.regexes = vec![QWEN2],
            "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "hunyuan" | "solar-open" => {
                p.regexes = vec![QWEN2];
                p.clean_spaces = false;
            }
            "qwen35" => {
                p.regexes = vec![QWEN35];
                p.clean_spaces = false;
            }
            "poro-chat" => {
                p.regexes = vec![r" ?[^(\s|.,!?…。，、।۔،)]+"];
                p.clean_spaces = false;
            }
            "bloom" | "gpt3-finnish" => p.regexes = vec![r" ?[^(\s|.,!?…。，、।۔،)]+"],
            "glm4" | "chatglm-bpe" => {
                p.regexes = vec![LLAMA3];
                p.no_bos = true;
            }
            "viking" => {
                p.regexes = vec![r" ?[^(\s|.,!?…。，、।۔،)]+", r"\p{N}"];
                p.clean_spaces = false;
            }
            "tekken" => {
                p.regexes = vec![TEKKEN];
                p.clean_spaces = false;
                p.ignore_merges = true;
                p.add_bos = true;
            }
            "chameleon" => {
                p.regexes = vec![
                    r"<sentinel:[0-9]+>",
                    r"(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                    r"([\t\n]|    |  )",
                    r"\p{N}",
                    r"[\p{P}!-/:-@\[-`{-~]",
                    GPT2,
                ];
                p.add_bos = true;
                p.clean_spaces = false;
            }
            "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => {
                p.regexes = vec![GPT4O];
                p.clean_spaces = false;
            }
            "seed-coder" => {
                p.regexes = vec![SEED_CODER];
                p.clean_spaces = false;
            }
            "bailingmoe" | "bailingmoe2" | "llada-moe" => {
                p.regexes = vec![BAILINGMOE];
                p.clean_spaces = false;
            }
            "grok-2" => {
                p.regexes = vec![QWEN2];
                p.clean_spaces = false;
            }
            "ufakzeka" => {
                p.regexes = vec![
                    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
                ];
                p.clean_spaces = false;
            }
            "exaone-moe" => p.regexes = vec![EXAONE_MOE],
            "spark2_5" => {
                p.regexes = vec![
                    r"\p{N}{1,3}",
                    r"[一-龥぀-ゟ゠-ヿ]+",
                    r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+"##,
                    r"\p{N}",
                ];
                p.clean_spaces = false;
            }
            "laguna" => {
                p.regexes = vec![r"[^\n]+|[\n]+", QWEN2];
                p.clean_spaces = false;
            }
            "minicpm5" => {
                p.regexes = vec![
                    r"\p{N}{1,3}",
                    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
                ];
                p.ignore_merges = true;
            }
            // Unknown pre types (llama.cpp refuses them; custom splitters llama.cpp hand-codes, such
            // as kimi-k2, afmoe or superbpe, land here too): GPT-2's expression.
            _ => p.known = false,
        }
        p
    }
}

/// Every `tokenizer.ggml.pre` value [`PreTokenizer::for_pre`] knows (for tests).
#[cfg(test)]
pub(crate) const KNOWN_PRE_TYPES: &[&str] = &[
    "default",
    "llama3",
    "llama-bpe",
    "dbrx",
    "jais-2",
    "deepseek-llm",
    "deepseek-coder",
    "deepseek-v3",
    "falcon",
    "starcoder",
    "refact",
    "command-r",
    "smollm",
    "gpt-2",
    "olmo",
    "mpt",
    "trillion",
    "stablelm2",
    "qwen2",
    "qwen35",
    "poro-chat",
    "bloom",
    "chatglm-bpe",
    "viking",
    "tekken",
    "chameleon",
    "gpt-4o",
    "seed-coder",
    "bailingmoe",
    "grok-2",
    "ufakzeka",
    "exaone-moe",
    "spark2_5",
    "laguna",
    "minicpm5",
];
