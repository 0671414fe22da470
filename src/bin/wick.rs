#![cfg_attr(target_family = "wasm", no_main)]
#![cfg(not(target_family = "wasm"))]
//! The `wick` command line: a thin layer over the engine for people, tests and benchmarks.
//! With `--json`, output follows a stable contract that tests and other tools rely on; errors
//! then print `{"error":{"kind":..,"message":..}}` on stdout and exit with status 1.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use wick::backend::GpuBackend;
use wick::constraint::Grammar;
use wick::sampler::SamplingParams;
use wick::tools::{AssistantMessage, ChatDelta, ChatRequest, ToolChoice};
use wick::{Engine, Event, FinishReason, GenerateOptions, Gguf, ModelCard, Session};

#[derive(Parser)]
#[command(
    name = "wick",
    version,
    about = "Run quantized GGUF language models (natively; the same engine runs in the browser)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a model's card: architecture, size, quantization, context, tokenizer, license.
    Inspect {
        model: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Tokenize text as the model does (BOS as the model says, special tokens parsed).
    Tokenize {
        model: PathBuf,
        text: String,
        #[arg(long)]
        json: bool,
    },
    /// Decode token ids to text (special tokens shown as their text unless --skip-special).
    Detokenize {
        model: PathBuf,
        ids: Vec<u32>,
        /// Leave control tokens out (the text shown for generated tokens).
        #[arg(long)]
        skip_special: bool,
        #[arg(long)]
        json: bool,
    },
    /// Render the chat template for OpenAI-shaped messages: the model's own template, or
    /// --template, with the model's special tokens; prints the template's exact output.
    ApplyTemplate {
        model: PathBuf,
        /// JSON array of messages ({"role", "content", "tool_calls", "reasoning_content", ...}).
        #[arg(long)]
        messages: PathBuf,
        /// JSON array of tool definitions.
        #[arg(long)]
        tools: Option<PathBuf>,
        /// A Jinja chat template to use instead of the model's.
        #[arg(long)]
        template: Option<PathBuf>,
        /// Leave out the assistant turn's opening (add_generation_prompt = false).
        #[arg(long)]
        no_generation_prompt: bool,
        /// Print {"text": "..."}.
        #[arg(long)]
        json: bool,
    },
    /// Raw text completion of a prompt.
    Run {
        model: PathBuf,
        #[arg(long)]
        prompt: String,
        #[command(flatten)]
        gen: GenArgs,
        /// Keep generating through end-of-generation tokens.
        #[arg(long)]
        ignore_eos: bool,
        /// Print {"prompt_ids":[..],"ids":[..],"text":".."} instead of streaming text.
        #[arg(long)]
        json: bool,
    },
    /// Interactive chat with the model's chat template, or one answer to --messages.
    Chat {
        model: PathBuf,
        /// A system message to start the conversation with.
        #[arg(long)]
        system: Option<String>,
        /// Read special-token text typed in messages (`<|im_start|>`...) as control tokens; by
        /// default it is plain text, so a message cannot forge a turn.
        #[arg(long)]
        parse_special_tokens: bool,
        /// JSON array of OpenAI tool definitions the model may call.
        #[arg(long, value_name = "FILE")]
        tools: Option<PathBuf>,
        /// auto, none, required, or the name of the one function to call.
        #[arg(long, default_value = "auto", value_name = "CHOICE")]
        tool_choice: String,
        /// Answer this conversation (a JSON array of OpenAI-shaped messages) once and exit.
        #[arg(long, value_name = "FILE")]
        messages: Option<PathBuf>,
        /// With --messages: print {"message": {role, content, reasoning_content, tool_calls},
        /// "finish_reason", "prompt_tokens", "completion_tokens"} as OpenAI's chat API does.
        #[arg(long, requires = "messages")]
        json: bool,
        #[command(flatten)]
        gen: GenArgs,
    },
    /// Measure prefill and decode speed (tokens per second).
    Bench {
        model: PathBuf,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 128)]
        gen_tokens: usize,
        #[arg(long, default_value_t = 3)]
        reps: usize,
        #[arg(long)]
        threads: Option<usize>,
        #[command(flatten)]
        backend: BackendArgs,
        /// After the measured runs, time each kind of GPU dispatch in one more prefill and
        /// decode (where the device can write timestamps inside a pass).
        #[arg(long)]
        profile: bool,
        #[arg(long)]
        json: bool,
    },
    /// Time one decode step's attention on the GPU at the real models' shapes, by position,
    /// with the GPU backend's key chunking against fixed 64-key chunks and, where the device
    /// has shader-f16, against an f32 KV cache (needs no model file).
    BenchAttention,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BackendArg {
    Cpu,
    /// The GPU through wgpu (Vulkan); an error if there is none.
    Gpu,
    /// The GPU if there is one, else the CPU.
    Auto,
}

