//! The `rok-plan` command.

fn main() -> std::process::ExitCode {
    rok_plan::cli::run(std::env::args_os())
}
