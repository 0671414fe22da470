//! A loaded model and its one session, as the worker sees it.
//!
//! The session runs on the CPU after `load`; `useGpu()` moves it to WebGPU (the model is
//! uploaded once) and `useCpu()` back. GPU steps must be awaited (`stepAsync`), since reading
//! GPU results is asynchronous in a browser; CPU steps can be either.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{js_error, ModelBuffer};
use crate::constraint::Grammar;
use crate::sampler::SamplingParams;
use crate::session::{FinishReason, GenerateOptions, Request, Session, Step, TokenLogprob};
use crate::tokenizer::Tokenizer;
use crate::tools::{AssistantMessage, ChatDelta, ChatParser, ChatRequest, ToolChoice};
use crate::{Engine, Error, Gguf};

#[wasm_bindgen]
pub struct WebEngine {
    /// Shared with a `stepAsync` in flight; the worker never overlaps calls, and one that did
    /// would get a `busy` error rather than a second borrow.
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    session: Session,
    request: Option<Request>,
    /// Reads the running chat request's answer into content, reasoning and tool calls (none
    /// for a completion).
    parser: Option<ChatParser>,
    /// The adapter in use when on the GPU.
    gpu: Option<crate::gpu::GpuInfo>,
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
    frequency_penalty: Option<f32>,
    presence_penalty: Option<f32>,
    seed: Option<u64>,
    #[serde(default)]
    stop: Vec<String>,
    #[serde(default)]
    ignore_eos: bool,
    /// Chat only: read special-token text in the messages as control tokens (default: as text,
    /// so a message cannot forge a turn). Raw completion always parses them.
    #[serde(default)]
    parse_special_tokens: bool,
    /// Structured output (www/wick.js maps OpenAI's `response_format` and wick's `grammar`
    /// onto it).
    #[serde(default)]
    grammar: Option<Grammar>,
    /// Each sampled token's log-probability and the `logprobs` most likely tokens at its
    /// position (0 to 20); www/wick.js maps OpenAI's `logprobs`/`top_logprobs` onto it.
    logprobs: Option<usize>,
    /// Chat only: OpenAI tool definitions.
    #[serde(default)]
    tools: Vec<serde_json::Value>,
    /// Chat only: OpenAI's `tool_choice` (default `auto`).
    #[serde(default)]
    tool_choice: ToolChoice,
}

impl RequestOptions {
    fn from_json(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json)
            .map_err(|e| Error::InvalidParameter(format!("request options: {e}")))
    }

    fn generate_options(self) -> GenerateOptions {
        let o = self;
        let d = GenerateOptions::default();
        let s = SamplingParams::default();
        GenerateOptions {
            max_tokens: o.max_tokens.unwrap_or(d.max_tokens),
            sampling: SamplingParams {
                temperature: o.temperature.unwrap_or(s.temperature),
                top_p: o.top_p.unwrap_or(s.top_p),
                top_k: o.top_k.unwrap_or(s.top_k),
                min_p: o.min_p.unwrap_or(s.min_p),
                repetition_penalty: o.repetition_penalty.unwrap_or(s.repetition_penalty),
                frequency_penalty: o.frequency_penalty.unwrap_or(s.frequency_penalty),
                presence_penalty: o.presence_penalty.unwrap_or(s.presence_penalty),
                seed: o.seed,
                ..s
            },
            stop: o.stop,
            ignore_eos: o.ignore_eos,
            grammar: o.grammar,
            logprobs: o.logprobs,
            // Control tokens stay out of a completion's text; a chat request's plan sets this
            // when its format's markers are control tokens (`ChatPlan::options`).
            special_text: false,
        }
    }
}

/// A step as the worker receives it: [`Step`] with its log-probability in OpenAI's chat shape
/// (token texts instead of ids).
#[derive(Serialize)]
struct WebStep {
    id: Option<u32>,
    text: String,
    finish: Option<FinishReason>,
    margin: Option<f32>,
    prompt_left: Option<usize>,
    logprob: Option<LogprobEntry>,
    /// Chat: what this step adds to the answer (content, reasoning, completed tool calls), when
    /// it adds anything.
    delta: Option<ChatDelta>,
    /// Chat: the whole answer, on the last step.
    message: Option<AssistantMessage>,
}

