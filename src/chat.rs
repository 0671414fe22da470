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

use minijinja::{Environment, ErrorKind, State};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gguf::Metadata;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
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

/// A model's chat template, parsed and ready to render.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
    strip_bos: bool,
    strip_eos: bool,
    now: Option<i64>,
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
        let source = source.into();
        env.add_template_owned(NAME, source.clone())
            .map_err(template_error)?;
        Ok(Self {
            env,
            source,
            bos_token: bos_token.into(),
            eos_token: eos_token.into(),
            strip_bos: false,
            strip_eos: false,
            now: None,
        })
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

    pub fn bos_token(&self) -> &str {
        &self.bos_token
    }

    pub fn eos_token(&self) -> &str {
        &self.eos_token
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the conversation exactly as the template writes it.
    pub fn render(&self, messages: &[ChatMessage], add_generation_prompt: bool) -> Result<String> {
        validate(messages)?;
        let tmpl = self.env.get_template(NAME).map_err(template_error)?;
        let now = self.now.unwrap_or_else(clock_now);
        tmpl.render(minijinja::context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
            __wick_now => now,
        })
        .map_err(template_error)
    }

    /// Renders the conversation for `Tokenizer::encode(prompt, true)`: as [`ChatTemplate::render`],
    /// minus a leading BOS text when the tokenizer adds BOS itself (and a trailing EOS text when
    /// it adds EOS), as llama.cpp's server does, so BOS appears once.
    pub fn render_prompt(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let mut out = self.render(messages, add_generation_prompt)?;
        if self.strip_bos && !self.bos_token.is_empty() && out.starts_with(&self.bos_token) {
            out.drain(..self.bos_token.len());
        }
        if self.strip_eos && !self.eos_token.is_empty() && out.ends_with(&self.eos_token) {
            out.truncate(out.len() - self.eos_token.len());
        }
        Ok(out)
    }
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
