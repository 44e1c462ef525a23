//! f2b: the command-line tool (see `f2b::cli`). Offline commands (check, test, filters,
//! demo-journal, firewall) work without the daemon; the others are clients of the org.f2b
//! D-Bus API.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    f2b::cli::main(f2b::cli::Cli::parse())
}
