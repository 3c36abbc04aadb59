//! Tidy: checks of the source tree itself, in the spirit of TigerBeetle's `tidy.zig`.
//! They keep what ARCHITECTURE.md promises true as the code changes:
//! - layers only import the layers below them (no new cycle between top-level modules);
//! - functions stay short enough to read at once (70 lines from the signature to the
//!   closing brace, unit tests included, as the before-stop hook counts them; with a
//!   ratchet of the ones that are longer today: the list may only shrink);
//! - files stay short enough to hold in one's head (600 lines, with a ratchet list too);
//! - no `todo!`, `unimplemented!` or `dbg!` in shipped code.
//!
//! Each check reads `src/` as text; none needs the code to run.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, lowest layer first. A module may import only the
/// modules before it in this list (ARCHITECTURE.md, "Invariants").
const LAYERS: &[&str] = &[
    "limits", "net", "log", "witness", "ledger", "matching", "runs", "api", "http", "client",
    "publish", "national", "mirror", "web", "demo", "cli",
];

/// Imports that point up a layer today, each with the issue that removes it. The list may
/// only shrink: a new upward import fails the test, and so does an entry that no longer
/// happens (so the list never outlives the cycle it excuses).
const UPWARD_IMPORTS_KNOWN: &[(&str, &str)] = &[];

/// The longest a function may be, in lines from its signature to its closing brace.
const FUNCTION_LINES_MAX: usize = 70;

/// Functions longer than [`FUNCTION_LINES_MAX`] today, as `path::name`. Only shrinks.
const LONG_FUNCTIONS_KNOWN: &[&str] = &[
    // One arm per error variant: the table of stable codes, read as a table.
    "src/ledger/error.rs::code",
];

/// The longest a file of `src/` may be, in lines (its tests included).
const FILE_LINES_MAX: usize = 600;

/// Files longer than [`FILE_LINES_MAX`] today, as paths from the crate root. Only shrinks.
const LONG_FILES_KNOWN: &[&str] = &[
    // One variant per refusal of the rules, each with its stable code and its fields
    // documented (units included): a table, read as one.
    "src/ledger/error.rs",
];

fn src_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("readable src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .expect("under the manifest dir")
        .to_string_lossy()
        .into_owned()
}

/// The top-level module a file of `src/` belongs to (`src/log/store/mod.rs` → `log`).
fn top_module(path: &Path) -> Option<String> {
    let rel = relative(path);
    let rest = rel.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    LAYERS.contains(&name).then(|| name.to_string())
}

/// The code of a file without its `#[cfg(test)]` module (tests may import anything) and
/// without line comments (docs may name any module).
fn shipped_code(text: &str) -> String {
    let cut = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..cut]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every top-level module named after `crate::`, including inside `use crate::{a, b::c}`.
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.insert(leading_ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(leading_ident(rest));
        }
    }
    found
}

fn leading_ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

#[test]
fn layers_only_import_the_layers_below_them() {
    let mut upward: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for path in src_files() {
        let Some(from) = top_module(&path) else {
            continue;
        };
        let code = shipped_code(&fs::read_to_string(&path).expect("readable"));
        for to in crate_imports(&code) {
            let (Some(a), Some(b)) = (rank(&from), rank(&to)) else {
                continue;
            };
            if b > a {
                upward
                    .entry((from.clone(), to))
                    .or_default()
                    .push(relative(&path));
            }
        }
    }
    let known: BTreeSet<(String, String)> = UPWARD_IMPORTS_KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = upward.iter().filter(|(k, _)| !known.contains(k)).collect();
    assert!(
        new.is_empty(),
        "imports that point up a layer (order: {LAYERS:?}): {new:#?}"
    );
    let gone: Vec<_> = known.iter().filter(|k| !upward.contains_key(k)).collect();
    assert!(
        gone.is_empty(),
        "UPWARD_IMPORTS_KNOWN lists imports that no longer exist; remove them: {gone:?}"
    );
}