/// One entry of OpenAI's `logprobs.content` (and, without `top_logprobs`, of its
/// `top_logprobs`): the token's own text, its log-probability, and its bytes.
#[derive(Serialize)]
struct LogprobEntry {
    token: String,
    logprob: f32,
    bytes: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<Vec<LogprobEntry>>,
}

impl LogprobEntry {
    /// `token` is the text the token decodes to on its own, as `wick run --top-logprobs` shows
    /// it; `bytes` the bytes it stands for in text (a token holding part of a character has
    /// U+FFFD as its text and the raw bytes here; a control token, its text's bytes).
    fn new(tokenizer: &Tokenizer, id: u32, logprob: f32) -> Self {
        let token = tokenizer.token_piece(id).unwrap_or_default();
        let bytes = tokenizer
            .token_bytes(id)
            .unwrap_or_else(|| token.as_bytes().to_vec());
        Self {
            token,
            logprob,
            bytes,
            top_logprobs: None,
        }
    }

    fn of(tokenizer: &Tokenizer, lp: &TokenLogprob) -> Self {
        Self {
            top_logprobs: Some(
                lp.top
                    .iter()
                    .map(|&(id, logprob)| Self::new(tokenizer, id, logprob))
                    .collect(),
            ),
            ..Self::new(tokenizer, lp.id, lp.logprob)
        }
    }
}

impl WebStep {
    /// `step` as the worker gets it; a chat request's `parser` reads its text, and on the last
    /// step (`finish` set) ends the answer: the message, and the finish reason OpenAI gives it
    /// (`tool_calls` for a turn that stopped after calling tools).
    fn of(step: Step, tokenizer: &Tokenizer, parser: Option<&mut ChatParser>) -> Self {
        let mut finish = step.finish;
        let (mut delta, mut message) = (None, None);
        if let Some(parser) = parser {
            let mut d = parser.push(&step.text);
            if let Some(reason) = finish {
                let (last, m) = parser.finish();
                d.content.push_str(&last.content);
                d.reasoning_content.push_str(&last.reasoning_content);
                d.tool_calls.extend(last.tool_calls);
                finish = Some(m.finish_reason(reason));
                message = Some(m);
            }
            delta = (!d.is_empty()).then_some(d);
        }
        Self {
            logprob: step
                .logprob
                .as_ref()
                .map(|lp| LogprobEntry::of(tokenizer, lp)),
            id: step.id,
            text: step.text,
            finish,
            margin: step.margin,
            prompt_left: step.prompt_left,
            delta,
            message,
        }
    }

