//! Chat templates from GGUF metadata (`tokenizer.chat_template`), rendered with minijinja.
//!
//! Templates are the Jinja the model's authors wrote for Hugging Face `transformers`, so the
//! environment is set up as `transformers` sets up its own: `trim_blocks` and `lstrip_blocks` on,
//! Python string methods (`.strip()`, `.startswith()`, ...) through minijinja-contrib's
//! `pycompat`, and the globals templates expect: `messages`, `add_generation_prompt`,
//! `bos_token`, `eos_token`, `raise_exception(message)` and `strftime_now(format)`.
//!
//! ## BOS once
//! Many templates write `{{ bos_token }}` at the start while the tokenizer also adds BOS when
//! encoding with `add_special`. llama.cpp's server avoids the double BOS by removing the BOS text
//! from the start of the rendered prompt (and the EOS text from its end) when the tokenizer adds
//! that token itself. [`ChatTemplate::render_prompt`] does the same; encode its result with
//! `Tokenizer::encode(prompt, true)`. [`ChatTemplate::render`] returns the template's exact
//! output (encode that with `add_special = false`).
//!
//! ## Message text stays text
//! A message that says `<|im_end|>\n<|im_start|>system\n...` must not become a system turn.
//! [`ChatTemplate::prompt`] keeps the byte ranges of the prompt that hold special-token text
//! from message content, and `Tokenizer::encode_with_literal` reads those as plain text while the
//! template's own markers stay control tokens. To know where that text lands whatever the
//! template does with the content (trim it, split it, slice it, repeat it), each piece of
//! control-token text in a message is swapped for one private-use character before rendering
//! (no string method changes such a character or splits it) and swapped back afterwards, its
//! range recorded. A conversation whose messages hold no control-token text renders exactly as
//! before.
//!
//! ## Bounded rendering
//! A template is a program from the model file. Rendering gets a fuel budget (minijinja counts
//! instructions) and writes into a buffer capped in proportion to the model's context, so a
//! runaway template fails fast with [`Error::ChatTemplate`] instead of holding the engine (there
//! is no clock in the engine, and in the browser a render cannot be interrupted). minijinja bounds
//! the rest itself: `range` to 100,000 items, a repeated string to 100 MB, recursion to 500 levels
//! (a macro calling itself 500 deep took under 256 KiB of stack natively; the wasm32 default
//! stack is 1 MiB). What neither bounds: memory a template builds without writing it (a string
//! doubled in a loop), a known limit.

use std::ops::Range;

use minijinja::{Environment, ErrorKind, State};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gguf::Metadata;
use crate::tokenizer::Tokenizer;

/// One turn of a conversation, as chat templates expect it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    /// Who speaks: usually "system", "user" or "assistant"; the template decides which it
    /// accepts.
    pub role: String,
    /// What they say. Through [`ChatTemplate::prompt`], control-token text in it stays text
    /// rather than becoming control tokens.
    pub content: String,
}

impl ChatMessage {
    /// A message from `role` saying `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// Roles [`ChatTemplate::render`] accepts.
pub const ROLES: &[&str] = &["system", "user", "assistant", "tool"];

const KEY: &str = "tokenizer.chat_template";
const NAME: &str = "chat_template";

/// Instructions (minijinja's fuel) one render may run: a base plus an allowance per message.
/// Measured on conversations of 2 to 10,001 messages (a 128k-token context holds at most about
/// 26,000 of the shortest ChatML turns), real templates spend per message: 23 (SmolLM2's
/// ChatML; 230,036 for 10,001 messages), 23 (a Gemma-style turn template), 31 (Llama 3.3
/// Nemotron's), 58 (DeepSeek R1's) and 65 (Gemma 4's, which splits every answer looking for
/// thoughts; 645,073 for 10,001 messages), and under 150 for the fixed part of a short
/// conversation. The allowance is 15 times the most per message and the base thousands of times
/// the fixed part; a runaway template spends the base in about 20 ms natively (20 million
/// instructions took 0.42 s).
const FUEL_BASE: u64 = 1_000_000;
const FUEL_PER_MESSAGE: u64 = 1_000;

/// The rendered prompt may hold this many bytes per token of the model's context. Text averages
/// 3 to 5 bytes per token, so a prompt past this cap could fit the context only if nearly all
/// its tokens were among the vocabulary's longest.
const OUTPUT_BYTES_PER_TOKEN: usize = 64;
/// ... and at least this many, whatever the context.
const MIN_OUTPUT_BYTES: usize = 1 << 20;

/// A model's chat template, parsed and ready to render.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
    strip_bos: bool,
    strip_eos: bool,
    now: Option<i64>,
    max_output_bytes: usize,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish_non_exhaustive()
    }
}

