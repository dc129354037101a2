//! The watchdog: a config's run becomes a finding, never a crash or a hang of Tumbler.
//!
//! - **Panics.** A quiet panic hook records each panic's message and location for the thread
//!   that panicked, without printing; `runner::run_config` catches the unwind and reports an
//!   `Oracle::Panic` finding whose message is [`panic_message`]'s `panicked at LOC: MSG`.
//!   Panics on threads Tumbler did not start (the engine's background workers) are kept in a
//!   short list and named in the finding of any config that hangs meanwhile.
//! - **Hangs.** [`run_guarded`] runs each job on its own thread. The runner calls
//!   [`op_started`] before every op and before the final close; a job whose mark does not
//!   move for the hang timeout (`--hang-timeout`, [`HANG_TIMEOUT_DEFAULT_SECS`]) is reported as
//!   hung at that op and its thread is abandoned (it dies with the process).
//!
//! The hook also ends the process quietly (exit 0) when printing to a closed stdout fails.
//!
//! Invariant: wall time decides only *whether a run hung*. It never reaches a history, an
//! artifact or a decision inside the simulation: a run that finishes gives the same results
//! whatever the timeout and the machine's speed.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

/// The default `--hang-timeout`: an op or a drain taking longer is a hang.
pub const HANG_TIMEOUT_DEFAULT_SECS: u64 = 120;
/// The largest `--hang-timeout` accepted (one day).
pub const HANG_TIMEOUT_MAX_SECS: u64 = 86_400;

/// The hang timeout in milliseconds (process-wide; set once by the CLI).
static HANG_TIMEOUT_MS: AtomicU64 = AtomicU64::new(HANG_TIMEOUT_DEFAULT_SECS * 1000);
/// True in a child process: every panic is also written to stderr (see the hook).
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes every panic to stderr too (child processes, whose stderr the parent keeps).
pub fn set_verbose_panics(on: bool) {
    VERBOSE.store(on, Ordering::SeqCst);
}

/// How many guarded jobs are running: while any is, foreign threads' panics are recorded
/// quietly instead of printed.
static GUARDED: AtomicUsize = AtomicUsize::new(0);
/// Panics of threads that are not guarded jobs (engine workers), oldest first, at most 16.
static FOREIGN_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// Bumped on every foreign panic, so a job can tell which happened during its run.
static FOREIGN_PANIC_COUNT: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The progress mark of the guarded job on this thread, if any.
    static PROGRESS: RefCell<Option<Arc<Progress>>> = const { RefCell::new(None) };
    /// True on a guarded job's thread: its panics are caught and reported, not printed.
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The first panic on this thread not yet reported: `panicked at LOC: MSG`.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets the hang timeout for every later guarded run.
pub fn set_hang_timeout(timeout: Duration) {
    let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX).max(1);
    HANG_TIMEOUT_MS.store(ms, Ordering::SeqCst);
}

/// The current hang timeout.
pub fn hang_timeout() -> Duration {
    Duration::from_millis(HANG_TIMEOUT_MS.load(Ordering::SeqCst))
}

/// Where a guarded job stands: the op it is running (`u64::MAX` before the first op,
/// `u64::MAX - 1` during the final close) and a counter bumped at every mark.
#[derive(Debug)]
pub struct Progress {
    op: AtomicU64,
    marks: AtomicU64,
    /// The last panic of the job's thread: a job that hangs tearing down after a caught panic
    /// is reported as that panic.
    panic: Mutex<Option<String>>,
}

const BEFORE_FIRST_OP: u64 = u64::MAX;
const FINAL_CLOSE: u64 = u64::MAX - 1;

impl Progress {
    fn new() -> Progress {
        Progress {
            op: AtomicU64::new(BEFORE_FIRST_OP),
            marks: AtomicU64::new(0),
            panic: Mutex::new(None),
        }
    }

