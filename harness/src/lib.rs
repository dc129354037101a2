//! Tumbler: deterministic simulation and metamorphic testing for Cobble.

pub mod sim;
