use clap::Parser;
use std::process::ExitCode;

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
