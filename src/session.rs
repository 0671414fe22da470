//! A conversation with a loaded model: the KV cache and the tokens in it, the prefill/decode
//! loop, stop conditions, and streaming of text that is always whole UTF-8 and never shows a
//! stop string.
//!
//! A new request reuses the cache for its longest common token prefix with what the cache
//! holds, so a chat turn prefills only the new tokens. The engine has no clock: callers time the
//! events they receive.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::CpuBackend;
use crate::constraint::{Constraint, Grammar};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::forward::{now, Backend, Logits, Want};
use crate::sampler::{margin, Sampler, SamplingParams};
use crate::tokenizer::StreamDecoderState;

/// How one request generates. Missing fields deserialize to their defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerateOptions {
    /// The most tokens to sample (at least 1; default 256). Generation also stops when the
    /// context is full.
    pub max_tokens: usize,
    /// How each token is picked (default: [`SamplingParams::default`]).
    pub sampling: SamplingParams,
    /// Generation stops before the first occurrence of any of these strings.
    pub stop: Vec<String>,
    /// Keep generating through end-of-generation tokens (benchmarks, reference comparisons).
    pub ignore_eos: bool,
    /// Structured output: what the generated text must match (JSON, a schema, a grammar).
    pub grammar: Option<Grammar>,
    /// Log-probabilities: with `Some(n)`, each sampled token's log-probability under the model
    /// (a log-softmax of its logits, before penalties and grammar) and the `n` most likely
    /// tokens' (0 to [`MAX_TOP_LOGPROBS`]).
    pub logprobs: Option<usize>,
    /// Control tokens in the output appear as their text (`<|python_tag|>`, `[TOOL_CALLS]`...)
    /// instead of being left out: the tool-call and reasoning markers of some chat formats are
    /// control tokens, and `tools::ChatParser` must see them (`tools::ChatPlan::special_text`).
    pub special_text: bool,
}

/// The most alternatives [`GenerateOptions::logprobs`] may ask for (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// A sampled token's log-probability and the most likely alternatives at its position.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TokenLogprob {
    /// The sampled token.
    pub id: u32,
    /// Its log-probability under the model.
    pub logprob: f32,
    /// The most likely tokens at this position, most likely first: `(id, logprob)`.
    pub top: Vec<(u32, f32)>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            ignore_eos: false,
            grammar: None,
            logprobs: None,
            special_text: false,
        }
    }
}

/// Why a request ended; serialized as `stop`, `length`, `aborted` or `tool_calls`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-generation token or a stop string.
    Stop,
    /// `max_tokens` reached, or the context is full.
    Length,
    /// The caller asked to stop.
    Aborted,
    /// The answer ended with tool calls. The session never reports it (it does not read the
    /// text); a chat caller maps `Stop` to it with `tools::AssistantMessage::finish_reason`, as
    /// OpenAI reports a turn that calls tools.
    ToolCalls,
}

/// What the caller hears while a request runs. Returning `false` from the callback aborts.
#[derive(Debug)]
pub enum Event<'a> {
    /// The prompt is in the cache; `reused` of its tokens were already there.
    Prefilled {
        /// Length of the prompt in tokens.
        prompt_tokens: usize,
        /// Of those, tokens whose KV entries were reused from the previous request.
        reused: usize,
    },
    /// A token was sampled; `text` is the new visible text it completes (may be empty).
    Token {
        /// The sampled token.
        id: u32,
        /// The visible text it completes; empty while a UTF-8 sequence or a possible stop
        /// string is held back.
        text: &'a str,
    },
}

/// The result of one request.
#[derive(Clone, Debug, Serialize)]
pub struct Generation {
    /// Length of the prompt in tokens.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused from the previous request.
    pub reused_tokens: usize,
    /// The sampled tokens: an end-of-generation token that stopped the request is not among
    /// them, the tokens of a stop string are.
    pub ids: Vec<u32>,
    /// For each of `ids`, the top-1/top-2 logit margin it was sampled from (see
    /// [`crate::sampler::top2_margin`]): where it is tiny, another engine may differ.
    pub margins: Vec<f32>,
    /// The text of `ids`, without the stop string (and what follows it); the concatenation of
    /// the [`Event::Token`] texts.
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// For each of `ids`, when [`GenerateOptions::logprobs`] asked for them.
    pub logprobs: Vec<TokenLogprob>,
}

/// Positions scored per forward pass by [`Session::score`].
const SCORE_CHUNK: usize = 32;

/// Prompt tokens run per [`Session::step`] during prefill: small enough that a caller checking
/// for an abort between steps reacts within a fraction of a second in wasm, large enough that the
/// batched kernels stay efficient.
const PREFILL_CHUNK: usize = 64;

