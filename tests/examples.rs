//! The Rust example runs as its header says, on a real model: a reply streams out and the run
//! ends with its token counts. It runs the program `cargo build --release --examples` builds
//! (scripts/test does, first): `cargo test` builds examples only as test harnesses.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// `target/<profile>/examples/<name>`, next to this test's own `deps/` folder.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run cargo build --release --examples",
        path.display()
    );
    path
}

#[test]
fn generate_streams_a_reply_and_counts_its_tokens() {
    let out = Command::new(example("generate"))
        .arg(model_path(SMOLLM2))
        .arg("Name three colours.")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (reply, summary) = stdout.trim_end().rsplit_once('\n').unwrap();
    assert!(reply.trim().len() > 10, "a reply: {reply:?}");
    // "[N prompt tokens, M generated]"
    let counts: Vec<usize> = summary
        .trim_matches(|c| c == '[' || c == ']')
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    assert_eq!(counts.len(), 2, "{summary:?}");
    assert!(
        counts[0] > 5 && (1..=200).contains(&counts[1]),
        "{summary:?}"
    );
}

#[test]
fn generate_without_its_arguments_says_how_to_call_it() {
    let out = Command::new(example("generate")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: generate MODEL.gguf"));
}
