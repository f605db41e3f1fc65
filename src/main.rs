use std::ffi::OsString;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use tw::app::{self, error_exit_code};
use tw::cli::Cli;
use tw::render::cells::printable;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let command = command_word(&args);
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            // Help and version are answers, not errors.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let line = usage_error(&e, command.as_deref());
            let _ = writeln!(io::stderr(), "tw: {}", printable(&line));
            return ExitCode::from(error_exit_code(command.as_deref()));
        }
    };
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut err = io::stderr();
    match app::run(cli, &mut out, &mut err) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // A reader that went away (`tw ls | head`) is not an error.
        Err(e) if app::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Drop what was buffered, unwritten: on error, stdout stays empty
            // (but for the whole rows a streamed `tw ls` had already written).
            drop(out.into_parts());
            // Paths, names and words from outside stay one printable line.
            let _ = writeln!(err, "tw: {}", printable(&format!("{e:#}")));
            ExitCode::from(error_exit_code(command.as_deref()))
        }
    }
}

/// The subcommand named on the command line, if any: the first word that is
/// one. A usage error is reported, and exits, as that command's.
fn command_word(args: &[OsString]) -> Option<String> {
    let cmd = Cli::command();
    args.iter().skip(1).find_map(|a| {
        let a = a.to_str()?;
        cmd.find_subcommand(a).map(|c| c.get_name().to_string())
    })
}

/// clap's error in one line: what is wrong, and where to read the usage.
fn usage_error(e: &clap::Error, command: Option<&str>) -> String {
    let text = e.render().to_string();
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .trim_end();
    let help = match command {
        Some(c) => format!("tw {c} --help"),
        None => "tw --help".to_string(),
    };
    format!("{first}; see `{help}`")
}
