//! Man pages and shell completions, made from the clap definition itself so
//! they can never disagree with the binary: `tw man [COMMAND]` and `tw
//! completions SHELL` print one; the hidden `tw generate DIR` writes them
//! all, with the JSON Schemas, for the .deb (packaging/build-deb).

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;
use clap_complete::{Generator, Shell};
use clap_mangen::roff::{roman, Roff};
use clap_mangen::Man;

use super::outdir::OutDir;
use crate::cli::Cli;

/// Writes `tw.1` and a `tw-COMMAND.1` per command, `tw.bash`, `_tw` (zsh),
/// `tw.fish` and a `tw-COMMAND.schema.json` per JSON document into `dir`
/// (a new or empty folder, see [`OutDir`]), and lists them on `out`.
pub fn generate(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let out_dir = OutDir::fresh(dir)?;
    for (name, text) in render_all().context("rendering the pages")? {
        let path = out_dir.write(&name, &text)?;
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

/// `tw completions SHELL`: the completion script on `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<()> {
    // Into memory first: clap_complete panics on a failed write, and a
    // closed pipe (`tw completions bash | head`) must end quietly.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "tw", &mut script);
    out.write_all(&script)?;
    Ok(())
}

/// `tw man [COMMAND]`: the page of tw, or of one command, as roff on
/// `out` (`tw man doctor | man -l -`).
pub fn man(command: Option<&str>, out: &mut dyn Write) -> Result<()> {
    let cmd = built();
    let page = match command {
        None => cmd,
        Some(name) => match cmd
            .get_subcommands()
            .find(|s| s.get_name() == name && !s.is_hide_set())
        {
            Some(sub) => sub.clone(),
            None => bail!("man: no command `{name}`; `tw --help` lists them"),
        },
    };
    out.write_all(&render_page(&page)?)?;
    Ok(())
}

/// The command, built: each subcommand is then named `tw-COMMAND`, its
/// page's title.
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Each file's name and text, in memory: written through [`OutDir`], never
/// by a path that something planted could redirect.
fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = built();
    let mut files = Vec::new();
    let pages = std::iter::once(cmd.clone())
        .chain(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    for page in pages {
        files.push((Man::new(page.clone()).get_filename(), render_page(&page)?));
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, "tw", &mut text);
        files.push((shell.file_name("tw"), text));
    }
    // The JSON Schemas, as `tw schema COMMAND` prints them.
    for c in super::schema::ALL {
        let mut text = serde_json::to_string_pretty(&super::schema::schema(c))?;
        text.push('\n');
        files.push((
            format!("tw-{}.schema.json", super::schema::name(c)),
            text.into_bytes(),
        ));
    }
    Ok(files)
}

/// One page: clap_mangen's sections, then EXAMPLES unfilled (so the
/// columns stay aligned) and EXIT STATUS, which every page has.
fn render_page(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let man = Man::new(cmd.clone());
    let mut w = Vec::new();
    man.render_title(&mut w)?;
    man.render_name_section(&mut w)?;
    man.render_synopsis_section(&mut w)?;
    man.render_description_section(&mut w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut w)?;
    }
    let mut roff = Roff::new();
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    // The help's closing text: an "Examples:" block and an "Exit status:"
    // paragraph (tw's own), or notes.
    for para in after.split("\n\n").filter(|p| !p.trim().is_empty()) {
        if let Some(rest) = para.strip_prefix("Examples:") {
            roff.control("SH", ["EXAMPLES"]).control("nf", []);
            for line in rest.lines().filter(|l| !l.trim().is_empty()) {
                roff.text([roman(line.trim_end())]);
            }
            roff.control("fi", []);
        } else if !para.starts_with("Exit status:") {
            roff.control("SH", ["NOTES"])
                .text([roman(para.replace('\n', " "))]);
        }
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (i, line) in exit_status(cmd.get_name()).iter().enumerate() {
        if i > 0 {
            roff.control("br", []);
        }
        roff.text([roman(*line)]);
    }
    roff.to_writer(&mut w)?;
    if cmd.get_version().or(cmd.get_long_version()).is_some() {
        man.render_version_section(&mut w)?;
    }
    Ok(w)
}

/// What each command's exit status means (app::Outcome and
/// app::error_exit_code).
fn exit_status(page: &str) -> Vec<&'static str> {
    match page.strip_prefix("tw-").unwrap_or(page) {
        "tw" => vec![
            "0  success",
            "1  a check tripped: count --fail-above, a doctor warning",
            "2  an error (bad usage, unreadable input); doctor: a critical finding",
            "3  doctor could not run",
        ],
        "count" => vec![
            "0  success",
            "1  the count is above --fail-above",
            "2  an error: bad usage, unreadable input",
        ],
        "doctor" => vec![
            "0  every rule ok",
            "1  a warning",
            "2  a critical finding",
            "3  doctor could not run: bad usage, unreadable input",
        ],
        "serve" => vec![
            "2  it cannot start: bad usage, an address it cannot resolve or bind",
            "It serves until stopped; a failed scrape is answered 500 and logged, not an exit.",
        ],
        _ => vec!["0  success", "2  an error: bad usage, unreadable input"],
    }
}
