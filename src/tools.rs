//! Tool calling and reasoning for chat requests: OpenAI's `tools` / `tool_choice` in, and the
//! model's output split into `content`, `reasoning_content` and `tool_calls`, whole or while it
//! streams.
//!
//! A request goes through [`Engine::plan_chat`] ([`plan_chat`] for a template and tokenizer
//! alone): the messages are normalized (text parts joined, `developer` read as `system`, tool-call
//! arguments given as JSON text parsed into objects, as llama.cpp's server does, since templates
//! write them with `tojson`), rendered by the model's template with the tools, shielded as
//! [`ChatTemplate::prompt`] shields message text, and tokenized. The plan carries the grammar
//! that forces a call (`tool_choice` `required` or a named function, where the format can be
//! constrained) and the [`ChatParser`] that reads the answer.
//!
//! ## Formats
//! The tool-call format is the template's: each family writes calls its own way, and the
//! template's source says which ([`ToolFormat::detect`], first match wins):
//!
//! | format | detected by | a call in the output |
//! |---|---|---|
//! | `qwen3_coder_xml` | `<parameter=` | `<tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n</function>\n</tool_call>` (Qwen3-Coder, Qwen 3.5, Nemotron 3) |
//! | `functionary_v3_1` | `<function=` | `<function=NAME>{...}</function>` |
//! | `hermes` | `<tool_call>` | `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, several in a row (Hermes 2 Pro / 3, Qwen 2.5 / 3, QwQ, SmolLM3, Granite 4; also GLM's `<arg_key>` templates, whose format wick does not read yet, so their calls stay content) |
//! | `mistral_v11` | `[ARGS]` | `[TOOL_CALLS]NAME[ARGS]{...}` or `[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}`, repeated (Mistral Small 3.2, Ministral 3, Devstral) |
//! | `mistral_nemo` | `[TOOL_CALLS]` | `[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "..."}]` |
//! | `command_r7b` | `<\|START_ACTION\|>` | `<\|START_ACTION\|>[{"tool_call_id": "0", "tool_name": ..., "parameters": {...}}]<\|END_ACTION\|>`; content inside `<\|START_RESPONSE\|>...<\|END_RESPONSE\|>` |
//! | `deepseek_r1` | `<｜tool▁calls▁begin｜>` and ```` ```json ```` | `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\n{...}\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>` |
//! | `deepseek_v3_1` | `<｜tool▁calls▁begin｜>` | `<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>` |
//! | `granite` | `<\|tool_call\|>` | `<\|tool_call\|>[{"name": ..., "arguments": {...}}]` (Granite 3.3) |
//! | `nemotron_v2` | `<TOOLCALL>` | `<TOOLCALL>[{"name": ..., "arguments": {...}}]</TOOLCALL>` |
//! | `firefunction_v2` | `functools` | ` functools[{"name": ..., "arguments": {...}}]` |
//! | `llama3` | `<\|start_header_id\|>` and `tools` | the whole answer a JSON object `{"name": ..., "parameters": {...}}` (several separated by `;`), or after `<\|python_tag\|>` |
//! | `generic` | anything else | the whole answer `{"tool_call": {"name": ..., "arguments": {...}}}` or `{"response": "..."}`, always under a grammar; the tool definitions go into the system message when the template does not render tools itself (SmolLM2's ChatML, Gemma 3), as llama.cpp's generic format does |
//!
//! Formats not read yet (their templates fall to a row above): GLM 4.5+ `<arg_key>`, Kimi K2,
//! MiniMax M2, LFM2's pythonic calls, gpt-oss's harmony channels, Functionary v3.2's `>>>NAME`.
//!
//! Reasoning ([`Reasoning::detect`]) is `<think>...</think>`, `[THINK]...[/THINK]` or
//! `<|START_THINKING|>...<|END_THINKING|>` at the start of the answer; when the rendered prompt
//! ends with the opening tag (DeepSeek R1 distills, Nemotron) the answer starts inside it.
//! Reasoning that never closes (the token limit came first) stays reasoning.
//!
//! ## Streaming
//! [`ChatParser::push`] takes each step's text and returns what can be shown: content as it
//! comes, except a tail that could be the start of a marker (held back until the next piece
//! decides, as stop strings are); a tool call once it is complete, in one delta with its whole
//! arguments (OpenAI allows that); for formats without an end marker (Llama 3's bare JSON, the
//! generic format) the answer is held until [`ChatParser::finish`]. Whatever the pieces, the
//! deltas add up to the message `finish` returns. A call that does not parse (bad JSON, a
//! function not among the tools) is returned as content, as llama.cpp does: nothing is lost.
//! When the answer has reasoning or tools, whitespace at the ends of the content and around
//! markers is not content (`</think>\n\n`, the newline between two calls); a plain answer is
//! returned exactly as generated.

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Map, Value};

use crate::chat::ChatTemplate;
use crate::constraint::{json_layout, Grammar};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::sampler::Rng;
use crate::session::{held_back, FinishReason, GenerateOptions};
use crate::tokenizer::Tokenizer;

/// OpenAI's `tool_choice`: `"auto"` (the default), `"none"`, `"required"` or
/// `{"type": "function", "function": {"name": "..."}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides whether to call tools.
    #[default]
    Auto,
    /// No tools: the prompt is rendered without them and the answer is not read for calls.
    None,
    /// At least one call.
    Required,
    /// Exactly one call, of this function.
    Function(String),
}

impl ToolChoice {
    /// From OpenAI's JSON shapes.
    pub fn from_json(v: &Value) -> Result<Self> {
        match v {
            Value::String(s) => match s.as_str() {
                "auto" => Ok(Self::Auto),
                "none" => Ok(Self::None),
                "required" => Ok(Self::Required),
                other => Err(Error::InvalidParameter(format!(
                    "tool_choice {other:?}: expected \"auto\", \"none\", \"required\" or \
                     {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}"
                ))),
            },
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .map(|n| Self::Function(n.to_string()))
                .ok_or_else(|| {
                    Error::InvalidParameter(
                        "tool_choice: an object must be {\"type\": \"function\", \"function\": \
                         {\"name\": ...}}"
                            .into(),
                    )
                }),
            _ => Err(Error::InvalidParameter(
                "tool_choice must be a string or an object".into(),
            )),
        }
    }

