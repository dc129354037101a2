//! Tumbler: deterministic simulation and metamorphic testing for Cobble.