/// A conversation with a loaded model: a backend with its KV cache, and the tokens the cache
/// holds so that the next request can reuse their common prefix.
pub struct Session {
    engine: Arc<Engine>,
    backend: Box<dyn Backend>,
    /// The tokens whose keys and values the cache holds, in order.
    tokens: Vec<u32>,
}

impl Session {
    /// A session with room for `context` tokens (clamped to the model's maximum).
    pub fn new(engine: Arc<Engine>, context: usize) -> Self {
        let backend = Box::new(CpuBackend::new(engine.clone(), context));
        Self::with_backend(engine, backend)
    }

    /// A session whose forward passes run on `backend` (which holds the KV cache).
    pub fn with_backend(engine: Arc<Engine>, backend: Box<dyn Backend>) -> Self {
        Self {
            engine,
            backend,
            tokens: Vec::new(),
        }
    }

    /// "cpu" or "gpu".
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Starts or stops the backend's profiler (the GPU's, natively: `wick bench --profile`).
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        self.backend.set_profiling(on)
    }

    /// What the backend's profiler measured, if it runs one.
    pub fn profile_report(&self) -> Option<String> {
        self.backend.profile_report()
    }

    /// The engine this session generates with.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The most tokens the cache holds, prompt and reply together.
    pub fn context(&self) -> usize {
        self.backend.context()
    }

    /// Empties the cache: the next request prefills its whole prompt.
    pub fn reset(&mut self) {
        self.backend.rewind(0);
        self.tokens.clear();
    }

    /// Prepares the cache to receive `prompt`: keeps the longest common prefix with what it
    /// holds (at least the last prompt token runs again: its logits are not kept) and returns
    /// how many tokens are reused.
    fn rewind_for(&mut self, prompt: &[u32]) -> Result<usize> {
        if prompt.is_empty() {
            return Err(Error::InvalidParameter("the prompt is empty".into()));
        }
        if prompt.len() > self.context() {
            return Err(Error::ContextOverflow {
                prompt: prompt.len(),
                context: self.context(),
            });
        }
        let common = self
            .tokens
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count();
        let reuse = self.backend.rewind(common.min(prompt.len() - 1));
        self.tokens.truncate(reuse);
        Ok(reuse)
    }

    /// Teacher forcing: runs `ids` from an empty cache and hands `each(i, logits)` the logits
    /// predicting token `i + 1`, for every position, a few positions at a time (all of a long
    /// text's logits at once would be `len * vocab` floats).
    pub fn score(&mut self, ids: &[u32], mut each: impl FnMut(usize, &[f32])) -> Result<()> {
        if ids.len() > self.context() {
            return Err(Error::ContextOverflow {
                prompt: ids.len(),
                context: self.context(),
            });
        }
        self.reset();
        let vocab = self.engine.model.vocab_size();
        let mut out = Logits::default();
        for (c, chunk) in ids.chunks(SCORE_CHUNK).enumerate() {
            now(self.backend.forward(chunk, Want::All, &mut out))?;
            let Logits::Full(logits) = &out else {
                unreachable!("Want::All returns whole rows")
            };
            self.tokens.extend_from_slice(chunk);
            for (j, row) in logits.chunks_exact(vocab).enumerate() {
                each(c * SCORE_CHUNK + j, row);
            }
        }
        Ok(())
    }

    /// Runs one request: prefill `prompt`, then sample up to `max_tokens` tokens, telling
    /// `on_event` as it goes (returning `false` from it aborts).
    pub fn generate(
        &mut self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut on_event: impl FnMut(Event<'_>) -> bool,
    ) -> Result<Generation> {
        let mut req = self.begin(prompt, opts)?;
        while req.is_prefilling() {
            self.step(&mut req)?;
        }
        if !on_event(Event::Prefilled {
            prompt_tokens: req.out.prompt_tokens,
            reused: req.out.reused_tokens,
        }) {
            self.abort(&mut req);
            return Ok(req.out);
        }
        loop {
            let step = self.step(&mut req)?;
            let keep_going = (step.id.is_none() && step.text.is_empty())
                || on_event(Event::Token {
                    id: step.id.unwrap_or(u32::MAX),
                    text: &step.text,
                });
            if step.finish.is_some() {
                break;
            }
            if !keep_going {
                let rest = self.abort(&mut req);
                if !rest.text.is_empty() {
                    on_event(Event::Token {
                        id: u32::MAX,
                        text: &rest.text,
                    });
                }
                break;
            }
        }
        Ok(req.out)
    }

    /// Starts a request: checks the options and keeps the cache's longest common prefix with
    /// `prompt`. Then each [`Session::step`] runs a chunk of the rest of the prompt or samples one
    /// token, so a caller with an event loop (the browser worker) can handle an abort between
    /// any two steps, during a long prefill too.
    pub fn begin(&mut self, prompt: &[u32], opts: &GenerateOptions) -> Result<Request> {
        let sampler = Sampler::new(opts.sampling.clone())?;
        if opts.stop.iter().any(String::is_empty) {
            return Err(Error::InvalidParameter(
                "stop strings must not be empty".into(),
            ));
        }
        if opts.max_tokens == 0 {
            return Err(Error::InvalidParameter(
                "max_tokens must be at least 1".into(),
            ));
        }
        if opts.logprobs.is_some_and(|n| n > MAX_TOP_LOGPROBS) {
            return Err(Error::InvalidParameter(format!(
                "top_logprobs must be at most {MAX_TOP_LOGPROBS}"
            )));
        }
        let constraint = match &opts.grammar {
            Some(g) => Some(self.engine.constraint(g)?),
            None => None,
        };
        let reused = self.rewind_for(prompt)?;
        Ok(Request {
            max_tokens: opts.max_tokens,
            ignore_eos: opts.ignore_eos,
            sampler,
            constraint,
            logprobs: opts.logprobs,
            // Special tokens stay out of the visible text, as in llama.cpp's server, unless a
            // chat format's markers are among them.
            decoder: StreamDecoderState::new(!opts.special_text),
            stops: StopScanner::new(opts.stop.clone()),
            prompt_left: prompt[reused..].to_vec(),
            logits: Logits::default(),
            pending: None,
            out: Generation {
                prompt_tokens: prompt.len(),
                reused_tokens: reused,
                ids: Vec::new(),
                margins: Vec::new(),
                text: String::new(),
                finish_reason: FinishReason::Length,
                logprobs: Vec::new(),
            },
            finished: false,
        })
    }

    /// Samples the next token of `req` and returns the text it makes visible. The step that
    /// ends the request has `finish` set (and carries any text held back until then); calling
    /// `step` again after that returns an empty finished step.
    pub fn step(&mut self, req: &mut Request) -> Result<Step> {
        now(self.step_async(req))
    }

    /// [`Session::step`] for backends that must be awaited (the GPU in a browser).
    pub async fn step_async(&mut self, req: &mut Request) -> Result<Step> {
        if req.finished {
            return Ok(Step::end(None, String::new(), req.out.finish_reason));
        }
        let engine = self.engine.clone();
        // What the sampler needs: the GPU's top candidates, or whole rows (a grammar masks
        // whole rows).
        let want = if req.sampler.wants_full() || req.constraint.is_some() || req.logprobs.is_some()
        {
            Want::Last
        } else {
            Want::Sample
        };
        if !req.prompt_left.is_empty() {
            let n = req.prompt_left.len().min(PREFILL_CHUNK);
            let chunk: Vec<u32> = req.prompt_left.drain(..n).collect();
            let want = if req.prompt_left.is_empty() {
                want
            } else {
                Want::Sample
            };
            match self.backend.forward(&chunk, want, &mut req.logits).await {
                Ok(()) => {}
                Err(e) => {
                    req.finished = true;
                    self.reset();
                    return Err(e);
                }
            }
            self.tokens.extend_from_slice(&chunk);
            return Ok(Step {
                prompt_left: Some(req.prompt_left.len()),
                ..Step::default()
            });
        }
        // The previous token runs through the model only now, so that its text reached the
        // caller without waiting for a forward pass.
        if let Some(id) = req.pending.take() {
            match self.backend.forward(&[id], want, &mut req.logits).await {
                Ok(()) => {}
                Err(e) => {
                    req.finished = true;
                    return Err(e);
                }
            }
            self.tokens.push(id);
        }
        // The margin is the model's own (before a grammar's mask), for comparisons with
        // other engines.
        let token_margin = margin(&req.logits);
        // Log-probabilities are the model's own: taken before the grammar masks the row.
        let distribution = match (req.logprobs, &req.logits) {
            (Some(n), Logits::Full(l)) => Some(LogSoftmax::of(l, n)),
            _ => None,
        };
        if let Some(c) = &mut req.constraint {
            match &mut req.logits {
                Logits::Full(l) => c.mask(l)?,
                Logits::Top(_) => unreachable!("a constrained request asks for whole rows"),
            }
        }
        let id = req.sampler.sample(&req.logits, &self.tokens);
        if !req.ignore_eos && engine.end_of_generation.contains(&id) {
            return self.finish(req, None, String::new(), FinishReason::Stop);
        }
        let grammar_done = match &mut req.constraint {
            Some(c) => {
                c.consume(id)?;
                c.is_finished()
            }
            None => false,
        };
        req.out.ids.push(id);
        req.out.margins.push(token_margin);
        // The sampled token was allowed, so the grammar left its logit as the model gave it.
        let logprob = match (&distribution, &req.logits) {
            (Some(d), Logits::Full(l)) => Some(d.token(id, l[id as usize])),
            _ => None,
        };
        if let Some(lp) = &logprob {
            req.out.logprobs.push(lp.clone());
        }
        let piece = req.decoder.push(&engine.tokenizer, id)?.unwrap_or_default();
        let (visible, stopped) = req.stops.push(&piece);
        let margin = req.out.margins.last().copied();
        if grammar_done && !stopped {
            // Nothing but the end may follow: end now rather than run the model once more.
            let step = self.finish(req, Some(id), visible, FinishReason::Stop)?;
            return Ok(Step {
                margin,
                logprob,
                ..step
            });
        }
        if stopped {
            req.out.text.push_str(&visible);
            req.out.finish_reason = FinishReason::Stop;
            req.finished = true;
            let step = Step::end(Some(id), visible, FinishReason::Stop);
            return Ok(Step {
                margin,
                logprob,
                ..step
            });
        }
        if req.out.ids.len() >= req.max_tokens || self.tokens.len() + 1 >= self.context() {
            let step = self.finish(req, Some(id), visible, FinishReason::Length)?;
            return Ok(Step {
                margin,
                logprob,
                ..step
            });
        }
        req.pending = Some(id);
        req.out.text.push_str(&visible);
        Ok(Step {
            id: Some(id),
            text: visible,
            margin,
            logprob,
            ..Step::default()
        })
    }

    /// Ends `req` at the caller's wish; the step carries the text that was held back.
    pub fn abort(&mut self, req: &mut Request) -> Step {
        if req.finished {
            return Step::end(None, String::new(), req.out.finish_reason);
        }
        // Finishing only releases held text, which cannot fail on bytes already decoded.
        self.finish(req, None, String::new(), FinishReason::Aborted)
            .unwrap_or_else(|_| Step::end(None, String::new(), FinishReason::Aborted))
    }

    /// Ends `req` with `reason`: releases what the decoder and the stop scanner held back.
    fn finish(
        &mut self,
        req: &mut Request,
        id: Option<u32>,
        mut text: String,
        reason: FinishReason,
    ) -> Result<Step> {
        req.finished = true;
        req.out.finish_reason = reason;
        // A sampled token not yet run leaves no KV entry: the cache stays consistent with
        // `tokens` for the next request's prefix reuse.
        req.pending = None;
        let tail = req.decoder.finish(&self.engine.tokenizer)?;
        text.push_str(&req.stops.finish(&tail));
        req.out.text.push_str(&text);
        Ok(Step::end(id, text, reason))
    }
}

