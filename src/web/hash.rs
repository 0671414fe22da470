//! The hashes of a model as it streams into storage: SHA-256, which a download is checked against
//! (WebCrypto has no incremental digest), and XXH3-64, the checksum every later read is checked
//! against (www/storage.js). One `update` feeds both, so the bytes cross into wasm once.

use sha2::Digest;
use wasm_bindgen::prelude::*;
use xxhash_rust::xxh3::Xxh3Default;

#[wasm_bindgen]
#[derive(Default)]
pub struct Hasher {
    sha256: sha2::Sha256,
    xxh3: Xxh3Default,
}

#[wasm_bindgen]
impl Hasher {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Hasher {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.xxh3.update(bytes);
    }

    /// The hex SHA-256 of everything passed to `update`.
    pub fn sha256(&self) -> String {
        hex(&self.sha256.clone().finalize())
    }

    /// The XXH3-64 of everything passed to `update`, as 16 hex digits.
    pub fn xxh3(&self) -> String {
        xxh3_hex(self.xxh3.digest())
    }
}

/// An XXH3-64 as storage.js records it: 16 hex digits.
pub(super) fn xxh3_hex(sum: u64) -> String {
    format!("{sum:016x}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
