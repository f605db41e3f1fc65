//! A JSON Schema (draft 2020-12) validator for the keywords `tw schema`
//! writes: $ref into $defs, type, enum, const, properties, required,
//! additionalProperties, items, minItems/maxItems, minimum/maximum, anyOf,
//! oneOf, allOf. Any other keyword that constrains is refused, so a schema
//! cannot pass here by using one this does not check.

use serde_json::Value;

/// Keywords that only annotate.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "title",
    "description",
    "format",
    "default",
    "examples",
];

/// Every place `value` breaks `schema`, as "path: reason"; empty when valid.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, schema, value, "$", &mut errors);
    errors
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let obj = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return errors.push(format!("{path}: no value allowed")),
        Value::Object(o) => o,
        other => panic!("{path}: a schema must be an object or a boolean: {other}"),
    };
    for (k, s) in obj {
        match k.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            // Checked with "properties".
            "$defs" | "required" | "additionalProperties" => {}
            "$ref" => {
                let name = s
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("{path}: only #/$defs/ refs: {s}"));
                let target = &root["$defs"][name];
                assert!(!target.is_null(), "{path}: $ref to a missing {name}");
                check(root, target, v, path, errors);
            }
            "type" => {
                let types: Vec<&str> = match s {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(a) => a.iter().map(|t| t.as_str().unwrap()).collect(),
                    _ => panic!("{path}: bad type {s}"),
                };
                if !types.iter().any(|t| is_type(v, t)) {
                    errors.push(format!("{path}: {v} is not of type {s}"));
                }
            }
            "enum" => {
                if !s.as_array().unwrap().contains(v) {
                    errors.push(format!("{path}: {v} is not one of {s}"));
                }
            }
            "const" => {
                if s != v {
                    errors.push(format!("{path}: {v} is not {s}"));
                }
            }
            "properties" => {
                let Some(o) = v.as_object() else { continue };
                let props = s.as_object().unwrap();
                for (name, sub) in props {
                    if let Some(x) = o.get(name) {
                        check(root, sub, x, &format!("{path}.{name}"), errors);
                    }
                }
                for name in obj
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if !o.contains_key(name.as_str().unwrap()) {
                        errors.push(format!("{path}: {name} is required"));
                    }
                }
                if let Some(extra) = obj.get("additionalProperties") {
                    for (name, x) in o.iter().filter(|(n, _)| !props.contains_key(*n)) {
                        check(root, extra, x, &format!("{path}.{name}"), errors);
                    }
                }
            }
            "items" => {
                for (i, x) in v.as_array().into_iter().flatten().enumerate() {
                    check(root, s, x, &format!("{path}[{i}]"), errors);
                }
            }
            "minItems" | "maxItems" => {
                let Some(a) = v.as_array() else { continue };
                let n = s.as_u64().unwrap() as usize;
                if (k == "minItems" && a.len() < n) || (k == "maxItems" && a.len() > n) {
                    errors.push(format!("{path}: {} items, {k} {n}", a.len()));
                }
            }
            "minimum" | "maximum" => {
                let Some(x) = v.as_f64() else { continue };
                let bound = s.as_f64().unwrap();
                if (k == "minimum" && x < bound) || (k == "maximum" && x > bound) {
                    errors.push(format!("{path}: {x} breaks {k} {bound}"));
                }
            }
            "anyOf" | "oneOf" | "allOf" => {
                let passing = s
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sub| validate_under(root, sub, v, path))
                    .count();
                let n = s.as_array().unwrap().len();
                let ok = match k.as_str() {
                    "anyOf" => passing > 0,
                    "oneOf" => passing == 1,
                    _ => passing == n,
                };
                if !ok {
                    errors.push(format!("{path}: {v} fails {k} ({passing} of {n} match)"));
                }
            }
            other => panic!("{path}: keyword {other} is not checked by this validator"),
        }
    }
}

fn validate_under(root: &Value, schema: &Value, v: &Value, path: &str) -> bool {
    let mut errors = Vec::new();
    check(root, schema, v, path, &mut errors);
    errors.is_empty()
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unknown type {other}"),
    }
}
