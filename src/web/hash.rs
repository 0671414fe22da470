//! SHA-256 over a download as it streams into storage.

use sha2::Digest;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
#[derive(Default)]
pub struct Sha256(sha2::Sha256);

#[wasm_bindgen]
impl Sha256 {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha256 {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The hex digest of everything passed to `update`; the hasher starts over afterwards.
    pub fn digest(&mut self) -> String {
        let sum = self.0.finalize_reset();
        sum.iter().map(|b| format!("{b:02x}")).collect()
    }
}