fn template_error(e: minijinja::Error) -> Error {
    // `raise_exception` messages are the template author's words; show them as they are.
    if e.kind() == ErrorKind::InvalidOperation {
        if let Some(detail) = e.detail() {
            if let Some(msg) = detail.strip_prefix("raise_exception: ") {
                return Error::ChatTemplate(msg.to_string());
            }
        }
    }
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    Error::ChatTemplate(msg)
}

fn raise_exception(msg: String) -> std::result::Result<minijinja::Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("raise_exception: {msg}"),
    ))
}

fn strftime_now(state: &State, format: String) -> std::result::Result<String, minijinja::Error> {
    let now = state
        .lookup("__wick_now")
        .and_then(|v| i64::try_from(v).ok())
        .unwrap_or(0);
    Ok(strftime(now, &format))
}

impl ChatTemplate {
    /// The template in `tokenizer.chat_template`, with the model's BOS / EOS token texts.
    /// `Err(Error::NoChatTemplate)` when the model has none.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let source = match md.get(KEY) {
            None => return Err(Error::NoChatTemplate),
            Some(candle_core::quantized::gguf_file::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(Error::InvalidMetadata {
                    key: KEY.into(),
                    reason: "expected a string".into(),
                })
            }
        };
        Self::with_source(md, source)
    }

    /// `source` as the chat template, with the special tokens (`bos_token`, `eos_token`) of the
    /// model whose metadata is `md` (`wick apply-template --template`).
    pub fn with_source(md: &Metadata, source: impl Into<String>) -> Result<Self> {
        let sp = crate::tokenizer::special_texts(md);
        let mut t = Self::new(
            source,
            sp.bos.unwrap_or_default(),
            sp.eos.unwrap_or_default(),
        )?;
        t.strip_bos = sp.adds_bos;
        t.strip_eos = sp.adds_eos;
        Ok(t)
    }

    /// A template from source, with the texts `bos_token` / `eos_token` stand for. Syntax errors
    /// are reported here. [`ChatTemplate::render_prompt`] strips nothing unless told with
    /// [`ChatTemplate::with_tokenizer_adds`].
    pub fn new(
        source: impl Into<String>,
        bos_token: impl Into<String>,
        eos_token: impl Into<String>,
    ) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        // transformers replaces jinja's `tojson` by `json.dumps(ensure_ascii=False, ...)`: no HTML
        // escaping, Python's separators, and its `indent` / `separators` / `sort_keys` options.
        env.add_filter("tojson", json::tojson);
        // jinja2 finds nothing to iterate in `none` (`tools is iterable` is false when no tools are
        // given); minijinja iterates it as an empty sequence.
        env.add_test("iterable", |v: minijinja::Value| {
            !v.is_none() && !v.is_undefined() && v.try_iter().is_ok()
        });
        let source = source.into();
        env.add_template_owned(NAME, without_generation_tags(&source))
            .map_err(template_error)?;
        Ok(Self {
            env,
            source,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            strip_bos: false,
            strip_eos: false,
            now: None,
            max_output_bytes: MIN_OUTPUT_BYTES,
        })
    }

    /// Caps the rendered prompt for a model with this context length (see
    /// [`OUTPUT_BYTES_PER_TOKEN`]); without it the cap is [`MIN_OUTPUT_BYTES`].
    pub fn set_context_length(&mut self, tokens: usize) {
        self.max_output_bytes = tokens
            .saturating_mul(OUTPUT_BYTES_PER_TOKEN)
            .max(MIN_OUTPUT_BYTES);
    }

    /// Tells [`ChatTemplate::render_prompt`] whether the tokenizer adds BOS / EOS itself.
    pub fn with_tokenizer_adds(mut self, bos: bool, eos: bool) -> Self {
        self.strip_bos = bos;
        self.strip_eos = eos;
        self
    }

    /// The time `strftime_now` formats, in seconds since the Unix epoch. Natively it defaults to
    /// the clock; on wasm32 (no clock in the engine) to the epoch unless set here.
    pub fn set_now(&mut self, unix_seconds: i64) {
        self.now = Some(unix_seconds);
    }

    /// The text `{{ bos_token }}` renders as (empty when the model names no BOS token).
    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    /// The text `{{ eos_token }}` renders as (empty when the model names no EOS token).
    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    /// The template's Jinja source, as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the conversation exactly as the template writes it.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        validate(messages)?;
        self.render_value(
            minijinja::Value::from_serialize(messages),
            messages.len(),
            minijinja::Value::from(()),
            add_generation_prompt,
        )
    }

    /// Renders OpenAI-shaped messages given as JSON text (an array of objects with `role`,
    /// `content`, and whatever else the template reads: `tool_calls`, `reasoning_content`,
    /// `tool_call_id`, `name`...) and optional tool definitions (a JSON array), as transformers'
    /// `apply_chat_template(messages, tools=tools)` renders them: `tools` and `documents` are
    /// `none` when not given, object keys keep their order. Returns the template's exact output
    /// (nothing stripped).
    pub fn render_json(
        &self,
        messages: &str,
        tools: Option<&str>,
        add_generation_prompt: bool,
    ) -> Result<String> {
        let messages = json::parse(messages)
            .map_err(|e| Error::InvalidParameter(format!("the messages are not JSON: {e}")))?;
        let n = match messages.kind() {
            minijinja::value::ValueKind::Seq => messages.len().unwrap_or(0),
            _ => {
                return Err(Error::InvalidParameter(
                    "the messages must be a JSON array of message objects".into(),
                ))
            }
        };
        if n == 0 {
            return Err(Error::InvalidParameter(
                "the conversation has no messages".into(),
            ));
        }
        let tools = match tools {
            None => minijinja::Value::from(()),
            Some(t) => {
                let v = json::parse(t)
                    .map_err(|e| Error::InvalidParameter(format!("the tools are not JSON: {e}")))?;
                if v.kind() != minijinja::value::ValueKind::Seq {
                    return Err(Error::InvalidParameter(
                        "the tools must be a JSON array of tool definitions".into(),
                    ));
                }
                v
            }
        };
        self.render_value(messages, n, tools, add_generation_prompt)
    }

    fn render_value(
        &self,
        messages: minijinja::Value,
        n_messages: usize,
        tools: minijinja::Value,
        add_generation_prompt: bool,
    ) -> Result<String> {
        // The fuel depends on the conversation; a clone of the environment shares its templates.
        let fuel = FUEL_BASE.saturating_add(FUEL_PER_MESSAGE.saturating_mul(n_messages as u64));
        let mut env = self.env.clone();
        env.set_fuel(Some(fuel));
        let tmpl = env.get_template(NAME).map_err(template_error)?;
        let now = self.now.unwrap_or_else(clock_now);
        let mut out = CappedBuffer::new(self.max_output_bytes);
        let rendered = tmpl.render_captured_to(
            minijinja::context! {
                messages => messages,
                tools => tools,
                documents => (),
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos_token,
                eos_token => &self.eos_token,
                __wick_now => now,
            },
            &mut out,
        );
        match rendered {
            Ok(_) => out.into_string(),
            Err(_) if out.overflowed => Err(self.too_much_output()),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(Error::ChatTemplate(format!(
                "the chat template ran too long (over {fuel} steps for {n_messages} messages); \
                 it is broken or hostile"
            ))),
            Err(e) => Err(template_error(e)),
        }
    }

    fn too_much_output(&self) -> Error {
        Error::ChatTemplate(format!(
            "the chat template produced more than {} bytes, more than the model's context \
             could hold; it is broken or hostile",
            self.max_output_bytes
        ))
    }

    /// Renders the conversation for `Tokenizer::encode(prompt, true)`: as [`ChatTemplate::render`],
    /// minus a leading BOS text when the tokenizer adds BOS itself (and a trailing EOS text when
    /// it adds EOS), as llama.cpp's server does, so BOS appears once. Special-token text in the
    /// messages becomes control tokens when this is encoded; [`ChatTemplate::prompt`] keeps it
    /// text.
    pub fn render_prompt(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let mut out = self.render(messages, add_generation_prompt)?;
        self.strip_added_specials(&mut out);
        Ok(out)
    }

    /// [`ChatTemplate::render_prompt`] with the ranges of it that hold control-token text from
    /// the messages (found with `tokenizer`), for `Tokenizer::encode_with_literal`: a message
    /// cannot write a turn marker. See the module documentation for how the ranges are found.
    pub fn prompt(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
        tokenizer: &Tokenizer,
    ) -> Result<ChatPrompt> {
        let (shielded, messages) = Shielded::messages(messages, tokenizer)?;
        let mut out = self.render(&messages, add_generation_prompt)?;
        // Before restoring the pieces: a BOS text written by a message is not the template's.
        self.strip_added_specials(&mut out);
        shielded
            .restore(&out, self.max_output_bytes)
            .ok_or_else(|| self.too_much_output())
    }

    /// [`ChatTemplate::render_json`] of OpenAI-shaped messages and tool definitions, for
    /// `Tokenizer::encode_with_literal` as [`ChatTemplate::prompt`] is: BOS / EOS text stripped
    /// as [`ChatTemplate::render_prompt`] does, and the byte ranges of control-token text written
    /// in any string of the messages or tools (not keys, not roles) returned as literal. With no
    /// `tokenizer`, nothing is shielded (`parse_special_tokens`).
    pub fn prompt_json(
        &self,
        messages: &serde_json::Value,
        tools: Option<&serde_json::Value>,
        add_generation_prompt: bool,
        tokenizer: Option<&Tokenizer>,
    ) -> Result<ChatPrompt> {
        let mut shielded = Shielded::default();
        let (mut messages, mut tools) = (messages.clone(), tools.cloned());
        if let Some(tokenizer) = tokenizer {
            shielded.json(&mut messages, tokenizer)?;
            if let Some(tools) = &mut tools {
                shielded.json(tools, tokenizer)?;
            }
        }
        let tools = tools.map(|t| t.to_string());
        let mut out = self.render_json(
            &messages.to_string(),
            tools.as_deref(),
            add_generation_prompt,
        )?;
        self.strip_added_specials(&mut out);
        shielded
            .restore(&out, self.max_output_bytes)
            .ok_or_else(|| self.too_much_output())
    }

    fn strip_added_specials(&self, out: &mut String) {
        if self.strip_bos && !self.bos_token.is_empty() && out.starts_with(&self.bos_token) {
            out.drain(..self.bos_token.len());
        }
        if self.strip_eos && !self.eos_token.is_empty() && out.ends_with(&self.eos_token) {
            out.truncate(out.len() - self.eos_token.len());
        }
    }
}