    /// The CLI's spelling: `auto`, `none`, `required`, or a function's name.
    pub fn from_cli(s: &str) -> Self {
        match s {
            "auto" => Self::Auto,
            "none" => Self::None,
            "required" => Self::Required,
            name => Self::Function(name.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Self::from_json(&Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::None => s.serialize_str("none"),
            Self::Required => s.serialize_str("required"),
            Self::Function(name) => {
                json!({"type": "function", "function": {"name": name}}).serialize(s)
            }
        }
    }
}

/// A chat request as OpenAI shapes it. Missing fields deserialize to their defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChatRequest {
    /// The conversation: objects with `role` and `content` (a string, `null`, or an array of
    /// `{"type": "text", "text": ...}` parts), and `tool_calls`, `tool_call_id`, `name`,
    /// `reasoning_content` where they apply.
    pub messages: Vec<Value>,
    /// OpenAI tool definitions (`{"type": "function", "function": {"name", "description",
    /// "parameters"}}`); empty for none.
    pub tools: Vec<Value>,
    /// Whether and which tools must be called.
    pub tool_choice: ToolChoice,
    /// Read control-token text in the messages as control tokens (for callers that write turn
    /// markers on purpose and trust every message).
    pub parse_special_tokens: bool,
    /// Seeds the tool-call ids, so a seeded run gives the same ids (the sampling seed).
    pub seed: u64,
}

impl ChatRequest {
    /// A request for `messages`, with no tools.
    pub fn new(messages: Vec<Value>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// A function the request offers.
#[derive(Clone, Debug)]
struct Tool {
    name: String,
    /// Its `parameters` schema (an empty object schema when the definition has none).
    parameters: Value,
}

fn parse_tools(tools: &[Value]) -> Result<Vec<Tool>> {
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let bad = |why: &str| Error::InvalidParameter(format!("tools[{i}]: {why}"));
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad("only tools of type \"function\" are supported"));
            }
            let f = t
                .get("function")
                .ok_or_else(|| bad("has no \"function\""))?;
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad("the function has no name"))?;
            let parameters = match f.get("parameters") {
                None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(_) => return Err(bad("\"parameters\" must be a JSON schema object")),
            };
            Ok(Tool {
                name: name.to_string(),
                parameters,
            })
        })
        .collect()
}

/// How a template's model writes tool calls; see the module documentation's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolFormat {
    /// No tools in this request: the answer is content (and reasoning).
    None,
    /// The JSON answer wick asks of a model whose template it cannot read calls from.
    Generic,
    /// `<tool_call>{"name", "arguments"}</tool_call>`.
    Hermes,
    /// `<tool_call><function=NAME><parameter=P>...</parameter></function></tool_call>`.
    Qwen3CoderXml,
    /// A bare `{"name", "parameters"}` answer, or one after `<|python_tag|>`.
    Llama3,
    /// `[TOOL_CALLS]` and a JSON array.
    MistralNemo,
    /// `[TOOL_CALLS]NAME[ARGS]{...}`.
    MistralV11,
    /// `<|START_ACTION|>[...]<|END_ACTION|>`.
    CommandR7B,
    /// DeepSeek R1's fenced JSON calls.
    DeepSeekR1,
    /// DeepSeek V3.1's `NAME<｜tool▁sep｜>{...}` calls.
    DeepSeekV31,
    /// `<|tool_call|>` and a JSON array.
    Granite,
    /// `<TOOLCALL>[...]</TOOLCALL>`.
    NemotronV2,
    /// `<function=NAME>{...}</function>`.
    FunctionaryV31,
    /// ` functools[...]`.
    FirefunctionV2,
}

const DS_CALLS_BEGIN: &str = "<｜tool▁calls▁begin｜>";
const DS_CALLS_END: &str = "<｜tool▁calls▁end｜>";
const DS_CALL_BEGIN: &str = "<｜tool▁call▁begin｜>";
const DS_CALL_END: &str = "<｜tool▁call▁end｜>";
const DS_SEP: &str = "<｜tool▁sep｜>";

impl ToolFormat {
    /// The format of a template, from its source. A template that renders no tools at all (its
    /// source never says `tools`) is [`ToolFormat::Generic`].
    pub fn detect(source: &str) -> Self {
        // The text each format's templates write, most specific first (Qwen3-Coder's
        // `<parameter=` before Functionary's `<function=` before Hermes's `<tool_call>`...).
        const MARKERS: &[(&str, ToolFormat)] = &[
            ("<parameter=", ToolFormat::Qwen3CoderXml),
            ("<function=", ToolFormat::FunctionaryV31),
            ("<tool_call>", ToolFormat::Hermes),
            ("[ARGS]", ToolFormat::MistralV11),
            ("[TOOL_CALLS]", ToolFormat::MistralNemo),
            ("<|START_ACTION|>", ToolFormat::CommandR7B),
            (DS_CALLS_BEGIN, ToolFormat::DeepSeekV31),
            ("<|tool_call|>", ToolFormat::Granite),
            ("<TOOLCALL>", ToolFormat::NemotronV2),
            ("functools", ToolFormat::FirefunctionV2),
        ];
        let has = |s: &str| source.contains(s);
        match MARKERS.iter().find(|(m, _)| has(m)) {
            // R1 fences its arguments as a JSON code block.
            Some((_, Self::DeepSeekV31)) if has("```json") => Self::DeepSeekR1,
            Some(&(_, format)) => format,
            None if has("<|start_header_id|>") && has("tools") => Self::Llama3,
            None => Self::Generic,
        }
    }

    /// A stable name (`hermes`, `mistral_nemo`...), for the model card and tests.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Generic => "generic",
            Self::Hermes => "hermes",
            Self::Qwen3CoderXml => "qwen3_coder_xml",
            Self::Llama3 => "llama3",
            Self::MistralNemo => "mistral_nemo",
            Self::MistralV11 => "mistral_v11",
            Self::CommandR7B => "command_r7b",
            Self::DeepSeekR1 => "deepseek_r1",
            Self::DeepSeekV31 => "deepseek_v3_1",
            Self::Granite => "granite",
            Self::NemotronV2 => "nemotron_v2",
            Self::FunctionaryV31 => "functionary_v3_1",
            Self::FirefunctionV2 => "firefunction_v2",
        }
    }

    /// Text that starts a tool call in the answer.
    fn starts(self) -> &'static [&'static str] {
        match self {
            Self::None | Self::Generic => &[],
            Self::Hermes | Self::Qwen3CoderXml => &["<tool_call>"],
            Self::Llama3 => &["<|python_tag|>"],
            Self::MistralNemo | Self::MistralV11 => &["[TOOL_CALLS]"],
            Self::CommandR7B => &["<|START_ACTION|>"],
            Self::DeepSeekR1 | Self::DeepSeekV31 => &[DS_CALLS_BEGIN],
            Self::Granite => &["<|tool_call|>"],
            Self::NemotronV2 => &["<TOOLCALL>"],
            Self::FunctionaryV31 => &["<function="],
            Self::FirefunctionV2 => &[" functools"],
        }
    }

    /// Markers around content that are not content.
    fn silent(self) -> &'static [&'static str] {
        match self {
            Self::CommandR7B => &["<|START_RESPONSE|>", "<|END_RESPONSE|>"],
            _ => &[],
        }
    }

    /// Whether the whole answer is read at the end (no marker starts a call).
    fn reads_whole_answer(self, first: char) -> bool {
        match self {
            Self::Generic => true,
            Self::Llama3 => first == '{',
            _ => false,
        }
    }

    /// Mistral's templates refuse ids that are not 9 letters and digits.
    fn id_len(self) -> Option<usize> {
        matches!(self, Self::MistralNemo | Self::MistralV11).then_some(9)
    }
}

