//! `tw generate DIR` (hidden): the man pages, the bash, zsh and fish
//! completions and the JSON Schemas, made from the clap definition itself so they can never
//! disagree with the binary. The .deb is built from its output
//! (packaging/build-deb); after `cargo install` it is how to get them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;

use crate::cli::Cli;

/// Writes `tw.1` and a `tw-COMMAND.1` per command, `tw.bash`, `_tw` (zsh)
/// `tw.fish` and a `tw-COMMAND.schema.json` per JSON document into `dir` (created if missing), and lists them on `out`.
pub fn generate(dir: &Path, out: &mut dyn Write) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let written = write_all(dir).with_context(|| format!("writing into {}", dir.display()))?;
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

fn write_all(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    // As clap_mangen::generate_to does, but keeping the paths: building the
    // command names each subcommand `tw-COMMAND` for its page's title.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = vec![Man::new(cmd.clone()).generate_to(dir)?];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.push(Man::new(sub.clone()).generate_to(dir)?);
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(shell, &mut cmd, "tw", dir)?);
    }
    // The JSON Schemas, as `tw schema COMMAND` prints them.
    for c in super::schema::ALL {
        let path = dir.join(format!("tw-{}.schema.json", super::schema::name(c)));
        let mut text = serde_json::to_string_pretty(&super::schema::schema(c))?;
        text.push('\n');
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}
