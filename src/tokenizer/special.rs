//! Finding special tokens written as text, the way llama.cpp's `tokenizer_st_partition` does.
//!
//! llama.cpp takes the special tokens (control, user-defined and unknown tokens) longest text
//! first; for each one it cuts every leftmost, non-overlapping occurrence out of the text that is
//! still unclaimed. The remaining text fragments are tokenized normally. This differs from the
//! leftmost-longest matching of `tokenizers`' added vocabulary when a shorter special token
//! occurs before an overlapping longer one, so wick does the partition itself.
//!
//! Rather than scanning the text once per special token (Gemma has over 6,000), all occurrences
//! are found in one pass with a byte trie, then claimed in llama.cpp's priority order.

use std::ops::Range;

use super::vocab::attr;

/// One piece of partitioned input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

#[derive(Default, Clone)]
struct Node {
    /// Children by byte, sorted by byte.
    next: Vec<(u8, u32)>,
    /// The special token ending here: its priority (index in longest-first order).
    rank: Option<u32>,
}

/// The special tokens of a vocabulary, ready to find in text.
pub(crate) struct SpecialMatcher {
    nodes: Vec<Node>,
    /// Token id and attributes by priority (longest text first, then lowest id).
    by_rank: Vec<(u32, u16)>,
    first_byte: [bool; 256],
}

impl SpecialMatcher {
    pub fn new(tokens: &[String], attrs: &[u16]) -> Self {
        let mut specials: Vec<u32> = (0..tokens.len() as u32)
            .filter(|&i| {
                attrs[i as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0
            })
            .collect();
        specials.sort_by(|&a, &b| {
            tokens[b as usize]
                .len()
                .cmp(&tokens[a as usize].len())
                .then(a.cmp(&b))
        });
        let mut nodes = vec![Node::default()];
        let mut first_byte = [false; 256];
        let mut by_rank = Vec::with_capacity(specials.len());
        for (rank, &id) in specials.iter().enumerate() {
            let text = tokens[id as usize].as_bytes();
            by_rank.push((id, attrs[id as usize]));
            if text.is_empty() {
                continue;
            }
            first_byte[text[0] as usize] = true;
            let mut n = 0usize;
            for &b in text {
                n = match nodes[n].next.binary_search_by_key(&b, |e| e.0) {
                    Ok(k) => nodes[n].next[k].1 as usize,
                    Err(k) => {
                        let new = nodes.len() as u32;
                        nodes[n].next.insert(k, (b, new));
                        nodes.push(Node::default());
                        new as usize
                    }
                };
            }
            nodes[n].rank.get_or_insert(rank as u32);
        }
        Self {
            nodes,
            by_rank,
            first_byte,
        }
    }

    /// Splits `text` into special tokens and the text between them. With `parse_special` false
    /// only user-defined tokens are recognised (llama.cpp's `parse_special = false`). A control
    /// or unknown token that overlaps one of the `literal` byte ranges (sorted, disjoint) is not
    /// recognised either: those bytes are read as `parse_special = false` reads them, and the
    /// rest of the text is partitioned exactly as without them.
    pub fn partition<'a>(
        &self,
        text: &'a str,
        parse_special: bool,
        literal: &[Range<usize>],
    ) -> Vec<Fragment<'a>> {
        let bytes = text.as_bytes();
        // (rank, start, len) of every occurrence of every eligible special token.
        let mut found: Vec<(u32, usize, usize)> = Vec::new();
        self.for_each_occurrence(bytes, |rank, start, len| {
            let control = self.by_rank[rank as usize].1 & (attr::CONTROL | attr::UNKNOWN) != 0;
            if !control || (parse_special && !overlaps(literal, start..start + len)) {
                found.push((rank, start, len));
            }
        });
        if found.is_empty() {
            return if text.is_empty() {
                vec![]
            } else {
                vec![Fragment::Text(text)]
            };
        }
        found.sort_unstable();
        let mut claimed = vec![false; bytes.len()];
        let mut taken: Vec<(usize, usize, u32)> = Vec::new();
        for (rank, start, len) in found {
            if claimed[start..start + len].iter().any(|&c| c) {
                continue;
            }
            claimed[start..start + len]
                .iter_mut()
                .for_each(|c| *c = true);
            taken.push((start, len, self.by_rank[rank as usize].0));
        }
        taken.sort_unstable();
        let mut out = Vec::with_capacity(2 * taken.len() + 1);
        let mut pos = 0;
        for (start, len, id) in taken {
            if start > pos {
                out.push(Fragment::Text(&text[pos..start]));
            }
            out.push(Fragment::Token(id));
            pos = start + len;
        }
        if pos < text.len() {
            out.push(Fragment::Text(&text[pos..]));
        }
        out
    }

    /// The byte ranges of `text` covered by control or unknown tokens written in it (every
    /// occurrence, overlapping ones merged): the text that would become control tokens if it were
    /// parsed with `parse_special`.
    pub fn control_spans(&self, text: &str) -> Vec<Range<usize>> {
        let mut spans: Vec<Range<usize>> = Vec::new();
        self.for_each_occurrence(text.as_bytes(), |rank, start, len| {
            if self.by_rank[rank as usize].1 & (attr::CONTROL | attr::UNKNOWN) == 0 {
                return;
            }
            // Occurrences arrive by start, so only the last span can overlap this one.
            match spans.last_mut() {
                Some(last) if start < last.end => last.end = last.end.max(start + len),
                _ => spans.push(start..start + len),
            }
        });
        spans
    }

    /// Calls `f(rank, start, len)` for every occurrence of every special token in `bytes`, by
    /// start, then by length.
    fn for_each_occurrence(&self, bytes: &[u8], mut f: impl FnMut(u32, usize, usize)) {
        for start in 0..bytes.len() {
            if !self.first_byte[bytes[start] as usize] {
                continue;
            }
            let mut n = 0usize;
            for (k, &b) in bytes[start..].iter().enumerate() {
                match self.nodes[n].next.binary_search_by_key(&b, |e| e.0) {
                    Ok(i) => n = self.nodes[n].next[i].1 as usize,
                    Err(_) => break,
                }
                if let Some(rank) = self.nodes[n].rank {
                    f(rank, start, k + 1);
                }
            }
        }
    }
}