/// The tags around reasoning at the start of an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reasoning {
    /// `<think>`, `[THINK]` or `<|START_THINKING|>`.
    pub open: &'static str,
    /// The matching close.
    pub close: &'static str,
}

impl Reasoning {
    const ALL: [Reasoning; 3] = [
        Reasoning {
            open: "<think>",
            close: "</think>",
        },
        Reasoning {
            open: "[THINK]",
            close: "[/THINK]",
        },
        Reasoning {
            open: "<|START_THINKING|>",
            close: "<|END_THINKING|>",
        },
    ];

    /// The reasoning tags a template's source writes, if any.
    pub fn detect(source: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| source.contains(r.open))
    }
}

/// A parsed call; `arguments` is JSON text (an object), as OpenAI returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// `call_` and 24 letters and digits (9 for Mistral's formats), or the model's own id.
    pub id: String,
    /// Always `"function"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// What to call.
    pub function: FunctionCall,
}

/// The function a [`ToolCall`] names and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// One of the request's tools.
    pub name: String,
    /// A JSON object, as text.
    pub arguments: String,
}

/// One tool call in a streamed delta, as OpenAI's `delta.tool_calls[i]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ToolCallDelta {
    /// The call's position in the message's `tool_calls`.
    pub index: usize,
    /// The call (wick sends each call whole).
    #[serde(flatten)]
    pub call: ToolCall,
}

/// What one piece of output adds to the message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChatDelta {
    /// Text of the answer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub content: String,
    /// Text of the reasoning.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reasoning_content: String,
    /// Calls completed by this piece.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallDelta>,
}

impl ChatDelta {
    /// Whether the delta adds nothing.
    pub fn is_empty(&self) -> bool {
        self.content.is_empty() && self.reasoning_content.is_empty() && self.tool_calls.is_empty()
    }
}

/// The assistant's message, as OpenAI's `choices[0].message`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AssistantMessage {
    /// Always `"assistant"`.
    pub role: &'static str,
    /// The answer; `None` (JSON `null`) when there is none beside tool calls or reasoning.
    pub content: Option<String>,
    /// The reasoning, when the model reasoned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The calls, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

impl AssistantMessage {
    /// OpenAI's finish reason for this message: [`FinishReason::ToolCalls`] when a generation
    /// that stopped by itself ended with calls, else the generation's own.
    pub fn finish_reason(&self, generation: FinishReason) -> FinishReason {
        if generation == FinishReason::Stop && !self.tool_calls.is_empty() {
            FinishReason::ToolCalls
        } else {
            generation
        }
    }
}

/// A call as read from the answer, before its id is given.
struct RawCall {
    name: String,
    arguments: Value,
    id: Option<String>,
}

/// What a format's reader makes of the text at a call's start marker.
enum Block {
    /// The call is not complete yet.
    Incomplete,
    /// Calls read from the first `len` bytes.
    Calls(Vec<RawCall>, usize),
    /// The first `len` bytes are not a call: they are content.
    Invalid(usize),
}

/// Where the reader is in the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first visible character (reasoning may still open).
    Start,
    /// Inside reasoning.
    Reasoning,
    /// After reasoning, before the first visible character of the answer.
    AfterReasoning,
    /// In content.
    Content,
    /// At a call's start marker.
    Call,
    /// Reading the whole answer at the end.
    Whole,
}

/// Text streamed into one field of the message, trimmed when the parser trims: leading
/// whitespace is dropped and trailing whitespace held back until more text follows, so what was
/// streamed is always what the final message says.
#[derive(Default)]
struct Channel {
    trim: bool,
    started: bool,
    pending: String,
    text: String,
}

impl Channel {
    fn push(&mut self, s: &str, out: &mut String) {
        if !self.trim {
            self.text.push_str(s);
            out.push_str(s);
            return;
        }
        let s = if self.started { s } else { s.trim_start() };
        if s.is_empty() {
            return;
        }
        self.started = true;
        let body = s.trim_end();
        if !body.is_empty() {
            for part in [self.pending.as_str(), body] {
                self.text.push_str(part);
                out.push_str(part);
            }
            self.pending.clear();
        }
        self.pending.push_str(&s[body.len()..]);
    }

    /// A marker: whitespace next to it is not text.
    fn cut(&mut self) {
        if self.trim {
            self.pending.clear();
            self.started = false;
        }
    }
}

/// Splits generated text into content, reasoning and tool calls, as it streams.
pub struct ChatParser {
    format: ToolFormat,
    tools: Vec<Tool>,
    reasoning: Option<Reasoning>,
    state: State,
    buf: String,
    content: Channel,
    thought: Channel,
    calls: Vec<ToolCall>,
    seed: u64,
}

impl ChatParser {
    /// A parser for answers in `format`, calling the functions `tools` defines (OpenAI tool
    /// definitions); `seed` makes the call ids. [`ToolFormat::None`] reads no calls.
    pub fn new(format: ToolFormat, tools: &[Value], seed: u64) -> Result<Self> {
        let tools = if format == ToolFormat::None {
            Vec::new()
        } else {
            parse_tools(tools)?
        };
        Ok(Self::with_tools(format, tools, seed))
    }

    fn with_tools(format: ToolFormat, tools: Vec<Tool>, seed: u64) -> Self {
        let mut parser = Self {
            format,
            tools,
            reasoning: None,
            state: State::Start,
            buf: String::new(),
            content: Channel::default(),
            thought: Channel {
                trim: true,
                ..Channel::default()
            },
            calls: Vec::new(),
            seed,
        };
        parser.content.trim = format != ToolFormat::None;
        parser
    }

    /// Reads reasoning in these tags at the start of the answer; `inside`: the prompt ended
    /// with the opening tag, so the answer starts in the reasoning.
    pub fn with_reasoning(mut self, reasoning: Reasoning, inside: bool) -> Self {
        self.reasoning = Some(reasoning);
        self.content.trim = true;
        if inside {
            self.state = State::Reasoning;
        }
        self
    }

