//! Who schedules a config's threads: the OS, or a seeded model scheduler.
//!
//! A threaded config (`Scheduler::Threads`) runs the engine's flush and compaction workers, and
//! sometimes client threads racing `close`, beside the runner. Built normally, the OS schedules
//! them: real timing, real races, and a history that may differ run to run (a stress config; its
//! failures say they may not replay). Built with the cargo feature `shuttle`
//! (`cargo build -p tumbler --features shuttle`), the engine's locks, condition variables,
//! atomics and threads are shuttle's (`cobble::internal::sync`), every SimFs call is a scheduling point,
//! and each config runs inside a shuttle runner whose scheduler is seeded from the run's seed
//! and the config's name: the same seed gives the same interleaving, history and SimFs image, so
//! `--check-determinism`, `replay` and `reduce` cover threaded configs like any other.
//!
//! The scheduler is picked per config seed: random (uniform at every scheduling point) or PCT
//! (probabilistic concurrency testing: a few priority change points, good at bugs of small
//! depth). Shuttle holds one OS thread per config and runs its tasks as coroutines on it.

/// Whether threaded configs replay from their seed in this build.
pub const REPLAYABLE_THREADS: bool = cfg!(feature = "shuttle");

/// Which model scheduler a config seed picks (the name shows in the history's header line).
pub fn scheduler_name(config_seed: u64) -> &'static str {
    if !REPLAYABLE_THREADS {
        "os"
    } else if config_seed.is_multiple_of(2) {
        "shuttle-random"
    } else {
        "shuttle-pct"
    }
}

/// What a failure of a threaded config must add to its replay line in this build.
pub fn threaded_failure_note() -> Option<&'static str> {
    (!REPLAYABLE_THREADS).then_some(
        "note: a threaded config failed on OS threads, so it may not replay; to replay it \
         exactly: cargo build --release -p tumbler --features shuttle, then rerun the seed",
    )
}

/// A scheduling point before each SimFs call (shuttle build only), so the model scheduler can
/// switch threads around I/O, where real threads most often interleave.
#[inline]
pub fn io_point() {
    #[cfg(feature = "shuttle")]
    shuttle::thread::yield_now();
}

/// Runs `job` (one config's whole run) under the scheduler of this build, seeded by
/// `config_seed`, and returns its result. `Err` is the scheduler's own finding (shuttle: a
/// deadlock, every thread blocked), as `panicked at LOC: MSG`; the job's panics are its own.
#[cfg(not(feature = "shuttle"))]
pub fn run<T, F>(_config_seed: u64, job: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    Ok(job())
}

/// Runs `job` (one config's whole run) under the scheduler of this build, seeded by
/// `config_seed`, and returns its result. `Err` is the scheduler's own finding (shuttle: a
/// deadlock, every thread blocked), as `panicked at LOC: MSG`; the job's panics are its own.
#[cfg(feature = "shuttle")]
pub fn run<T, F>(config_seed: u64, job: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    use shuttle::scheduler::{PctScheduler, RandomScheduler};
    use shuttle::{Config, FailurePersistence, MaxSteps, Runner};
    // std's, not shuttle's: the job and its result cross the runner's boundary.
    use std::sync::{Arc, Mutex, PoisonError};

    let job = Mutex::new(Some(job));
    let out: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&out);
    let body = move || {
        let job = job.lock().unwrap_or_else(PoisonError::into_inner).take();
        let job = job.expect("a config runs in exactly one shuttle execution");
        let value = job();
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    };
    let mut config = Config::new();
    // The engine's recursion (iterators, recovery) needs more than shuttle's small default.
    config.stack_size = 16 << 20;
    // A long campaign takes millions of steps; a hang is the watchdog's to report.
    config.max_steps = MaxSteps::None;
    // Tumbler reports its own failures (with the seed to replay them); no schedule files.
    config.failure_persistence = FailurePersistence::None;
    config.silence_warnings = true;
    let random = scheduler_name(config_seed) == "shuttle-random";
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        if random {
            Runner::new(RandomScheduler::new_from_seed(config_seed, 1), config).run(body);
        } else {
            Runner::new(PctScheduler::new_from_seed(config_seed, 3, 1), config).run(body);
        }
    }));
    let value = out.lock().unwrap_or_else(PoisonError::into_inner).take();
    match (ran, value) {
        (_, Some(value)) => Ok(value),
        (Err(payload), None) => {
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic payload".to_string());
            Err(format!("the model scheduler failed the run: {text}"))
        }
        (Ok(()), None) => Err("the shuttle execution ended without running the config".into()),
    }
}
