//! The terminal, decided once per run: its width (tables fit it; 0x0 or
//! unknown means plain rows) and whether to colour.

use crate::cli::ColorChoice;

/// Columns of the terminal on stdout; `None` when stdout is no terminal or
/// it reports 0 (a serial console, `script` without a size).
pub fn width() -> Option<u16> {
    // SAFETY: TIOCGWINSZ writes one `struct winsize` into `ws`, which lives
    // across the call; on failure it writes nothing.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col)
}

/// `--color`: always and never as said; auto on a terminal unless NO_COLOR
/// is set (and not empty) or TERM is dumb.
pub fn color(choice: ColorChoice, tty: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    }
}
