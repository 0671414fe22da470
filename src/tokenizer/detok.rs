//! Token ids back to text, as llama.cpp's `token_to_piece` and `detokenize` do it, and the
//! streaming form of the same that never splits a UTF-8 character.

use super::vocab::{attr, TokenizerKind, Vocab};
use super::Tokenizer;
use crate::error::{Error, Result};

/// GPT-2's byte-to-character table, reversed: the byte a byte-level character stands for.
/// Characters are U+0000..U+0143; `None` for characters that are not byte stand-ins.
fn byte_level_table() -> &'static [Option<u8>; 324] {
    static TABLE: std::sync::OnceLock<[Option<u8>; 324]> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [None; 324];
        let mut n = 0u32;
        for b in 0u32..256 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            let c = if printable {
                b
            } else {
                n += 1;
                255 + n
            };
            t[c as usize] = Some(b as u8);
        }
        t
    })
}

/// The byte a `<0xXX>` token stands for.
fn hex_byte(text: &str) -> Option<u8> {
    let b = text.as_bytes();
    if b.len() == 6 && b.starts_with(b"<0x") && b[5] == b'>' {
        u8::from_str_radix(&text[3..5], 16).ok()
    } else {
        None
    }
}

impl Vocab {
    fn check_id(&self, id: u32) -> Result<usize> {
        let i = id as usize;
        if i < self.tokens.len() {
            Ok(i)
        } else {
            Err(Error::Tokenizer(format!(
                "token id {id} is out of range (the vocabulary has {} tokens)",
                self.tokens.len()
            )))
        }
    }

    /// Appends the bytes of token `id` (llama.cpp's `token_to_piece`). `special`: render control
    /// and unknown tokens as their text (otherwise they produce nothing). `lstrip`: drop one
    /// leading space.
    pub fn push_piece(
        &self,
        id: u32,
        special: bool,
        lstrip: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let i = self.check_id(id)?;
        let a = self.attrs[i];
        let text = self.tokens[i].as_str();
        let start = out.len();
        if a & (attr::UNKNOWN | attr::CONTROL) != 0 && !special {
            return Ok(());
        }
        if a & (attr::UNKNOWN | attr::CONTROL | attr::USER_DEFINED) != 0 {
            out.extend_from_slice(text.as_bytes());
        } else if a & attr::NORMAL != 0 {
            match self.cfg.kind {
                TokenizerKind::SentencePiece => {
                    for (k, part) in text.split('\u{2581}').enumerate() {
                        if k > 0 {
                            out.push(b' ');
                        }
                        out.extend_from_slice(part.as_bytes());
                    }
                }
                TokenizerKind::ByteLevelBpe => {
                    let table = byte_level_table();
                    for c in text.chars() {
                        match table.get(c as usize).copied().flatten() {
                            Some(b) => out.push(b),
                            None => {
                                // llama.cpp writes this marker for a character that is not a
                                // byte stand-in.
                                out.extend_from_slice(b"[UNK_BYTE_0x");
                                let mut buf = [0u8; 4];
                                for b in c.encode_utf8(&mut buf).bytes() {
                                    out.extend_from_slice(format!("{b:02x}").as_bytes());
                                }
                                out.extend_from_slice(text.as_bytes());
                                out.push(b']');
                            }
                        }
                    }
                }
            }
        } else if a & attr::BYTE != 0 {
            // llama.cpp parses the two hex digits of `<0xXX>`.
            if let Some(b) = hex_byte(text) {
                out.push(b);
            }
        }
        if lstrip && out.len() > start && out[start] == b' ' {
            out.remove(start);
        }
        Ok(())
    }

    /// llama.cpp's `detokenize(tokens, remove_special, unparse_special)`, as bytes.
    pub fn detokenize(
        &self,
        ids: &[u32],
        remove_special: bool,
        unparse_special: bool,
    ) -> Result<Vec<u8>> {
        let mut ids = ids;
        let mut remove_space = self.cfg.add_space_prefix;
        if remove_special && self.cfg.add_bos && !ids.is_empty() && Some(ids[0]) == self.cfg.bos {
            remove_space = false;
            ids = &ids[1..];
        }
        if remove_special
            && self.cfg.add_eos
            && !ids.is_empty()
            && Some(ids[ids.len() - 1]) == self.cfg.eos
        {
            ids = &ids[..ids.len() - 1];
        }
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            self.push_piece(id, unparse_special, remove_space, &mut out)?;
            remove_space = false;
        }
        if self.cfg.clean_spaces {
            out = clean_spaces(&out);
        }
        Ok(out)
    }
}