/// One position's distribution, for log-probabilities: the log of its softmax's denominator and
/// the most likely tokens.
struct LogSoftmax {
    log_sum: f32,
    top: Vec<(u32, f32)>,
}

impl LogSoftmax {
    /// `n` most likely of `logits` (ties to the lower id), and the log-sum-exp of the row
    /// (accumulated in f64 around the maximum, so that 256k terms lose nothing).
    fn of(logits: &[f32], n: usize) -> Self {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
        let log_sum = max + sum.ln() as f32;
        let mut top: Vec<(u32, f32)> = Vec::with_capacity(n + 1);
        for (i, &l) in logits.iter().enumerate() {
            if top.len() < n || top.last().is_some_and(|&(_, worst)| l > worst) {
                let at = top.partition_point(|&(_, v)| v >= l);
                top.insert(at, (i as u32, l));
                top.truncate(n);
            }
        }
        for e in &mut top {
            e.1 -= log_sum;
        }
        Self { log_sum, top }
    }

    fn token(&self, id: u32, logit: f32) -> TokenLogprob {
        TokenLogprob {
            id,
            logprob: logit - self.log_sum,
            top: self.top.clone(),
        }
    }
}

/// A request in progress: everything [`Session::step`] needs between tokens.
pub struct Request {
    max_tokens: usize,
    ignore_eos: bool,
    sampler: Sampler,
    /// The grammar the output must follow, if any.
    constraint: Option<Constraint>,
    /// How many alternatives to report with each token's log-probability, if asked.
    logprobs: Option<usize>,
    decoder: StreamDecoderState,
    stops: StopScanner,
    /// Prompt tokens not yet run through the model (prefill goes a chunk per step).
    prompt_left: Vec<u32>,
    /// Logits predicting the next token.
    logits: Logits,
    /// The last sampled token, not yet run through the model.
    pending: Option<u32>,
    out: Generation,
    finished: bool,
}

