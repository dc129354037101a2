//! Tumbler: deterministic simulation and metamorphic testing for Cobble.

pub mod config;
pub mod fuzz;
pub mod model;
pub mod ops;
pub mod sim;
