//! `close` racing live callers (threaded configs only): a few client threads keep calling
//! put (some synced: concurrent writers commit in groups), get, iterate and flush while the
//! runner's thread closes the database. Every call must return its result or `Error::Closed`
//! (or an error an injected fault explains: a background step that met a read fault before the
//! race hands its error to a writer waiting on it; the runner checks the attribution),
//! none may block, an acknowledged put reads back in its thread at once, and once `close` has
//! returned every call must say `Closed`. The puts go to keys no generated op uses; the runner then checks
//! that exactly the acknowledged ones survive the reopen, and deletes them again.
//!
//! Which calls win the race depends on thread timing, so nothing of it reaches the history;
//! only the checks' verdicts do. The threads, atomics and yields are `cobble::internal::sync`'s, so a
//! shuttle build (`sched.rs`) schedules the racers like the engine's own threads.

use cobble::internal::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use cobble::internal::sync::thread;

use cobble::{Db, Error, ReadOptions, WriteOptions};

/// Generated keys start with a lowercase letter (`ops/keys.rs`): these never collide.
const RACE_PREFIX: &[u8] = b"\xff\xfeclose-race/";

/// Puts each racer makes before `close` may begin.
const BURST: usize = 24;

/// How many calls a racer makes after `close` returned, each of which must say `Closed`.
const CALLS_AFTER_CLOSE: usize = 8;

/// What the race left to check.
#[derive(Debug, Default)]
pub(super) struct RaceOutcome {
    /// `close`'s own result.
    pub close: Option<cobble::Result<()>>,
    /// Puts acknowledged (`Ok`): they must survive the reopen.
    pub acked: Vec<(Vec<u8>, Vec<u8>)>,
    /// Puts refused with `Closed`: they must not.
    pub refused: Vec<Vec<u8>>,
    /// Calls that broke the contract, described.
    pub problems: Vec<String>,
    /// Calls that failed with another error, described: the runner accepts those an injected
    /// fault explains (a failed put was not applied, so it must not survive either).
    pub errors: Vec<(String, Error)>,
    /// The first racing call that met a panic the engine caught (a background step's, say):
    /// a panic finding, not a broken contract.
    pub caught_panic: Option<Error>,
}

/// The key racer `t` writes on its call `i`.
fn race_key(t: usize, i: usize) -> Vec<u8> {
    let mut k = RACE_PREFIX.to_vec();
    k.extend_from_slice(format!("{t}/{i:06}").as_bytes());
    k
}

/// A put just acknowledged reads back in the same thread (its write group applied it before
/// returning), unless `close` has begun meanwhile.
fn read_own_write(t: usize, db: &Db, k: &[u8], v: &[u8], out: &mut RaceOutcome) {
    match db.get(&ReadOptions::default(), k) {
        Ok(Some(got)) if got == v => {}
        Ok(got) => out.problems.push(format!(
            "racer {t}: put of {} acknowledged, then a get returned {:?}",
            k.escape_ascii(),
            got.map(|g| g.escape_ascii().to_string())
        )),
        Err(Error::Closed) => {}
        Err(e) if super::caught_panic(&e) => {
            out.caught_panic.get_or_insert(e);
        }
        Err(e) => out.errors.push((format!("racer {t}: get after its put"), e)),
    }
}

/// One racer's calls, until it has seen `close` return and made `CALLS_AFTER_CLOSE` more.
fn racer(t: usize, db: &Db, started: &AtomicUsize, closed: &AtomicBool, out: &mut RaceOutcome) {
    let mut after_close = 0;
    let mut counted = false;
    for i in 0.. {
        // Read the flag before the call: a call that began after `close` returned must fail.
        let was_closed = closed.load(Ordering::SeqCst);
        // A burst of puts first, from every racer at once: concurrent writers commit in
        // groups, and each checks its own write reads back.
        let kind = if i < BURST { 0 } else { (i + t) % 4 };
        let (what, result): (&str, cobble::Result<()>) = match kind {
            0 => {
                let (k, v) = (race_key(t, i), format!("v{t}.{i}").into_bytes());
                // Some synced, so that concurrent writers form groups that sync.
                let r = db.put(&k, &v, &WriteOptions { sync: i % 8 == 0 });
                match &r {
                    Ok(()) => {
                        read_own_write(t, db, &k, &v, out);
                        out.acked.push((k, v));
                    }
                    Err(Error::Closed) => out.refused.push(k),
                    Err(_) => {}
                }
                ("put", r)
            }
            1 => ("get", db.get(&ReadOptions::default(), race_key(t, i / 2)).map(|_| ())),
            2 => (
                "iterate",
                db.iter(&ReadOptions::default()).and_then(|mut it| {
                    let mut more = it.first()?;
                    for _ in 0..16 {
                        if !more {
                            break;
                        }
                        more = it.next()?;
                    }
                    Ok(())
                }),
            ),
            _ => ("flush", db.flush()),
        };
        if !counted && i + 1 >= BURST {
            counted = true;
            started.fetch_add(1, Ordering::SeqCst);
        }
        match result {
            Ok(()) if was_closed => out.problems.push(format!(
                "racer {t}: {what} begun after close returned succeeded (want Closed)"
            )),
            Ok(()) | Err(Error::Closed) => {}
            Err(e) if super::caught_panic(&e) => {
                out.caught_panic.get_or_insert(e);
            }
            Err(e) if was_closed => out
                .problems
                .push(format!("racer {t}: {what} begun after close returned {e} (want Closed)")),
            Err(e) => out.errors.push((format!("racer {t}: {what} racing close"), e)),
        }
        if was_closed {
            after_close += 1;
            if after_close == CALLS_AFTER_CLOSE {
                break;
            }
        }
        // Let the closer in: a priority scheduler (shuttle's PCT) would otherwise run the
        // racers, which stop only after close, ahead of it forever.
        thread::yield_now();
    }
}

/// Closes `db` while `racers` threads call it, and reports what each side saw.
pub(super) fn close_while_busy(db: &Db, racers: usize) -> RaceOutcome {
    let started = AtomicUsize::new(0);
    let closed = AtomicBool::new(false);
    let mut outcomes: Vec<RaceOutcome> = (0..racers).map(|_| RaceOutcome::default()).collect();
    let mut close = None;
    #[cfg_attr(
        not(feature = "shuttle"),
        expect(
            clippy::disallowed_methods,
            reason = "real threads race close on purpose; what they see never reaches the history"
        )
    )]
    thread::scope(|s| {
        let (started, closed) = (&started, &closed);
        for (t, out) in outcomes.iter_mut().enumerate() {
            s.spawn(move || racer(t, db, started, closed, out));
        }
        // Close once every racer made its burst of puts and is under way, so that close meets
        // live calls.
        while started.load(Ordering::SeqCst) < racers {
            thread::yield_now();
        }
        close = Some(db.close());
        closed.store(true, Ordering::SeqCst);
    });
    let mut all = RaceOutcome { close, ..RaceOutcome::default() };
    for o in outcomes {
        all.acked.extend(o.acked);
        all.refused.extend(o.refused);
        all.problems.extend(o.problems);
        all.errors.extend(o.errors);
        if all.caught_panic.is_none() {
            all.caught_panic = o.caught_panic;
        }
    }
    all
}
