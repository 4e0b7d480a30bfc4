use std::io::IsTerminal;

use clap::Parser;

// Frame-sized tensors are allocated and freed many times a frame; glibc hands each one back to
// the kernel, and every new one costs page faults (a third of CPU time at 640x480). mimalloc
// keeps the memory for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STYLECAM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_ansi(stylecam::cli::colour(std::io::stderr().is_terminal()))
        .with_writer(std::io::stderr)
        .init();
    match stylecam::cli::run(stylecam::cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", stylecam::cli::error_text(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