/// Why the model's `tokenizer.chat_template` cannot be used (it does not parse, or is not a
/// string); `None` when it is fine or absent. Such a model still loads, for raw completion.
pub fn template_problem(md: &Metadata) -> Option<String> {
    match ChatTemplate::from_metadata(md) {
        Ok(_) | Err(Error::NoChatTemplate) => None,
        Err(Error::ChatTemplate(detail)) => Some(detail),
        Err(e) => Some(e.to_string()),
    }
}

/// The error a chat request gets on a model whose template has `problem`
/// ([`template_problem`]).
pub fn broken_template(problem: &str) -> Error {
    Error::ChatTemplate(format!(
        "the model's chat template is broken ({problem}); chat is unavailable, raw completion \
         still works"
    ))
}

/// A rendered prompt and the byte ranges of it that hold control-token text from the messages,
/// to be read as text (`Tokenizer::encode_with_literal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatPrompt {
    /// The prompt as the template rendered it.
    pub text: String,
    /// Sorted, disjoint.
    pub literal: Vec<Range<usize>>,
}

/// The first and last of the private-use characters that stand in for pieces of message text
/// while the template runs (Supplementary Private Use Area-B: no tokenizer or template gives
/// them a meaning).
const PLACEHOLDER_FIRST: u32 = 0x10_0000;
const PLACEHOLDER_LAST: u32 = 0x10_FFFD;

