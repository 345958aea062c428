use clap::Parser;
use std::process::ExitCode;

// glibc's allocator spent most of a 60k msg/s run growing arenas (mprotect, memalign for task cells); mimalloc
// keeps per-thread pages. See benches/pubsub.sh for the numbers. `--no-default-features` builds with the system
// allocator, which heap profilers (heaptrack, massif) can see.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = imagen_load::commands::cli::Cli::parse();
    match imagen_load::commands::run(cli) {
        Ok(status) => status.into(),
        // A reader that stopped reading (`imagen-load import dump.json | head`) ends the command quietly, as
        // ripgrep and kubectl do.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            imagen_load::logs::note(&format!("Error: {e:#}"), "ERROR");
            ExitCode::from(2)
        }
    }
}