impl Request {
    /// What the request produced so far (all of it once finished).
    pub fn generation(&self) -> &Generation {
        &self.out
    }

    /// Whether prompt tokens are still to run before the first token can be sampled.
    pub fn is_prefilling(&self) -> bool {
        !self.prompt_left.is_empty()
    }
}

/// One call of [`Session::step`]: a chunk of prefill, or one sampled token.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Step {
    /// The sampled token (none for an end-of-generation token, which is not part of the output).
    pub id: Option<u32>,
    /// Text made visible by this step (may be empty: a partial character, a possible stop string).
    pub text: String,
    /// Set on the step that ends the request.
    pub finish: Option<FinishReason>,
    /// The top-1/top-2 logit margin the token was sampled from.
    pub margin: Option<f32>,
    /// The token's log-probability and the alternatives, when the request asked for them.
    pub logprob: Option<TokenLogprob>,
    /// On a prefill step: how many prompt tokens are still to run.
    pub prompt_left: Option<usize>,
}

impl Step {
    fn end(id: Option<u32>, text: String, reason: FinishReason) -> Self {
        Self {
            id,
            text,
            finish: Some(reason),
            ..Self::default()
        }
    }
}

/// The length of the longest tail of `text` that some marker starts with (and is not whole):
/// text a streaming reader must hold back until the next piece says whether it is the marker.
pub(crate) fn held_back<S: AsRef<str>>(text: &str, markers: &[S]) -> usize {
    markers
        .iter()
        .flat_map(|m| {
            let m = m.as_ref();
            (1..m.len().min(text.len() + 1)).filter(move |&k| {
                text.is_char_boundary(text.len() - k) && m.starts_with(&text[text.len() - k..])
            })
        })
        .max()
        .unwrap_or(0)
}

