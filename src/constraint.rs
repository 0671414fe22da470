//! Structured output: constrained decoding through llguidance.
//!
//! A [`Grammar`] (any JSON object, a JSON schema, a Lark grammar or a regex) is compiled by
//! llguidance against the model's vocabulary; at each step the request's [`Constraint`] gives
//! the set of tokens that keep the output a prefix of the language, and the others get a logit
//! of minus infinity before the sampler sees them. When the grammar is complete the
//! end-of-generation tokens become allowed, and once nothing but them is, generation ends.
//!
//! The vocabulary side ([`ConstraintCompiler`]: llguidance's token trie and its slicer over the
//! token bytes) costs tens of milliseconds on a 256k vocabulary, so the engine builds it once, on
//! the first constrained request, and every request after compiles only its grammar.

use std::sync::Arc;

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::{ApproximateTokEnv, TokRxInfo, TokTrie, TokenizerEnv};
use llguidance::{Matcher, ParserFactory};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tokenizer::Tokenizer;

/// What the output must match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Grammar {
    /// Any JSON object (OpenAI's `response_format: {type: "json_object"}`).
    JsonObject,
    /// A JSON value valid against a JSON schema (OpenAI's `json_schema`).
    JsonSchema {
        /// The schema (draft 2020-12 as llguidance supports it).
        schema: serde_json::Value,
    },
    /// Text in the language of a grammar.
    Lark {
        /// The grammar in llguidance's Lark dialect (terminals may be regexes; `%json` embeds a
        /// schema).
        grammar: String,
    },
    /// Text matching a regular expression, whole.
    Regex {
        /// The expression, in Rust `regex` syntax.
        pattern: String,
    },
}

impl Grammar {
    fn to_llguidance(&self) -> TopLevelGrammar {
        match self {
            Grammar::JsonObject => TopLevelGrammar::from_json_schema(json_layout(
                serde_json::json!({"type": "object"}),
            )),
            Grammar::JsonSchema { schema } => {
                TopLevelGrammar::from_json_schema(json_layout(schema.clone()))
            }
            Grammar::Lark { grammar } => TopLevelGrammar::from_lark(grammar.clone()),
            Grammar::Regex { pattern } => TopLevelGrammar::from_regex(pattern),
        }
    }
}

/// JSON laid out as `json.dumps` writes it (`", "`, `": "`, no other whitespace), unless the
/// schema says otherwise in llguidance's `x-guidance` key. Free whitespace lets a small model
/// wander into newlines and indentation until it runs out of tokens; the one layout most of its
/// training text uses keeps it on track and costs nothing in validity.
pub(crate) fn json_layout(mut schema: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = schema.as_object_mut() {
        obj.entry("x-guidance").or_insert_with(|| {
            serde_json::json!({
                "whitespace_flexible": false,
                "item_separator": ", ",
                "key_separator": ": ",
            })
        });
    }
    schema
}

/// The vocabulary compiled for llguidance; one per engine.
pub struct ConstraintCompiler {
    factory: ParserFactory,
    /// Every end-of-generation token: allowed together once the grammar is complete.
    end_of_generation: Vec<u32>,
}

impl ConstraintCompiler {
    /// Builds the token trie from the tokenizer's token bytes. Control tokens are marked as
    /// llguidance expects (a leading 0xFF byte), so grammar text can never produce them.
    pub fn new(tokenizer: &Tokenizer, end_of_generation: &[u32]) -> Result<Self> {
        let n = tokenizer.vocab_size();
        let words: Vec<Vec<u8>> = (0..n as u32)
            .map(|id| match tokenizer.token_bytes(id) {
                Some(bytes) => bytes,
                None => {
                    let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
                    w.extend_from_slice(tokenizer.token_text(id).unwrap_or("").as_bytes());
                    w
                }
            })
            .collect();
        let eos = end_of_generation
            .first()
            .copied()
            .or(tokenizer.eos_id())
            .ok_or_else(|| {
                Error::InvalidParameter(
                    "structured output needs an end-of-generation token; this model has none"
                        .into(),
                )
            })?;
        let trie = TokTrie::from(&TokRxInfo::new(n as u32, eos), &words);
        let env: Arc<dyn TokenizerEnv + Sync> = Arc::new(ApproximateTokEnv::new(trie));
        let mut factory = ParserFactory::new_simple(&env).map_err(internal)?;
        factory.quiet();
        Ok(Self {
            factory,
            end_of_generation: end_of_generation.to_vec(),
        })
    }

    /// Compiles `grammar` for one request. A schema or grammar llguidance cannot compile is an
    /// `invalid_parameter` error naming the problem.
    pub fn compile(&self, grammar: &Grammar) -> Result<Constraint> {
        let parser = self
            .factory
            .create_parser(grammar.to_llguidance())
            .map_err(|e| Error::InvalidParameter(format!("structured output: {e}")))?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(Error::InvalidParameter(format!("structured output: {e}")));
        }
        Ok(Constraint {
            matcher,
            end_of_generation: self.end_of_generation.clone(),
        })
    }
}

/// One request's grammar state.
pub struct Constraint {
    matcher: Matcher,
    end_of_generation: Vec<u32>,
}

impl Constraint {
    /// Sets the logit of every token the grammar does not allow next to minus infinity.
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<()> {
        let allowed = self.matcher.compute_mask().map_err(internal)?;
        let complete = self
            .end_of_generation
            .first()
            .is_some_and(|&eos| allowed.is_allowed(eos));
        for (id, l) in logits.iter_mut().enumerate() {
            let id = id as u32;
            let ok = allowed.is_allowed(id) || (complete && self.end_of_generation.contains(&id));
            if !ok {
                *l = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }

    /// Advances the grammar past the sampled token.
    pub fn consume(&mut self, id: u32) -> Result<()> {
        self.matcher.consume_token(id).map_err(internal)
    }

    /// Whether the grammar allows nothing more than ending (the output is complete).
    pub fn is_finished(&self) -> bool {
        self.matcher.is_stopped()
    }
}

/// llguidance failing after a grammar compiled is wick's bug, not the caller's: reported as such.
fn internal(e: impl std::fmt::Display) -> Error {
    Error::InvalidParameter(format!("structured output (internal): {e}"))
}
