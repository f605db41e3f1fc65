//! The modules are layers, and imports only point down the data flow:
//! model <- query <- source <- analyze <- render <- the surfaces <- app.
//! This reads every file under src/ and fails on an import of a layer above
//! the file's own, or of a module beside it in another top-level folder of
//! the same rank. No root needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and its rank: a module may use only modules of a
/// lower rank (and itself).
const RANKS: &[(&str, u8)] = &[
    ("model", 0),
    ("query", 1),
    ("source", 2),
    ("analyze", 3),
    ("render", 4),
    ("explain", 5),
    ("plot", 5),
    ("tui", 5),
    ("serve", 5),
    ("cli", 5),
    ("app", 6),
];

fn rank(module: &str) -> u8 {
    RANKS
        .iter()
        .find(|(m, _)| *m == module)
        .unwrap_or_else(|| panic!("src/{module}: a new top-level module needs a rank in RANKS"))
        .1
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `crate::NAME` references in the file's code (tests included: a test
/// that needs an upper layer belongs up there).
fn uses(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name == "{" || name.is_empty() {
                continue;
            }
            found.push(name);
        }
    }
    found
}

#[test]
fn imports_point_down_the_data_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &all {
        let rel = path.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs").to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let text = std::fs::read_to_string(path).unwrap();
        for used in uses(&text) {
            if used != top && rank(&used) >= rank(&top) {
                wrong
                    .entry(rel.display().to_string())
                    .or_default()
                    .push(used);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the flow (file: modules of its rank or above): {wrong:#?}"
    );
}

#[test]
fn a_use_of_a_higher_layer_is_seen() {
    assert_eq!(uses("use crate::app::run; // crate::tui"), ["app"]);
    assert!(rank("app") > rank("model"));
}
