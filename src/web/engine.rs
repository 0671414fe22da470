//! A loaded model and its one session, as the worker sees it.

use std::sync::Arc;

use serde::Deserialize;
use wasm_bindgen::prelude::*;

use super::{js_error, ModelBuffer};
use crate::chat::ChatMessage;
use crate::sampler::SamplingParams;
use crate::session::{GenerateOptions, Request, Session};
use crate::{Engine, Error, Gguf};

#[wasm_bindgen]
pub struct WebEngine {
    session: Session,
    request: Option<Request>,
}

/// The sampling fields of a JS request, named as in OpenAI's API. Missing fields take the
/// engine's defaults (llama.cpp's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestOptions {
    max_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    stop: Vec<String>,
    #[serde(default)]
    ignore_eos: bool,
}

impl RequestOptions {
    fn parse(json: &str) -> Result<GenerateOptions, Error> {
        let o: RequestOptions = serde_json::from_str(json)
            .map_err(|e| Error::InvalidParameter(format!("request options: {e}")))?;
        let d = GenerateOptions::default();
        let s = SamplingParams::default();
        Ok(GenerateOptions {
            max_tokens: o.max_tokens.unwrap_or(d.max_tokens),
            sampling: SamplingParams {
                temperature: o.temperature.unwrap_or(s.temperature),
                top_p: o.top_p.unwrap_or(s.top_p),
                top_k: o.top_k.unwrap_or(s.top_k),
                min_p: o.min_p.unwrap_or(s.min_p),
                repetition_penalty: o.repetition_penalty.unwrap_or(s.repetition_penalty),
                seed: o.seed,
                ..s
            },
            stop: o.stop,
            ignore_eos: o.ignore_eos,
        })
    }
}

#[wasm_bindgen]
impl WebEngine {
    /// Loads the model in `buffer` (consumed) with room for `context` tokens (0: the smaller of
    /// 4096 and the model's maximum).
    pub fn load(buffer: ModelBuffer, context: usize) -> Result<WebEngine, JsValue> {
        let gguf = Gguf::from_bytes(Arc::new(buffer.bytes))?;
        let engine = Engine::load(&gguf)?;
        let context = if context == 0 {
            engine.card.context_length.min(4096)
        } else {
            context
        };
        Ok(Self {
            session: Session::new(Arc::new(engine), context),
            request: None,
        })
    }

    /// The model card as JSON (the same as `wick inspect --json`).
    #[wasm_bindgen(js_name = cardJson)]
    pub fn card_json(&self) -> String {
        serde_json::to_string(&self.session.engine().card).unwrap_or_else(|_| "{}".into())
    }

    pub fn context(&self) -> usize {
        self.session.context()
    }

    /// Starts a chat request: `messages` is a JSON array of `{role, content}`. Returns
    /// `{prompt_tokens, reused_tokens}`; the prompt runs in the first `step()` calls.
    #[wasm_bindgen(js_name = beginChat)]
    pub fn begin_chat(&mut self, messages: &str, options: &str) -> Result<JsValue, JsValue> {
        let messages: Vec<ChatMessage> = serde_json::from_str(messages)
            .map_err(|e| Error::InvalidParameter(format!("messages: {e}")))?;
        if messages.is_empty() {
            return Err(Error::InvalidParameter("messages must not be empty".into()).into());
        }
        let prompt = self.session.engine().chat_prompt(&messages)?;
        self.begin(&prompt, options)
    }

    /// Starts a raw completion of `prompt` (BOS as the model says, special tokens parsed).
    #[wasm_bindgen(js_name = beginCompletion)]
    pub fn begin_completion(&mut self, prompt: &str, options: &str) -> Result<JsValue, JsValue> {
        let ids = self.session.engine().encode(prompt)?;
        self.begin(&ids, options)
    }

    fn begin(&mut self, prompt: &[u32], options: &str) -> Result<JsValue, JsValue> {
        let opts = RequestOptions::parse(options)?;
        self.request = None;
        let req = self.session.begin(prompt, &opts)?;
        let g = req.generation();
        let info = serde_json::json!({
            "prompt_tokens": g.prompt_tokens,
            "reused_tokens": g.reused_tokens,
        });
        self.request = Some(req);
        Ok(js_sys::JSON::parse(&info.to_string())?)
    }

    /// The next step of the running request: a chunk of prefill `{prompt_left}` (prompt tokens
    /// still to run), or a token `{id, text, margin, finish}` where `finish` is set ("stop" /
    /// "length" / "aborted") on the last step.
    pub fn step(&mut self) -> Result<JsValue, JsValue> {
        let req = self
            .request
            .as_mut()
            .ok_or_else(|| js_error("invalid_parameter", "no request is running"))?;
        let step = self.session.step(req);
        if !matches!(&step, Ok(s) if s.finish.is_none()) {
            self.request = None;
        }
        Ok(serde_wasm_bindgen::to_value(&step?)?)
    }

    /// Ends the running request; returns its last step (with any text held back).
    pub fn abort(&mut self) -> Result<JsValue, JsValue> {
        match self.request.take() {
            Some(mut req) => Ok(serde_wasm_bindgen::to_value(&self.session.abort(&mut req))?),
            None => Ok(JsValue::NULL),
        }
    }

    /// Forgets the conversation in the KV cache (the next request prefills from scratch).
    pub fn reset(&mut self) {
        self.request = None;
        self.session.reset();
    }
}
