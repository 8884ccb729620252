//! The layers of `src/` point one way: a module may use only the modules below it in
//! [`LAYERS`]. This test reads every `crate::…` path in `src/` (in `use` lines, grouped
//! `use crate::{…}` lists and inline paths) and names the file and line of each that
//! reaches up. The order is explained in ARCHITECTURE.md.

mod sources;

use std::fs;
use std::path::Path;

/// Top to bottom. Each module may import only those after it.
const LAYERS: &[&str] = &[
    "cli", "client", "server", "http", "service", "pipeline", "limits", "cluster", "broker",
    "auth", "db", "metrics", "model", "error", "config", "cores", "util",
];

/// Files that only declare or start the crate.
const ROOTS: &[&str] = &["lib", "main"];

#[test]
fn modules_import_only_the_layers_below_them() {
    let src = sources::src_dir();
    let files = sources::rust_files(&src);
    assert!(!files.is_empty(), "no sources under {}", src.display());
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let module = module_of(relative);
        if ROOTS.contains(&module.as_str()) {
            continue;
        }
        let own = rank(&module).unwrap_or_else(|| {
            panic!(
                "src/{} is in module `{module}`, which LAYERS does not place",
                relative.display()
            )
        });
        let text = fs::read_to_string(file).unwrap();
        for (line, target) in imports(&text) {
            if target == module {
                continue;
            }
            match rank(&target) {
                Some(r) if r > own => {}
                Some(_) => upward.push(format!(
                    "src/{}:{line}: `{module}` uses `crate::{target}`, a layer above or beside it",
                    relative.display()
                )),
                None => upward.push(format!(
                    "src/{}:{line}: `crate::{target}` is not a module LAYERS places",
                    relative.display()
                )),
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layer order:\n{}",
        upward.join("\n")
    );
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

/// `http/topics.rs` → `http`; `error.rs` → `error`.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every module a file names after `crate::`, with the line it is named on. Comments
/// are skipped; a grouped `use crate::{a::b, c}` yields `a` and `c`.
fn imports(text: &str) -> Vec<(usize, String)> {
    let code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::") {
        let start = from + at;
        from = start + "crate::".len();
        if start > 0 && is_ident(bytes[start - 1]) {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        if bytes.get(from) == Some(&b'{') {
            let end = matching_brace(&code, from);
            for name in top_level_names(&code[from + 1..end]) {
                found.push((line, name));
            }
            from = end;
        } else {
            let name: String = code[from..]
                .bytes()
                .take_while(|b| is_ident(*b))
                .map(char::from)
                .collect();
            found.push((line, name));
        }
    }
    found
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    code.len()
}

/// The first segment of each comma-separated item at depth zero of a `{…}` list.
fn top_level_names(list: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    for c in list.chars().chain(std::iter::once(',')) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let first: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !first.is_empty() && first != "self" {
                    names.push(first);
                }
                item.clear();
                continue;
            }
            _ => {}
        }
        if depth == 0 || c != '}' {
            item.push(c);
        }
    }
    names
}

#[test]
fn the_reader_finds_grouped_inline_and_macro_paths() {
    let text = "use crate::db::Conn; // crate::http in a comment\n\
                use crate::{\n    broker::{Broker, message::Message},\n    util,\n};\n\
                fn f() { crate::cores::block(|| ()); $crate::pipeline::x(); }\n\
                let notcrate::x = 1;";
    let names: Vec<(usize, String)> = imports(text);
    let expected: Vec<(usize, String)> = [
        (1, "db"),
        (2, "broker"),
        (2, "util"),
        (6, "cores"),
        (6, "pipeline"),
    ]
    .iter()
    .map(|(l, n)| (*l, n.to_string()))
    .collect();
    assert_eq!(names, expected);
}
