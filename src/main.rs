//! The `rdpsift` command: parse flags, run, map the result to an exit code
//! (0 nothing at or above --fail-on, 1 findings at or above it, 2 an input
//! could not be read). A closed stdout (`| head`) is not an error.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Args as clap::Parser>::parse();
    match cli::run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                if io.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::from(0);
                }
            }
            eprintln!("rdpsift: {e:#}");
            ExitCode::from(2)
        }
    }
}
