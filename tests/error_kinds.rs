//! One vocabulary of error kinds: the kinds the engine emits (`Error::kind()` in src/error.rs,
//! and the `js_error("kind", ..)` calls of the browser glue in src/web/) are the kinds an embedder
//! may see, which www/errors.js lists in `ERROR_KINDS` and www/wick.d.ts in `ErrorKind`; those
//! two lists are equal, and every kind in them is raised somewhere (in Rust or in www/).

use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Rust kinds the worker never passes on as they are: `gpu` (a GPU failure while generating)
/// becomes `gpu_lost` after the worker moves the engine to the CPU (www/worker.js).
const TRANSLATED_BY_THE_WORKER: &[(&str, &str)] = &[("gpu", "gpu_lost")];

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The text between `open` (the first `{`/`[` at or after `from`) and its matching `close`.
fn block<'a>(s: &'a str, from: &str, open: char, close: char) -> &'a str {
    let at = s.find(from).unwrap_or_else(|| panic!("`{from}` not found"));
    let start = at + s[at..].find(open).unwrap();
    let mut depth = 0;
    for (i, c) in s[start..].char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return &s[start + 1..start + i];
            }
        }
    }
    panic!("`{from}`: unbalanced {open}{close}");
}

/// Quoted words (`q` is the quote character) in `s`, with comments (`//` to the end of a line)
/// dropped.
fn quoted(s: &str, q: char) -> Vec<String> {
    s.lines()
        .map(|l| l.split("//").next().unwrap())
        .flat_map(|l| {
            l.split(q)
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn set(kinds: Vec<String>, what: &str) -> BTreeSet<String> {
    let set: BTreeSet<String> = kinds.iter().cloned().collect();
    assert_eq!(
        set.len(),
        kinds.len(),
        "{what} lists a kind twice: {kinds:?}"
    );
    set
}

/// Every kind `Error::kind()` returns.
fn rust_error_kinds() -> BTreeSet<String> {
    quoted(
        block(&read("src/error.rs"), "fn kind(&self)", '{', '}'),
        '"',
    )
    .into_iter()
    .collect()
}

/// Every kind the browser glue raises itself: `js_error("kind", ...)` in src/web/.
fn web_kinds() -> BTreeSet<String> {
    let mut kinds = BTreeSet::new();
    for entry in std::fs::read_dir(Path::new(ROOT).join("src/web")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for call in text.split("js_error(").skip(1) {
            let call = call.trim_start();
            if let Some(rest) = call.strip_prefix('"') {
                kinds.insert(rest.split('"').next().unwrap().to_string());
            }
        }
    }
    kinds
}

fn errors_js_kinds() -> BTreeSet<String> {
    let text = read("www/errors.js");
    let list = block(&text, "ERROR_KINDS = Object.freeze(", '[', ']');
    set(quoted(list, '\''), "www/errors.js ERROR_KINDS")
}

fn d_ts_kinds() -> BTreeSet<String> {
    let text = read("www/wick.d.ts");
    let at = text
        .find("export type ErrorKind =")
        .expect("wick.d.ts has no ErrorKind");
    let decl = &text[at..at + text[at..].find(';').unwrap()];
    set(quoted(decl, '\''), "www/wick.d.ts ErrorKind")
}

#[test]
fn errors_js_and_wick_d_ts_list_the_same_kinds() {
    let js = errors_js_kinds();
    let ts = d_ts_kinds();
    assert_eq!(
        js,
        ts,
        "www/errors.js ERROR_KINDS and www/wick.d.ts ErrorKind differ: only in errors.js {:?}, only in wick.d.ts {:?}",
        js.difference(&ts).collect::<Vec<_>>(),
        ts.difference(&js).collect::<Vec<_>>()
    );
}

#[test]
fn every_kind_the_engine_emits_is_listed_for_embedders() {
    let js = errors_js_kinds();
    let rust = rust_error_kinds();
    let web = web_kinds();
    assert!(
        rust.contains("invalid_model") && rust.contains("io"),
        "parsed {rust:?}"
    );
    assert!(web.contains("busy"), "parsed {web:?}");
    let worker = read("www/worker.js");
    for (kind, becomes) in TRANSLATED_BY_THE_WORKER {
        assert!(
            rust.contains(*kind),
            "`{kind}` is no longer an Error::kind()"
        );
        assert!(
            worker.contains(&format!("'{kind}'")) && worker.contains(&format!("'{becomes}'")),
            "www/worker.js no longer turns `{kind}` into `{becomes}`"
        );
        assert!(
            !js.contains(*kind),
            "`{kind}` never reaches an embedder, yet errors.js lists it"
        );
    }
    let translated: BTreeSet<String> = TRANSLATED_BY_THE_WORKER
        .iter()
        .map(|(k, _)| k.to_string())
        .collect();
    let missing: Vec<_> = rust
        .union(&web)
        .filter(|k| !js.contains(*k) && !translated.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "kinds the engine emits that www/errors.js and www/wick.d.ts do not list: {missing:?}"
    );
}

#[test]
fn every_listed_kind_is_raised_somewhere() {
    let emitted: BTreeSet<String> = rust_error_kinds().union(&web_kinds()).cloned().collect();
    let mut js_code = String::new();
    for dir in ["www", "www/app"] {
        for entry in std::fs::read_dir(Path::new(ROOT).join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".js") && name != "errors.js" {
                js_code += &std::fs::read_to_string(&path).unwrap();
            }
        }
    }
    let unused: Vec<_> = errors_js_kinds()
        .into_iter()
        .filter(|k| !emitted.contains(k) && !js_code.contains(&format!("'{k}'")))
        .collect();
    assert!(
        unused.is_empty(),
        "www/errors.js lists kinds that neither the engine nor www/ raises: {unused:?}"
    );
}
