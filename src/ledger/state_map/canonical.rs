//! The canonical bytes of a stored object, which the state map hashes
//! (`schemas/README.md`, "State map"): the value's serde JSON (externally tagged, e.g.
//! `{"claim":{...}}`) re-encoded canonically: no whitespace, object keys sorted by their
//! UTF-8 bytes, integers in decimal, `null` for absent options, strings escaped as
//! RFC 8785 §3.2.2.2 (only `"`, `\` and U+0000..U+001F escaped, the short forms
//! `\b \f \n \r \t` where they exist, else `\u00xx` in lowercase hex). Values hold no
//! floats.

use crate::ledger::state::Value;

/// Append the canonical JSON of `value` (step 1) to `out`.
pub fn canonical_json(value: &Value, out: &mut Vec<u8>) {
    // Serializing our own derived types to a JSON tree cannot fail: every map key is a
    // string and there are no floats. Null stands in should that ever change, which the
    // digest tests would catch.
    let tree = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    write_canonical(&tree, out);
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value as J;
    match v {
        J::Null => out.extend_from_slice(b"null"),
        J::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        J::String(s) => write_string(s, out),
        J::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(x, out);
            }
            out.push(b']');
        }
        J::Object(m) => {
            // Sort explicitly: serde_json's map order depends on a cargo feature.
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                if let Some(x) = m.get(k) {
                    write_canonical(x, out);
                }
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_escapes_minimally() {
        let mut out = Vec::new();
        write_canonical(
            &serde_json::json!({"b": 1, "a": ["x\"\n\u{1}", null, true]}),
            &mut out,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":["x\"\n\u0001",null,true],"b":1}"#
        );
    }
}