#[derive(Args, Clone, Copy)]
struct BackendArgs {
    /// Where the forward pass runs.
    #[arg(long, value_enum, default_value_t = BackendArg::Cpu)]
    backend: BackendArg,
    /// On the GPU, keep the KV cache in f32 even where the device has shader-f16 (by default
    /// it is stored in f16 there).
    #[arg(long)]
    gpu_f32: bool,
}

#[derive(Args, Clone)]
struct GenArgs {
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f32,
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0.05)]
    min_p: f32,
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Subtract this times a token's count in the recent tokens from its logit (-2 to 2).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    frequency_penalty: f32,
    /// Subtract this from the logit of every recent token (-2 to 2).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    presence_penalty: f32,
    #[arg(long)]
    seed: Option<u64>,
    /// Stop before this string (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Context size in tokens.
    #[arg(long, default_value_t = 4096)]
    ctx: usize,
    /// Worker threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// With --json: each token's log-probability and the N most likely tokens at its position
    /// (0 to 20).
    #[arg(long, value_name = "N")]
    top_logprobs: Option<usize>,
    /// Structured output: the answer is one JSON object.
    #[arg(long, group = "structured")]
    json_object: bool,
    /// Structured output: the answer is JSON valid against the JSON schema in FILE.
    #[arg(long, value_name = "FILE", group = "structured")]
    json_schema: Option<PathBuf>,
    /// Structured output: the answer follows the Lark grammar in FILE (llguidance's dialect).
    #[arg(long, value_name = "FILE", group = "structured")]
    grammar: Option<PathBuf>,
    /// Structured output: the answer matches this regular expression.
    #[arg(long, value_name = "PATTERN", group = "structured")]
    regex: Option<String>,
    #[command(flatten)]
    backend: BackendArgs,
}

impl GenArgs {
    /// The structured-output option, reading its file.
    fn grammar(&self) -> anyhow::Result<Option<Grammar>> {
        Ok(if self.json_object {
            Some(Grammar::JsonObject)
        } else if let Some(p) = &self.json_schema {
            let schema = serde_json::from_str(&read(p)?).map_err(|e| {
                wick::Error::InvalidParameter(format!("{}: not JSON: {e}", p.display()))
            })?;
            Some(Grammar::JsonSchema { schema })
        } else if let Some(p) = &self.grammar {
            Some(Grammar::Lark { grammar: read(p)? })
        } else {
            self.regex.clone().map(|pattern| Grammar::Regex { pattern })
        })
    }

    fn options(&self, ignore_eos: bool) -> anyhow::Result<GenerateOptions> {
        Ok(GenerateOptions {
            max_tokens: self.max_tokens,
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repetition_penalty: self.repetition_penalty,
                frequency_penalty: self.frequency_penalty,
                presence_penalty: self.presence_penalty,
                seed: self.seed,
                ..SamplingParams::default()
            },
            stop: self.stop.clone(),
            ignore_eos,
            grammar: self.grammar()?,
            logprobs: self.top_logprobs,
            special_text: false,
        })
    }
}

fn main() {
    let cli = Cli::parse();
    let json = matches!(
        cli.command,
        Command::Inspect { json: true, .. }
            | Command::Tokenize { json: true, .. }
            | Command::Detokenize { json: true, .. }
            | Command::ApplyTemplate { json: true, .. }
            | Command::Run { json: true, .. }
            | Command::Bench { json: true, .. }
            | Command::Chat { json: true, .. }
    );
    if let Err(e) = run(cli.command) {
        let (kind, message) = match e.downcast_ref::<wick::Error>() {
            Some(w) => (w.kind(), format!("{e:#}")),
            None => ("error", format!("{e:#}")),
        };
        if json {
            println!("{}", json!({"error": {"kind": kind, "message": message}}));
        }
        eprintln!("wick: {message}");
        std::process::exit(1);
    }
}

