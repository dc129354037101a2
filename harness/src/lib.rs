//! Tumbler: deterministic simulation and metamorphic testing for Cobble.

pub mod artifacts;
pub mod check;
pub mod cli;
pub mod config;
pub mod config_check;
pub mod corpus;
#[cfg(feature = "rocksdb")]
pub mod differential;
pub mod fuzz;
pub mod image;
pub mod input;
pub mod merge_ops;
pub mod model;
pub mod nightly;
pub mod ops;
pub mod plan;
pub mod reduce;
pub mod report;
pub mod runner;
pub mod sched;
pub mod sim;
pub mod supervise;
pub mod watchdog;
