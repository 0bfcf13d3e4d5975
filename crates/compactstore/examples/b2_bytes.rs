//! B2's memory figure from the engine alone: bytes per entry of 1M mixed records in a `KeyedStore<i64>`
//! keyed by ref, measured with `nbytes()` (every buffer the store holds, dictionaries and hash table
//! included). Run with `cargo run --release -p compactstore --example b2_bytes [n]`.
//!
//! The record is B2's {fitness f32, generation i32, num_codes u16, alive bool, inputs u8[8], name str
//! (12..20 ASCII letters, 16 on average), category interned str (8 distinct)}, with `ref` as the key (the
//! key column holds it; storing it again as a member would add 8 bytes per entry).

use std::sync::Arc;

use compactstore::{
    Dtype, KeyedStore, Member, MemberType, Result, Schema, Store, Value, DEFAULT_KEYED_LOG2SIZE,
};

const CATEGORIES: [&str; 8] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta",
];

fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let schema = Arc::new(Schema::new(vec![
        Member::new("fitness", MemberType::Scalar(Dtype::F32))?,
        Member::new("generation", MemberType::Scalar(Dtype::I32))?,
        Member::new("num_codes", MemberType::Scalar(Dtype::U16))?,
        Member::new("alive", MemberType::Scalar(Dtype::Bool))?,
        Member::new("inputs", MemberType::Array(Dtype::U8, 8))?,
        Member::new("name", MemberType::Str)?,
        Member::new("category", MemberType::interned(MemberType::Str))?,
    ])?);
    let rss_before = rss();
    let mut pool = KeyedStore::<i64>::new(schema, DEFAULT_KEYED_LOG2SIZE)?;
    // A fixed-seed xorshift, so the figure is reproducible.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut name_bytes = 0;
    for i in 0..n {
        let r = next();
        let len = 12 + (r % 9) as usize;
        name_bytes += len;
        let name: String = (0..len)
            .map(|k| (b'a' + ((r >> (k * 3)) % 26) as u8) as char)
            .collect();
        let key = (r >> 2) as i64 ^ i as i64;
        pool.insert(
            &key,
            &[
                (0, Value::Float(f64::from((r % 1000) as u32) / 1000.0)),
                (1, Value::Int((r % 1_000_000) as i64)),
                (2, Value::UInt(r % 65536)),
                (3, Value::Bool(r % 2 == 0)),
                (
                    4,
                    Value::Array((0..8).map(|k| Value::UInt((r >> (k * 8)) & 0xFF)).collect()),
                ),
                (5, Value::Str(name)),
                (6, Value::from(CATEGORIES[(r % 8) as usize])),
            ],
        )?;
    }
    let total = pool.nbytes();
    let rss_gained = rss().zip(rss_before).map(|(a, b)| a.saturating_sub(b));
    let store = pool.store();
    let dict: usize = store.chunks().first().map_or(0, |c| c.dictionaries_nbytes());
    let members: Vec<(String, usize)> = store
        .schema()
        .members()
        .iter()
        .enumerate()
        .map(|(m, mem)| {
            let b: usize = store
                .chunks()
                .iter()
                .filter_map(|c| c.column(m).ok())
                .map(|c| c.nbytes())
                .sum();
            (mem.name().to_owned(), b)
        })
        .collect();
    println!(
        "entries: {} (slots {}), name bytes {:.1} per entry",
        pool.len(),
        store.size(),
        name_bytes as f64 / n as f64
    );
    for (name, b) in &members {
        println!("  {name:<12} {:6.2} B/entry", *b as f64 / n as f64);
    }
    println!("  dictionary   {dict} B total");
    let slots: usize = store.chunks().iter().map(|c| c.slots().nbytes()).sum();
    println!("  slots        {:6.2} B/entry", slots as f64 / n as f64);
    let rest = total - Store::nbytes(store);
    println!("  keys+table+dirty {:6.2} B/entry", rest as f64 / n as f64);
    println!(
        "B2 total: {total} bytes = {:.2} B/entry (target <= 64)",
        total as f64 / n as f64
    );
    if let Some(g) = rss_gained {
        println!(
            "resident memory gained while building: {:.2} B/entry",
            g as f64 / n as f64
        );
    }
    pool.validate()?;
    Ok(())
}

/// Resident bytes of this process (Linux: `/proc/self/statm`, assuming 4 KiB pages), if known.
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