/// Log-probabilities as OpenAI's chat API lays them out, with the token ids beside the texts.
fn logprobs_json(
    tokenizer: &wick::tokenizer::Tokenizer,
    logprobs: &[wick::session::TokenLogprob],
) -> serde_json::Value {
    let entry = |id: u32, logprob: f32| json!({"id": id, "token": tokenizer.token_piece(id).unwrap_or_default(), "logprob": logprob});
    logprobs
        .iter()
        .map(|t| {
            let mut e = entry(t.id, t.logprob);
            e["top_logprobs"] = t.top.iter().map(|&(id, lp)| entry(id, lp)).collect();
            e
        })
        .collect()
}

/// A file the command line names; one that cannot be read is an `invalid_parameter` error.
fn read(p: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(p).map_err(|e| {
        anyhow::Error::new(wick::Error::InvalidParameter(format!(
            "reading {}: {e}",
            p.display()
        )))
    })
}

fn set_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if let Some(n) = threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build_global()?;
    }
    Ok(())
}

/// A session on the chosen backend (the GPU one uploads the model), and the GPU it runs on.
fn session(
    engine: Arc<Engine>,
    context: usize,
    args: BackendArgs,
) -> anyhow::Result<(Session, Option<wick::gpu::GpuInfo>)> {
    let backend = args.backend;
    if backend == BackendArg::Cpu {
        return Ok((Session::new(engine, context), None));
    }
    let options = wick::gpu::GpuOptions { f16: !args.gpu_f32 };
    let gpu = match wick::gpu::Gpu::open_blocking(options) {
        Ok(g) => Arc::new(g),
        Err(e) if backend == BackendArg::Auto => {
            eprintln!("wick: {e}; running on the CPU");
            return Ok((Session::new(engine, context), None));
        }
        Err(e) => return Err(e.into()),
    };
    let b = match GpuBackend::new(gpu.clone(), &engine, context) {
        Ok(b) => b,
        Err(e) if backend == BackendArg::Auto => {
            eprintln!("wick: the GPU cannot run this model ({e}); running on the CPU");
            return Ok((Session::new(engine, context), None));
        }
        Err(e) => return Err(e.into()),
    };
    Ok((
        Session::with_backend(engine, Box::new(b)),
        Some(gpu.info.clone()),
    ))
}

