//! The payload parser's tests: every code of the exact path, and the one-pass path held to it.

use super::*;

fn code(p: &str) -> &'static str {
    parse(p.as_bytes())
        .map(|_| "ok")
        .unwrap_or_else(|e| e.code())
}

#[test]
fn parser_names_each_shape_error() {
    assert_eq!(
        code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l"}"#),
        "ok"
    );
    assert_eq!(
        code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l","x":1}"#),
        "unknown_field"
    );
    assert_eq!(
        code(r#"{"kind":"lesson_confirmed","id":"e"}"#),
        "missing_field"
    );
    assert_eq!(
        code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l","lesson":"m"}"#),
        "duplicate_field"
    );
    assert_eq!(code(r#"{"kind":"lesson_eaten","id":"e"}"#), "unknown_kind");
    assert_eq!(code(r#"{"id":"e"}"#), "missing_field");
    assert_eq!(
        code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":7}"#),
        "malformed_payload"
    );
    assert_eq!(
        code(r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l"} x"#),
        "malformed_payload"
    );
    assert_eq!(code(r#"["kind"]"#), "malformed_payload");
    assert_eq!(code(r#"{"kind":1}"#), "malformed_payload");
    let big = format!(
        r#"{{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"{}"}}"#,
        "a".repeat(20_000)
    );
    assert_eq!(code(&big), "payload_too_large");
}

/// The exact path alone (what `parse` was before the one-pass path).
fn exact(payload: &[u8]) -> Result<Entry, RuleError> {
    let fields: UniqueFields = serde_json::from_slice(payload).unwrap();
    let mut map = serde_json::Map::new();
    let mut kind = String::new();
    for (k, v) in fields.0 {
        match (k.as_str(), v) {
            ("kind", serde_json::Value::String(s)) => kind = s,
            (_, v) => {
                map.insert(k, v);
            }
        }
    }
    entry_from(&kind, serde_json::Value::Object(map)).map_err(|e| RuleError::MalformedPayload {
        detail: e.to_string(),
    })
}

#[test]
fn the_one_pass_path_reads_every_example_as_the_exact_path_does() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples/entries");
    let mut read = 0;
    for file in std::fs::read_dir(dir).unwrap() {
        let payload = std::fs::read(file.unwrap().path()).unwrap();
        let fast = parse_one_pass(&payload).expect("an example is well formed");
        assert_eq!(fast, exact(&payload).unwrap());
        read += 1;
    }
    assert_eq!(read, KINDS.len(), "one example per kind");
}

#[test]
fn the_one_pass_path_takes_no_payload_the_exact_path_refuses() {
    for bad in [
        r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l","x":1}"#,
        r#"{"kind":"lesson_confirmed","id":"e"}"#,
        r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l","lesson":"m"}"#,
        r#"{"kind":"lesson_confirmed","kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l"}"#,
        r#"{"kind":"lesson_eaten","id":"e"}"#,
        r#"{"id":"e"}"#,
        r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":7}"#,
        r#"{"kind":"lesson_confirmed","id":"e","ledger":"x","lesson":"l"} x"#,
        r#"["kind"]"#,
        r#"{"kind":1}"#,
        r#"{"kind":"pledge_withdrawn","id":"e","ledger":"x","pledge":"p","lessons":1.5}"#,
        r#"{"kind":"pledge_withdrawn","id":"e","ledger":"x","pledge":"p","lessons":-1}"#,
    ] {
        assert_eq!(parse_one_pass(bad.as_bytes()), None, "{bad}");
        assert!(parse(bad.as_bytes()).is_err(), "{bad}");
    }
    // Escapes are not borrowed: the exact path reads them, with the same result.
    let escaped = r#"{"kind":"lesson_confirmed","id":"e\u0031","ledger":"x","lesson":"l"}"#;
    assert_eq!(parse(escaped.as_bytes()).unwrap().id(), "e1");
}

#[test]
fn kinds_table_matches_the_enum() {
    assert_eq!(KINDS.len(), 25);
    for (name, fields) in KINDS {
        assert!(fields.iter().any(|(f, r)| *f == "id" && *r), "{name}");
    }
}

#[test]
fn genesis_window_defaults_to_15_days() {
    let e = parse(
        br#"{"kind":"genesis","id":"g","ledger":"o","origin":"o","associations":[],"operator":"op","operator_key":"k",
             "allocation_validity_days":90,"unit":"CNY-fen","districts":[],"subjects":[]}"#,
    )
    .unwrap();
    let Entry::Genesis(g) = e else {
        panic!("not genesis")
    };
    assert_eq!(g.confirmation_window_days, 15);
}
