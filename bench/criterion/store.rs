//! Criterion benches of the engine: 1M entries of `{ref: i64, fitness: f32, inputs: u8[8]}` in a
//! `DynamicStore` (chunks of 2^11 slots, the default, unless a bench says otherwise) against a
//! `Vec<Gene>` and a `HashMap<u64, Gene>` (std, default SipHash hasher), all in the same run:
//!
//! - `fill`: build 1M entries from nothing (the store and containers grow as they go; dropping the result
//!   is not timed);
//! - `random_read`: read `ref` and `fitness` of 100k entries in a fixed pseudo-random order, by slot index
//!   (store, `Vec`) or by key (`HashMap`);
//! - `column_sum`: the sum of `fitness` over all 1M entries: per-chunk `column_slice::<f32>` against one
//!   `Vec<f32>` (the target is at most 1.2x the `Vec<f32>`).
//!
//! Run with `cargo bench -p compactstore --bench store`; bench/RESULTS.md holds the figures.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use compactstore::{Dtype, DynamicStore, Member, MemberType, Schema, Store, Value, DEFAULT_LOG2SIZE};
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

/// Entries per container.
const N: usize = 1_000_000;
/// Random reads per iteration of the `random_read` benches.
const READS: usize = 100_000;
/// The larger chunk size measured beside the default in `column_sum`.
const BIG_LOG2SIZE: u32 = 16;

/// Member positions in the schema.
const REF: usize = 0;
const FITNESS: usize = 1;
const INPUTS: usize = 2;

/// The record as a plain struct (24 bytes with padding; the store keeps 20 per entry).
#[derive(Clone, Copy, Debug)]
struct Gene {
    r#ref: i64,
    fitness: f32,
    inputs: [u8; 8],
}

/// Entry `k`'s values, the same for every container.
fn gene(k: usize) -> Gene {
    Gene {
        r#ref: k as i64 * 3,
        fitness: (k % 1000) as f32 * 0.5,
        inputs: [k as u8; 8],
    }
}

/// Entry `k`'s key in the `HashMap`: `k` scrambled by an odd multiplier (a bijection), so keys are not dense.
fn key(k: usize) -> u64 {
    (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// A bench cannot recover from an engine error: report it and stop (this is the only panic path).
fn ok<T>(r: compactstore::Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("engine error in bench: {e}"),
    }
}

fn schema() -> Arc<Schema> {
    ok((|| {
        Ok(Arc::new(Schema::new(vec![
            Member::new("ref", MemberType::Scalar(Dtype::I64))?,
            Member::new("fitness", MemberType::Scalar(Dtype::F32))?,
            Member::new("inputs", MemberType::Array(Dtype::U8, 8))?,
        ])?))
    })())
}

/// Fill through the untyped path: `add` with one `Value` per member.
fn fill_store_values(log2size: u32) -> DynamicStore {
    let mut s = ok(DynamicStore::new(schema(), log2size));
    for k in 0..N {
        let g = gene(k);
        let inputs = Value::Array(g.inputs.iter().map(|&x| Value::UInt(x.into())).collect());
        ok(s.add(&[
            (REF, Value::Int(g.r#ref)),
            (FITNESS, Value::Float(g.fitness.into())),
            (INPUTS, inputs),
        ]));
    }
    s
}

/// Fill through the typed path: `next_index`, then write each member through the chunk's `&mut [T]`.
fn fill_store_typed(log2size: u32) -> DynamicStore {
    let mut s = ok(DynamicStore::new(schema(), log2size));
    for k in 0..N {
        let g = gene(k);
        let i = ok(s.next_index());
        let (c, o) = ok(s.locate(i));
        let chunk = ok(s.chunk_mut(c));
        ok(chunk.column_slice_mut::<i64>(REF))[o] = g.r#ref;
        ok(chunk.column_slice_mut::<f32>(FITNESS))[o] = g.fitness;
        ok(chunk.column_slice_mut::<u8>(INPUTS))[o * 8..o * 8 + 8].copy_from_slice(&g.inputs);
    }
    s
}

fn fill_vec() -> Vec<Gene> {
    let mut v = Vec::new();
    for k in 0..N {
        v.push(gene(k));
    }
    v
}

fn fill_map() -> HashMap<u64, Gene> {
    let mut m = HashMap::new();
    for k in 0..N {
        m.insert(key(k), gene(k));
    }
    m
}

/// `READS` entry numbers in `0..N`, from a fixed-seed xorshift64*.
fn random_entries() -> Vec<usize> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..READS)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % N as u64) as usize
        })
        .collect()
}

fn fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("fill");
    g.sampling_mode(SamplingMode::Flat);
    g.bench_function("dynamic_add_values", |b| {
        b.iter_with_large_drop(|| fill_store_values(DEFAULT_LOG2SIZE));
    });
    g.bench_function("dynamic_next_index_typed", |b| {
        b.iter_with_large_drop(|| fill_store_typed(DEFAULT_LOG2SIZE));
    });
    g.bench_function("vec_push", |b| b.iter_with_large_drop(fill_vec));
    g.bench_function("hashmap_insert", |b| b.iter_with_large_drop(fill_map));
    g.finish();
}

