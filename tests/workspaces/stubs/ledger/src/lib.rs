//! A tiny ledger of signed amounts in cents.

/// The sum of all entries, in cents; an empty ledger balances to zero.
pub fn balance(entries: &[i64]) -> i64 {
    todo!()
}

/// The largest single entry, if any.
pub fn largest(entries: &[i64]) -> Option<i64> {
    entries.iter().copied().max()
}
