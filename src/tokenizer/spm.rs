//! SentencePiece (`tokenizer.ggml.model = llama`) encoding, as llama.cpp's SPM tokenizer does it.
//!
//! The text (spaces already escaped to `▁`) starts as one symbol per character. Repeatedly, the
//! adjacent pair whose concatenation is the vocabulary token with the highest score is merged;
//! among equal scores the leftmost pair wins. Symbols that end up not being tokens (characters
//! missing from the vocabulary) become `<0xXX>` byte tokens.
//!
//! `tokenizers`' BPE with a merge list derived from the vocabulary ([`super::build`]) gives the
//! same result except where scores tie: its merge ranks are unique, so it cannot break ties by
//! position. Llama-2-style vocabularies give all their whitespace-run tokens ("▁▁", "▁▁▁▁"...)
//! the same score, and indented code then tokenizes differently; hence this implementation.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::vocab::Vocab;

/// Everything SentencePiece encoding needs, built once per vocabulary.
pub(crate) struct Spm {
    scores: Vec<f32>,
    /// The token for each byte value (`<0xXX>`, else the one-byte text), if any.
    bytes: [Option<u32>; 256],
    unk: Option<u32>,
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Higher score first, then the leftmost pair (as llama.cpp's comparator; -0.0 == 0.0).
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl Spm {
    pub fn new(vocab: &Vocab, scores: Vec<f32>) -> Self {
        let mut bytes = [None; 256];
        for (b, slot) in bytes.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            *slot = vocab.id(&hex).or_else(|| {
                // llama.cpp falls back to the byte as a one-byte token text.
                let c = [b as u8];
                std::str::from_utf8(&c).ok().and_then(|s| vocab.id(s))
            });
        }
        Self {
            scores,
            bytes,
            unk: vocab.cfg.unk,
        }
    }

    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// Encodes `text`, whose spaces are already escaped (`▁`), appending ids to `out`.
    pub fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, c)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: if i == 0 { NONE } else { i - 1 },
                next: i + 1,
            });
        }
        if let Some(last) = symbols.last_mut() {
            last.next = NONE;
        }
        let mut heap = BinaryHeap::with_capacity(symbols.len());
        let try_add =
            |heap: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize, right: usize| {
                if left == NONE || right == NONE {
                    return;
                }
                let (l, r) = (symbols[left], symbols[right]);
                let piece = &text[l.start..l.start + l.len + r.len];
                if let Some(id) = vocab.id(piece) {
                    heap.push(Bigram {
                        score: self.scores[id as usize],
                        left,
                        right,
                        size: piece.len(),
                    });
                }
            };
        for i in 1..symbols.len() {
            try_add(&mut heap, &symbols, i - 1, i);
        }
        while let Some(b) = heap.pop() {
            let (l, r) = (symbols[b.left], symbols[b.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
                continue;
            }
            symbols[b.left].len += r.len;
            symbols[b.right].len = 0;
            symbols[b.left].next = r.next;
            if r.next != NONE {
                symbols[r.next].prev = b.left;
            }
            let prev = symbols[b.left].prev;
            let next = symbols[b.left].next;
            try_add(&mut heap, &symbols, prev, b.left);
            try_add(&mut heap, &symbols, b.left, next);
        }
        let mut i = 0;
        while i != NONE {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            match vocab.id(piece) {
                Some(id) => out.push(id),
                None => {
                    for &byte in piece.as_bytes() {
                        match self.bytes[byte as usize] {
                            Some(id) => out.push(id),
                            // llama.cpp aborts here (no byte token); wick uses the unknown token.
                            None => out.extend(self.unk),
                        }
                    }
                }
            }
            i = s.next;
        }
    }
}