/// Holds back text that could be the start of a stop string, and cuts at the first one seen.
struct StopScanner {
    stops: Vec<String>,
    held: String,
    done: bool,
}

impl StopScanner {
    fn new(stops: Vec<String>) -> Self {
        Self {
            stops,
            held: String::new(),
            done: false,
        }
    }

    /// Returns the text that can be shown now, and whether a stop string was reached.
    fn push(&mut self, piece: &str) -> (String, bool) {
        if self.done {
            return (String::new(), true);
        }
        self.held.push_str(piece);
        let first_stop = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first_stop {
            let visible = self.held[..at].to_string();
            self.held.clear();
            self.done = true;
            return (visible, true);
        }
        let keep = held_back(&self.held, &self.stops);
        let visible = self.held[..self.held.len() - keep].to_string();
        self.held.drain(..self.held.len() - keep);
        (visible, false)
    }

    /// At the end, whatever was held back was not a stop string after all.
    fn finish(&mut self, tail: &str) -> String {
        if self.done {
            return String::new();
        }
        let (mut visible, stopped) = self.push(tail);
        if !stopped {
            visible.push_str(&std::mem::take(&mut self.held));
        }
        visible
    }
}

#[cfg(test)]
mod tests {
    use super::StopScanner;

    fn scan(stops: &[&str], pieces: &[&str]) -> (String, bool) {
        let mut s = StopScanner::new(stops.iter().map(|s| s.to_string()).collect());
        let mut text = String::new();
        for p in pieces {
            let (v, stopped) = s.push(p);
            text.push_str(&v);
            if stopped {
                return (text, true);
            }
        }
        text.push_str(&s.finish(""));
        (text, false)
    }

    #[test]
    fn stop_string_split_across_pieces_is_never_shown() {
        assert_eq!(
            scan(&["\n\n"], &["Hello", "\n", "\nWorld"]),
            ("Hello".into(), true)
        );
        assert_eq!(
            scan(&["END"], &["abc E", "N", "D more"]),
            ("abc ".into(), true)
        );
    }

    #[test]
    fn partial_match_that_fails_is_released() {
        assert_eq!(
            scan(&["END"], &["abc E", "N", "x"]),
            ("abc ENx".into(), false)
        );
        assert_eq!(scan(&["END"], &["abc EN"]), ("abc EN".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        assert_eq!(
            scan(&["world", "lo"], &["hello world"]),
            ("hel".into(), true)
        );
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        assert_eq!(scan(&["é!"], &["café", " ok"]), ("café ok".into(), false));
        assert_eq!(scan(&["é!"], &["caf", "é!"]), ("caf".into(), true));
    }
}
