//! The merge operators a config can name, in two independent halves: the operator handed to
//! Cobble (user code, as an embedder writes it) and the reference model's own definition of
//! what a merge stack must come to. The model never calls the engine's operator, so an engine
//! that reorders, drops, duplicates or nests operands disagrees with it.
//!
//! - `string_append`: Cobble's own `StringAppend` (`,` between the existing value and each
//!   operand), the default. The model joins the pieces itself. Its `partial_merge` lets
//!   compactions fold runs of operands into one; non-commutative, so a run folded out of
//!   order, or across a snapshot that reads part of it, disagrees with the model.
//! - `nested`: records the whole stack as `{B+len:op+len:op...}` where `B` is `-` for no
//!   existing value or `=len:value`. Non-commutative (order shows), length-prefixed (a dropped,
//!   duplicated or split operand shows), and non-associative: merging a merged value again
//!   nests braces, so an engine that resolves one stack in several `full_merge` calls (a read
//!   stitching levels together, a partial merge passed off as a full one) shows too. It offers
//!   no `partial_merge`, so Cobble must keep its operands apart until a read resolves them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Which merge operator a config uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeKind {
    /// Cobble's `StringAppend` with `,`.
    #[default]
    StringAppend,
    /// The harness's order- and nesting-recording operator.
    Nested,
}

impl MergeKind {
    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            MergeKind::StringAppend => "string_append",
            MergeKind::Nested => "nested",
        }
    }

    /// The operator handed to the engine.
    pub fn engine_operator(self) -> Arc<dyn cobble::MergeOperator> {
        match self {
            MergeKind::StringAppend => Arc::new(cobble::StringAppend::default()),
            MergeKind::Nested => Arc::new(NestedOperator),
        }
    }

    /// The kind whose [`MergeKind::engine_operator`] `op` is, by its name.
    ///
    /// # Panics
    /// When `op` came from no `MergeKind` (a bug: configs only hand the engine these).
    pub fn of_engine_operator(op: &dyn cobble::MergeOperator) -> MergeKind {
        [MergeKind::StringAppend, MergeKind::Nested]
            .into_iter()
            .find(|k| k.engine_operator().name() == op.name())
            .unwrap_or_else(|| panic!("merge operator {} is no MergeKind's", op.name()))
    }

    /// What the model says a merge stack comes to: `existing` (none after any delete) with
    /// `operands` applied oldest first. Written apart from the engine's operators on purpose.
    pub fn model_merge(self, existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        match self {
            MergeKind::StringAppend => {
                let pieces: Vec<&[u8]> =
                    existing.into_iter().chain(operands.iter().copied()).collect();
                pieces.join(&b","[..])
            }
            MergeKind::Nested => {
                let mut s = Vec::from(&b"{"[..]);
                match existing {
                    None => s.push(b'-'),
                    Some(v) => {
                        s.extend_from_slice(format!("={}:", v.len()).as_bytes());
                        s.extend_from_slice(v);
                    }
                }
                for op in operands {
                    s.extend_from_slice(format!("+{}:", op.len()).as_bytes());
                    s.extend_from_slice(op);
                }
                s.push(b'}');
                s
            }
        }
    }
}

/// The engine-side `nested` operator (see the module docs).
#[derive(Debug)]
struct NestedOperator;

impl cobble::MergeOperator for NestedOperator {
    fn name(&self) -> &str {
        "tumbler.nested"
    }

    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        use std::io::Write as _;
        let mut out = vec![b'{'];
        if let Some(v) = existing {
            let _ = write!(out, "={}:", v.len());
            out.extend_from_slice(v);
        } else {
            out.push(b'-');
        }
        for op in operands {
            let _ = write!(out, "+{}:", op.len());
            out.extend_from_slice(op);
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_and_the_engine_operators_agree_on_valid_stacks() {
        for kind in [MergeKind::StringAppend, MergeKind::Nested] {
            let op = kind.engine_operator();
            for (existing, operands) in [
                (None, vec![&b"a"[..]]),
                (Some(&b""[..]), vec![&b"x"[..]]),
                (Some(&b"base"[..]), vec![&b"1"[..], &b""[..], &b"3,4"[..]]),
            ] {
                assert_eq!(
                    op.full_merge(b"k", existing, &operands),
                    kind.model_merge(existing, &operands),
                    "{kind:?}"
                );
            }
        }
    }

    #[test]
    fn nested_shows_order_boundaries_and_nesting() {
        let m = |e: Option<&[u8]>, ops: &[&[u8]]| MergeKind::Nested.model_merge(e, ops);
        assert_eq!(m(None, &[b"a", b"b"]), b"{-+1:a+1:b}".to_vec());
        assert_ne!(m(None, &[b"a", b"b"]), m(None, &[b"b", b"a"]));
        assert_ne!(m(None, &[b"ab"]), m(None, &[b"a", b"b"]));
        let once = m(Some(b"x"), &[b"a", b"b"]);
        let twice = m(Some(&m(Some(b"x"), &[b"a"])), &[b"b"]);
        assert_ne!(once, twice);
        assert_ne!(m(None, &[b"a"]), m(Some(b""), &[b"a"]));
    }
}