fn load(model: &std::path::Path) -> anyhow::Result<Arc<Engine>> {
    let engine = Engine::open(model).with_context(|| format!("loading {}", model.display()))?;
    Ok(Arc::new(engine))
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Inspect { model, json } => {
            let gguf =
                Gguf::open(&model).with_context(|| format!("opening {}", model.display()))?;
            let mut card = ModelCard::from_gguf(&gguf)?;
            // Whether this build runs it: the family's loader reads every hyperparameter and
            // tensor (weights stay views into the file, so this is quick).
            let runs = wick::model::Model::load(&gguf);
            let supported = runs.is_ok();
            if let Ok(m) = &runs {
                card.features = m.plan().features();
            }
            if json {
                let mut v = serde_json::to_value(&card)?;
                v["supported"] = json!(supported);
                match &runs {
                    Ok(m) => v["features"] = json!(m.plan().features()),
                    Err(e) => {
                        v["unsupported"] = json!({ "kind": e.kind(), "message": e.to_string() })
                    }
                }
                println!("{v}");
            } else {
                print_card(&card, supported);
                match &runs {
                    Ok(_) => println!("  family         {}", card.features.join(", ")),
                    Err(e) => println!("  cannot run     {} ({})", e, e.kind()),
                }
            }
        }
        Command::Tokenize { model, text, json } => {
            let gguf = Gguf::open(&model)?;
            let tokenizer = wick::tokenizer::Tokenizer::from_metadata(&gguf.metadata)?;
            let ids = tokenizer.encode(&text, true)?;
            if json {
                println!("{}", json!({ "ids": ids }));
            } else {
                for id in ids {
                    println!("{id:>8} {:?}", tokenizer.decode(&[id])?);
                }
            }
        }
        Command::Detokenize {
            model,
            ids,
            skip_special,
            json,
        } => {
            let gguf = Gguf::open(&model)?;
            let tokenizer = wick::tokenizer::Tokenizer::from_metadata(&gguf.metadata)?;
            let text = if skip_special {
                tokenizer.decode_skip_special(&ids)?
            } else {
                tokenizer.decode(&ids)?
            };
            if json {
                println!("{}", json!({ "text": text }));
            } else {
                println!("{text}");
            }
        }
        Command::ApplyTemplate {
            model,
            messages,
            tools,
            template,
            no_generation_prompt,
            json,
        } => {
            let gguf = Gguf::open(&model)?;
            let chat = match &template {
                Some(path) => wick::chat::ChatTemplate::with_source(&gguf.metadata, read(path)?)?,
                None => wick::chat::ChatTemplate::from_metadata(&gguf.metadata)?,
            };
            let tools = tools.as_deref().map(read).transpose()?;
            let text =
                chat.render_json(&read(&messages)?, tools.as_deref(), !no_generation_prompt)?;
            if json {
                println!("{}", json!({ "text": text }));
            } else {
                print!("{text}");
            }
        }
        Command::Run {
            model,
            prompt,
            gen,
            ignore_eos,
            json,
        } => {
            set_threads(gen.threads)?;
            let engine = load(&model)?;
            let prompt_ids = engine.encode(&prompt)?;
            let (mut session, _) = session(engine, gen.ctx, gen.backend)?;
            let stdout = std::io::stdout();
            let out = session.generate(&prompt_ids, &gen.options(ignore_eos)?, |ev| {
                if let (false, Event::Token { text, .. }) = (json, ev) {
                    let mut s = stdout.lock();
                    let _ = s.write_all(text.as_bytes());
                    let _ = s.flush();
                }
                true
            })?;
            if json {
                let mut v = json!({"prompt_ids": prompt_ids, "ids": out.ids, "margins": out.margins, "text": out.text, "finish_reason": out.finish_reason});
                if gen.top_logprobs.is_some() {
                    v["logprobs"] = logprobs_json(&session.engine().tokenizer, &out.logprobs);
                }
                println!("{v}");
            } else {
                println!();
            }
        }
        Command::Chat {
            model,
            system,
            parse_special_tokens,
            tools,
            tool_choice,
            messages,
            json,
            gen,
        } => {
            let tools: Vec<serde_json::Value> = match &tools {
                Some(p) => serde_json::from_str(&read(p)?).map_err(|e| {
                    wick::Error::InvalidParameter(format!("{}: not a JSON array: {e}", p.display()))
                })?,
                None => Vec::new(),
            };
            let request = ChatRequest {
                messages: system
                    .into_iter()
                    .map(|s| json!({"role": "system", "content": s}))
                    .collect(),
                tools,
                tool_choice: ToolChoice::from_cli(&tool_choice),
                parse_special_tokens,
                seed: gen.seed.unwrap_or(0),
            };
            match messages {
                Some(p) => answer_once(model, request, &p, json, gen)?,
                None => chat(model, request, gen)?,
            }
        }
        Command::BenchAttention => bench_attention()?,
        Command::Bench {
            model,
            prompt_tokens,
            gen_tokens,
            reps,
            threads,
            backend,
            profile,
            json,
        } => {
            set_threads(threads)?;
            let runs = reps.max(1);
            bench(
                model,
                prompt_tokens,
                gen_tokens,
                runs,
                backend,
                profile,
                json,
            )?;
        }
    }
    Ok(())
}

