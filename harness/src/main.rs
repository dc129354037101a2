//! The `tumbler` binary: see `tumbler --help` and `cli.rs`.

use clap::Parser;

fn main() {
    let cli = tumbler::cli::Cli::parse();
    std::process::exit(tumbler::cli::main_with(cli));
}
