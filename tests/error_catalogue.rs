//! The error catalogue: every fixed `detail` text of `src/error.rs` is listed in
//! `docs/api.md`, and no other source file spells an error text out for `ApiError`
//! (they name the catalogue's constants and constructors instead).

mod sources;

use std::fs;
use std::path::Path;

fn read(relative: &str) -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)).unwrap()
}

/// `(NAME, text)` of each `pub const NAME: &str = "text";` in the `detail` module.
fn catalogue() -> Vec<(String, String)> {
    let source = read("src/error.rs");
    let start = source.find("pub mod detail {").expect("a detail module");
    let end = start + source[start..].find("\n}\n").expect("its end");
    let body = source[start..end].replace("=\n", "= ");
    body.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub const ")?;
            let (name, value) = rest.split_once(": &str =")?;
            let text = value.trim().strip_suffix(';')?.trim();
            let text = text
                .strip_prefix('"')?
                .strip_suffix('"')?
                .replace("\\\"", "\"");
            Some((name.to_string(), text))
        })
        .collect()
}

#[test]
fn every_fixed_detail_text_is_documented() {
    let texts = catalogue();
    assert!(texts.len() > 40, "the catalogue was not read: {texts:?}");
    let docs = read("docs/api.md");
    let missing: Vec<String> = texts
        .iter()
        .filter(|(_, text)| !docs.contains(&format!("`{text}`")))
        .map(|(name, text)| format!("{name}: `{text}`"))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/api.md:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_call_site_spells_out_an_error_text() {
    let texts = catalogue();
    let mut found = Vec::new();
    for file in sources::rust_files(&sources::src_dir()) {
        if file.ends_with("src/error.rs") {
            continue;
        }
        let source = fs::read_to_string(&file).unwrap();
        // Unit tests may compare with the texts they expect.
        let code = source.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            for (name, text) in &texts {
                if line.contains(&format!("\"{}\"", text.replace('"', "\\\""))) {
                    found.push(format!("{}:{}: spells out {name}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "use the catalogue instead:\n{}",
        found.join("\n")
    );
}
