//! The module graph: every `crate::X` path in `src/` (a `use` line or a path in code) may name only
//! the top-level modules that ARCHITECTURE.md's "Allowed imports" table allows for the file's own
//! top-level module, and that table must have no cycle. `src/bin/` is checked the same way through
//! its `wick::X` paths. The table is read from ARCHITECTURE.md, so the document and the check
//! cannot drift apart.
//!
//! What it reads: Rust source with comments and string literals blanked out; paths that start
//! with `crate::` (or `wick::` in `src/bin/`), including `use crate::{a::B, c}` groups, and the
//! crate root's re-exports (`crate::Engine` counts as an import of `engine`). `super::` paths are
//! not followed: they stay inside a top-level module everywhere in `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The allowed-imports table: module -> modules it may import.
fn allowed_table(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let start = doc
        .find("### Allowed imports")
        .expect("ARCHITECTURE.md has no `### Allowed imports` section");
    let section = &doc[start..];
    let section = &section[..section[3..].find("\n#").map_or(section.len(), |i| i + 3)];
    let mut table = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let names = |cell: &str| -> BTreeSet<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .map(|s| s.trim().to_string())
                .collect()
        };
        let module = names(cells[1]);
        assert_eq!(
            module.len(),
            1,
            "ARCHITECTURE.md: a row names one module: {line}"
        );
        let module = module.into_iter().next().unwrap();
        let may = names(cells[2]);
        assert!(
            table.insert(module.clone(), may).is_none(),
            "ARCHITECTURE.md: `{module}` has two rows in the allowed-imports table"
        );
    }
    assert!(
        !table.is_empty(),
        "ARCHITECTURE.md: the allowed-imports table has no rows"
    );
    table
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/gpu/model.rs` -> `gpu`, `src/error.rs` -> `error`,
/// `src/lib.rs` -> `lib`, `src/bin/wick.rs` -> `bin`.
fn module_of(rel: &Path) -> String {
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.strip_suffix(".rs").unwrap_or(&first).to_string()
}

/// `src` with comments and the contents of string and char literals replaced by spaces (newlines
/// kept, so byte offsets still give line numbers).
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                let mut j = i;
                while j < b.len() {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0
                    || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
                    || b[i - 1] == b'b') =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                let end = src[body..]
                    .find(&close)
                    .map_or(b.len(), |n| body + n + close.len());
                blank(&mut out, body, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j.min(b.len()));
                i = j + 1;
            }
            // A char literal ('x', '\n', '"'), not a lifetime ('a).
            b'\'' => {
                let rest = &b[i + 1..];
                let len = if rest.first() == Some(&b'\\') {
                    rest.iter().skip(1).position(|&c| c == b'\'').map(|p| p + 2)
                } else {
                    let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (rest.get(ch) == Some(&b'\'')).then_some(ch)
                };
                match len {
                    Some(n) => {
                        blank(&mut out, i + 1, i + 1 + n);
                        i += n + 2;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).unwrap()
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segment of each item of a `{...}` group that starts `s` (nested groups are
/// items of their own item).
fn group_heads(s: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut item_start = true;
    for (i, c) in s.char_indices() {
        match c {
            '{' => {
                depth += 1;
                item_start = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => item_start = true,
            c if item_start && (c.is_alphanumeric() || c == '_') => {
                heads.push(ident_at(&s[i..]));
                item_start = false;
            }
            _ => {}
        }
    }
    heads
}

/// `(line, name)` for every crate-level name a file's code reaches through `prefix` (`crate::`).
fn imports(code: &str, prefix: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(prefix) {
        let at = from + at;
        from = at + prefix.len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '$') {
            continue; // `foo_crate::`, `$crate::`, `x::crate::`
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = code[from..].trim_start();
        if rest.starts_with('{') {
            for head in group_heads(rest) {
                found.push((line, head.to_string()));
            }
        } else {
            found.push((line, ident_at(rest).to_string()));
        }
    }
    found
}

/// The crate root's modules, and its re-exported names with the module they come from.
fn root_names(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let code = code_only(lib);
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let stmt = stmt.rsplit(']').next().unwrap().trim(); // drop #[cfg(...)]
        if let Some(m) = stmt.strip_prefix("pub mod ").or(stmt.strip_prefix("mod ")) {
            modules.insert(m.trim().to_string());
        } else if let Some(path) = stmt.strip_prefix("pub use ") {
            let module = ident_at(path).to_string();
            let rest = path[module.len()..].trim_start_matches(':');
            let names: Vec<&str> = if rest.starts_with('{') {
                rest.trim_matches(|c| c == '{' || c == '}')
                    .split(',')
                    .map(str::trim)
                    .collect()
            } else {
                vec![rest]
            };
            for name in names.into_iter().filter(|n| !n.is_empty()) {
                let name = name.rsplit(" as ").next().unwrap().trim();
                reexports.insert(name.to_string(), module.clone());
            }
        }
    }
    (modules, reexports)
}

/// A cycle in `table`, if there is one, as the modules along it.
fn find_cycle(table: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        table: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| s == m).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(m.to_string(), 1);
        stack.push(m.to_string());
        for next in table.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, table, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(m.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    table
        .keys()
        .find_map(|m| visit(m, table, &mut state, &mut Vec::new()))
}

/// Every forbidden edge in the tree under `root`, as `file:line: message` lines.
fn violations(root: &Path) -> Vec<String> {
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let table = allowed_table(&doc);
    let src = root.join("src");
    let (modules, reexports) = root_names(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut problems = Vec::new();
    if let Some(cycle) = find_cycle(&table) {
        problems.push(format!(
            "ARCHITECTURE.md: the allowed-imports table has a cycle: {}",
            cycle.join(" -> ")
        ));
    }
    for (m, may) in &table {
        for other in may {
            if !table.contains_key(other) {
                problems.push(format!(
                    "ARCHITECTURE.md: `{m}` may import `{other}`, which has no row of its own"
                ));
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let shown = Path::new("src").join(rel).display().to_string();
        let module = module_of(rel);
        let Some(may) = table.get(&module) else {
            problems.push(format!(
                "{shown}: module `{module}` has no row in ARCHITECTURE.md's allowed-imports table"
            ));
            continue;
        };
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        let prefix = if module == "bin" { "wick::" } else { "crate::" };
        for (line, name) in imports(&code, prefix) {
            let target = if modules.contains(&name) {
                name.clone()
            } else if let Some(m) = reexports.get(&name) {
                m.clone()
            } else {
                problems.push(format!(
                    "{shown}:{line}: `{prefix}{name}` is neither a module nor a re-export of the crate root"
                ));
                continue;
            };
            if target != module && !may.contains(&target) {
                let via = if target == name {
                    String::new()
                } else {
                    format!(" (through the crate root's `{name}`)")
                };
                problems.push(format!(
                    "{shown}:{line}: `{module}` imports `{target}`{via}, which ARCHITECTURE.md's \
                     allowed-imports table does not allow (`{module}` may import: {})",
                    if may.is_empty() {
                        "nothing".to_string()
                    } else {
                        may.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                ));
            }
        }
    }
    problems
}

#[test]
fn module_imports_follow_the_allowed_table() {
    let problems = violations(Path::new(ROOT));
    assert!(
        problems.is_empty(),
        "{} forbidden import(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_reader_finds_paths_and_skips_comments_and_strings() {
    let src = r#"
use crate::error::{Error, Result};
use crate::{chat::ChatMessage, sampler, Engine};
// use crate::gpu::Gpu;
/* crate::web */
let s = "crate::bin";
let c = '"'; let t = crate::tokenizer::special_texts(md);
fn f<'a>(x: &'a str) -> crate::model::Model { $crate::x; my_crate::y }
"#;
    let found: Vec<(usize, String)> = imports(&code_only(src), "crate::");
    let found: Vec<(usize, &str)> = found.iter().map(|(l, n)| (*l, n.as_str())).collect();
    assert_eq!(
        found,
        [
            (2, "error"),
            (3, "chat"),
            (3, "sampler"),
            (3, "Engine"),
            (7, "tokenizer"),
            (8, "model")
        ]
    );
    let mut cyclic = BTreeMap::new();
    cyclic.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    cyclic.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&cyclic).unwrap(), ["a", "b", "a"]);
}
