//! Child processes: a seed (for `nightly`) or a reduction candidate (for `reduce`) runs in a
//! child `tumbler __child`, so that an abort, a stack overflow or a signal becomes a record.

use std::path::PathBuf;

use clap::Args;

/// `tumbler __child`: what to run and where to write the record.
#[derive(Debug, Args)]
pub struct ChildArgs {
    /// Where the JSON record goes.
    #[arg(long)]
    pub record: PathBuf,
}

/// Runs a child's work; returns whether it passed.
pub fn child_main(_args: &ChildArgs) -> anyhow::Result<bool> {
    anyhow::bail!("not yet")
}
