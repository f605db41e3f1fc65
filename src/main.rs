use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tw::cli::Cli::parse();
    let error_code = tw::error_exit_code(&cli);
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut err = io::stderr();
    match tw::run(cli, &mut out, &mut err) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        // A reader that went away (`tw ls | head`) is not an error.
        Err(e) if tw::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // Drop what was buffered: on error, stdout stays empty (but for
            // the whole rows a streamed `tw ls` had already written).
            std::mem::forget(out);
            let _ = writeln!(err, "tw: {e:#}");
            ExitCode::from(error_code)
        }
    }
}