    /// The tool format the parser reads.
    pub fn format(&self) -> ToolFormat {
        self.format
    }

    /// Feeds the next piece of generated text (a step's `text`); returns what it makes visible.
    pub fn push(&mut self, text: &str) -> ChatDelta {
        self.buf.push_str(text);
        let mut delta = ChatDelta::default();
        self.run(false, &mut delta);
        delta
    }

    /// Ends the answer: what was held back, and the whole message (equal to the deltas
    /// together).
    pub fn finish(&mut self) -> (ChatDelta, AssistantMessage) {
        let mut delta = ChatDelta::default();
        self.run(true, &mut delta);
        let content = std::mem::take(&mut self.content.text);
        let reasoning = std::mem::take(&mut self.thought.text);
        let tool_calls = std::mem::take(&mut self.calls);
        let message = AssistantMessage {
            role: "assistant",
            // OpenAI's `null` for a turn that only calls tools (or only reasoned).
            content: (!content.is_empty() || (tool_calls.is_empty() && reasoning.is_empty()))
                .then_some(content),
            reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            tool_calls,
        };
        (delta, message)
    }

    /// Parses a whole answer at once.
    pub fn parse(mut self, text: &str) -> AssistantMessage {
        self.buf.push_str(text);
        self.finish().1
    }

    fn markers(&self) -> Vec<&'static str> {
        let f = self.format;
        f.starts().iter().chain(f.silent()).copied().collect()
    }

    fn run(&mut self, eof: bool, delta: &mut ChatDelta) {
        loop {
            match self.state {
                State::Start | State::AfterReasoning => {
                    let t = self.buf.trim_start();
                    let Some(first) = t.chars().next() else {
                        if eof {
                            self.buf.clear();
                        }
                        return;
                    };
                    if let Some(r) = self.reasoning.filter(|_| self.state == State::Start) {
                        if let Some(rest) = t.strip_prefix(r.open) {
                            self.buf = rest.to_string();
                            self.state = State::Reasoning;
                            continue;
                        }
                        if r.open.starts_with(t) && !eof {
                            return;
                        }
                    }
                    self.state = if self.format.reads_whole_answer(first) {
                        State::Whole
                    } else {
                        State::Content
                    };
                }
                State::Reasoning => {
                    let close = self.reasoning.map_or("", |r| r.close);
                    if let Some(i) = self.buf.find(close).filter(|_| !close.is_empty()) {
                        self.thought
                            .push(&self.buf[..i], &mut delta.reasoning_content);
                        self.buf.drain(..i + close.len());
                        self.state = State::AfterReasoning;
                        continue;
                    }
                    let keep = if eof {
                        0
                    } else {
                        held_back(&self.buf, &[close])
                    };
                    let upto = self.buf.len() - keep;
                    self.thought
                        .push(&self.buf[..upto], &mut delta.reasoning_content);
                    self.buf.drain(..upto);
                    return;
                }
                State::Content => {
                    let markers = self.markers();
                    let found = markers
                        .iter()
                        .filter_map(|m| self.buf.find(m).map(|i| (i, *m)))
                        .min_by_key(|&(i, m)| (i, usize::MAX - m.len()));
                    if let Some((i, m)) = found {
                        self.content.push(&self.buf[..i], &mut delta.content);
                        self.content.cut();
                        if self.format.silent().contains(&m) {
                            self.buf.drain(..i + m.len());
                        } else {
                            self.buf.drain(..i);
                            self.state = State::Call;
                        }
                        continue;
                    }
                    let keep = if eof {
                        0
                    } else {
                        held_back(&self.buf, &markers)
                    };
                    let upto = self.buf.len() - keep;
                    self.content.push(&self.buf[..upto], &mut delta.content);
                    self.buf.drain(..upto);
                    return;
                }
                State::Call => {
                    let block = match read_block(self.format, &self.buf, eof, &self.tools) {
                        Block::Incomplete if eof => Block::Invalid(self.buf.len()),
                        b => b,
                    };
                    match block {
                        Block::Incomplete => return,
                        Block::Calls(calls, len) => {
                            for c in calls {
                                self.emit(c, delta);
                            }
                            self.buf.drain(..len);
                        }
                        Block::Invalid(len) => {
                            // Not a call: its text is content, as it was written.
                            let len = len.max(1).min(self.buf.len());
                            let raw = self.buf[..len].to_string();
                            self.content.push(&raw, &mut delta.content);
                            self.buf.drain(..len);
                            self.state = State::Content;
                            continue;
                        }
                    }
                    self.content.cut();
                    self.state = State::Content;
                }
                State::Whole => {
                    if !eof {
                        return;
                    }
                    let text = std::mem::take(&mut self.buf);
                    match read_whole(self.format, &text, &self.tools) {
                        Some(Whole::Calls(calls)) => {
                            for c in calls {
                                self.emit(c, delta);
                            }
                        }
                        Some(Whole::Response(r)) => self.content.push(&r, &mut delta.content),
                        None => self.content.push(&text, &mut delta.content),
                    }
                    return;
                }
            }
        }
    }

    fn emit(&mut self, call: RawCall, delta: &mut ChatDelta) {
        let index = self.calls.len();
        let id = call
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| call_id(self.seed, index, self.format.id_len()));
        let call = ToolCall {
            id,
            kind: "function".into(),
            function: FunctionCall {
                name: call.name,
                arguments: call.arguments.to_string(),
            },
        };
        delta.tool_calls.push(ToolCallDelta {
            index,
            call: call.clone(),
        });
        self.calls.push(call);
    }
}

/// A call id: `call_` and 24 letters and digits as OpenAI's, or `len` of them alone (Mistral),
/// from the request's seed and the call's index, so a seeded run is reproducible.
fn call_id(seed: u64, index: usize, len: Option<usize>) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let n = len.unwrap_or(24);
    let body: String = (0..n)
        .map(|_| ALPHABET[(rng.next_u64() % ALPHABET.len() as u64) as usize] as char)
        .collect();
    match len {
        Some(_) => body,
        None => format!("call_{body}"),
    }
}

/// The first JSON value in `text` and the bytes it took (leading whitespace included);
/// `Err(true)` when `text` ends inside it, `Err(false)` when it is not JSON.
fn json_prefix(text: &str) -> std::result::Result<(Value, usize), bool> {
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    match values.next() {
        Some(Ok(v)) => Ok((v, values.byte_offset())),
        Some(Err(e)) => Err(e.is_eof()),
        None => Err(true),
    }
}

