//! The engine from Rust in one page: load a GGUF, chat-format a prompt with the model's own
//! template, and stream a reply.
//!
//! ```sh
//! cargo run --release --example generate -- models/SmolLM2-135M-Instruct.Q4_1.gguf "Why is the sky blue?"
//! ```

use std::io::Write;
use std::sync::Arc;

use wick::chat::ChatMessage;
use wick::{Engine, Event, GenerateOptions, Session};

fn main() -> wick::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(question)) = (args.next(), args.next()) else {
        eprintln!("usage: generate MODEL.gguf \"question\"");
        std::process::exit(2);
    };
    let engine = Arc::new(Engine::open(path.as_ref())?);
    // The prompt as the model was trained to see it: its chat template, then tokens.
    let prompt = engine.chat_prompt(&[ChatMessage::new("user", question)])?;
    let mut session = Session::new(engine, 2048);
    let options = GenerateOptions {
        max_tokens: 200,
        ..Default::default()
    };
    let done = session.generate(&prompt, &options, |event| {
        if let Event::Token { text, .. } = event {
            print!("{text}");
            std::io::stdout().flush().ok();
        }
        true // false would stop the generation here
    })?;
    println!(
        "\n[{} prompt tokens, {} generated]",
        done.prompt_tokens,
        done.ids.len()
    );
    Ok(())
}