    /// The op being run, `None` when opening or closing.
    pub fn op(&self) -> Option<usize> {
        match self.op.load(Ordering::SeqCst) {
            BEFORE_FIRST_OP | FINAL_CLOSE => None,
            i => usize::try_from(i).ok(),
        }
    }

    fn phase(&self) -> String {
        match self.op.load(Ordering::SeqCst) {
            BEFORE_FIRST_OP => "opening the database".to_string(),
            FINAL_CLOSE => "the final close".to_string(),
            i => format!("op {i}"),
        }
    }
}

/// Marks the start of op `op` (`None`: the final close) on this thread's guarded job. A no-op
/// on other threads. The runner calls it; it feeds only the watchdog.
pub fn op_started(op: Option<usize>) {
    PROGRESS.with(|p| {
        if let Some(p) = p.borrow().as_ref() {
            p.op.store(op.map_or(FINAL_CLOSE, |i| i as u64), Ordering::SeqCst);
            p.marks.fetch_add(1, Ordering::SeqCst);
        }
    });
}

/// Installs the quiet panic hook (once per process). Panics outside guarded runs still print
/// as usual.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = payload_text(info.payload());
            let location = info.location().map_or("an unknown location".to_string(), |l| {
                format!("{}:{}:{}", l.file(), l.line(), l.column())
            });
            // `println!` panics when stdout is closed (`tumbler run | head -c1`): end quietly
            // with success, as `ls | head` does.
            if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
                std::process::exit(0);
            }
            if message.starts_with("failed printing to stdout") {
                eprintln!("tumbler: error: {message}");
                std::process::exit(crate::input::EXIT_INTERNAL);
            }
            let text = format!("panicked at {location}: {message}");
            if VERBOSE.load(Ordering::SeqCst) {
                // In a child process stderr is captured: if this panic ends in an abort, the
                // parent finds its location in the stderr tail.
                let name = std::thread::current().name().unwrap_or("unnamed").to_string();
                eprintln!("tumbler: thread {name} {text}");
            }
            if QUIET.with(Cell::get) {
                // The first panic is the cause; later ones (a poisoned lock met while tearing
                // down, a destructor during the unwind) are its fallout.
                PROGRESS.with(|p| {
                    if let Some(p) = p.borrow().as_ref() {
                        let mut slot = p.panic.lock().unwrap_or_else(|e| e.into_inner());
                        slot.get_or_insert_with(|| text.clone());
                    }
                });
                LAST_PANIC.with(|p| {
                    p.borrow_mut().get_or_insert(text);
                });
                return;
            }
            if GUARDED.load(Ordering::SeqCst) > 0 {
                let name = std::thread::current().name().unwrap_or("unnamed").to_string();
                let mut list = FOREIGN_PANICS.lock().unwrap_or_else(|e| e.into_inner());
                if list.len() < 16 {
                    list.push(format!("thread {name} {text}"));
                }
                FOREIGN_PANIC_COUNT.fetch_add(1, Ordering::SeqCst);
                return;
            }
            default(info);
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

/// The finding text for a panic caught on this thread: `panicked at LOC: MSG` when the hook
/// saw it, else the payload alone.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| format!("panicked: {}", payload_text(payload)))
}

/// The `FILE:LINE:COL` of a panic finding's message (`panicked at LOC: ...`), if it has one.
pub fn panic_location(message: &str) -> Option<&str> {
    let rest = message.split("panicked at ").nth(1)?;
    let loc = rest.split(": ").next()?;
    (loc != "an unknown location").then_some(loc)
}

/// What [`run_guarded`] says about one job.
#[derive(Debug)]
pub enum Guarded<T> {
    /// It finished (its own panics are the job's to catch).
    Done(T),
    /// It made no progress for the hang timeout: where it stood, and any panic of a foreign
    /// (engine) thread meanwhile.
    Hung { op: Option<usize>, message: String },
    /// It panicked (`panic` is `panicked at LOC: MSG`) and then made no progress for the hang
    /// timeout (a teardown after the panic hung): `op` is where it stood then.
    PanickedThenHung { op: Option<usize>, panic: String, message: String },
}

