//! A model's tokenizer on its own, without the engine: built from the metadata of a GGUF file
//! (a vocabulary-only file such as llama.cpp's `ggml-vocab-*.gguf`, or a whole model), for pages
//! that count or inspect tokens without loading weights, and for the browser test that runs
//! llama.cpp's tokenizer suite through the wasm build (tests/browser/tokenizer-suite.test.mjs).
//!
//! ```js
//! import init, { Tokenizer } from './pkg/simd/wick.js';
//! await init();
//! const tok = new Tokenizer(new Uint8Array(await (await fetch(url)).arrayBuffer()));
//! const ids = tok.encode('Hello world', true, true); // Uint32Array
//! tok.decode(ids);
//! tok.free();
//! ```

use wasm_bindgen::prelude::*;

use crate::gguf::reader::read_header;
use crate::tokenizer::Tokenizer;
use crate::Error;

#[wasm_bindgen(js_name = Tokenizer)]
pub struct WebTokenizer {
    inner: Tokenizer,
}

#[wasm_bindgen(js_class = Tokenizer)]
impl WebTokenizer {
    /// Builds the tokenizer from the bytes of a GGUF file: only its header (metadata and tensor
    /// list) is read, so the file up to the end of its tensor list is enough. Errors:
    /// `invalid_model` for bytes that are not a readable GGUF header, `tokenizer` for a
    /// vocabulary wick cannot encode (WordPiece, Unigram).
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<WebTokenizer, JsValue> {
        if !bytes.starts_with(b"GGUF") {
            return Err(
                Error::NotGguf("the file does not start with the GGUF magic".into()).into(),
            );
        }
        let header = read_header(bytes)?;
        Ok(Self {
            inner: Tokenizer::from_metadata(&header.metadata)?,
        })
    }

    /// The ids of `text`: `addSpecial` adds BOS / EOS as the model's metadata says;
    /// `parseSpecial` reads control-token text (`<|im_start|>`) as those tokens (user-defined
    /// tokens always are), as llama.cpp's `llama_tokenize`.
    pub fn encode(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, JsValue> {
        Ok(self.inner.encode_with(text, add_special, parse_special)?)
    }

    /// The text of `ids`, special tokens written as their text (llama.cpp's `detokenize` with
    /// `unparse_special`); bytes that are not UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, JsValue> {
        Ok(self.inner.decode(ids)?)
    }

    /// Tokens in the vocabulary.
    #[wasm_bindgen(getter, js_name = vocabSize)]
    pub fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
}
