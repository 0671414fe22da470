//! Byte-level BPE over token ids: the stored merges applied to each pre-tokenized word, lowest
//! rank first, leftmost first among equal ranks.
//!
//! This is the model half of `tokenizers`' BPE (`tokenizers::models::bpe`, with no unknown token,
//! dropout, subword prefix or suffix), done by wick rather than by `tokenizers`: building that
//! model from a GGUF file was most of a model's tokenizer build time (Llama 3: 128,256 tokens and
//! 280,147 merges, about 400 ms natively and more in the browser). It wants the merges as pairs
//! of owned strings and the vocabulary as two maps of owned strings, then joins every merge again
//! with `format!` to look it up; half a million small allocations and hashes of strings before
//! the first token. Here each stored merge is split in place, its parts and their concatenation
//! are looked up in the vocabulary's index ([`super::vocab::TokenIndex`]), and the table maps a
//! pair of ids to the merge's rank and result. Encoding is the same algorithm as `tokenizers`'
//! `Word::merge_all`, so the ids are the same (llama.cpp's vocabulary suite checks it).
//! `tokenizers`' pre-tokenizers (the regex splits and GPT-2's byte mapping) still run before it,
//! and [`super::Tokenizer::hf`] still builds the `tokenizers` equivalent on request.

use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::vocab::Vocab;

/// Hashes a pair of ids packed in a u64 with one multiply (Fibonacci hashing, high bits folded
/// down): merge lookups are the whole of building the table and the inner loop of encoding, where
/// std's default SipHash would cost several times more.
#[derive(Default)]
struct PairHasher(u64);

impl Hasher for PairHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the keys are u64); this keeps any other use correct.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }

    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 32)
    }
}

fn pair(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

/// The merge table of a byte-level BPE vocabulary.
pub(crate) struct Bpe {
    /// (left id, right id) packed by [`pair`] -> (rank, id of the merged token).
    merges: HashMap<u64, (u32, u32), BuildHasherDefault<PairHasher>>,
    /// A word that is a token is that token, whatever the merges would make of it (the Llama 3
    /// pre-tokenizer; `tokenizers`' `ignore_merges`).
    ignore_merges: bool,
}

/// One symbol of a word being merged: a token id and its neighbours (indices into the word's
/// symbols; `NONE` at the ends). A symbol merged into its left neighbour is `dead`.
#[derive(Clone, Copy)]
struct Symbol {
    id: u32,
    prev: u32,
    next: u32,
    dead: bool,
}

const NONE: u32 = u32::MAX;

impl Bpe {
    /// The table of `merges` (text pairs, highest priority first; `capacity`: how many there are,
    /// roughly). As before with `tokenizers`: a merge whose parts or result are not tokens is
    /// dropped (llama.cpp would emit byte pieces for it), and of duplicate pairs the first counts.
    pub fn new<'a>(
        vocab: &Vocab,
        merges: impl Iterator<Item = (&'a str, &'a str)>,
        capacity: usize,
        ignore_merges: bool,
    ) -> Self {
        let mut table = HashMap::with_capacity_and_hasher(capacity, Default::default());
        let mut joined = String::new();
        for (a, b) in merges {
            let (Some(left), Some(right)) = (vocab.id(a), vocab.id(b)) else {
                continue;
            };
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            let Some(merged) = vocab.id(&joined) else {
                continue;
            };
            let rank = table.len() as u32;
            if let Entry::Vacant(e) = table.entry(pair(left, right)) {
                e.insert((rank, merged));
            }
        }
        Self {
            merges: table,
            ignore_merges,
        }
    }

    /// The merges as (left id, right id), in rank order.
    pub fn merges(&self) -> Vec<(u32, u32)> {
        let mut out = vec![(0, 0); self.merges.len()];
        for (&k, &(rank, _)) in &self.merges {
            out[rank as usize] = ((k >> 32) as u32, k as u32);
        }
        out
    }

    fn get(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        self.merges.get(&pair(left, right)).copied()
    }

    /// Appends the ids of `word`, one pre-tokenized piece (in GPT-2's byte characters).
    pub fn encode_word(&self, vocab: &Vocab, word: &str, out: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        if self.ignore_merges {
            if let Some(id) = vocab.id(word) {
                out.push(id);
                return;
            }
        }
        // One symbol per character; a character that is not a token is dropped, as `tokenizers`
        // drops it when the model has no unknown token.
        let mut symbols: Vec<Symbol> = Vec::with_capacity(word.len());
        for (i, c) in word.char_indices() {
            if let Some(id) = vocab.id(&word[i..i + c.len_utf8()]) {
                let n = symbols.len() as u32;
                symbols.push(Symbol {
                    id,
                    prev: n.wrapping_sub(1),
                    next: n + 1,
                    dead: false,
                });
            }
        }
        let Some(last) = symbols.last_mut() else {
            return;
        };
        last.next = NONE;
        // Candidate merges as (rank, position of the left symbol, merged id), the lowest rank
        // first and, among equal ranks, the leftmost. Entries go stale when a neighbour merges
        // first; they are checked when they come out.
        let mut queue: BinaryHeap<Reverse<(u32, u32, u32)>> = symbols
            .windows(2)
            .enumerate()
            .filter_map(|(i, w)| {
                let (rank, merged) = self.get(w[0].id, w[1].id)?;
                Some(Reverse((rank, i as u32, merged)))
            })
            .collect();
        while let Some(Reverse((_, pos, merged))) = queue.pop() {
            let left = symbols[pos as usize];
            if left.dead || left.next == NONE {
                continue;
            }
            let right = symbols[left.next as usize];
            if self.get(left.id, right.id).map(|m| m.1) != Some(merged) {
                continue;
            }
            symbols[left.next as usize].dead = true;
            symbols[pos as usize].id = merged;
            symbols[pos as usize].next = right.next;
            if right.next != NONE {
                symbols[right.next as usize].prev = pos;
            }
            if left.prev != NONE {
                let prev = symbols[left.prev as usize].id;
                if let Some((rank, m)) = self.get(prev, merged) {
                    queue.push(Reverse((rank, left.prev, m)));
                }
            }
            if right.next != NONE {
                let next = symbols[right.next as usize].id;
                if let Some((rank, m)) = self.get(merged, next) {
                    queue.push(Reverse((rank, pos, m)));
                }
            }
        }
        out.extend(symbols.iter().filter(|s| !s.dead).map(|s| s.id));
    }
}
