//! Criterion benches of the engine (placeholder until the bench lands).
fn main() {}
