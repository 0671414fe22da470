//! Model forward passes (being written).
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "gemma3"];
