//! The version of tw's JSON documents: every `--format json` document and
//! every `tw watch` record carries it as `schema_version`, and `tw schema
//! COMMAND` prints the JSON Schema of each (generated from the types that
//! write them).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Raised when a field's meaning changes or one is removed; adding a field
/// keeps it.
pub const SCHEMA_VERSION: u32 = 1;

/// The `schema_version` field: always [`SCHEMA_VERSION`] when written; on
/// reading (a `--record` file), absent means a recording from before the
/// field, and a newer version is refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchemaVersion;

impl Serialize for SchemaVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(SCHEMA_VERSION)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u32::deserialize(d)?;
        if v > SCHEMA_VERSION {
            return Err(serde::de::Error::custom(format!(
                "schema_version {v} is from a newer tw (this one reads up to {SCHEMA_VERSION})"
            )));
        }
        Ok(SchemaVersion)
    }
}

impl JsonSchema for SchemaVersion {
    fn schema_name() -> Cow<'static, str> {
        "SchemaVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "The version of this document's schema (`tw schema COMMAND`).",
            "type": "integer",
            "const": SCHEMA_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_version_and_refuses_a_newer_one() {
        assert_eq!(serde_json::to_string(&SchemaVersion).unwrap(), "1");
        assert!(serde_json::from_str::<SchemaVersion>("1").is_ok());
        let err = serde_json::from_str::<SchemaVersion>("2").unwrap_err();
        assert!(err.to_string().contains("newer tw"), "{err}");
    }
}
