//! `tw generate DIR` (hidden): the man pages and the bash, zsh and fish
//! completions, made from the clap definition itself so they can never
//! disagree with the binary. The .deb is built from its output
//! (packaging/build-deb); after `cargo install` it is how to get them.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::{Generator, Shell};
use clap_mangen::Man;

use super::outdir::OutDir;
use crate::cli::Cli;

/// Writes `tw.1` and a `tw-COMMAND.1` per command, `tw.bash`, `_tw` (zsh)
/// and `tw.fish` into `dir` (a new or empty folder, see [`OutDir`]), and
/// lists them on `out`.
pub fn generate(dir: &Path, out: &mut dyn Write) -> Result<()> {
    let out_dir = OutDir::fresh(dir)?;
    for (name, text) in render_all().context("rendering the pages")? {
        let path = out_dir.write(&name, &text)?;
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

/// Each file's name and text, in memory: written through [`OutDir`], never
/// by a path that something planted could redirect.
fn render_all() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    // As clap_mangen::generate_to does: building the command names each
    // subcommand `tw-COMMAND` for its page's title.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let page = |c: &clap::Command| -> std::io::Result<(String, Vec<u8>)> {
        let man = Man::new(c.clone());
        let mut text = Vec::new();
        man.render(&mut text)?;
        Ok((man.get_filename(), text))
    };
    let mut files = vec![page(&cmd)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        files.push(page(sub)?);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd, "tw", &mut text);
        files.push((shell.file_name("tw"), text));
    }
    Ok(files)
}