/// llama.cpp's `clean_spaces` decode pass, three in-place sweeps over the bytes: a space before
/// `?`, `!`, `.` or `,` goes; " ' " becomes "'"; a space before `'s`, `'m`, `'re` or `'ve` goes.
pub(crate) fn clean_spaces(input: &[u8]) -> Vec<u8> {
    let mut t = input.to_vec();
    // Each sweep reads t[i] (and neighbours) and writes t[n] with n <= i.
    let mut n = t.len().min(1);
    for i in 1..t.len() {
        let x = t[i];
        if t[i - 1] == b' ' && matches!(x, b'?' | b'!' | b'.' | b',') {
            n -= 1;
        }
        t[n] = x;
        n += 1;
    }
    t.truncate(n);
    let len = t.len();
    n = len.min(1);
    let mut i = 1;
    while i < len {
        let x = t[i];
        if x == b'\'' && i + 1 < len && t[i - 1] == b' ' && t[i + 1] == b' ' {
            n -= 1;
            // The space after is consumed; marking it keeps it from leading another match.
            i += 1;
            t[i] = 0;
        }
        t[n] = x;
        n += 1;
        i += 1;
    }
    t.truncate(n);
    let len = t.len();
    n = len.min(1);
    for i in 1..len {
        let x = t[i];
        if t[i - 1] == b' ' && x == b'\'' && i + 1 < len {
            let x1 = t[i + 1];
            let drop = match x1 {
                b's' | b'm' => true,
                b't' | b'd' => false,
                _ => i + 2 < len && matches!((x1, t[i + 2]), (b'r', b'e') | (b'v', b'e')),
            };
            if drop {
                n -= 1;
            }
        }
        t[n] = x;
        n += 1;
    }
    t.truncate(n);
    t
}

/// The state of a [`super::StreamDecoder`] without the borrow of its tokenizer, for callers that
/// keep a decode going across calls (a step-by-step generation owned by the browser glue): bytes
/// waiting for the rest of their character, and (for vocabularies with `clean_spaces`) text
/// waiting for the context that decides its spaces.
pub struct StreamDecoderState {
    skip_special: bool,
    /// Whether a token was pushed yet.
    started: bool,
    /// Whether the next piece loses one leading space (llama.cpp's `remove_space`).
    remove_space: bool,
    /// Bytes of an unfinished UTF-8 character.
    partial: Vec<u8>,
    /// Decoded text not yet released because later text can still change it (clean_spaces).
    tail: String,
    /// An EOS held back: llama.cpp drops a final EOS when skipping special tokens.
    held_eos: Option<u32>,
}

impl StreamDecoderState {
    pub fn new(skip_special: bool) -> Self {
        Self {
            skip_special,
            started: false,
            remove_space: false,
            partial: Vec::new(),
            tail: String::new(),
            held_eos: None,
        }
    }

    /// See [`super::StreamDecoder::push`]; `t` must be the same tokenizer every call.
    pub fn push(&mut self, t: &Tokenizer, id: u32) -> Result<Option<String>> {
        let vocab = &t.vocab;
        let cfg = &vocab.cfg;
        let special = !self.skip_special;
        if !self.started {
            self.started = true;
            self.remove_space = cfg.add_space_prefix;
            if self.skip_special && cfg.add_bos && Some(id) == cfg.bos {
                // llama.cpp drops a leading BOS, and then keeps the next token's leading space.
                self.remove_space = false;
                return Ok(None);
            }
        }
        let mut bytes = Vec::new();
        if let Some(eos) = self.held_eos.take() {
            vocab.push_piece(eos, special, self.remove_space, &mut bytes)?;
            self.remove_space = false;
        }
        if self.skip_special && cfg.add_eos && Some(id) == cfg.eos {
            // Dropped if it turns out to be the last token.
            vocab.push_piece(id, special, false, &mut Vec::new())?;
            self.held_eos = Some(id);
        } else {
            vocab.push_piece(id, special, self.remove_space, &mut bytes)?;
            self.remove_space = false;
        }
        self.release(t, bytes, false)
    }