/// `(name, first line, line count)` of every function in `text` whose body is a block:
/// from its `fn` line to the first line at the same indentation that is `}` alone. This
/// is the before-stop hook's measure (`/work/shared/hooks/before-stop`), so the two agree:
/// a `} else {` or `});` at the function's indentation does not end it.
fn functions(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let Some(name) = fn_name(trimmed) else {
            i += 1;
            continue;
        };
        let end = (i + 1..lines.len()).find(|&j| {
            let l = lines[j];
            let t = l.trim_start();
            l.len() - t.len() == indent && t.trim_end() == "}"
        });
        match end {
            Some(j) if !trimmed.trim_end().ends_with(';') => {
                out.push((name, i + 1, j - i + 1));
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The function's name if `line` starts a function item (`pub(crate) async fn name(`).
fn fn_name(line: &str) -> Option<String> {
    let mut words = line.split_whitespace().peekable();
    while let Some(w) = words.next() {
        match w {
            "pub" | "async" | "const" | "unsafe" | "extern" => continue,
            w if w.starts_with("pub(") => continue,
            "fn" => {
                let name = leading_ident(words.next()?);
                return (!name.is_empty()).then_some(name);
            }
            _ => return None,
        }
    }
    None
}

#[test]
fn functions_are_short_enough_to_read_at_once() {
    let mut long = BTreeSet::new();
    for path in src_files() {
        // Unit tests count too: a test is read like any other function (and the
        // before-stop hook counts them).
        let text = fs::read_to_string(&path).expect("readable");
        for (name, line, count) in functions(&text) {
            if count > FUNCTION_LINES_MAX {
                long.insert((format!("{}::{name}", relative(&path)), line, count));
            }
        }
    }
    let known: BTreeSet<&str> = LONG_FUNCTIONS_KNOWN.iter().copied().collect();
    let new: Vec<_> = long
        .iter()
        .filter(|(k, _, _)| !known.contains(k.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "functions over {FUNCTION_LINES_MAX} lines (split them by their phases): {new:#?}"
    );
    let names: BTreeSet<&str> = long.iter().map(|(k, _, _)| k.as_str()).collect();
    let gone: Vec<_> = known.iter().filter(|k| !names.contains(*k)).collect();
    assert!(
        gone.is_empty(),
        "LONG_FUNCTIONS_KNOWN lists functions no longer over the limit; remove them: {gone:?}"
    );
}

#[test]
fn files_are_short_enough_to_hold_in_ones_head() {
    let mut long = BTreeMap::new();
    for path in src_files() {
        let count = fs::read_to_string(&path).expect("readable").lines().count();
        if count > FILE_LINES_MAX {
            long.insert(relative(&path), count);
        }
    }
    let known: BTreeSet<&str> = LONG_FILES_KNOWN.iter().copied().collect();
    let new: Vec<_> = long
        .iter()
        .filter(|(k, _)| !known.contains(k.as_str()))
        .collect();
    assert!(
        new.is_empty(),
        "files over {FILE_LINES_MAX} lines (split them along their seams): {new:#?}"
    );
    let gone: Vec<_> = known.iter().filter(|k| !long.contains_key(**k)).collect();
    assert!(
        gone.is_empty(),
        "LONG_FILES_KNOWN lists files no longer over the limit; remove them: {gone:?}"
    );
}

#[test]
fn shipped_code_has_no_stubs_or_debug_prints() {
    let mut found = Vec::new();
    for path in src_files() {
        let code = shipped_code(&fs::read_to_string(&path).expect("readable"));
        for (n, line) in code.lines().enumerate() {
            for marker in ["todo!(", "unimplemented!(", "dbg!("] {
                if line.contains(marker) {
                    found.push(format!("{}:{}: {}", relative(&path), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "stubs or debug prints: {found:#?}");
}

#[test]
fn the_import_scanner_reads_grouped_and_nested_imports() {
    let code = "use crate::{log::note::{A, B}, ledger as l};\nlet x = crate::runs::f();";
    let found: Vec<String> = crate_imports(code).into_iter().collect();
    assert_eq!(found, ["ledger", "log", "runs"]);
}

#[test]
fn the_function_scanner_measures_from_signature_to_closing_brace() {
    let text =
        "fn a() {\n    1\n}\n    pub(crate) async fn b(\n        x: u8,\n    ) {\n    }\nfn c();\n";
    assert_eq!(
        functions(text),
        [("a".to_string(), 1, 3), ("b".to_string(), 4, 4)]
    );
    // A `}` that does not stand alone at the function's indentation is not its end.
    let text = "fn d() -> u8 {\n    g(1)\n}.into()\n}\n";
    assert_eq!(functions(text), [("d".to_string(), 1, 4)]);
}