fn placeholder_index(c: char) -> Option<usize> {
    let c = c as u32;
    (PLACEHOLDER_FIRST..=PLACEHOLDER_LAST)
        .contains(&c)
        .then(|| (c - PLACEHOLDER_FIRST) as usize)
}

/// Message text whose control-token text is swapped for placeholders, and what each stands for.
#[derive(Default)]
struct Shielded {
    /// The text of placeholder `PLACEHOLDER_FIRST + i`.
    pieces: Vec<String>,
}

impl Shielded {
    fn messages(
        messages: &[ChatMessage],
        tokenizer: &Tokenizer,
    ) -> Result<(Self, Vec<ChatMessage>)> {
        let mut shielded = Self::default();
        let messages = messages
            .iter()
            .map(|m| {
                Ok(ChatMessage {
                    role: m.role.clone(),
                    content: shielded.shield(&m.content, tokenizer)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((shielded, messages))
    }

    /// Shields every string in `value` but object keys and the `role` of a message: message
    /// text, tool-call arguments, tool results and tool definitions alike.
    fn json(&mut self, value: &mut serde_json::Value, tokenizer: &Tokenizer) -> Result<()> {
        use serde_json::Value;
        match value {
            Value::String(s) => *s = self.shield(s, tokenizer)?,
            Value::Array(items) => {
                for v in items {
                    self.json(v, tokenizer)?;
                }
            }
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if k != "role" {
                        self.json(v, tokenizer)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `text` with each piece of control-token text swapped for a new placeholder.
    fn shield(&mut self, text: &str, tokenizer: &Tokenizer) -> Result<String> {
        let mut spans = tokenizer.control_token_spans(text);
        // A placeholder character the text itself holds gets a placeholder too, which restores
        // it as it was (else it would be read as someone else's piece).
        spans.extend(
            text.char_indices()
                .filter(|&(_, c)| placeholder_index(c).is_some())
                .map(|(i, c)| i..i + c.len_utf8()),
        );
        spans.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for span in spans {
            if span.end <= pos {
                continue;
            }
            let start = span.start.max(pos);
            out.push_str(&text[pos..start]);
            let code = PLACEHOLDER_FIRST + self.pieces.len() as u32;
            let placeholder = char::from_u32(code)
                .filter(|_| code <= PLACEHOLDER_LAST)
                .ok_or_else(|| {
                    Error::InvalidParameter(
                        "the messages hold too many pieces of special-token text".into(),
                    )
                })?;
            out.push(placeholder);
            self.pieces.push(text[start..span.end].to_string());
            pos = span.end;
        }
        out.push_str(&text[pos..]);
        Ok(out)
    }

    /// The rendered text with every placeholder swapped back, and where each landed; `None` when
    /// that text would be longer than `max_bytes`. Placeholders can only have come from the
    /// messages (or from a template that writes these characters itself: then the piece lands
    /// there, still as text), so whatever the template did with them, their text is literal.
    fn restore(&self, rendered: &str, max_bytes: usize) -> Option<ChatPrompt> {
        if self.pieces.is_empty() {
            return Some(ChatPrompt {
                text: rendered.to_string(),
                literal: Vec::new(),
            });
        }
        let mut text = String::with_capacity(rendered.len());
        let mut literal = Vec::new();
        for c in rendered.chars() {
            match placeholder_index(c).and_then(|i| self.pieces.get(i)) {
                Some(piece) => {
                    let start = text.len();
                    text.push_str(piece);
                    literal.push(start..text.len());
                }
                None => text.push(c),
            }
            if text.len() > max_bytes {
                return None;
            }
        }
        Some(ChatPrompt { text, literal })
    }
}

/// The render's output, refusing to grow past a cap (the write that would pass it fails, which
/// stops the render).
struct CappedBuffer {
    bytes: Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl CappedBuffer {
    fn new(cap: usize) -> Self {
        Self {
            bytes: Vec::new(),
            cap,
            overflowed: false,
        }
    }

    fn into_string(self) -> Result<String> {
        // minijinja writes whole `str`s, and a refused write leaves nothing behind.
        String::from_utf8(self.bytes)
            .map_err(|_| Error::ChatTemplate("the chat template wrote invalid UTF-8".into()))
    }
}

impl std::io::Write for CappedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > self.cap {
            self.overflowed = true;
            return Err(std::io::Error::other("output cap reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// transformers' `{% generation %}` ... `{% endgeneration %}` marks the assistant's text for
/// training masks and renders its body unchanged; minijinja has no such tag. Each becomes a block
/// tag minijinja knows that renders its body unchanged (`{% if true %}` ... `{% endif %}`), with
/// the same whitespace control, so `trim_blocks` / `lstrip_blocks` treat it the same.
fn without_generation_tags(source: &str) -> String {
    if !source.contains("generation") {
        return source.to_string();
    }
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(i) = rest.find("{%") {
        out.push_str(&rest[..i]);
        let tag = &rest[i..];
        let Some(end) = tag.find("%}") else {
            break;
        };
        let inner = &tag[2..end];
        let (open, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, close) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[b.len()..]),
            None => (body, ""),
        };
        let replacement = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match replacement {
            Some(r) => out.push_str(&format!("{{%{open} {r} {close}%}}")),
            None => out.push_str(&tag[..end + 2]),
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    out
}

fn validate(messages: &[ChatMessage]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::InvalidParameter(
            "the conversation has no messages".into(),
        ));
    }
    for (i, m) in messages.iter().enumerate() {
        if !ROLES.contains(&m.role.as_str()) {
            return Err(Error::InvalidParameter(format!(
                "message {i} has role {:?}; expected one of {}",
                m.role,
                ROLES.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn clock_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(target_arch = "wasm32")]
fn clock_now() -> i64 {
    0
}

/// Formats a UTC time like C's `strftime` for the common conversions (`%Y %m %d %e %H %M %S %y
/// %b %B %a %A %j %p %I %F %T %D %%`); others are copied through.
pub fn strftime(unix_seconds: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = doy_mar - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let cum = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cum[(m - 1) as usize] + d + i64::from(leap && m > 2);
    let wday = (days + 4).rem_euclid(7) as usize;
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&y.to_string()),
            Some('y') => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{m:02}")),
            Some('d') => out.push_str(&format!("{d:02}")),
            Some('e') => out.push_str(&format!("{d:2}")),
            Some('H') => out.push_str(&format!("{h:02}")),
            Some('I') => out.push_str(&format!("{:02}", if h % 12 == 0 { 12 } else { h % 12 })),
            Some('p') => out.push_str(if h < 12 { "AM" } else { "PM" }),
            Some('M') => out.push_str(&format!("{mi:02}")),
            Some('S') => out.push_str(&format!("{s:02}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('b') | Some('h') => out.push_str(&MONTHS[(m - 1) as usize][..3]),
            Some('B') => out.push_str(MONTHS[(m - 1) as usize]),
            Some('a') => out.push_str(&DAYS[wday][..3]),
            Some('A') => out.push_str(DAYS[wday]),
            Some('F') => out.push_str(&format!("{y}-{m:02}-{d:02}")),
            Some('T') => out.push_str(&format!("{h:02}:{mi:02}:{s:02}")),
            Some('D') => out.push_str(&format!("{m:02}/{d:02}/{:02}", y.rem_euclid(100))),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

/// JSON for templates as transformers gives it: objects that keep their key order (minijinja's own
/// maps sort keys without its `preserve_order` feature), and a `tojson` filter that writes what
/// Python's `json.dumps(x, ensure_ascii=False, ...)` writes.
mod json {
    use std::fmt::Write as _;
    use std::sync::Arc;

    use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, ValueKind};
    use minijinja::{Error, ErrorKind, Value};
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    /// A JSON object in its written key order.
    #[derive(Debug)]
    struct OrderedMap(Vec<(String, Value)>);

    impl Object for OrderedMap {
        fn repr(self: &Arc<Self>) -> ObjectRepr {
            ObjectRepr::Map
        }

        fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
            let key = key.as_str()?;
            self.0
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        }

        fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let mut out = String::new();
            py_repr(&Value::from_dyn_object(self.clone()), &mut out, 0);
            f.write_str(&out)
        }

        fn enumerate(self: &Arc<Self>) -> Enumerator {
            let mut seen = std::collections::HashSet::new();
            let keys: Vec<Value> = self
                .0
                .iter()
                .filter(|(k, _)| seen.insert(k.as_str()))
                .map(|(k, _)| Value::from(k.as_str()))
                .collect();
            Enumerator::Values(keys)
        }
    }

    /// A JSON array; printed as Python prints a list.
    #[derive(Debug)]
    struct PySeq(Vec<Value>);

    impl Object for PySeq {
        fn repr(self: &Arc<Self>) -> ObjectRepr {
            ObjectRepr::Seq
        }

        fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
            self.0.get(key.as_usize()?).cloned()
        }

        fn enumerate(self: &Arc<Self>) -> Enumerator {
            Enumerator::Seq(self.0.len())
        }

        fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            let mut out = String::new();
            py_repr(&Value::from_dyn_object(self.clone()), &mut out, 0);
            f.write_str(&out)
        }
    }

    /// Python's `repr` of a JSON value (what jinja2 prints for a dict or a list: `{'a': [1, True,
    /// None]}`).
    fn py_repr(v: &Value, out: &mut String, depth: usize) {
        if depth > 500 {
            out.push_str("...");
            return;
        }
        match v.kind() {
            ValueKind::None | ValueKind::Undefined => out.push_str("None"),
            ValueKind::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
            ValueKind::Number if !v.is_integer() => {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                out.push_str(&if f.is_nan() {
                    "nan".to_string()
                } else if f.is_infinite() {
                    if f > 0.0 { "inf" } else { "-inf" }.to_string()
                } else {
                    python_float(f)
                });
            }
            ValueKind::String => py_str(v.as_str().unwrap_or_default(), out),
            ValueKind::Seq => {
                out.push('[');
                for (i, item) in v.try_iter().into_iter().flatten().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_repr(&item, out, depth + 1);
                }
                out.push(']');
            }
            ValueKind::Map => {
                out.push('{');
                for (i, k) in v.try_iter().into_iter().flatten().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    py_repr(&k, out, depth + 1);
                    out.push_str(": ");
                    py_repr(&v.get_item(&k).unwrap_or_default(), out, depth + 1);
                }
                out.push('}');
            }
            _ => {
                let _ = write!(out, "{v}");
            }
        }
    }

    /// Python's `repr(str)`.
    fn py_str(s: &str, out: &mut String) {
        let quote = if s.contains('\'') && !s.contains('"') {
            '"'
        } else {
            '\''
        };
        out.push(quote);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push(quote);
    }

    struct Json(Value);

    impl<'de> Deserialize<'de> for Json {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(JsonVisitor)
        }
    }

    struct JsonVisitor;

    impl<'de> Visitor<'de> for JsonVisitor {
        type Value = Json;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
            Ok(Json(Value::from(v)))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
            Ok(Json(Value::from(v)))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
            Ok(Json(Value::from(v)))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
            Ok(Json(Value::from(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Json, E> {
            Ok(Json(Value::from(v)))
        }
        fn visit_string<E>(self, v: String) -> Result<Json, E> {
            Ok(Json(Value::from(v)))
        }
        fn visit_unit<E>(self) -> Result<Json, E> {
            Ok(Json(Value::from(())))
        }
        fn visit_none<E>(self) -> Result<Json, E> {
            Ok(Json(Value::from(())))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
            let mut items = Vec::new();
            while let Some(Json(v)) = seq.next_element()? {
                items.push(v);
            }
            Ok(Json(Value::from_object(PySeq(items))))
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
            let mut entries = Vec::new();
            while let Some((k, Json(v))) = map.next_entry::<String, Json>()? {
                entries.push((k, v));
            }
            Ok(Json(Value::from_object(OrderedMap(entries))))
        }
    }

    /// Parses JSON text into template values, object keys in their written order.
    pub(super) fn parse(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<Json>(text).map(|j| j.0)
    }

    /// transformers' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
    /// sort_keys=False)`.
    pub(super) fn tojson(value: Value, kwargs: Kwargs) -> Result<String, Error> {
        let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
        let indent: Option<Value> = kwargs.get("indent")?;
        let separators: Option<Value> = kwargs.get("separators")?;
        let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
        kwargs.assert_all_used()?;
        let indent = match indent {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => Some(match v.as_str() {
                Some(s) => s.to_string(),
                None => {
                    let n = i64::try_from(v.clone())
                        .map_err(|_| bad(format!("tojson: indent {v} is not a number")))?;
                    " ".repeat(n.max(0) as usize)
                }
            }),
        };
        let (item_sep, key_sep) = match separators {
            Some(v) if !v.is_none() => {
                let parts: Vec<Value> = v
                    .try_iter()
                    .map_err(|_| bad("tojson: separators must be a pair of strings".into()))?
                    .collect();
                match parts.as_slice() {
                    [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                        a.as_str().unwrap_or_default().to_string(),
                        b.as_str().unwrap_or_default().to_string(),
                    ),
                    _ => return Err(bad("tojson: separators must be a pair of strings".into())),
                }
            }
            _ if indent.is_some() => (",".to_string(), ": ".to_string()),
            _ => (", ".to_string(), ": ".to_string()),
        };
        let opts = Opts {
            ensure_ascii: ensure_ascii.unwrap_or(false),
            indent,
            item_sep,
            key_sep,
            sort_keys: sort_keys.unwrap_or(false),
        };
        let mut out = String::new();
        write(&mut out, &value, &opts, 0)?;
        Ok(out)
    }

    struct Opts {
        ensure_ascii: bool,
        indent: Option<String>,
        item_sep: String,
        key_sep: String,
        sort_keys: bool,
    }

    fn bad(msg: String) -> Error {
        Error::new(ErrorKind::InvalidOperation, msg)
    }

    fn newline(out: &mut String, opts: &Opts, depth: usize) {
        if let Some(ind) = &opts.indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(ind);
            }
        }
    }

    fn write(out: &mut String, v: &Value, opts: &Opts, depth: usize) -> Result<(), Error> {
        if depth > 500 {
            return Err(bad("tojson: nested too deeply".into()));
        }
        match v.kind() {
            ValueKind::None | ValueKind::Undefined => out.push_str("null"),
            ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if v.is_integer() {
                    let _ = write!(out, "{v}");
                } else {
                    let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                    if f.is_nan() {
                        out.push_str("NaN");
                    } else if f.is_infinite() {
                        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                    } else {
                        out.push_str(&python_float(f));
                    }
                }
            }
            ValueKind::String => string(out, v.as_str().unwrap_or_default(), opts.ensure_ascii),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return Ok(());
                }
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&opts.item_sep);
                    }
                    newline(out, opts, depth + 1);
                    write(out, item, opts, depth + 1)?;
                }
                newline(out, opts, depth);
                out.push(']');
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if keys.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                if opts.sort_keys {
                    keys.sort();
                }
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&opts.item_sep);
                    }
                    newline(out, opts, depth + 1);
                    match k.kind() {
                        ValueKind::String => {
                            string(out, k.as_str().unwrap_or_default(), opts.ensure_ascii)
                        }
                        _ => {
                            let mut key = String::new();
                            write(&mut key, k, opts, depth + 1)?;
                            string(out, &key, opts.ensure_ascii)
                        }
                    }
                    out.push_str(&opts.key_sep);
                    write(out, &v.get_item(k)?, opts, depth + 1)?;
                }
                newline(out, opts, depth);
                out.push('}');
            }
            _ => {
                return Err(bad(format!(
                    "tojson: object of type {} is not JSON serializable",
                    v.kind()
                )))
            }
        }
        Ok(())
    }