/// Runs `jobs` on their own threads, at most `parallelism` at once, each under the watchdog.
/// Results come back in job order. A hung job's thread is abandoned.
pub fn run_guarded<T, F>(jobs: Vec<F>, parallelism: usize) -> Vec<Guarded<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    install_panic_hook();
    let timeout = hang_timeout();
    let (tx, rx) = mpsc::channel::<(usize, T)>();
    let mut results: Vec<Option<Guarded<T>>> = (0..jobs.len()).map(|_| None).collect();
    let mut pending = jobs.into_iter().enumerate();
    // Running jobs: index, progress, last mark seen, when it was seen, foreign panics then.
    let mut running: Vec<(usize, Arc<Progress>, u64, std::time::Instant, u64)> = Vec::new();
    let parallelism = parallelism.max(1);
    loop {
        while running.len() < parallelism {
            let Some((index, job)) = pending.next() else { break };
            let progress = Arc::new(Progress::new());
            let mine = progress.clone();
            let tx = tx.clone();
            GUARDED.fetch_add(1, Ordering::SeqCst);
            #[expect(
                clippy::disallowed_methods,
                reason = "a config runs on its own thread so that a hang can be abandoned; \
                          the thread only runs the deterministic job"
            )]
            let spawned =
                std::thread::Builder::new().name(format!("tumbler-job-{index}")).spawn(move || {
                    QUIET.with(|q| q.set(true));
                    PROGRESS.with(|p| *p.borrow_mut() = Some(mine));
                    let value = job();
                    GUARDED.fetch_sub(1, Ordering::SeqCst);
                    let _ = tx.send((index, value));
                });
            if let Err(e) = spawned {
                GUARDED.fetch_sub(1, Ordering::SeqCst);
                panic!("spawning a config thread: {e}");
            }
            #[expect(
                clippy::disallowed_methods,
                reason = "wall time decides only whether a run hung (module docs)"
            )]
            let now = std::time::Instant::now();
            running.push((index, progress, 0, now, FOREIGN_PANIC_COUNT.load(Ordering::SeqCst)));
        }
        if running.is_empty() {
            break;
        }
        let poll = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(500));
        match rx.recv_timeout(poll) {
            Ok((index, value)) => {
                running.retain(|r| r.0 != index);
                results[index] = Some(Guarded::Done(value));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("we hold a sender"),
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "wall time decides only whether a run hung (module docs)"
        )]
        let now = std::time::Instant::now();
        let mut hung = Vec::new();
        for r in &mut running {
            let marks = r.1.marks.load(Ordering::SeqCst);
            if marks != r.2 {
                r.2 = marks;
                r.3 = now;
            } else if now.duration_since(r.3) >= timeout {
                hung.push(r.0);
            }
        }
        for index in hung {
            let pos = running.iter().position(|r| r.0 == index).expect("a running job");
            let (_, progress, _, _, foreign_before) = running.swap_remove(pos);
            // The abandoned thread still counts as guarded: its later panics stay quiet.
            let mut message = format!(
                "no progress for {:.1}s during {}: the thread is abandoned",
                timeout.as_secs_f64(),
                progress.phase()
            );
            if FOREIGN_PANIC_COUNT.load(Ordering::SeqCst) > foreign_before {
                let list = FOREIGN_PANICS.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(p) = list.last() {
                    message.push_str(&format!("; meanwhile a background {p}"));
                }
            }
            let panic = progress.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
            results[index] = Some(match panic {
                Some(panic) => Guarded::PanickedThenHung { op: progress.op(), panic, message },
                None => Guarded::Hung { op: progress.op(), message },
            });
        }
    }
    results.into_iter().map(|r| r.expect("every job finished or hung")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_locations_parse() {
        let m = "panicked at harness/src/sim/planted.rs:12:9: boom: again";
        assert_eq!(panic_location(m), Some("harness/src/sim/planted.rs:12:9"));
        assert_eq!(panic_location("panicked: boom"), None);
    }
}
