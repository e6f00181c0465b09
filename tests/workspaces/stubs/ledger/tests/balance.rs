use ledger::balance;

#[test]
fn sums_entries() {
    assert_eq!(balance(&[100, -25]), 75);
}
