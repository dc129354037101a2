//! The machinery behind the knob table at the top of `config/mod.rs`: one [`KnobSpec`] per
//! engine knob, and the `engine_knobs!` macro that turns the table into `EngineConfig`'s
//! fields and the [`KNOBS`](super::KNOBS) list, which `to_options`, `knobs()`, `random()`,
//! `config_check` and the reducer iterate. A knob written into the table is therefore in every
//! one of them; there is no second list to forget.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::{CompressionKind, EngineConfig, SchedulerKind, WalRecovery};
use crate::merge_ops::MergeKind;
use crate::ops::generator::child_rng;

/// Everything Tumbler knows about one engine knob whose values are `T`: one row of the table.
pub struct KnobSpec<T> {
    /// The field of `EngineConfig` and the key in a config's JSON.
    pub name: &'static str,
    /// The config's value (`None`: the engine's default).
    pub get: fn(&EngineConfig) -> Option<T>,
    pub set: fn(&mut EngineConfig, Option<T>),
    /// Sets the knob in the engine's options.
    pub apply: fn(&mut cobble::Options, T),
    /// Reads the knob back from the engine's options: `read(apply(o, v)) == v`, and on
    /// `cobble::Options::default()` it gives the engine's default.
    pub read: fn(&cobble::Options) -> T,
    /// Tumbler's bounds on the value's [`KnobValue::magnitude`], smallest and largest (they
    /// keep a run's memory sane: a memtable's arena is allocated up front, in every config).
    pub bounds: Option<(u64, u64)>,
    /// The chance (numerator, denominator) that a random config leaves the knob unset.
    pub unset_chance: (u32, u32),
    /// Draws a value for a random config; sees the knobs drawn before it (table order).
    pub random: fn(&mut ChaCha8Rng, &EngineConfig) -> T,
    /// What the reducer tries instead of a set value, first the most reduced; `None` puts the
    /// knob back to its default.
    pub shrink: fn(T) -> Vec<Option<T>>,
}

impl<T> std::fmt::Debug for KnobSpec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnobSpec").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A knob whatever its value type: how the rest of Tumbler uses a [`KnobSpec`].
pub trait Knob: Sync {
    fn name(&self) -> &'static str;
    /// True when `c` sets the knob (else it takes the engine's default).
    fn is_set(&self, c: &EngineConfig) -> bool;
    /// Sets the knob in `o` when `c` sets it.
    fn apply(&self, c: &EngineConfig, o: &mut cobble::Options);
    /// The knob's value in `o`, spelled as in a config's JSON (a string without its quotes).
    fn show(&self, o: &cobble::Options) -> String;
    /// The value `c` sets, spelled as [`Knob::show`] spells it.
    fn show_set(&self, c: &EngineConfig) -> Option<String>;
    /// Draws the knob into `c` from its own stream of `seed` (named `config.<knob>`, so a new
    /// knob does not shift the draws of the others).
    fn draw(&self, seed: u64, c: &mut EngineConfig);
    /// `c` with the knob reduced, one config per candidate, first the most reduced.
    fn shrink(&self, c: &EngineConfig) -> Vec<EngineConfig>;
    /// Checks the value `c` sets against the knob's bounds; the error names the field.
    fn check_bounds(&self, c: &EngineConfig) -> Result<(), String>;
    /// Sets the knob in `to` as `from` sets it (or unsets it).
    fn copy(&self, from: &EngineConfig, to: &mut EngineConfig);
}

/// The value types of knobs.
pub trait KnobValue: Copy + PartialEq + Serialize + Send + Sync + 'static {
    /// The number Tumbler's bounds apply to, with its name after the knob's (`.threads` of a
    /// scheduler), if the value has one.
    fn magnitude(self) -> Option<(&'static str, u64)> {
        None
    }
}

impl KnobValue for usize {
    fn magnitude(self) -> Option<(&'static str, u64)> {
        Some(("", self as u64))
    }
}

impl KnobValue for u64 {
    fn magnitude(self) -> Option<(&'static str, u64)> {
        Some(("", self))
    }
}

impl KnobValue for bool {}
impl KnobValue for WalRecovery {}
impl KnobValue for CompressionKind {}
impl KnobValue for MergeKind {}

impl KnobValue for SchedulerKind {
    fn magnitude(self) -> Option<(&'static str, u64)> {
        match self {
            SchedulerKind::Manual => None,
            SchedulerKind::Threads(n) => Some((".threads", n as u64)),
        }
    }
}

/// `v` spelled as in a config's JSON, a string without its quotes.
fn spell<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v).expect("a knob value serializes") {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    }
}