fn print_card(c: &ModelCard, supported: bool) {
    println!("{}", c.name.as_deref().unwrap_or("(unnamed model)"));
    println!(
        "  architecture   {}{}",
        c.architecture,
        if supported {
            ""
        } else {
            " (this build cannot run it)"
        }
    );
    println!("  parameters     {:.1} M", c.parameters as f64 / 1e6);
    println!(
        "  file           {:.1} MB, {}",
        c.file_size as f64 / 1e6,
        c.file_type.as_deref().unwrap_or("?")
    );
    let quants: Vec<String> = c
        .quant_types
        .iter()
        .map(|(k, v)| format!("{k} {:.1} MB", *v as f64 / 1e6))
        .collect();
    println!("  tensors        {}", quants.join(", "));
    println!("  context        {} tokens", c.context_length);
    println!(
        "  layers         {} x {} wide, {} heads ({} KV)",
        c.block_count, c.embedding_length, c.head_count, c.head_count_kv
    );
    println!(
        "  tokenizer      {} ({} tokens){}",
        c.tokenizer_model,
        c.vocab_size,
        if c.add_bos { ", adds BOS" } else { "" }
    );
    let eot: Vec<&str> = c.eot_tokens.iter().map(|t| t.text.as_str()).collect();
    println!("  stops at       {}", eot.join(" "));
    let template = match (&c.chat_template_error, c.has_chat_template) {
        (Some(problem), _) => format!("broken ({problem}); raw completion only"),
        (None, true) => "yes".into(),
        (None, false) => "no".into(),
    };
    println!("  chat template  {template}");
    println!(
        "  license        {}",
        c.license.as_deref().unwrap_or("(not stated)")
    );
}

/// One assistant turn, as OpenAI's message.
struct Answer {
    message: AssistantMessage,
    finish_reason: FinishReason,
    generation: wick::Generation,
    first_token: Option<Instant>,
}

/// One assistant turn for `request`: streamed to the terminal when `show` (content on stdout,
/// reasoning on stderr, each tool call on a line of its own), parsed into OpenAI's message.
fn answer(
    engine: &Engine,
    session: &mut Session,
    request: &ChatRequest,
    opts: &GenerateOptions,
    show: bool,
) -> wick::Result<Answer> {
    let mut plan = engine.plan_chat(request, opts.grammar.clone())?;
    let options = plan.options(opts);
    let mut stdout = std::io::stdout();
    let mut print = |d: &ChatDelta| {
        if !show {
            return;
        }
        eprint!("{}", d.reasoning_content);
        let _ = stdout.write_all(d.content.as_bytes());
        for c in &d.tool_calls {
            let f = &c.call.function;
            let _ = writeln!(
                stdout,
                "\n[tool call {}] {}({})",
                c.call.id, f.name, f.arguments
            );
        }
        let _ = stdout.flush();
    };
    let mut first_token = None;
    let generation = session.generate(&plan.prompt, &options, |ev| {
        if let Event::Token { text, .. } = ev {
            first_token.get_or_insert_with(Instant::now);
            print(&plan.parser.push(text));
        }
        true
    })?;
    let (last, message) = plan.parser.finish();
    print(&last);
    Ok(Answer {
        finish_reason: message.finish_reason(generation.finish_reason),
        message,
        generation,
        first_token,
    })
}

/// `wick chat --messages FILE`: one answer, printed as text or (`--json`) as OpenAI's message.
fn answer_once(
    model: PathBuf,
    mut request: ChatRequest,
    messages: &std::path::Path,
    json: bool,
    gen: GenArgs,
) -> anyhow::Result<()> {
    set_threads(gen.threads)?;
    let given: Vec<serde_json::Value> = serde_json::from_str(&read(messages)?).map_err(|e| {
        wick::Error::InvalidParameter(format!("{}: not a JSON array: {e}", messages.display()))
    })?;
    request.messages.extend(given);
    let engine = load(&model)?;
    let (mut session, _) = session(engine.clone(), gen.ctx, gen.backend)?;
    let a = answer(&engine, &mut session, &request, &gen.options(false)?, !json)?;
    if json {
        println!(
            "{}",
            json!({"message": a.message, "finish_reason": a.finish_reason, "prompt_tokens": a.generation.prompt_tokens, "completion_tokens": a.generation.ids.len()})
        );
    } else {
        println!();
    }
    Ok(())
}

