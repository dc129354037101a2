//! Tumbler: deterministic simulation and metamorphic testing for Cobble.

pub mod check;
pub mod cli;
pub mod config;
pub mod model;
pub mod ops;
pub mod reduce;
pub mod runner;
pub mod sim;
