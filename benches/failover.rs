//! Placeholder: replaced by the failover/steady-state benchmark work.
fn main() {}