/// A call from a JSON object with the name under `name_key` and the arguments (an object, or
/// JSON text of one) under `args_key`, if the name is a tool's.
fn call_from(v: &Value, name_key: &str, args_key: &str, tools: &[Tool]) -> Option<RawCall> {
    let name = v.get(name_key)?.as_str()?;
    let arguments = match v.get(args_key) {
        None | Some(Value::Null) => json!({}),
        Some(Value::String(s)) => serde_json::from_str(s).ok()?,
        Some(a) => a.clone(),
    };
    known_call(name, arguments, tools)
}

fn known_call(name: &str, arguments: Value, tools: &[Tool]) -> Option<RawCall> {
    (arguments.is_object() && tools.iter().any(|t| t.name == name)).then(|| RawCall {
        name: name.to_string(),
        arguments,
        id: None,
    })
}

/// Calls from a JSON array of call objects.
fn calls_from_array(
    v: &Value,
    keys: (&str, &str),
    id_key: Option<&str>,
    tools: &[Tool],
) -> Option<Vec<RawCall>> {
    let items = v.as_array().filter(|a| !a.is_empty())?;
    items
        .iter()
        .map(|item| {
            let mut call = call_from(item, keys.0, keys.1, tools)?;
            call.id = id_key.and_then(|k| item.get(k)).and_then(|id| match id {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            Some(call)
        })
        .collect()
}

/// The text between `open` (at the start of `text`) and `close`, and the bytes up to the end of
/// `close`; `None` while `close` has not come.
fn enclosed<'a>(text: &'a str, open: &str, close: &str) -> Option<(&'a str, usize)> {
    let inner = text.strip_prefix(open)?;
    let end = inner.find(close)?;
    Some((&inner[..end], open.len() + end + close.len()))
}

/// A block whose calls lie between `open` and `close`: incomplete until `close`.
fn closed_block(
    text: &str,
    open: &str,
    close: &str,
    read: impl Fn(&str) -> Option<Vec<RawCall>>,
) -> Block {
    match enclosed(text, open, close) {
        None => Block::Incomplete,
        Some((inner, len)) => match read(inner) {
            Some(calls) => Block::Calls(calls, len),
            None => Block::Invalid(len),
        },
    }
}

/// A block made of `open` and one JSON value: complete when the value is.
fn json_block(text: &str, open: &str, read: impl Fn(&Value) -> Option<Vec<RawCall>>) -> Block {
    let rest = &text[open.len()..];
    match json_prefix(rest) {
        Err(true) => Block::Incomplete,
        Err(false) => Block::Invalid(open.len()),
        Ok((v, n)) => match read(&v) {
            Some(calls) => Block::Calls(calls, open.len() + n),
            None => Block::Invalid(open.len() + n),
        },
    }
}

/// Reads the call(s) at the start of `text`, which begins with one of the format's start
/// markers. `eof`: no more text will come.
fn read_block(format: ToolFormat, text: &str, eof: bool, tools: &[Tool]) -> Block {
    let hermes = |inner: &str| {
        let v: Value = serde_json::from_str(inner.trim()).ok()?;
        Some(vec![call_from(&v, "name", "arguments", tools)?])
    };
    match format {
        ToolFormat::Hermes => closed_block(text, "<tool_call>", "</tool_call>", hermes),
        ToolFormat::Qwen3CoderXml => closed_block(text, "<tool_call>", "</tool_call>", |inner| {
            Some(vec![xml_call(inner, tools)?])
        }),
        ToolFormat::MistralNemo => json_block(text, "[TOOL_CALLS]", |v| {
            calls_from_array(v, ("name", "arguments"), Some("id"), tools)
        }),
        ToolFormat::MistralV11 => mistral_v11_block(text, tools),
        ToolFormat::CommandR7B => {
            closed_block(text, "<|START_ACTION|>", "<|END_ACTION|>", |inner| {
                let v: Value = serde_json::from_str(inner.trim()).ok()?;
                calls_from_array(&v, ("tool_name", "parameters"), Some("tool_call_id"), tools)
            })
        }
        ToolFormat::DeepSeekR1 | ToolFormat::DeepSeekV31 => {
            closed_block(text, DS_CALLS_BEGIN, DS_CALLS_END, |inner| {
                deepseek_calls(inner, tools)
            })
        }
        ToolFormat::Granite => json_block(text, "<|tool_call|>", |v| {
            calls_from_array(v, ("name", "arguments"), None, tools)
        }),
        ToolFormat::NemotronV2 => closed_block(text, "<TOOLCALL>", "</TOOLCALL>", |inner| {
            let v: Value = serde_json::from_str(inner.trim()).ok()?;
            calls_from_array(&v, ("name", "arguments"), None, tools)
        }),
        ToolFormat::FirefunctionV2 => json_block(text, " functools", |v| {
            calls_from_array(v, ("name", "arguments"), None, tools)
        }),
        ToolFormat::FunctionaryV31 => {
            let Some(head_end) = text.find('>') else {
                return Block::Incomplete;
            };
            let name = &text["<function=".len()..head_end];
            let Some(end) = text.find("</function>") else {
                return Block::Incomplete;
            };
            let len = end + "</function>".len();
            if end < head_end {
                return Block::Invalid(len);
            }
            match serde_json::from_str(text[head_end + 1..end].trim())
                .ok()
                .and_then(|args| known_call(name, args, tools))
            {
                Some(call) => Block::Calls(vec![call], len),
                None => Block::Invalid(len),
            }
        }
        ToolFormat::Llama3 => {
            // After `<|python_tag|>` the answer is calls until it ends.
            if !eof {
                return Block::Incomplete;
            }
            match llama3_calls(&text["<|python_tag|>".len()..], tools) {
                Some(calls) => Block::Calls(calls, text.len()),
                None => Block::Invalid(text.len()),
            }
        }
        ToolFormat::None | ToolFormat::Generic => Block::Invalid(text.len()),
    }
}

/// The longest name and id a Mistral call head may have.
const MAX_HEAD: usize = 512;

/// `[TOOL_CALLS]NAME[ARGS]{...}`, or with `[CALL_ID]ID` before `[ARGS]`.
fn mistral_v11_block(text: &str, tools: &[Tool]) -> Block {
    let rest = &text["[TOOL_CALLS]".len()..];
    // The head is a name (and an id): at most a few hundred bytes before `[ARGS]`, and no
    // other call's marker.
    let next_call = rest.find("[TOOL_CALLS]");
    let Some(args_at) = rest
        .find("[ARGS]")
        .filter(|&a| next_call.is_none_or(|n| a < n))
    else {
        return match next_call.is_some() || rest.len() > MAX_HEAD {
            true => Block::Invalid("[TOOL_CALLS]".len()),
            false => Block::Incomplete,
        };
    };
    let head = &rest[..args_at];
    let (name, id) = match head.split_once("[CALL_ID]") {
        Some((n, id)) => (n, Some(id.trim().to_string())),
        None => (head, None),
    };
    let start = "[TOOL_CALLS]".len() + args_at + "[ARGS]".len();
    match json_prefix(&text[start..]) {
        Err(true) => Block::Incomplete,
        Err(false) => Block::Invalid(start),
        Ok((args, n)) => match known_call(name.trim(), args, tools) {
            Some(mut call) => {
                call.id = id;
                Block::Calls(vec![call], start + n)
            }
            None => Block::Invalid(start + n),
        },
    }
}

/// The calls between DeepSeek's calls markers: R1's `function<｜tool▁sep｜>NAME\n```json\n{...}\n```
/// or V3.1's `NAME<｜tool▁sep｜>{...}`, each between call markers.
fn deepseek_calls(inner: &str, tools: &[Tool]) -> Option<Vec<RawCall>> {
    let mut calls = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (body, len) = enclosed(rest, DS_CALL_BEGIN, DS_CALL_END)?;
        let (head, args) = body.split_once(DS_SEP)?;
        let (name, args) = if head == "function" {
            let (name, fenced) = args.split_once('\n')?;
            let json = fenced.trim().strip_prefix("```json")?.strip_suffix("```")?;
            (name, json)
        } else {
            (head, args)
        };
        calls.push(known_call(
            name.trim(),
            serde_json::from_str(args.trim()).ok()?,
            tools,
        )?);
        rest = rest[len..].trim_start();
    }
    (!calls.is_empty()).then_some(calls)
}

