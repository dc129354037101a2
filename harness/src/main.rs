//! The `tumbler` binary: see `tumbler --help` and `cli.rs`.

use clap::Parser;

fn main() {
    let cli = tumbler::cli::Cli::parse();
    // A panic of Tumbler itself (the default hook has printed it) is exit code 3, not 101.
    let code = std::panic::catch_unwind(|| tumbler::cli::main_with(cli))
        .unwrap_or(tumbler::input::EXIT_INTERNAL);
    std::process::exit(code);
}