fn chat(model: PathBuf, mut request: ChatRequest, gen: GenArgs) -> anyhow::Result<()> {
    set_threads(gen.threads)?;
    let engine = load(&model)?;
    // No template, or a broken one: say so before the first message.
    engine.chat_template()?;
    let name = engine.card.name.clone().unwrap_or_else(|| "model".into());
    let (mut session, _) = session(engine.clone(), gen.ctx, gen.backend)?;
    let opts = gen.options(false)?;
    eprintln!("Chatting with {name}. Type a message; /reset starts over, /exit or Ctrl-D quits.");
    let stdin = std::io::stdin();
    loop {
        eprint!("> ");
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end_matches(['\n', '\r']);
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                request.messages.retain(|m| m["role"] == "system");
                session.reset();
                continue;
            }
            _ => {}
        }
        request
            .messages
            .push(json!({"role": "user", "content": line}));
        let started = Instant::now();
        let a = match answer(&engine, &mut session, &request, &opts, true) {
            Ok(a) => a,
            Err(wick::Error::ContextOverflow { .. }) => {
                eprintln!("\n[the conversation no longer fits the context: /reset to start over]");
                request.messages.pop();
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let reply = &a.generation;
        let decode_s = a
            .first_token
            .map(|t| t.elapsed().as_secs_f64())
            .unwrap_or(0.0);
        eprintln!(
            "\n[{} prompt tokens ({} reused), {} generated, {:.1} tok/s, {:.2} s]",
            reply.prompt_tokens,
            reply.reused_tokens,
            reply.ids.len(),
            if decode_s > 0.0 {
                (reply.ids.len().saturating_sub(1)) as f64 / decode_s
            } else {
                0.0
            },
            started.elapsed().as_secs_f64()
        );
        if !a.message.tool_calls.is_empty() {
            eprintln!("[the model called tools; this chat cannot run them, so it answers next turn without their results]");
        }
        request.messages.push(serde_json::to_value(&a.message)?);
    }
    Ok(())
}

/// A fixed English text, tokenized and cut (or repeated) to exactly `n` tokens.
fn bench_prompt(engine: &Engine, n: usize) -> anyhow::Result<Vec<u32>> {
    const TEXT: &str = "The history of the printing press begins in the fifteenth century, when \
        movable type made books cheap enough for ordinary readers. Within fifty years, presses \
        had spread to more than two hundred cities across Europe, and the number of books in \
        circulation grew from thousands to millions. Scholars argue about how much this changed \
        the way people thought, but few doubt that it changed what they could read. ";
    let mut ids = engine.encode(TEXT)?;
    let body = engine.tokenizer.encode(TEXT, false)?;
    while ids.len() < n {
        ids.extend_from_slice(&body);
    }
    ids.truncate(n);
    Ok(ids)
}

