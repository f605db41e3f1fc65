//! `tw schema COMMAND`: the JSON Schema of a command's `--format json`
//! output (or of `tw watch`'s records), generated from the Rust types that
//! write it, so it cannot drift from the output. The .deb ships them under
//! /usr/share/tw/schema/ (`tw generate`).

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use crate::analyze::watch::Record;
use crate::cli::SchemaCommand;
use crate::render::json::{self, Document};

/// Every command with a schema, as `tw schema` names it.
pub const ALL: [SchemaCommand; 12] = [
    SchemaCommand::Ls,
    SchemaCommand::LsInternals,
    SchemaCommand::LsUnix,
    SchemaCommand::Count,
    SchemaCommand::CountStats,
    SchemaCommand::Summary,
    SchemaCommand::Ports,
    SchemaCommand::Doctor,
    SchemaCommand::Explain,
    SchemaCommand::Watch,
    SchemaCommand::Conntrack,
    SchemaCommand::Trace,
];

pub fn schema(cmd: SchemaCommand) -> schemars::Schema {
    let doc = match cmd {
        SchemaCommand::Ls => Document::Ls,
        SchemaCommand::LsInternals => return crate::render::internals::schema(),
        SchemaCommand::LsUnix => return crate::render::unix::schema(),
        SchemaCommand::Count => Document::Count,
        SchemaCommand::CountStats => return crate::render::internals::stats_schema(),
        SchemaCommand::Summary => Document::Summary,
        SchemaCommand::Ports => Document::Ports,
        SchemaCommand::Doctor => Document::Doctor,
        SchemaCommand::Explain => {
            let mut s = schemars::schema_for!(crate::explain::ExplainJson);
            s.insert("title".into(), "tw explain --format json".into());
            return s;
        }
        SchemaCommand::Watch => {
            let mut s = schemars::schema_for!(Record);
            s.insert(
                "title".into(),
                "tw watch: one JSON Lines record (and one line of a --record file)".into(),
            );
            return s;
        }
        SchemaCommand::Conntrack => return crate::render::conntrack::schema(),
        SchemaCommand::Trace => {
            let mut s = schemars::schema_for!(super::trace::Record);
            s.insert("title".into(), "tw trace: one JSON Lines record".into());
            return s;
        }
    };
    json::schema(doc)
}

/// The name `tw schema` takes and the .deb's file names use.
pub fn name(cmd: SchemaCommand) -> &'static str {
    match cmd {
        SchemaCommand::Ls => "ls",
        SchemaCommand::LsInternals => "ls-internals",
        SchemaCommand::LsUnix => "ls-unix",
        SchemaCommand::Count => "count",
        SchemaCommand::CountStats => "count-stats",
        SchemaCommand::Summary => "summary",
        SchemaCommand::Ports => "ports",
        SchemaCommand::Doctor => "doctor",
        SchemaCommand::Explain => "explain",
        SchemaCommand::Watch => "watch",
        SchemaCommand::Conntrack => "conntrack",
        SchemaCommand::Trace => "trace",
    }
}

pub fn run(cmd: SchemaCommand, out: &mut dyn Write) -> Result<Outcome> {
    serde_json::to_writer_pretty(&mut *out, &schema(cmd))?;
    writeln!(out)?;
    Ok(Outcome::Ok)
}
