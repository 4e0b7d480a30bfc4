use std::io::IsTerminal;

use clap::Parser;

// Frame-sized tensors are allocated and freed many times a frame; glibc hands each one back to
// the kernel, and every new one costs page faults (a third of CPU time at 640x480). mimalloc
// keeps the memory for reuse.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's option setter (the C library the `mimalloc` crate links; its Rust binding sits
// behind a feature that pulls one more crate).
extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in `mimalloc.h`: 15 in v3 (which `libmimalloc-sys` 0.1.49 builds by
/// default) and in v2.
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

fn main() -> std::process::ExitCode {
    // Give freed memory back to the kernel at once, not 10 ms later: memory freed while the
    // first frames and style targets are computed was still held when the workspace grew, and
    // the live pipeline's RSS at 640x480 peaked at about 430 MB instead of about 375 MB. The
    // frames themselves reuse their workspace, so the live fps did not change (docs/PERF.md).
    // SAFETY: no other thread runs yet; 15 is the purge delay in the headers of both versions
    // (measured: with it the peak drops as with MIMALLOC_PURGE_DELAY=0).
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
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