fn bench_attention() -> anyhow::Result<()> {
    let gpu = wick::gpu::Gpu::new_blocking()?;
    // Where wick uses f16, the same kernel over an f32 cache on a second device, for comparison.
    let f32_gpu = if gpu.info.f16 {
        Some(wick::gpu::Gpu::open_blocking(wick::gpu::GpuOptions {
            f16: false,
        })?)
    } else {
        None
    };
    println!("{}", gpu.info);
    let shapes = [
        ("SmolLM2 (9 x 64, 3 kv)", (9, 3, 64), None),
        ("Gemma 3 global (4 x 256, 1 kv)", (4, 1, 256), None),
        ("Gemma 3 local (window 512)", (4, 1, 256), Some(512)),
    ];
    println!(
        "{:<32} {:>8} {:>10} {:>10} {:>10}",
        "shape", "position", "wick us", "64-key us", "f32-KV us"
    );
    for (name, dims, window) in shapes {
        for start in [128, 256, 512, 1024, 2048, 4000] {
            let mut times = [Vec::new(), Vec::new(), Vec::new()];
            for _ in 0..5 {
                let runs = [(&gpu, None), (&gpu, Some(64))]
                    .into_iter()
                    .chain(f32_gpu.as_ref().map(|g| (g, None)));
                for (i, (g, chunk)) in runs.enumerate() {
                    let t = pollster::block_on(wick::gpu::probe::attention_time(
                        g, dims, window, start, chunk, 200,
                    ))?;
                    times[i].push(t * 1e6);
                }
            }
            let [ours, fixed, f32s] = times.map(|t| {
                if t.is_empty() {
                    "-".to_string()
                } else {
                    format!("{:.1}", median(t))
                }
            });
            println!("{name:<32} {start:>8} {ours:>10} {fixed:>10} {f32s:>10}");
        }
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench(
    model: PathBuf,
    prompt_tokens: usize,
    gen_tokens: usize,
    reps: usize,
    backend: BackendArgs,
    profile: bool,
    json: bool,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let engine = load(&model)?;
    let load_s = t0.elapsed().as_secs_f64();
    let prompt = bench_prompt(&engine, prompt_tokens.max(1))?;
    let opts = GenerateOptions {
        max_tokens: gen_tokens,
        sampling: SamplingParams::greedy(),
        ignore_eos: true,
        ..GenerateOptions::default()
    };
    let (mut prefill, mut decode) = (Vec::new(), Vec::new());
    let (mut session, gpu) = session(engine.clone(), prompt.len() + gen_tokens + 1, backend)?;
    // One warm-up run, then `reps` measured runs, each from an empty cache.
    for rep in 0..=reps {
        session.reset();
        let start = Instant::now();
        let (mut prefilled_at, mut first_at) = (None, None);
        let out = session.generate(&prompt, &opts, |ev| {
            match ev {
                Event::Prefilled { .. } => prefilled_at = Some(Instant::now()),
                Event::Token { .. } => {
                    first_at.get_or_insert_with(Instant::now);
                }
            }
            true
        })?;
        let end = Instant::now();
        if rep == 0 {
            continue;
        }
        let p = prefilled_at.unwrap_or(end);
        prefill.push(prompt.len() as f64 / (p - start).as_secs_f64());
        // The first token comes from the prefill logits; decode runs the other n-1 forwards.
        let f = first_at.unwrap_or(end);
        if out.ids.len() > 1 {
            decode.push((out.ids.len() - 1) as f64 / (end - f).as_secs_f64());
        }
    }
    let profiles = if profile {
        // Prefill: the prompt, from an empty cache. Decode: the prompt plus its first token is
        // then a cached prefix and one new position, followed by one-token passes.
        session.reset();
        session.set_profiling(true)?;
        let first = session.generate(
            &prompt,
            &GenerateOptions {
                max_tokens: 1,
                ..opts.clone()
            },
            |_| true,
        )?;
        let prefill = session.profile_report().unwrap_or_default();
        session.set_profiling(true)?;
        let mut longer = prompt.clone();
        longer.extend_from_slice(&first.ids);
        session.generate(&longer, &opts, |_| true)?;
        let decode = session.profile_report().unwrap_or_default();
        session.set_profiling(false)?;
        Some((prefill, decode))
    } else {
        None
    };
    let threads = rayon::current_num_threads();
    let (p, d) = (
        median(prefill.clone()),
        if decode.is_empty() {
            0.0
        } else {
            median(decode.clone())
        },
    );
    if json {
        println!(
            "{}",
            json!({"engine": "wick", "model": model.file_name().map(|s| s.to_string_lossy()), "threads": threads,
                   "backend": session.backend_name(), "gpu": gpu,
                   "prompt_tokens": prompt.len(), "gen_tokens": gen_tokens, "load_s": load_s,
                   "prefill_tok_s": p, "decode_tok_s": d, "prefill_runs": prefill, "decode_runs": decode,
                   "profile": profiles.map(|(p, d)| json!({"prefill": p, "decode": d}))})
        );
    } else {
        println!(
            "{}: {} backend, {} threads, load {:.2} s",
            model.display(),
            session.backend_name(),
            threads,
            load_s
        );
        if let Some(g) = &gpu {
            println!("  GPU {g}");
        }
        println!(
            "  prefill {:>8.1} tok/s  ({} tokens, median of {reps})",
            p,
            prompt.len()
        );
        println!(
            "  decode  {:>8.1} tok/s  ({} tokens, median of {reps})",
            d, gen_tokens
        );
        if let Some((p, d)) = profiles {
            println!("prefill profile: {p}decode profile: {d}");
        }
    }
    Ok(())
}