/// `<function=NAME>` with `<parameter=P>\nVALUE\n</parameter>` children: a value is JSON when
/// the parameter's schema type is not a string and it parses, else text.
fn xml_call(inner: &str, tools: &[Tool]) -> Option<RawCall> {
    let inner = inner.trim();
    let rest = inner.strip_prefix("<function=")?;
    let (name, mut rest) = rest.split_once('>')?;
    let tool = tools.iter().find(|t| t.name == name)?;
    rest = rest.trim_end().strip_suffix("</function>")?;
    let mut args = Map::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let after = rest.strip_prefix("<parameter=")?;
        let (param, after) = after.split_once('>')?;
        let end = after.find("</parameter>")?;
        let raw = &after[..end];
        let raw = raw.strip_prefix('\n').unwrap_or(raw);
        let raw = raw.strip_suffix('\n').unwrap_or(raw);
        let is_string = tool.parameters["properties"][param]["type"] == "string";
        let value = match serde_json::from_str::<Value>(raw) {
            Ok(v) if !is_string => v,
            _ => Value::String(raw.to_string()),
        };
        args.insert(param.to_string(), value);
        rest = &after[end + "</parameter>".len()..];
    }
    known_call(name, Value::Object(args), tools)
}

/// Llama 3's calls: `{"name": ..., "parameters": {...}}` objects, separated by `;`.
fn llama3_calls(text: &str, tools: &[Tool]) -> Option<Vec<RawCall>> {
    let mut calls = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (v, n) = json_prefix(rest).ok()?;
        let call = call_from(&v, "name", "parameters", tools)
            .or_else(|| call_from(&v, "name", "arguments", tools))?;
        calls.push(call);
        rest = rest[n..].trim_start();
        rest = rest.strip_prefix(';').unwrap_or(rest).trim_start();
    }
    (!calls.is_empty()).then_some(calls)
}

/// What a whole answer read at the end holds.
enum Whole {
    Calls(Vec<RawCall>),
    Response(String),
}

fn read_whole(format: ToolFormat, text: &str, tools: &[Tool]) -> Option<Whole> {
    match format {
        ToolFormat::Llama3 => llama3_calls(text, tools).map(Whole::Calls),
        ToolFormat::Generic => {
            let v: Value = serde_json::from_str(text.trim()).ok()?;
            if let Some(r) = v.get("response") {
                return Some(Whole::Response(match r {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }));
            }
            if let Some(call) = v.get("tool_call") {
                return Some(Whole::Calls(vec![call_from(
                    call,
                    "name",
                    "arguments",
                    tools,
                )?]));
            }
            calls_from_array(v.get("tool_calls")?, ("name", "arguments"), None, tools)
                .map(Whole::Calls)
        }
        _ => None,
    }
}

/// What the engine prepares for one chat request.
pub struct ChatPlan {
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
    /// The grammar the answer must follow: the request's own, or the one that forces a tool
    /// call (`GenerateOptions::grammar`).
    pub grammar: Option<Grammar>,
    /// Whether the answer must show control tokens as text (`GenerateOptions::special_text`):
    /// true when the format's markers are control tokens of this vocabulary.
    pub special_text: bool,
    /// Reads the answer: feed it each step's text.
    pub parser: ChatParser,
}

impl ChatPlan {
    /// `options` with this plan's grammar and `special_text` set.
    pub fn options(&self, options: &GenerateOptions) -> GenerateOptions {
        GenerateOptions {
            grammar: self.grammar.clone(),
            special_text: self.special_text,
            ..options.clone()
        }
    }
}

impl Engine {
    /// Prepares a chat request: see [`plan_chat`].
    pub fn plan_chat(
        &self,
        req: &ChatRequest,
        response_grammar: Option<Grammar>,
    ) -> Result<ChatPlan> {
        plan_chat(
            self.chat_template()?,
            &self.tokenizer,
            req,
            response_grammar,
        )
    }
}

/// The instruction the generic format adds to the system message.
const GENERIC_INSTRUCTION: &str = "Respond in JSON format, either with `tool_call` (a request to call a tool) or with `response` (your reply to the user's request).";

