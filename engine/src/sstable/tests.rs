//! Golden and property tests for SSTables.
