//! Output. Each format has its own renderer (table, plain, json, and the
//! Prometheus text); they share the row text ([`cells`]), the sections
//! ([`sections`]) and doctor's prose ([`doctor`]), so a table and its plain
//! twin always say the same thing.

pub mod cells;
pub mod doctor;
pub mod json;
pub mod listing;
pub mod plain;
pub mod prometheus;
mod report;
pub mod sections;
pub mod table;
pub mod text;
pub mod watch;

use std::io::{self, Write};

pub use cells::Annotation;
pub use listing::Stream;
pub use report::Report;

/// `--format`: how a command's answer is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Bordered table (the default on a terminal).
    Table,
    /// Aligned columns, no borders or colour (the default when piped).
    Plain,
    /// JSON, with the schema in README.md.
    Json,
}

/// Decided once per run from the terminal and the environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    /// Colour states in tables (a terminal, and NO_COLOR unset).
    pub color: bool,
}

pub fn render(
    format: Format,
    report: &Report,
    out: &mut dyn Write,
    style: &Style,
) -> io::Result<()> {
    match format {
        Format::Table => table::render(report, out, style),
        Format::Plain => plain::render(report, out),
        Format::Json => json::render(report, out),
    }
}

/// The row writer of a format that can stream `tw ls`; `None` for the
/// table, which sizes itself on every row (comfy-table) and ends with the
/// TIME_WAIT histogram of the whole set.
pub fn listing_rows(format: Format) -> Option<Box<dyn listing::Rows>> {
    match format {
        Format::Table => None,
        Format::Plain => Some(Box::new(plain::ListingRows::default())),
        Format::Json => Some(Box::new(json::ListingRows::default())),
    }
}