/// Prepares a chat request for a model with this template and tokenizer: the prompt with the
/// tools rendered, the grammar, and the parser for the answer.
///
/// `response_grammar` is the request's structured output (`response_format`); with tools it is
/// refused unless `tool_choice` is `none`, as llama.cpp refuses it. `tool_choice` `required` or
/// a named function is constrained by a grammar for every format but `qwen3_coder_xml` (its
/// values are free text per parameter; the model is asked, not forced) — with reasoning, the
/// grammar first closes the reasoning, so a forced call skips thinking. The generic format
/// always has a grammar (`{"tool_call": ...}` or `{"response": ...}`).
pub fn plan_chat(
    template: &ChatTemplate,
    tokenizer: &Tokenizer,
    req: &ChatRequest,
    response_grammar: Option<Grammar>,
) -> Result<ChatPlan> {
    let tools = parse_tools(&req.tools)?;
    match &req.tool_choice {
        ToolChoice::Function(name) if !tools.iter().any(|t| &t.name == name) => {
            return Err(Error::InvalidParameter(format!(
                "tool_choice names the function {name:?}, which is not among the tools"
            )))
        }
        ToolChoice::Required | ToolChoice::Function(_) if tools.is_empty() => {
            return Err(Error::InvalidParameter(
                "tool_choice requires a tool call but no tools were given".into(),
            ))
        }
        _ => {}
    }
    let active = !tools.is_empty() && req.tool_choice != ToolChoice::None;
    if active && response_grammar.is_some() {
        return Err(Error::InvalidParameter(
            "response_format cannot be combined with tools (unless tool_choice is \"none\")".into(),
        ));
    }
    let source = template.source();
    let renders_tools = source.contains("tools");
    let format = if active {
        ToolFormat::detect(source)
    } else {
        ToolFormat::None
    };
    let mut messages = normalize_messages(&req.messages)?;
    if !source.contains("tool_calls") {
        calls_as_content(&mut messages, format == ToolFormat::Generic);
    }
    if format == ToolFormat::Generic {
        let mut text = String::new();
        if !renders_tools {
            text.push_str("You can call these tools:\n");
            for t in &req.tools {
                text.push_str(&t.to_string());
                text.push('\n');
            }
        }
        text.push_str(GENERIC_INSTRUCTION);
        add_system(&mut messages, &text);
    }
    let tools_json = (active && renders_tools).then(|| Value::Array(req.tools.clone()));
    let prompt = template.prompt_json(
        &Value::Array(messages),
        tools_json.as_ref(),
        true,
        (!req.parse_special_tokens).then_some(tokenizer),
    )?;
    let ids = tokenizer.encode_with_literal(&prompt.text, true, &prompt.literal)?;
    let reasoning = Reasoning::detect(source);
    let inside = reasoning.is_some_and(|r| prompt.text.trim_end().ends_with(r.open));
    let grammar = match active {
        false => response_grammar,
        true => tool_grammar(
            format,
            &tools,
            &req.tool_choice,
            tokenizer,
            reasoning.filter(|_| inside),
        ),
    };
    let mut parser =
        ChatParser::with_tools(format, if active { tools } else { Vec::new() }, req.seed);
    if let Some(r) = reasoning {
        parser = parser.with_reasoning(r, inside);
    }
    let is_control = |m: &str| {
        tokenizer
            .token_id(m)
            .is_some_and(|id| tokenizer.is_control(id))
    };
    let special_text = format
        .starts()
        .iter()
        .chain(format.silent())
        .any(|m| is_control(m))
        || reasoning.is_some_and(|r| is_control(r.open) || is_control(r.close));
    Ok(ChatPlan {
        prompt: ids,
        grammar,
        special_text,
        parser,
    })
}

/// Roles the messages may have (`developer` is read as `system`, as OpenAI-compatible servers
/// do).
const ROLES: &[&str] = &["system", "user", "assistant", "tool", "developer"];

/// OpenAI-shaped messages as templates read them: text parts joined into one string, roles
/// checked, `developer` as `system`, tool-call arguments given as JSON text parsed into objects
/// (kept as text when they are not JSON).
fn normalize_messages(messages: &[Value]) -> Result<Vec<Value>> {
    if messages.is_empty() {
        return Err(Error::InvalidParameter(
            "the conversation has no messages".into(),
        ));
    }
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let bad = |why: String| Error::InvalidParameter(format!("messages[{i}]: {why}"));
            let mut m = m
                .as_object()
                .cloned()
                .ok_or_else(|| bad("a message must be an object".into()))?;
            let role = m
                .get("role")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("has no role".into()))?;
            if !ROLES.contains(&role) {
                return Err(bad(format!(
                    "role {role:?}; expected one of {}",
                    ROLES.join(", ")
                )));
            }
            let role = if role == "developer" { "system" } else { role }.to_string();
            m.insert("role".into(), Value::String(role.clone()));
            if let Some(Value::Array(parts)) = m.get("content") {
                let mut text = String::new();
                for (j, p) in parts.iter().enumerate() {
                    match (
                        p.get("type").and_then(Value::as_str),
                        p.get("text").and_then(Value::as_str),
                    ) {
                        (Some("text"), Some(t)) => text.push_str(t),
                        (kind, _) => {
                            return Err(bad(format!(
                                "content part {j} has type {}; this model reads only text",
                                kind.unwrap_or("(none)")
                            )))
                        }
                    }
                }
                m.insert("content".into(), Value::String(text));
            }
            match m.get("content") {
                None | Some(Value::Null) | Some(Value::String(_)) => {}
                Some(_) => {
                    return Err(bad(
                        "content must be a string, null or an array of text parts".into(),
                    ))
                }
            }
            if role == "tool" && !matches!(m.get("content"), Some(Value::String(_))) {
                return Err(bad("a tool message needs its result as content".into()));
            }
            if role != "assistant" || !m.contains_key("content") {
                m.entry("content").or_insert(Value::String(String::new()));
            }
            if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
                for call in calls {
                    let Some(f) = call.get_mut("function").and_then(Value::as_object_mut) else {
                        return Err(bad("a tool call has no function".into()));
                    };
                    if let Some(Value::String(args)) = f.get("arguments") {
                        if let Ok(v) = serde_json::from_str::<Value>(args) {
                            f.insert("arguments".into(), v);
                        }
                    }
                }
            }
            Ok(Value::Object(m))
        })
        .collect()
}

/// Assistant turns that called tools, for a template that cannot render calls (it reads only
/// `content`, and may fail on its `null`, as SmolLM2's does): under the generic format (`write`)
/// the calls written into the content as that format writes them, as llama.cpp's generic format
/// does, so the model sees what it answered; otherwise (`tool_choice` none, no tools) the turn
/// as the template would render it, its `null` content as empty text.
fn calls_as_content(messages: &mut [Value], write: bool) {
    for m in messages {
        if !write {
            if m["role"] == "assistant" && m["content"].is_null() {
                m["content"] = Value::String(String::new());
            }
            continue;
        }
        let Some(calls) = m
            .get("tool_calls")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
        else {
            continue;
        };
        let calls: Vec<Value> = calls
            .iter()
            .map(
                |c| json!({"name": c["function"]["name"], "arguments": c["function"]["arguments"]}),
            )
            .collect();
        let written = match calls.as_slice() {
            [one] => json!({ "tool_call": one }),
            _ => json!({ "tool_calls": calls }),
        }
        .to_string();
        let content = match m.get("content").and_then(Value::as_str) {
            Some(text) if !text.is_empty() => format!("{text}\n{written}"),
            _ => written,
        };
        m["content"] = Value::String(content);
    }
}

