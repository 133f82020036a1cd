//! The `rok-plan` command.

fn main() -> std::process::ExitCode {
    // kube's TLS takes the process-wide rustls provider: install exactly one, first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    rok_plan::cli::run(std::env::args_os())
}
