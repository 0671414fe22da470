//! Chat templates from GGUF metadata, rendered with minijinja.

use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use wick::chat::{ChatMessage, ChatTemplate};
use wick::gguf::Metadata;
use wick::tokenizer::Tokenizer;
use wick::{Error, Gguf};

fn metadata(file: &str) -> Option<Metadata> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} is absent (run scripts/fetch-models)",
            path.display()
        );
        return None;
    }
    Some(Gguf::open(&path).unwrap().metadata)
}

fn conversation() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new("system", "You are a terse assistant."),
        ChatMessage::new("user", "What is 2+2?"),
        ChatMessage::new("assistant", "4."),
        ChatMessage::new("user", "And 3+3?"),
    ]
}

#[test]
fn smollm2_renders_chatml() {
    let Some(md) = metadata("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let t = ChatTemplate::from_metadata(&md).unwrap();
    let want = "<|im_start|>system\nYou are a terse assistant.<|im_end|>\n\
                <|im_start|>user\nWhat is 2+2?<|im_end|>\n\
                <|im_start|>assistant\n4.<|im_end|>\n\
                <|im_start|>user\nAnd 3+3?<|im_end|>\n\
                <|im_start|>assistant\n";
    assert_eq!(t.render(&conversation(), true).unwrap(), want);
    // No BOS is added by this tokenizer, so the prompt for encoding is the same text.
    assert_eq!(t.render_prompt(&conversation(), true).unwrap(), want);
    let without_prompt = t.render(&conversation(), false).unwrap();
    assert_eq!(
        without_prompt,
        want.strip_suffix("<|im_start|>assistant\n").unwrap()
    );

    // Without a system message the template supplies its own.
    let out = t.render(&[ChatMessage::new("user", "Hi")], true).unwrap();
    assert_eq!(
        out,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );

    // The rendered markers encode as the control tokens.
    let tok = Tokenizer::from_metadata(&md).unwrap();
    let ids = tok
        .encode(&t.render_prompt(&conversation(), true).unwrap(), true)
        .unwrap();
    assert_eq!(ids[0], 1, "<|im_start|>");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 4, "<|im_end|> x4");
}

#[test]
fn gemma3_270m_has_no_template() {
    let Some(md) = metadata("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    assert!(matches!(
        ChatTemplate::from_metadata(&md),
        Err(Error::NoChatTemplate)
    ));
}

/// A Gemma-style turn template (written for this test) on Gemma 3's metadata: the template
/// writes `bos_token`, the tokenizer adds BOS too, and `render_prompt` keeps it to one.
const GEMMA_STYLE: &str = "{{ bos_token }}\
{% for m in messages %}\
{% if m['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = m['role'] %}{% endif %}\
<start_of_turn>{{ role }}\n{{ m['content'] | trim }}<end_of_turn>\n\
{% endfor %}\
{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}";

#[test]
fn gemma_turn_format_and_single_bos() {
    let Some(mut md) = metadata("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    md.insert(
        "tokenizer.chat_template".into(),
        Value::String(GEMMA_STYLE.into()),
    );
    let t = ChatTemplate::from_metadata(&md).unwrap();
    assert_eq!(t.bos_token(), "<bos>");
    assert_eq!(t.eos_token(), "<eos>");
    let msgs = [
        ChatMessage::new("user", " Hello! "),
        ChatMessage::new("assistant", "Hi."),
        ChatMessage::new("user", "Bye"),
    ];
    let body = "<start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\nHi.<end_of_turn>\n\
                <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n";
    assert_eq!(t.render(&msgs, true).unwrap(), format!("<bos>{body}"));
    let prompt = t.render_prompt(&msgs, true).unwrap();
    assert_eq!(prompt, body);
    let tok = Tokenizer::from_metadata(&md).unwrap();
    let ids = tok.encode(&prompt, true).unwrap();
    assert_eq!(&ids[..2], &[2, 105], "one <bos>, then <start_of_turn>");
    assert_eq!(ids.iter().filter(|&&i| i == 2).count(), 1);
    // Encoding the template's exact output without add_special gives the same ids.
    assert_eq!(
        tok.encode(&t.render(&msgs, true).unwrap(), false).unwrap(),
        ids
    );
}

#[test]
fn template_errors() {
    // Syntax errors are caught when the template is loaded.
    let e = ChatTemplate::new("{% for m in messages %}{{ m.content }", "", "").unwrap_err();
    assert!(matches!(e, Error::ChatTemplate(_)), "{e:?}");
    let e = ChatTemplate::new("{% if %}", "", "").unwrap_err();
    assert!(matches!(e, Error::ChatTemplate(_)), "{e:?}");

    // raise_exception surfaces the template's own message.
    let t = ChatTemplate::new(
        "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation must start with a user message') }}{% endif %}ok",
        "",
        "",
    )
    .unwrap();
    match t.render(&[ChatMessage::new("assistant", "x")], false) {
        Err(Error::ChatTemplate(msg)) => {
            assert_eq!(msg, "Conversation must start with a user message")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.render(&[ChatMessage::new("user", "x")], false).unwrap(),
        "ok"
    );

    // Runtime errors (calling something that is not callable) are template errors too.
    let t = ChatTemplate::new("{{ messages(1) }}", "", "").unwrap();
    assert!(matches!(
        t.render(&[ChatMessage::new("user", "x")], false),
        Err(Error::ChatTemplate(_))
    ));

    // A template that is not a string in the metadata.
    let mut md = Metadata::new();
    md.insert("tokenizer.chat_template".into(), Value::U32(3));
    assert!(matches!(
        ChatTemplate::from_metadata(&md),
        Err(Error::InvalidMetadata { .. })
    ));
    assert!(matches!(
        ChatTemplate::from_metadata(&Metadata::new()),
        Err(Error::NoChatTemplate)
    ));
}

#[test]
fn message_validation() {
    let t =
        ChatTemplate::new("{% for m in messages %}{{ m.content }}{% endfor %}", "", "").unwrap();
    match t.render(&[], true) {
        Err(Error::InvalidParameter(msg)) => assert!(msg.contains("no messages"), "{msg}"),
        other => panic!("{other:?}"),
    }
    match t.render(
        &[
            ChatMessage::new("user", "a"),
            ChatMessage::new("wizard", "b"),
        ],
        true,
    ) {
        Err(Error::InvalidParameter(msg)) => {
            assert!(msg.contains("wizard") && msg.contains("message 1"), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.render(&[ChatMessage::new("tool", "r")], false).unwrap(),
        "r"
    );
}

#[test]
fn python_methods_and_globals() {
    let src = "{% for m in messages %}{{ m.content.strip().upper() }}|{{ m.role.startswith('us') }}|\
               {{ m.content.split(',') | length }}{% endfor %}|{{ strftime_now('%d %b %Y') }}|{{ messages | tojson }}";
    let mut t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
    t.set_now(1_722_000_309);
    let out = t
        .render(&[ChatMessage::new("user", "  a,b ")], true)
        .unwrap();
    assert_eq!(
        out,
        r#"A,B|True|2|26 Jul 2024|[{"role":"user","content":"  a,b "}]"#
    );
    // Blocks on their own lines leave no blank lines (trim_blocks, lstrip_blocks).
    let t = ChatTemplate::new(
        "{% for m in messages %}\n  {% if true %}\n{{ m.content }}\n  {% endif %}\n{% endfor %}\n",
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        t.render(
            &[ChatMessage::new("user", "x"), ChatMessage::new("user", "y")],
            false
        )
        .unwrap(),
        "x\ny\n"
    );
}