/// Adds `text` to the system message (the first message, made one if it is not).
fn add_system(messages: &mut Vec<Value>, text: &str) {
    if let Some(first) = messages.first_mut().filter(|m| m["role"] == "system") {
        let content = first["content"].as_str().unwrap_or_default();
        let joined = if content.is_empty() {
            text.to_string()
        } else {
            format!("{content}\n\n{text}")
        };
        first["content"] = Value::String(joined);
    } else {
        messages.insert(0, json!({"role": "system", "content": text}));
    }
}

/// The grammar that forces tool calls: `None` under `auto` (except the generic format, always
/// constrained) and for formats that cannot be constrained (see [`plan_chat`]).
fn tool_grammar(
    format: ToolFormat,
    tools: &[Tool],
    choice: &ToolChoice,
    tokenizer: &Tokenizer,
    close_reasoning: Option<Reasoning>,
) -> Option<Grammar> {
    let forced: Vec<&Tool> = match choice {
        ToolChoice::Function(name) => tools.iter().filter(|t| &t.name == name).collect(),
        ToolChoice::Required => tools.iter().collect(),
        ToolChoice::Auto if format == ToolFormat::Generic => tools.iter().collect(),
        _ => return None,
    };
    let one = matches!(choice, ToolChoice::Function(_));
    let g = LarkWriter { tokenizer };
    // One call object per tool, as the format's keys name them.
    let object = |name_key: &str, args_key: &str, extra: Option<(&str, Value)>| {
        let alts: Vec<Value> = forced
            .iter()
            .map(|t| {
                let mut props = Map::new();
                if let Some((k, v)) = &extra {
                    props.insert(k.to_string(), v.clone());
                }
                props.insert(name_key.into(), json!({"const": t.name}));
                props.insert(args_key.into(), t.parameters.clone());
                let required: Vec<&String> = props.keys().collect();
                json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
            })
            .collect();
        json!({"anyOf": alts})
    };
    let array = |item: Value| {
        let mut a = json!({"type": "array", "items": item, "minItems": 1});
        if one {
            a["maxItems"] = json!(1);
        }
        a
    };
    let repeat = if one { "" } else { "+" };
    let calls = match format {
        ToolFormat::Generic => {
            let call = json!({"type": "object", "properties": {"tool_call": object("name", "arguments", None)}, "required": ["tool_call"], "additionalProperties": false});
            let schema = if matches!(choice, ToolChoice::Auto) {
                json!({"anyOf": [call, {"type": "object", "properties": {"response": {"type": "string"}}, "required": ["response"], "additionalProperties": false}]})
            } else {
                call
            };
            g.json(&schema)
        }
        ToolFormat::Hermes => format!(
            "({} {} {} \"\\n\"?){repeat}",
            g.lit("<tool_call>\n"),
            g.json(&object("name", "arguments", None)),
            g.lit("\n</tool_call>")
        ),
        ToolFormat::Llama3 => g.json(&object("name", "parameters", None)),
        ToolFormat::MistralNemo
        | ToolFormat::Granite
        | ToolFormat::FirefunctionV2
        | ToolFormat::NemotronV2 => {
            // A marker, a JSON array of calls, and (Nemotron) a closing marker.
            let close = match format {
                ToolFormat::NemotronV2 => g.lit("</TOOLCALL>"),
                _ => String::new(),
            };
            format!(
                "{} {} {close}",
                g.lit(format.starts()[0]),
                g.json(&array(object("name", "arguments", None)))
            )
        }
        ToolFormat::CommandR7B => format!(
            "{} {} {}",
            g.lit("<|START_ACTION|>"),
            g.json(&array(object(
                "tool_name",
                "parameters",
                Some((
                    "tool_call_id",
                    json!({"type": "string", "pattern": "^[0-9]{1,3}$"})
                ))
            ))),
            g.lit("<|END_ACTION|>")
        ),
        ToolFormat::MistralV11 => {
            let alts = g.per_tool(&forced, |t| {
                format!(
                    "{} {} {}",
                    g.lit("[TOOL_CALLS]"),
                    g.lit(&t.name),
                    g.lit("[ARGS]")
                )
            });
            format!("({alts}){repeat}")
        }
        ToolFormat::FunctionaryV31 => {
            let alts = g.per_tool(&forced, |t| g.lit(&format!("<function={}>", t.name)));
            format!("({alts} {}){repeat}", g.lit("</function>"))
        }
        ToolFormat::DeepSeekR1 | ToolFormat::DeepSeekV31 => {
            let r1 = format == ToolFormat::DeepSeekR1;
            let alts = g.per_tool(&forced, |t| {
                if r1 {
                    format!(
                        "{} {} {} {}",
                        g.lit(DS_CALL_BEGIN),
                        g.lit("function"),
                        g.lit(DS_SEP),
                        g.lit(&format!("{}\n```json\n", t.name))
                    )
                } else {
                    format!(
                        "{} {} {}",
                        g.lit(DS_CALL_BEGIN),
                        g.lit(&t.name),
                        g.lit(DS_SEP)
                    )
                }
            });
            let tail = if r1 {
                format!("{} {}", g.lit("\n```"), g.lit(DS_CALL_END))
            } else {
                g.lit(DS_CALL_END)
            };
            format!(
                "{} ({alts} {tail}){repeat} {}",
                g.lit(DS_CALLS_BEGIN),
                g.lit(DS_CALLS_END)
            )
        }
        ToolFormat::Qwen3CoderXml | ToolFormat::None => return None,
    };
    let prefix = close_reasoning.map_or(String::new(), |r| {
        format!("{} ", g.lit(&format!("{}\n\n", r.close)))
    });
    Some(Grammar::Lark {
        grammar: format!("start: {prefix}{calls}\n"),
    })
}

/// Writes Lark for llguidance against one vocabulary.
struct LarkWriter<'a> {
    tokenizer: &'a Tokenizer,
}

impl LarkWriter<'_> {
    /// Literal text: a control token of the vocabulary as that token (`<[id]>`: grammar text
    /// can never produce a control token), anything else as a string.
    fn lit(&self, text: &str) -> String {
        match self
            .tokenizer
            .token_id(text)
            .filter(|&id| self.tokenizer.is_control(id))
        {
            Some(id) => format!("<[{id}]>"),
            None => Value::String(text.to_string()).to_string(),
        }
    }

    /// A JSON value valid against `schema`, laid out as `json.dumps` writes it.
    fn json(&self, schema: &Value) -> String {
        format!("%json {}", json_layout(schema.clone()))
    }

    /// One alternative per tool: `head(tool)` then its arguments.
    fn per_tool(&self, tools: &[&Tool], head: impl Fn(&Tool) -> String) -> String {
        tools
            .iter()
            .map(|t| format!("({} {})", head(t), self.json(&t.parameters)))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}