    /// Python's `repr(float)`: the shortest round-tripping digits, exponent form outside
    /// 1e-4 <= |x| < 1e16.
    fn python_float(f: f64) -> String {
        let a = f.abs();
        if a != 0.0 && !(1e-4..1e16).contains(&a) {
            let s = format!("{f:e}");
            let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
            let exp: i32 = exp.parse().unwrap_or(0);
            let mant = if mant.contains('.') {
                mant.to_string()
            } else {
                format!("{mant}.0").replace(".0", "")
            };
            format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
        } else {
            format!("{f:?}")
        }
    }

    fn string(out: &mut String, s: &str, ensure_ascii: bool) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if ensure_ascii && !c.is_ascii() => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{u:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::strftime;

    #[test]
    fn strftime_dates() {
        assert_eq!(
            strftime(0, "%Y-%m-%d %H:%M:%S %a %j"),
            "1970-01-01 00:00:00 Thu 001"
        );
        // 2024-07-26 13:05:09 UTC, a Friday, day 208 of a leap year.
        assert_eq!(
            strftime(1_722_000_309, "%d %b %Y %A %j %I%p"),
            "26 Jul 2024 Friday 208 01PM"
        );
        assert_eq!(strftime(951_782_400, "%F %B"), "2000-02-29 February");
        assert_eq!(strftime(-86_400, "%F"), "1969-12-31");
        assert_eq!(strftime(0, "100%% %q"), "100% %q");
    }
}
