//! Fault attribution: an engine error is accepted only when SimFs's evidence explains it, and
//! a fault SimFs injected must not vanish.
//!
//! The evidence is SimFs's fault log (every injected error, ENOSPC refusal, corrupt and rotted
//! read, each with an id that error messages cite as `(fault #N)`) and its crash flag. Rules:
//!
//! - **Crash**: once the filesystem has crashed, every error is explained.
//! - **`Io`** must cite an error-kind fault of this filesystem instance. Under the Manual
//!   scheduler the fault must have been injected during this op (nothing runs between ops);
//!   under Threads, since the database was opened (a background step may fail at any time and
//!   a stalled write returns that step's error).
//! - **`Poisoned`** must cite an error-kind fault injected since the database was opened.
//! - **`Corruption`** needs a corrupt or rotted read in the same window as `Io`.
//! - Anything else (`Closed` without a crash, `NotFound`, ...) is never explained by a fault.
//!
//! The reverse: under the Manual scheduler, an op that returns success although a write,
//! sync, namespace-changing, ENOSPC or read fault struck during it, and that left the database
//! unpoisoned, swallowed the fault. Failed `remove` and `list` calls are exempt: deleting an
//! obsolete file may fail harmlessly, and the next open collects it.

use cobble::Error;

use crate::sim::{cited_faults, FaultKind, FaultRecord, SimFs};

/// Where the evidence window of the current op starts.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Marks {
    /// Faults of the current SimFs instance before the database was (re)opened.
    pub(super) open: u64,
    /// Faults of the current SimFs instance before the current op began.
    pub(super) op: u64,
}

/// Why an engine error is accepted: a short text for the history's notes.
pub(super) fn explain(
    fs: &SimFs,
    marks: Marks,
    deterministic: bool,
    error: &Error,
) -> Result<String, String> {
    if fs.is_crashed() {
        return Ok("the filesystem crashed".to_string());
    }
    let window = if deterministic { marks.op } else { marks.open };
    let text = error.to_string();
    // Only faults since the open can explain anything (the op's window starts later).
    let faults = fs.faults_after(marks.open);
    let record = |id: u64| id.checked_sub(marks.open + 1).and_then(|i| faults.get(i as usize));
    let check_cited = |after: u64, what: &str| -> Result<String, String> {
        let cited = cited_faults(&text);
        if cited.is_empty() {
            return Err(format!("{what} cites no injected fault"));
        }
        for &id in &cited {
            if id <= after {
                let when = if after == marks.op { "this op" } else { "the database was opened" };
                return Err(format!("{what} cites fault #{id}, injected before {when}"));
            }
            let Some(rec) = record(id) else {
                return Err(format!("{what} cites fault #{id}, which SimFs never injected"));
            };
            if !rec.kind.is_error() {
                return Err(format!("{what} cites fault #{id}, a {}", rec.kind.name()));
            }
        }
        Ok(format!("fault #{}", cited[0]))
    };
    match error {
        Error::Io { .. } => check_cited(window, "the I/O error"),
        Error::Poisoned { .. } => check_cited(marks.open, "the poisoning"),
        Error::Corruption { .. } => {
            let corrupt = faults.iter().find(|r| {
                r.id > window && matches!(r.kind, FaultKind::CorruptRead | FaultKind::RotRead)
            });
            match corrupt {
                Some(r) => Ok(format!("fault #{} ({})", r.id, r.kind.name())),
                None => Err("corruption reported, but no corrupt or rotted read happened".into()),
            }
        }
        _ => Err("not an error any fault causes".to_string()),
    }
}

/// The first fault of the op's window that the engine should have reported but did not:
/// checked when an op succeeded (Manual scheduler only).
pub(super) fn swallowed(fs: &SimFs, marks: Marks) -> Option<FaultRecord> {
    fs.faults_after(marks.op)
        .into_iter()
        .find(|r| r.kind != FaultKind::MetadataError || !matches!(r.op, "remove" | "list"))
}

/// The last fault SimFs produced, for failure messages.
pub(super) fn last_fault(fs: &SimFs) -> String {
    match fs.faults_after(0).last() {
        Some(r) => {
            format!(
                "last fault: #{} {} in {} {} (call {})",
                r.id,
                r.kind.name(),
                r.op,
                r.path,
                r.call
            )
        }
        None => "no fault injected".to_string(),
    }
}