/// Read `ref` and `fitness` of the given slots through the untyped path (`get` returns a `Value`).
fn read_store_values(s: &DynamicStore, slots: &[usize]) -> (i64, f64) {
    let (mut r, mut f) = (0i64, 0f64);
    for &i in slots {
        if let Value::Int(x) = ok(s.get(i, REF)) {
            r = r.wrapping_add(x);
        }
        if let Value::Float(x) = ok(s.get(i, FITNESS)) {
            f += x;
        }
    }
    (r, f)
}

/// Read `ref` and `fitness` of the given slots through the chunks' typed slices.
fn read_store_typed(s: &DynamicStore, slots: &[usize]) -> (i64, f64) {
    let (mut r, mut f) = (0i64, 0f64);
    for &i in slots {
        let (c, o) = ok(s.locate(i));
        let chunk = &s.chunks()[c];
        r = r.wrapping_add(ok(chunk.column_slice::<i64>(REF))[o]);
        f += f64::from(ok(chunk.column_slice::<f32>(FITNESS))[o]);
    }
    (r, f)
}

fn read_vec(v: &[Gene], slots: &[usize]) -> (i64, f64) {
    let (mut r, mut f) = (0i64, 0f64);
    for &i in slots {
        let e = &v[i];
        r = r.wrapping_add(e.r#ref);
        f += f64::from(e.fitness);
    }
    (r, f)
}

fn read_map(m: &HashMap<u64, Gene>, keys: &[u64]) -> (i64, f64) {
    let (mut r, mut f) = (0i64, 0f64);
    for k in keys {
        if let Some(e) = m.get(k) {
            r = r.wrapping_add(e.r#ref);
            f += f64::from(e.fitness);
        }
    }
    (r, f)
}

fn random_read(c: &mut Criterion) {
    // Entry k sits in slot k of the store, as the store fills lowest-free-first.
    let store = fill_store_typed(DEFAULT_LOG2SIZE);
    let vec = fill_vec();
    let map = fill_map();
    let slots = random_entries();
    let keys: Vec<u64> = slots.iter().map(|&k| key(k)).collect();

    // Every path must read the same entries, or the comparison means nothing.
    let want = read_vec(&vec, &slots);
    for (name, got) in [
        ("get", read_store_values(&store, &slots)),
        ("typed", read_store_typed(&store, &slots)),
        ("hashmap", read_map(&map, &keys)),
    ] {
        assert_eq!(got, want, "{name} reads other entries than the Vec");
    }

    let mut g = c.benchmark_group("random_read");
    g.bench_function("dynamic_get_value", |b| {
        b.iter(|| read_store_values(black_box(&store), &slots));
    });
    g.bench_function("dynamic_typed_slice", |b| {
        b.iter(|| read_store_typed(black_box(&store), &slots));
    });
    g.bench_function("vec_index", |b| b.iter(|| read_vec(black_box(&vec), &slots)));
    g.bench_function("hashmap_get", |b| b.iter(|| read_map(black_box(&map), &keys)));
    g.finish();
}

/// The sum of `fitness` over every chunk, one typed slice per chunk.
fn column_sum_of(s: &DynamicStore) -> f32 {
    s.chunks()
        .iter()
        .map(|c| ok(c.column_slice::<f32>(FITNESS)).iter().sum::<f32>())
        .sum()
}

fn column_sum(c: &mut Criterion) {
    let store = fill_store_typed(DEFAULT_LOG2SIZE);
    let big = fill_store_typed(BIG_LOG2SIZE);
    let vec = fill_vec();
    let column: Vec<f32> = vec.iter().map(|e| e.fitness).collect();
    // The stores hold the same values (free tail slots hold 0.0); the sums differ only by rounding order.
    let v = column.iter().sum::<f32>();
    for s in [&store, &big] {
        let a = column_sum_of(s);
        assert!(
            (a - v).abs() <= v.abs() * 1e-3,
            "column sums disagree: store {a}, vec {v}"
        );
    }

    let mut g = c.benchmark_group("column_sum");
    g.bench_function("dynamic_chunks_log2size_11", |b| {
        b.iter(|| column_sum_of(black_box(&store)))
    });
    g.bench_function("dynamic_chunks_log2size_16", |b| {
        b.iter(|| column_sum_of(black_box(&big)))
    });
    g.bench_function("vec_f32", |b| {
        b.iter(|| black_box(&column).iter().sum::<f32>());
    });
    g.bench_function("vec_struct_field", |b| {
        b.iter(|| black_box(&vec).iter().map(|e| e.fitness).sum::<f32>());
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = fill, random_read, column_sum
}
criterion_main!(benches);
