//! `cobble`: a read-only debugging command for storage engineers; dumps and checks SSTables,
//! WALs and manifests, and shows the shape of a database directory.
//!
//! Exit codes: 0 success, 1 an error in the data or the filesystem (corruption, a missing
//! file, a file of another kind or with no valid record), 2 bad usage. A closed stdout
//! (`cobble ... | head`) ends quietly with 0. Nothing here writes to the files it reads.

// A binary's root sits beside its directory, so the submodules need their paths spelled out.
#[path = "cobble/lsm.rs"]
mod lsm;
#[path = "cobble/manifest.rs"]
mod manifest;
#[path = "cobble/show.rs"]
mod show;
#[path = "cobble/sniff.rs"]
mod sniff;
#[path = "cobble/sst.rs"]
mod sst;
#[path = "cobble/wal.rs"]
mod wal;

use cobble::internal::sync::Arc;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cobble::{File, Fs, OsFs, WalRecoveryMode};

const USAGE: &str = "\
usage: cobble <command> [options] <path>

commands:
  sst dump FILE        properties, every entry, then the range tombstones of an SSTable
  sst check FILE       iterate an SSTable forward and backward, verifying order and checksums
  wal dump FILE        every record of a WAL: offset, batch seqnum, count and operations
  manifest dump FILE   every version edit of a MANIFEST, then the version they build
  lsm DIR              levels and files of a database, WAL files, files nothing references

options:
  --limit N            (sst dump, wal dump, manifest dump) print at most N entries/records
  --value-width N      (dumps) print values longer than N bytes as a prefix and a length
                       (default 64)
  --mode tolerate|absolute
                       (wal dump, manifest dump) a damaged tail is dropped and reported
                       (tolerate, the default) or is an error (absolute)
  -h, --help           print this help

exit status: 0 ok, 1 corruption or I/O error, 2 usage error";

/// Why a command did not succeed; each maps to an exit code.
#[derive(Debug)]
pub enum Failure {
    /// The command line is wrong: usage is printed, exit code 2.
    Usage(String),
    /// The engine reported an error (corruption, I/O, not found): exit code 1.
    Engine(cobble::Error),
    /// Writing the output failed.
    Output(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "{m}"),
            Failure::Engine(e) => write!(f, "{e}"),
            Failure::Output(e) => write!(f, "writing output: {e}"),
        }
    }
}

impl From<cobble::Error> for Failure {
    fn from(e: cobble::Error) -> Failure {
        Failure::Engine(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Output(e)
    }
}

/// The parsed command line after the command words.
#[derive(Debug, Default)]
pub struct Args {
    /// The one path operand.
    pub path: PathBuf,
    pub limit: Option<usize>,
    pub value_width: usize,
    pub mode: WalRecoveryMode,
}

/// Which options a command accepts.
#[derive(Clone, Copy)]
struct Accepts {
    limit: bool,
    value_width: bool,
    mode: bool,
}

/// Opens `path` through the engine's filesystem seam.
pub fn open_file(path: &Path) -> cobble::Result<Arc<dyn File>> {
    OsFs::new().open(path)
}

fn usage(msg: impl fmt::Display) -> Failure {
    Failure::Usage(msg.to_string())
}

fn number(opt: &str, v: &OsString) -> Result<usize, Failure> {
    v.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| usage(format!("{opt} needs a non-negative integer, got {v:?}")))
}

/// Parses the options and the single path operand of `cmd`.
fn parse_args(cmd: &str, rest: &[OsString], accepts: Accepts) -> Result<Args, Failure> {
    let mut args = Args { value_width: 64, ..Args::default() };
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut i = 0;
    let mut options_done = false;
    while i < rest.len() {
        let a = &rest[i];
        i += 1;
        let text = a.to_str().unwrap_or("");
        if options_done || !text.starts_with('-') || text == "-" {
            paths.push(PathBuf::from(a));
            continue;
        }
        if text == "--" {
            options_done = true;
            continue;
        }
        // `--opt=value` or `--opt value`.
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) => (n, Some(OsString::from(v))),
            None => (text, None),
        };
        let allowed = match name {
            "--limit" => accepts.limit,
            "--value-width" => accepts.value_width,
            "--mode" => accepts.mode,
            _ => return Err(usage(format!("unknown option {text:?}"))),
        };
        if !allowed {
            return Err(usage(format!("{cmd} does not take {name}")));
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = rest.get(i).ok_or_else(|| usage(format!("{name} needs a value")))?;
                i += 1;
                v.clone()
            }
        };
        match name {
            "--limit" => args.limit = Some(number(name, &value)?),
            "--value-width" => args.value_width = number(name, &value)?,
            _ => {
                args.mode = match value.to_str() {
                    Some("tolerate") => WalRecoveryMode::TolerateCorruptTail,
                    Some("absolute") => WalRecoveryMode::AbsoluteConsistency,
                    _ => {
                        return Err(usage(format!("--mode is tolerate or absolute, got {value:?}")))
                    }
                }
            }
        }
    }
    match paths.len() {
        1 => {
            args.path = paths.pop().expect("one path");
            Ok(args)
        }
        0 => Err(usage(format!("{cmd} needs a path"))),
        _ => Err(usage(format!("{cmd} takes one path, got {}", paths.len()))),
    }
}

/// Runs the command line `argv` (without the program name), writing to `out`.
fn run(argv: &[OsString], out: &mut dyn Write) -> Result<(), Failure> {
    let words: Vec<&str> = argv.iter().take(2).map(|a| a.to_str().unwrap_or("")).collect();
    let dumps = Accepts { limit: true, value_width: true, mode: false };
    let none = Accepts { limit: false, value_width: false, mode: false };
    let logs = Accepts { limit: true, value_width: true, mode: true };
    match words.as_slice() {
        ["sst", "dump", ..] => sst::dump(&parse_args("sst dump", &argv[2..], dumps)?, out),
        ["sst", "check", ..] => sst::check(&parse_args("sst check", &argv[2..], none)?, out),
        ["wal", "dump", ..] => wal::dump(&parse_args("wal dump", &argv[2..], logs)?, out),
        ["manifest", "dump", ..] => {
            manifest::dump(&parse_args("manifest dump", &argv[2..], logs)?, out)
        }
        ["lsm", ..] => lsm::show(&parse_args("lsm", &argv[1..], none)?, out),
        [] => Err(usage("no command given")),
        [group @ ("sst" | "wal" | "manifest")] => Err(usage(format!("{group} needs a subcommand"))),
        [group @ ("sst" | "wal" | "manifest"), sub, ..] => {
            Err(usage(format!("unknown subcommand {group} {sub:?}")))
        }
        [other, ..] => Err(usage(format!("unknown command {other:?}"))),
    }
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") || argv.first().is_some_and(|a| a == "help")
    {
        // A reader that stops early (`cobble --help | head -1`) is not an error.
        let _ = writeln!(io::stdout(), "{USAGE}");
        return ExitCode::SUCCESS;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = run(&argv, &mut out);
    // What was printed before a failure (a dump up to the damage) is worth keeping.
    let flushed = out.flush();
    match result.and(flushed.map_err(Failure::Output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("cobble: {m}\n\n{USAGE}");
            ExitCode::from(2)
        }
        // A reader that went away (`cobble ... | head`) is not an error.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cobble: {e}");
            ExitCode::from(1)
        }
    }
}