    fn release(&mut self, t: &Tokenizer, bytes: Vec<u8>, end: bool) -> Result<Option<String>> {
        let mut text = String::new();
        take_utf8(&mut self.partial, &bytes, &mut text);
        if end && !self.partial.is_empty() {
            text.push_str(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
        if t.vocab.cfg.clean_spaces {
            self.tail.push_str(&text);
            let cut = if end {
                self.tail.len()
            } else {
                stable_prefix_len(&self.tail)
            };
            let ready: String = self.tail.drain(..cut).collect();
            text = String::from_utf8_lossy(&clean_spaces(ready.as_bytes())).into_owned();
        }
        Ok(if text.is_empty() { None } else { Some(text) })
    }

    /// See [`super::StreamDecoder::finish`].
    pub fn finish(&mut self, t: &Tokenizer) -> Result<String> {
        self.held_eos = None;
        Ok(self.release(t, Vec::new(), true)?.unwrap_or_default())
    }
}

/// Appends to `out` the text of `bytes` that forms whole characters, keeping an unfinished
/// character's bytes in `partial` (invalid bytes become U+FFFD as `String::from_utf8_lossy`
/// would make them).
pub(crate) fn take_utf8(partial: &mut Vec<u8>, bytes: &[u8], out: &mut String) {
    partial.extend_from_slice(bytes);
    let mut start = 0;
    loop {
        match std::str::from_utf8(&partial[start..]) {
            Ok(s) => {
                out.push_str(s);
                partial.clear();
                return;
            }
            Err(e) => {
                let good = start + e.valid_up_to();
                // SAFETY-free: the prefix was just validated.
                out.push_str(std::str::from_utf8(&partial[start..good]).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start = good + n;
                    }
                    None => {
                        partial.drain(..good);
                        return;
                    }
                }
            }
        }
    }
}

/// With `clean_spaces`, how much of `tail` is final: cutting where the three bytes before the
/// cut hold no space cannot change any clean-up decision (every rule starts at a space and spans
/// at most four bytes).
pub(crate) fn stable_prefix_len(tail: &str) -> usize {
    let b = tail.as_bytes();
    let mut cut = b.len();
    while cut > 0 {
        if tail.is_char_boundary(cut) && !b[cut.saturating_sub(3)..cut].contains(&b' ') {
            return cut;
        }
        cut -= 1;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(s: &str) -> String {
        String::from_utf8(clean_spaces(s.as_bytes())).unwrap()
    }

    #[test]
    fn clean_spaces_rules() {
        let cases = [
            ("Hello , world !", "Hello, world!"),
            (" .", "."),
            ("a ' b", "a'b"),
            (" ' ' ' x", "'''x"),
            (
                "it 's he 'll we 're you 've I 'm",
                "it's he 'll we're you've I'm",
            ),
            (" 't 'd", " 't 'd"),
            ("x ' ", "x'"),
            ("", ""),
            (" ", " "),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }

    /// The streaming decoder releases text cut by `stable_prefix_len`; cleaning the parts
    /// separately must give the same text as cleaning the whole.
    #[test]
    fn clean_spaces_is_local_at_stable_cuts() {
        let alphabet = [b' ', b'\'', b's', b'.', b'r', b'e', b'v'];
        for len in 0..=7u32 {
            for mut k in 0..alphabet.len().pow(len) {
                let mut s = String::new();
                for _ in 0..len {
                    s.push(alphabet[k % alphabet.len()] as char);
                    k /= alphabet.len();
                }
                let whole = clean(&s);
                for c in 1..=s.len() {
                    if stable_prefix_len(&s[..c]) != c {
                        continue;
                    }
                    // `c` would be released; the rest of `s` may arrive later.
                    let parts = clean(&s[..c]) + &clean(&s[c..]);
                    assert_eq!(parts, whole, "{s:?} cut at {c}");
                }
            }
        }
    }

    #[test]
    fn utf8_assembly() {
        let mut partial = Vec::new();
        let mut out = String::new();
        let e = "é".as_bytes();
        take_utf8(&mut partial, &e[..1], &mut out);
        assert_eq!(out, "");
        take_utf8(&mut partial, &e[1..], &mut out);
        assert_eq!(out, "é");
        take_utf8(&mut partial, &[0xFF, b'a'], &mut out);
        assert_eq!(out, "é\u{FFFD}a");
    }
}
