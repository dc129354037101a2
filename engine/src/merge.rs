//! Merge operators: combine an optional existing value with operands, oldest operand first.

use std::fmt::Debug;

/// A user-supplied merge operator.
///
/// After any delete (point, single or range) the next merge starts from no value; an empty
/// existing value is a value.
pub trait MergeOperator: Send + Sync + Debug {
    /// A stable name, recorded in table properties.
    fn name(&self) -> &str;
    /// Applies `operands` (oldest first) to `existing`.
    fn full_merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8>;
    /// Combines adjacent operands (oldest first) into one, when the operator can. Must satisfy
    /// `full_merge(e, [partial_merge(ops)]) == full_merge(e, ops)`. `None` keeps them apart.
    fn partial_merge(&self, _key: &[u8], _operands: &[&[u8]]) -> Option<Vec<u8>> {
        None
    }
}

/// The default operator: joins the existing value and operands with a separator byte, like
/// RocksDB's `StringAppendOperator` (`,` by default). Non-commutative, so reorderings show.
#[derive(Debug, Clone, Copy)]
pub struct StringAppend {
    /// The byte placed between pieces.
    pub separator: u8,
}

impl Default for StringAppend {
    fn default() -> StringAppend {
        StringAppend { separator: b',' }
    }
}

impl MergeOperator for StringAppend {
    fn name(&self) -> &str {
        "cobble.string_append"
    }

    fn full_merge(&self, _key: &[u8], existing: Option<&[u8]>, operands: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut first = true;
        for piece in existing.into_iter().chain(operands.iter().copied()) {
            if !first {
                out.push(self.separator);
            }
            out.extend_from_slice(piece);
            first = false;
        }
        out
    }

    fn partial_merge(&self, key: &[u8], operands: &[&[u8]]) -> Option<Vec<u8>> {
        Some(self.full_merge(key, None, operands))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_append_partial_equals_full() {
        let op = StringAppend::default();
        assert_eq!(op.full_merge(b"k", Some(b""), &[b"x"]), b",x".to_vec());
        assert_eq!(op.full_merge(b"k", None, &[b"x", b"y"]), b"x,y".to_vec());
        let p = op.partial_merge(b"k", &[b"b", b"c"]).unwrap();
        assert_eq!(
            op.full_merge(b"k", Some(b"a"), &[&p]),
            op.full_merge(b"k", Some(b"a"), &[b"b", b"c"])
        );
    }
}