    fn to_js(self) -> Result<JsValue, JsValue> {
        // Objects, not `Map`s, for the flattened tool calls; `None` stays `undefined`.
        let s = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
        Ok(self.serialize(&s)?)
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
            inner: Rc::new(RefCell::new(Inner {
                session: Session::new(Arc::new(engine), context),
                request: None,
                parser: None,
                gpu: None,
            })),
        })
    }

    fn inner(&self) -> Result<std::cell::RefMut<'_, Inner>, JsValue> {
        self.inner
            .try_borrow_mut()
            .map_err(|_| js_error("busy", "the engine is running a step; await it first"))
    }

    /// Moves the session to the GPU: requests an adapter and device, uploads the model and
    /// allocates the KV cache there. Resolves to the adapter's description (JSON); rejects with
    /// `gpu_unavailable` (no adapter, limits too small) or `unsupported_model`, leaving the
    /// session on the CPU.
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let gpu = Arc::new(crate::gpu::Gpu::new().await?);
            let mut inner = inner
                .try_borrow_mut()
                .map_err(|_| js_error("busy", "the engine is running a step"))?;
            let engine = inner.session.engine().clone();
            let context = inner.session.context();
            let backend = crate::backend::GpuBackend::new(gpu.clone(), &engine, context)?;
            inner.request = None;
            inner.parser = None;
            inner.session = Session::with_backend(engine, Box::new(backend));
            inner.gpu = Some(gpu.info.clone());
            Ok(JsValue::from_str(
                &serde_json::to_string(&gpu.info).unwrap_or_default(),
            ))
        })
    }

    /// Moves the session back to the CPU (after a GPU failure); the conversation is forgotten.
    #[wasm_bindgen(js_name = useCpu)]
    pub fn use_cpu(&self) -> Result<(), JsValue> {
        let mut inner = self.inner()?;
        let engine = inner.session.engine().clone();
        let context = inner.session.context();
        inner.request = None;
        inner.parser = None;
        inner.session = Session::new(engine, context);
        inner.gpu = None;
        Ok(())
    }

    /// "cpu" or "gpu".
    pub fn backend(&self) -> Result<String, JsValue> {
        Ok(self.inner()?.session.backend_name().into())
    }

    /// The model card as JSON (the same as `wick inspect --json`).
    #[wasm_bindgen(js_name = cardJson)]
    pub fn card_json(&self) -> Result<String, JsValue> {
        Ok(serde_json::to_string(&self.inner()?.session.engine().card)
            .unwrap_or_else(|_| "{}".into()))
    }

    /// Token ids of `text`, as the model's tokenizer reads it: `add_special` puts BOS in front
    /// where the model says so, `parse_special` reads special-token text (`<|im_start|>`) as
    /// those tokens (else it stays text). llama.cpp server's `/tokenize`.
    pub fn tokenize(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>, JsValue> {
        let inner = self.inner()?;
        let tokenizer = &inner.session.engine().tokenizer;
        Ok(tokenizer.encode_with(text, add_special, parse_special)?)
    }

    /// The text of token ids (special tokens included unless `skip_special`). `/detokenize`.
    pub fn detokenize(&self, ids: Vec<u32>, skip_special: bool) -> Result<String, JsValue> {
        let inner = self.inner()?;
        let tokenizer = &inner.session.engine().tokenizer;
        Ok(if skip_special {
            tokenizer.decode_skip_special(&ids)?
        } else {
            tokenizer.decode(&ids)?
        })
    }

    /// The prompt text the model's chat template makes of OpenAI-shaped `messages` (a JSON
    /// array; tool calls and tool results included) and `tools` (a JSON array, or empty for
    /// none), with the generation prompt unless told not to: exactly what the model would be
    /// given, as `wick apply-template` prints it. `/apply-template`.
    #[wasm_bindgen(js_name = applyTemplate)]
    pub fn apply_template(
        &self,
        messages: &str,
        tools: &str,
        add_generation_prompt: bool,
    ) -> Result<String, JsValue> {
        let inner = self.inner()?;
        let template = inner.session.engine().chat_template()?;
        let tools = (!tools.is_empty()).then_some(tools);
        Ok(template.render_json(messages, tools, add_generation_prompt)?)
    }

    pub fn context(&self) -> Result<usize, JsValue> {
        Ok(self.inner()?.session.context())
    }

    /// Starts a chat request: `messages` is a JSON array of OpenAI-shaped messages (roles
    /// system, developer, user, assistant, tool; text parts; tool calls and tool results), and
    /// `options` may carry `tools` and `tool_choice`; planned by [`Engine::plan_chat`]. Returns
    /// `{prompt_tokens, reused_tokens}`; the prompt runs in the first `step()` calls, and each
    /// step then carries the answer's `delta`. Special-token text in the messages stays text
    /// unless `options` has `parse_special_tokens: true`.
    #[wasm_bindgen(js_name = beginChat)]
    pub fn begin_chat(&self, messages: &str, options: &str) -> Result<JsValue, JsValue> {
        let messages: Vec<serde_json::Value> = serde_json::from_str(messages)
            .map_err(|e| Error::InvalidParameter(format!("messages: {e}")))?;
        let mut opts = RequestOptions::from_json(options)?;
        let req = ChatRequest {
            messages,
            tools: std::mem::take(&mut opts.tools),
            tool_choice: std::mem::take(&mut opts.tool_choice),
            parse_special_tokens: opts.parse_special_tokens,
            seed: opts.seed.unwrap_or_default(),
        };
        let generate = opts.generate_options();
        let plan = {
            let inner = self.inner()?;
            inner
                .session
                .engine()
                .plan_chat(&req, generate.grammar.clone())?
        };
        let generate = plan.options(&generate);
        self.begin(&plan.prompt, &generate, Some(plan.parser))
    }

    /// Starts a raw completion of `prompt` (BOS as the model says, special tokens parsed).
    #[wasm_bindgen(js_name = beginCompletion)]
    pub fn begin_completion(&self, prompt: &str, options: &str) -> Result<JsValue, JsValue> {
        let opts = RequestOptions::from_json(options)?.generate_options();
        let ids = self.inner()?.session.engine().encode(prompt)?;
        self.begin(&ids, &opts, None)
    }

    fn begin(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        parser: Option<ChatParser>,
    ) -> Result<JsValue, JsValue> {
        let mut inner = self.inner()?;
        inner.request = None;
        inner.parser = None;
        let req = inner.session.begin(prompt, opts)?;
        let g = req.generation();
        let info = serde_json::json!({
            "prompt_tokens": g.prompt_tokens,
            "reused_tokens": g.reused_tokens,
        });
        inner.request = Some(req);
        inner.parser = parser;
        Ok(js_sys::JSON::parse(&info.to_string())?)
    }

    /// The next step of the running request: a chunk of prefill `{prompt_left}` (prompt tokens
    /// still to run), or a token `{id, text, margin, finish, logprob}` where `finish` is set
    /// ("stop" / "length" / "aborted") on the last step, and `logprob` when the request asked
    /// for log-probabilities: `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`
    /// as an entry of OpenAI's chat `logprobs.content`. A chat request's steps also carry
    /// `delta` (`{content, reasoning_content, tool_calls}`, empty fields left out) when they add
    /// to the answer, and its last step the whole `message`, with `finish` "tool_calls" for an
    /// answer that stopped after calling tools.
    pub fn step(&self) -> Result<JsValue, JsValue> {
        let mut guard = self.inner()?;
        let Inner {
            session,
            request,
            parser,
            ..
        } = &mut *guard;
        let req = request
            .as_mut()
            .ok_or_else(|| js_error("invalid_parameter", "no request is running"))?;
        let step = session.step(req);
        finish_step(step, session, request, parser)
    }

    /// [`WebEngine::step`] as a Promise, for the GPU (whose results arrive asynchronously).
    #[wasm_bindgen(js_name = stepAsync)]
    pub fn step_async(&self) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut guard = inner
                .try_borrow_mut()
                .map_err(|_| js_error("busy", "the engine is running a step; await it first"))?;
            let Inner {
                session,
                request,
                parser,
                ..
            } = &mut *guard;
            let req = request
                .as_mut()
                .ok_or_else(|| js_error("invalid_parameter", "no request is running"))?;
            #[allow(clippy::await_holding_refcell_ref)]
            let step = session.step_async(req).await;
            finish_step(step, session, request, parser)
        })
    }

    /// Ends the running request; returns its last step (with any text held back, and for a
    /// chat request the answer's last `delta` and its `message`).
    pub fn abort(&self) -> Result<JsValue, JsValue> {
        let mut inner = self.inner()?;
        let Some(mut req) = inner.request.take() else {
            return Ok(JsValue::NULL);
        };
        let mut parser = inner.parser.take();
        let step = inner.session.abort(&mut req);
        WebStep::of(step, &inner.session.engine().tokenizer, parser.as_mut()).to_js()
    }

    /// Forgets the conversation in the KV cache (the next request prefills from scratch).
    pub fn reset(&self) -> Result<(), JsValue> {
        let mut inner = self.inner()?;
        inner.request = None;
        inner.parser = None;
        inner.session.reset();
        Ok(())
    }
}

/// A step of the running request as the worker gets it; the request (and its parser) ends with
/// its last step or an error.
fn finish_step(
    step: Result<Step, Error>,
    session: &Session,
    request: &mut Option<Request>,
    parser: &mut Option<ChatParser>,
) -> Result<JsValue, JsValue> {
    let last = !matches!(&step, Ok(s) if s.finish.is_none());
    if last {
        *request = None;
    }
    let mut ended = if last { parser.take() } else { None };
    let parser = if last {
        ended.as_mut()
    } else {
        parser.as_mut()
    };
    WebStep::of(step?, &session.engine().tokenizer, parser).to_js()
}
