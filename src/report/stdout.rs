//! Data on stdout. A reader that goes away (`rok-plan schema | head`) ends the output
//! quietly instead of panicking, as Unix tools do.

use std::io::Write;

/// Writes `text` to stdout; a closed pipe is not an error.
pub(crate) fn print_data(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` and a newline.
pub(crate) fn print_line(text: &str) -> std::io::Result<()> {
    print_data(&format!("{text}\n"))
}
