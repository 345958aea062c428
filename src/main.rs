use clap::Parser;
use std::process::ExitCode;

// glibc's allocator spent most of a 60k msg/s run growing arenas (mprotect, memalign for task cells); mimalloc
// keeps per-thread pages. See benches/pubsub.sh for the numbers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = imagen_load::cli::Cli::parse();
    match imagen_load::run(cli) {
        Ok(status) => status.into(),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(2)
        }
    }
}
