//! The published JSON Schemas (draft 2020-12) accept what the ledger produces and the
//! examples in `schemas/examples/`, and refuse what the ledger refuses.

use std::fs;
use std::path::Path;

use lesson_ledger::log::envelope::Envelope;
use lesson_ledger::log::store::{AdmitAll, Outcome};
use serde_json::Value;
use tempfile::TempDir;

use crate::support::{envelope, new_log, signer, verified};

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name);
    let schema: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}"
    );
    jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid schema: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}");
}

#[test]
fn every_example_validates_against_its_schema_and_means_what_it_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/examples");
    let mut checked = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(kind) = name.split('.').next() else {
            continue;
        };
        let schema_file = format!("{kind}.schema.json");
        if !dir.parent().unwrap().join(&schema_file).exists() {
            continue;
        }
        let instance: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_valid(&schema(&schema_file), &instance, &name);
        if kind == "envelope" {
            let e = Envelope::from_json(&fs::read(&path).unwrap()).unwrap();
            e.verify(&lesson_ledger::log::envelope::KeyCache::self_certifying())
                .expect("the example envelope's signatures verify");
        }
        checked += 1;
    }
    assert!(
        checked >= 2,
        "examples of the envelope and the receipt are expected, found {checked}"
    );
}

#[test]
fn what_the_ledger_produces_validates() {
    let envelope_schema = schema("envelope.schema.json");
    let receipt_schema = schema("receipt.schema.json");
    let dir = TempDir::new().unwrap();
    let mut log = new_log(dir.path());
    let (a, b) = (signer("inst-0001", 1), signer("stu-00a1", 2));
    let e = envelope(&[&a, &b], "x", 1);
    assert_valid(
        &envelope_schema,
        &serde_json::from_str(&e.to_json()).unwrap(),
        "signed envelope",
    );
    for o in log
        .append(vec![verified(e.clone()), verified(e)], &mut AdmitAll)
        .unwrap()
    {
        let r = match o {
            Outcome::Ok(r) | Outcome::Exists(r) => r,
            other => panic!("{other:?}"),
        };
        assert_valid(
            &receipt_schema,
            &serde_json::to_value(&r).unwrap(),
            "receipt",
        );
    }
}

/// A described change to an envelope's JSON.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn the_schemas_refuse_what_the_parser_refuses() {
    let envelope_schema = schema("envelope.schema.json");
    let a = signer("inst-0001", 1);
    let good: Value = serde_json::from_str(&envelope(&[&a], "x", 1).to_json()).unwrap();
    let mutations: Vec<(&str, Mutation)> = vec![
        ("unknown field", Box::new(|v| v["extra"] = 1.into())),
        (
            "missing payloadType",
            Box::new(|v| drop(v.as_object_mut().unwrap().remove("payloadType"))),
        ),
        (
            "no signatures",
            Box::new(|v| v["signatures"] = serde_json::json!([])),
        ),
        (
            "unpadded base64 sig",
            Box::new(|v| v["signatures"][0]["sig"] = "AAAA".into()),
        ),
        (
            "url-safe base64 payload",
            Box::new(|v| v["payload"] = "-_-_".into()),
        ),
        (
            "unknown signature field",
            Box::new(|v| v["signatures"][0]["extra"] = 1.into()),
        ),
        (
            "nine signatures",
            Box::new(|v| {
                let s = v["signatures"][0].clone();
                v["signatures"] = Value::Array(vec![s; 9]);
            }),
        ),
    ];
    for (what, mutate) in mutations {
        let mut v = good.clone();
        mutate(&mut v);
        assert!(!envelope_schema.is_valid(&v), "schema accepted: {what}");
        assert!(
            Envelope::from_json(v.to_string().as_bytes()).is_err(),
            "parser accepted: {what}"
        );
    }
}