impl<T: KnobValue> Knob for KnobSpec<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn copy(&self, from: &EngineConfig, to: &mut EngineConfig) {
        (self.set)(to, (self.get)(from));
    }

    fn is_set(&self, c: &EngineConfig) -> bool {
        (self.get)(c).is_some()
    }

    fn apply(&self, c: &EngineConfig, o: &mut cobble::Options) {
        if let Some(v) = (self.get)(c) {
            (self.apply)(o, v);
        }
    }

    fn show(&self, o: &cobble::Options) -> String {
        spell(&(self.read)(o))
    }

    fn show_set(&self, c: &EngineConfig) -> Option<String> {
        (self.get)(c).map(|v| spell(&v))
    }

    fn draw(&self, seed: u64, c: &mut EngineConfig) {
        let mut r = child_rng(seed, &format!("config.{}", self.name));
        let (n, d) = self.unset_chance;
        let v = if r.gen_ratio(n, d) { None } else { Some((self.random)(&mut r, c)) };
        (self.set)(c, v);
    }

    fn shrink(&self, c: &EngineConfig) -> Vec<EngineConfig> {
        let Some(v) = (self.get)(c) else { return Vec::new() };
        (self.shrink)(v)
            .into_iter()
            .map(|s| {
                let mut c = c.clone();
                (self.set)(&mut c, s);
                c
            })
            .collect()
    }

    fn check_bounds(&self, c: &EngineConfig) -> Result<(), String> {
        let Some((suffix, x)) = (self.get)(c).and_then(KnobValue::magnitude) else {
            return Ok(());
        };
        let name = self.name;
        let (lo, hi) = self
            .bounds
            .ok_or_else(|| format!("field `{name}{suffix}`: the knob table gives no bounds"))?;
        if x < lo || x > hi {
            return Err(format!("field `{name}{suffix}`: {x} is out of range ({lo} to {hi})"));
        }
        Ok(())
    }
}

/// The reducer's default shrink: back to the engine's default.
pub fn reset<T>(_: T) -> Vec<Option<T>> {
    vec![None]
}

/// A value in `lo..=hi` whose magnitude (power of two) is uniform.
pub fn log_uniform(r: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    assert!(0 < lo && lo <= hi);
    let e = r.gen_range(lo.ilog2()..=hi.ilog2());
    let base = 1u64 << e;
    r.gen_range(base..=base.saturating_mul(2) - 1).clamp(lo, hi)
}

/// One of `choices`, uniformly.
pub fn pick<T: Copy, const N: usize>(r: &mut ChaCha8Rng, choices: [T; N]) -> T {
    choices[r.gen_range(0..N)]
}

/// How a table row reaches `cobble::Options`: `engine: field` for an options field of the
/// knob's type, set and read as is, or `engine: { apply: |o, v| .., read: |o| .. }`.
macro_rules! knob_engine {
    (apply $field:ident) => {
        |o, v| o.$field = v
    };
    (read $field:ident) => {
        |o| o.$field
    };
    (apply { apply: $apply:expr, read: $read:expr $(,)? }) => {
        $apply
    };
    (read { apply: $apply:expr, read: $read:expr $(,)? }) => {
        $read
    };
}

/// The first of its arguments, or the fallback after `;` when there is none.
macro_rules! knob_or {
    ($x:expr ; $fallback:expr) => {
        $x
    };
    (; $fallback:expr) => {
        $fallback
    };
}

/// The knob table: generates `EngineConfig` (`name`, `description`, then one
/// `Option<T>` field per knob, in table order) and `KNOBS`, one [`KnobSpec`] per row.
///
/// A row: `name: Type { engine: .., [bounds: (lo, hi),] [unset_chance: (n, d),] random: ..,
/// [shrink: ..,] }`. Unset: no bounds, left unset by a random config one time in three,
/// shrunk by [`reset`].
macro_rules! engine_knobs {
    ($(
        $(#[$meta:meta])*
        $name:ident: $ty:ty {
            engine: $engine:tt,
            $(bounds: $bounds:expr,)?
            $(unset_chance: $unset:expr,)?
            random: $random:expr,
            $(shrink: $shrink:expr,)?
        }
    )*) => {
        /// A named engine configuration: every knob is optional, and an absent knob takes
        /// `cobble::Options::default()`'s value (see the module docs).
        #[derive(Clone, Debug, PartialEq, Eq, Default, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct EngineConfig {
            /// The config's name; a file's name must match its stem (it may be left out there).
            pub name: String,
            /// What the config is for (not a knob).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub description: Option<String>,
            /// The name whose hash seeds the config's run (the runner's fault, crash and
            /// recovery decisions), when not `name`: a reduced config, renamed
            /// `<name>-reduced`, keeps its original's so that it replays the same way.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub seeded_as: Option<String>,
            $(
                $(#[$meta])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        /// Every knob, in table order (the order of `knobs()`, of a config's JSON and of the
        /// reducer's passes).
        pub static KNOBS: &[&dyn $crate::config::knob::Knob] = &[$(
            &$crate::config::knob::KnobSpec::<$ty> {
                name: stringify!($name),
                get: |c| c.$name,
                set: |c, v| c.$name = v,
                apply: $crate::config::knob::knob_engine!(apply $engine),
                read: $crate::config::knob::knob_engine!(read $engine),
                bounds: $crate::config::knob::knob_or!($(Some($bounds))? ; None),
                unset_chance: $crate::config::knob::knob_or!($($unset)? ; (1, 3)),
                random: $random,
                shrink: $crate::config::knob::knob_or!($($shrink)? ; $crate::config::knob::reset),
            },
        )*];
    };
}

pub(crate) use {engine_knobs, knob_engine, knob_or};