/// Whether `r` overlaps any of `ranges` (sorted, disjoint).
fn overlaps(ranges: &[Range<usize>], r: Range<usize>) -> bool {
    let after = ranges.partition_point(|x| x.end <= r.start);
    ranges.get(after).is_some_and(|x| x.start < r.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(specs: &[(&str, u16)]) -> SpecialMatcher {
        let tokens: Vec<String> = specs.iter().map(|s| s.0.to_string()).collect();
        let attrs: Vec<u16> = specs.iter().map(|s| s.1).collect();
        SpecialMatcher::new(&tokens, &attrs)
    }

    #[test]
    fn longest_token_claims_first() {
        // "ab" occurs first, but the longer "bcd" is claimed first, as llama.cpp does.
        let m = matcher(&[
            ("ab", attr::CONTROL),
            ("bcd", attr::CONTROL),
            ("x", attr::NORMAL),
        ]);
        assert_eq!(
            m.partition("abcd", true, &[]),
            vec![Fragment::Text("a"), Fragment::Token(1)]
        );
    }

    #[test]
    fn control_tokens_need_parse_special() {
        let m = matcher(&[("<c>", attr::CONTROL), ("<u>", attr::USER_DEFINED)]);
        assert_eq!(
            m.partition("a<c>b<u>", false, &[]),
            vec![Fragment::Text("a<c>b"), Fragment::Token(1)]
        );
        assert_eq!(
            m.partition("a<c>b<u>", true, &[]),
            vec![
                Fragment::Text("a"),
                Fragment::Token(0),
                Fragment::Text("b"),
                Fragment::Token(1)
            ]
        );
    }

    #[test]
    fn literal_ranges_hide_control_tokens_only() {
        let m = matcher(&[("<c>", attr::CONTROL), ("<u>", attr::USER_DEFINED)]);
        let text = "<c>a<c><u>b<c>";
        // The second `<c>` (bytes 4..7) and the `<u>` lie in the literal range: the control token
        // there is text, the user-defined one is still recognised, as without `parse_special`.
        assert_eq!(
            m.partition(text, true, std::slice::from_ref(&(4..10))),
            vec![
                Fragment::Token(0),
                Fragment::Text("a<c>"),
                Fragment::Token(1),
                Fragment::Text("b"),
                Fragment::Token(0)
            ]
        );
        // A control token that only touches the range, or straddles it, is judged by overlap.
        assert_eq!(
            m.partition(text, true, &[3..4, 12..13]),
            vec![
                Fragment::Token(0),
                Fragment::Text("a"),
                Fragment::Token(0),
                Fragment::Token(1),
                Fragment::Text("b<c>")
            ]
        );
    }

    #[test]
    fn control_spans_merge_overlaps() {
        let m = matcher(&[
            ("<c>", attr::CONTROL),
            ("c><", attr::UNKNOWN),
            ("<u>", attr::USER_DEFINED),
        ]);
        assert_eq!(m.control_spans("x<c>u<c>y"), vec![1..4, 5..8]);
        // `<c>` and `c><` overlap at "<c><": one span.
        assert_eq!(m.control_spans("<c><"), vec![0..4]);
        assert!(m.control_spans("plain <u>").is_empty());
    }

    #[test]
    fn repeated_and_adjacent() {
        let m = matcher(&[("  ", attr::USER_DEFINED), ("   ", attr::USER_DEFINED)]);
        // Five spaces: the three-space token first, then two.
        assert_eq!(
            m.partition("     ", true, &[]),
            vec![Fragment::Token(1), Fragment::Token(0)]
        );
        assert_eq!(m.partition("", true, &[]), vec![]);
        assert_eq!(m.partition("a b", true, &[]), vec![Fragment::Text("a b")]);
    }
}
