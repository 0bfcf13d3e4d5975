//! Model-based property tests of [`KeyedStore`].
//!
//! proptest generates random sequences of operations (insert of a new or present key, set, set an element,
//! set a typed scalar, update, scatter values (to present keys, or also to a free slot), remove, take, pop, clear, clear modified (all or some keys), find, retract) with valid and invalid
//! values, and applies each to a keyed store and to a plain model: `HashMap<key, member values>` plus a
//! `HashSet` of modified keys. After every step the whole store is compared with the model (`len`, every
//! key's slot and values, `key_at`, iteration in slot order, `modified()`), and `validate()` must pass. A
//! call the model says must fail must fail and change nothing; the comparison after the step checks that.
//!
//! Chunks are 1 to 8 slots so that the store grows a chunk at a time; string keys use a compaction
//! threshold of 0 to 15 bytes so that key-arena compaction runs on tiny data (`validate()` checks that
//! garbage never outgrows the live keys and the threshold).

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use compactstore::{Dtype, Error, Key, KeyedStore, Member, MemberType, Scalar, Schema, Store, Value};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// `i64`, read-only, default -1.
const REF: usize = 0;
/// `f32`, default 0.5.
const FITNESS: usize = 1;
/// `u8[3]`, default `[2, 2, 2]`.
const INPUTS: usize = 2;
/// `bool`, default `true`.
const ALIVE: usize = 3;
/// Number of members (also an out-of-range member position).
const MEMBERS: usize = 4;
/// Distinct keys an operation may name.
const KEYS: u8 = 24;

fn schema() -> Result<Arc<Schema>, Error> {
    Ok(Arc::new(Schema::new(vec![
        Member::new("ref", MemberType::Scalar(Dtype::I64))?
            .with_default(Value::Int(-1))?
            .read_only(true),
        Member::new("fitness", MemberType::Scalar(Dtype::F32))?.with_default(Value::Float(0.5))?,
        Member::new("inputs", MemberType::Array(Dtype::U8, 3))?.with_default(Value::UInt(2))?,
        Member::new("alive", MemberType::Scalar(Dtype::Bool))?.with_default(Value::Bool(true))?,
    ])?))
}

/// An engine error as a test failure.
fn fail(what: &str, e: Error) -> TestCaseError {
    TestCaseError::fail(format!("{what}: {e}"))
}

/// The defaults, written out independently of the engine.
fn defaults() -> Vec<Value> {
    vec![
        Value::Int(-1),
        Value::Float(0.5),
        Value::Array(vec![Value::UInt(2); 3]),
        Value::Bool(true),
    ]
}

/// A value to write and what the member must hold afterwards (`None`: the write must fail).
#[derive(Debug, Clone)]
struct Val {
    given: Value,
    stored: Option<Value>,
}

fn ok(given: Value, stored: Value) -> Val {
    Val {
        given,
        stored: Some(stored),
    }
}

fn bad(given: Value) -> Val {
    Val { given, stored: None }
}

fn u8s(xs: &[u8]) -> Value {
    Value::Array(xs.iter().map(|&x| Value::UInt(u64::from(x))).collect())
}

/// A value for member `m`, mostly valid. Member `MEMBERS` does not exist: every write to it fails.
fn val(m: usize) -> BoxedStrategy<Val> {
    match m {
        REF => prop_oneof![
            4 => (-3i64..4).prop_map(|i| ok(Value::Int(i), Value::Int(i))),
            1 => (0u64..3).prop_map(|u| ok(Value::UInt(u), Value::Int(u as i64))),
            1 => Just(bad(Value::UInt(u64::MAX))),
            1 => Just(bad(Value::Float(1.0))),
        ]
        .boxed(),
        FITNESS => prop_oneof![
            4 => prop::sample::select(vec![0.0, -0.0, 0.25, 0.5, 1.5, -3.0])
                .prop_map(|x| ok(Value::Float(x), Value::Float(x))),
            1 => (-2i64..3).prop_map(|i| ok(Value::Int(i), Value::Float(i as f64))),
            1 => Just(bad(Value::Float(1e39))),
            1 => Just(bad(Value::Str("x".into()))),
        ]
        .boxed(),
        INPUTS => prop_oneof![
            4 => prop::array::uniform3(0u8..4).prop_map(|a| ok(u8s(&a), u8s(&a))),
            1 => Just(bad(Value::Array(vec![Value::Int(1), Value::Int(300), Value::Int(0)]))),
            1 => Just(bad(u8s(&[1, 2]))),
            1 => Just(bad(Value::Int(1))),
        ]
        .boxed(),
        ALIVE => prop_oneof![
            4 => any::<bool>().prop_map(|b| ok(Value::Bool(b), Value::Bool(b))),
            1 => Just(bad(Value::Int(1))),
        ]
        .boxed(),
        _ => Just(bad(Value::Int(0))).boxed(),
    }
}

/// A `(member, value)` pair; the nonexistent member is rare.
fn member_val() -> impl Strategy<Value = (usize, Val)> {
    prop_oneof![12 => 0..MEMBERS, 1 => Just(MEMBERS)].prop_flat_map(|m| val(m).prop_map(move |v| (m, v)))
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, Vec<(usize, Val)>),
    Set(u8, usize, Val),
    SetElement(u8, usize, Val),
    SetFree(usize),
    /// `set_scalar` with a scalar of kind `k % 4` (f32, bool, i64, u8) made from a seed.
    SetScalar(u8, usize, u8, i16),
    Update(u8, Vec<(usize, Val)>),
    /// `scatter_values(member, slots of the keys, values)`, with a free slot added when `true`.
    ScatterValues(Vec<u8>, usize, Vec<Val>, bool),
    Remove(u8),
    Take(u8),
    Pop,
    Clear,
    ClearModified,
    ClearModifiedKeys(Vec<u8>),
    Find(usize, Val),
    Retract,
}

fn op() -> impl Strategy<Value = Op> {
    let key = 0..KEYS;
    let values = || prop::collection::vec(member_val(), 0..4);
    let element = prop_oneof![
        4 => (0u8..=255).prop_map(|x| ok(Value::UInt(u64::from(x)), Value::UInt(u64::from(x)))),
        1 => Just(bad(Value::Int(256))),
        1 => Just(bad(Value::Float(1.0))),
    ];
    prop_oneof![
        12 => (key.clone(), values()).prop_map(|(k, v)| Op::Insert(k, v)),
        5 => (key.clone(), member_val()).prop_map(|(k, (m, v))| Op::Set(k, m, v)),
        2 => (key.clone(), 0usize..4, element).prop_map(|(k, i, v)| Op::SetElement(k, i, v)),
        1 => (0usize..48).prop_map(Op::SetFree),
        2 => (key.clone(), values()).prop_map(|(k, v)| Op::Update(k, v)),
        3 => (key.clone(), 0..=MEMBERS, 0u8..4, any::<i16>()).prop_map(|(k, m, t, x)| Op::SetScalar(k, m, t, x)),
        2 => (
            prop::collection::vec(key.clone(), 0..4),
            prop_oneof![12 => 0..MEMBERS, 1 => Just(MEMBERS)]
                .prop_flat_map(|m| (Just(m), prop::collection::vec(val(m), 4))),
            prop::bool::weighted(0.2),
        )
            .prop_map(|(keys, (m, vals), free)| Op::ScatterValues(keys, m, vals, free)),
        4 => key.clone().prop_map(Op::Remove),
        3 => key.clone().prop_map(Op::Take),
        2 => Just(Op::Pop),
        1 => Just(Op::Clear),
        1 => Just(Op::ClearModified),
        2 => prop::collection::vec(key, 0..4).prop_map(Op::ClearModifiedKeys),
        2 => member_val().prop_map(|(m, v)| Op::Find(m, v)),
        1 => Just(Op::Retract),
    ]
}

/// A key type of the store, with its borrowed form (`HashMap` lookups need `K` itself, so no `Borrow`).
trait TestKey: Key {
    fn b(&self) -> &Self::Borrowed;
}
impl TestKey for i64 {
    fn b(&self) -> &i64 {
        self
    }
}
impl TestKey for u64 {
    fn b(&self) -> &u64 {
        self
    }
}
impl TestKey for String {
    fn b(&self) -> &str {
        self
    }
}
impl TestKey for Vec<u8> {
    fn b(&self) -> &[u8] {
        self
    }
}

/// The model: key -> member values, and the modified keys.
struct Model<K> {
    entries: HashMap<K, Vec<Value>>,
    modified: HashSet<K>,
}

/// Apply `values` on top of `base` as the model expects, or `None` if any of them must be refused.
fn apply(mut base: Vec<Value>, values: &[(usize, Val)]) -> Option<Vec<Value>> {
    for (m, v) in values {
        *base.get_mut(*m)? = v.stored.clone()?;
    }
    Some(base)
}

fn given(values: &[(usize, Val)]) -> Vec<(usize, Value)> {
    values.iter().map(|(m, v)| (*m, v.given.clone())).collect()
}

fn check<K: TestKey>(ks: &KeyedStore<K>, model: &Model<K>) -> Result<(), TestCaseError> {
    if let Err(e) = ks.validate() {
        return Err(fail("validate", e));
    }
    prop_assert_eq!(ks.len(), model.entries.len());
    prop_assert_eq!(ks.store().len(), model.entries.len());
    prop_assert_eq!(ks.is_empty(), model.entries.is_empty());
    for (k, vals) in &model.entries {
        let Some(slot) = ks.index_of(k.b()) else {
            return Err(TestCaseError::fail(format!("key {k:?} lost")));
        };
        prop_assert_eq!(ks.key_at(slot), Some(k.b()));
        prop_assert_eq!(
            &ks.values(slot).map_err(|e| fail("values", e))?,
            vals,
            "key {:?}",
            k
        );
        prop_assert_eq!(ks.is_modified(slot), model.modified.contains(k));
    }
    let listed: Vec<(&K::Borrowed, usize)> = ks.iter().collect();
    prop_assert_eq!(listed.len(), model.entries.len());
    prop_assert!(
        listed.windows(2).all(|w| w[0].1 < w[1].1),
        "iteration not in slot order"
    );
    prop_assert!(listed
        .iter()
        .all(|(k, _)| model.entries.contains_key(&(*k).to_owned())));
    let modified: HashSet<K> = ks.modified().into_iter().collect();
    prop_assert_eq!(&modified, &model.modified);
    Ok(())
}

fn run<K: TestKey>(
    make: fn(u8) -> K,
    log2size: u32,
    compact_min: usize,
    ops: &[Op],
) -> Result<(), TestCaseError> {
    let schema = schema().map_err(|e| fail("schema", e))?;
    let mut ks = KeyedStore::<K>::with_compaction_threshold(schema, log2size, compact_min)
        .map_err(|e| fail("new", e))?;
    let mut model = Model::<K> {
        entries: HashMap::new(),
        modified: HashSet::new(),
    };
    for op in ops {
        match op {
            Op::Insert(k, values) => {
                let key = make(*k);
                let before = ks.index_of(key.b());
                let r = ks.insert(key.b(), &given(values));
                match apply(defaults(), values) {
                    Some(vals) => {
                        let (slot, present) = r.map_err(|e| fail("insert", e))?;
                        prop_assert_eq!(present, model.entries.contains_key(&key));
                        if let Some(b) = before {
                            prop_assert_eq!(slot, b, "a replace must keep the slot");
                            model.modified.insert(key.clone());
                        }
                        model.entries.insert(key, vals);
                    }
                    None => prop_assert!(r.is_err(), "insert of {:?} must fail", values),
                }
            }
            Op::Set(k, m, v) => {
                let key = make(*k);
                let Some(slot) = ks.index_of(key.b()) else {
                    continue;
                };
                let r = ks.set(slot, *m, &v.given);
                let expect = if *m == REF { None } else { v.stored.clone() };
                match (expect, model.entries.get_mut(&key)) {
                    (Some(x), Some(vals)) if *m < MEMBERS => {
                        prop_assert!(r.is_ok(), "set: {:?}", r);
                        vals[*m] = x;
                        model.modified.insert(key);
                    }
                    _ => {
                        prop_assert!(r.is_err(), "set of {:?} to member {} must fail", v, m);
                        if *m == REF {
                            prop_assert!(matches!(r, Err(Error::ReadOnly { .. })), "{:?}", r);
                        }
                    }
                }
            }
            Op::SetScalar(k, m, t, x) => {
                let key = make(*k);
                let Some(slot) = ks.index_of(key.b()) else {
                    continue;
                };
                let (scalar, fits) = match t % 4 {
                    0 => (Scalar::F32(f32::from(*x) / 4.0), FITNESS),
                    1 => (Scalar::Bool(x & 1 == 1), ALIVE),
                    2 => (Scalar::I64(i64::from(*x)), REF),
                    _ => (Scalar::U8(*x as u8), usize::MAX), // no u8 scalar member
                };
                let r = ks.set_scalar(slot, *m, scalar);
                match model.entries.get_mut(&key) {
                    Some(vals) if *m == fits && *m != REF => {
                        prop_assert!(r.is_ok(), "set_scalar: {:?}", r);
                        vals[*m] = Value::from(scalar);
                        model.modified.insert(key);
                    }
                    _ => {
                        prop_assert!(r.is_err(), "set_scalar of {:?} to member {} must fail", scalar, m);
                        if *m == REF {
                            prop_assert!(matches!(r, Err(Error::ReadOnly { .. })), "{:?}", r);
                        }
                    }
                }
            }
            Op::ScatterValues(keys, m, vals, free) => {
                let present: Vec<K> = keys
                    .iter()
                    .map(|&k| make(k))
                    .filter(|k| ks.contains(k.b()))
                    .collect();
                let mut idx: Vec<usize> = present.iter().filter_map(|k| ks.index_of(k.b())).collect();
                let free_slot = (0..ks.store().size()).find(|&i| !ks.store().occupied(i));
                if let (true, Some(f)) = (*free, free_slot) {
                    idx.push(f);
                }
                let used: Vec<&Val> = vals.iter().cycle().take(idx.len()).collect();
                let given: Vec<Value> = used.iter().map(|v| v.given.clone()).collect();
                let r = ks.scatter_values(*m, &idx, &given);
                let stored: Option<Vec<Value>> = used.iter().map(|v| v.stored.clone()).collect();
                match stored {
                    Some(stored) if *m < MEMBERS && *m != REF && idx.len() == present.len() => {
                        prop_assert!(r.is_ok(), "scatter_values: {:?}", r);
                        for (key, x) in present.into_iter().zip(stored) {
                            if let Some(vals) = model.entries.get_mut(&key) {
                                vals[*m] = x;
                            }
                            model.modified.insert(key);
                        }
                    }
                    _ => prop_assert!(
                        r.is_err(),
                        "scatter_values to member {} of {:?} must fail",
                        m,
                        idx
                    ),
                }
            }
            Op::SetElement(k, i, v) => {
                let key = make(*k);
                let Some(slot) = ks.index_of(key.b()) else {
                    continue;
                };
                let r = ks.set_element(slot, INPUTS, *i, &v.given);
                match (&v.stored, model.entries.get_mut(&key)) {
                    (Some(x), Some(vals)) if *i < 3 => {
                        prop_assert!(r.is_ok(), "set_element: {:?}", r);
                        if let Value::Array(a) = &mut vals[INPUTS] {
                            a[*i] = x.clone();
                        }
                        model.modified.insert(key);
                    }
                    _ => prop_assert!(r.is_err()),
                }
            }
            Op::SetFree(slot) => {
                if ks.store().occupied(*slot) {
                    continue;
                }
                let r = ks.set(*slot, FITNESS, &Value::Float(1.0));
                if *slot < ks.store().size() {
                    prop_assert_eq!(r, Err(Error::SlotFree { index: *slot }));
                } else {
                    prop_assert!(matches!(r, Err(Error::IndexOutOfRange { .. })), "{:?}", r);
                }
                prop_assert_eq!(ks.key_at(*slot), None);
            }
            Op::Update(k, values) => {
                let key = make(*k);
                let Some(slot) = ks.index_of(key.b()) else {
                    continue;
                };
                let g = ks
                    .store()
                    .generation(slot)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let r = ks.update(slot, g, &given(values));
                let read_only = values.iter().any(|(m, _)| *m == REF);
                match model.entries.get(&key).and_then(|old| apply(old.clone(), values)) {
                    Some(vals) if !read_only => {
                        prop_assert!(r.is_ok(), "update: {:?}", r);
                        model.entries.insert(key.clone(), vals);
                        if !values.is_empty() {
                            model.modified.insert(key);
                        }
                    }
                    _ => prop_assert!(r.is_err(), "update with {:?} must fail", values),
                }
            }
            Op::Remove(k) => {
                let key = make(*k);
                let slot = ks.index_of(key.b());
                let r = ks.remove(key.b());
                prop_assert_eq!(r, slot);
                prop_assert_eq!(r.is_some(), model.entries.remove(&key).is_some());
                model.modified.remove(&key);
                if let Some(s) = r {
                    prop_assert!(!ks.store().occupied(s));
                }
            }
            Op::Take(k) => {
                let key = make(*k);
                let r = ks.take(key.b());
                prop_assert_eq!(r, model.entries.remove(&key));
                model.modified.remove(&key);
            }
            Op::Pop => {
                let first = ks.iter().next().map(|(_, s)| s);
                match ks.pop_first() {
                    Some((key, vals)) => {
                        prop_assert_eq!(Some(vals), model.entries.remove(&key));
                        model.modified.remove(&key);
                        prop_assert!(first.is_some_and(|s| !ks.store().occupied(s)));
                    }
                    None => prop_assert!(model.entries.is_empty()),
                }
            }
            Op::Clear => {
                ks.clear();
                model.entries.clear();
                model.modified.clear();
            }
            Op::ClearModified => {
                ks.clear_modified();
                model.modified.clear();
            }
            Op::ClearModifiedKeys(keys) => {
                let keys: Vec<K> = keys.iter().map(|&k| make(k)).collect();
                ks.clear_modified_keys(keys.iter().map(TestKey::b));
                for k in &keys {
                    model.modified.remove(k);
                }
            }
            Op::Find(m, v) => {
                let r = ks.find(*m, &v.given);
                match (&v.stored, *m < MEMBERS) {
                    (Some(x), true) => {
                        let found = r.map_err(|e| fail("find", e))?;
                        let slots: Vec<usize> = found.iter().filter_map(|k| ks.index_of(k.b())).collect();
                        prop_assert!(slots.windows(2).all(|w| w[0] < w[1]), "find not in slot order");
                        let found: HashSet<K> = found.into_iter().collect();
                        let want: HashSet<K> = model
                            .entries
                            .iter()
                            .filter(|(_, vals)| &vals[*m] == x)
                            .map(|(k, _)| k.clone())
                            .collect();
                        prop_assert_eq!(found, want);
                    }
                    _ => prop_assert!(r.is_err()),
                }
            }
            Op::Retract => {
                let size = ks.store().size();
                let n = ks.retract();
                prop_assert_eq!(ks.store().size(), size - n * (1 << log2size));
            }
        }
        check(&ks, &model)?;
    }
    Ok(())
}

fn int_key(i: u8) -> i64 {
    match i {
        0 => i64::MIN,
        1 => i64::MAX,
        _ => (i64::from(i) - 12).wrapping_mul(1_000_003),
    }
}

fn str_key(i: u8) -> String {
    match i {
        0 => String::new(),
        _ => format!("{i}:{}", "é".repeat(usize::from(i) % 5)),
    }
}

fn bytes_key(i: u8) -> Vec<u8> {
    match i {
        0 => Vec::new(),
        _ => std::iter::once(i).chain((0..i % 6).map(|j| i ^ j)).collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn int_keys_match_the_model(log2size in 0u32..4, ops in prop::collection::vec(op(), 1..60)) {
        run::<i64>(int_key, log2size, 0, &ops)?;
    }

    #[test]
    fn str_keys_match_the_model(
        log2size in 0u32..4,
        compact_min in 0usize..16,
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run::<String>(str_key, log2size, compact_min, &ops)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn u64_keys_match_the_model(log2size in 0u32..4, ops in prop::collection::vec(op(), 1..40)) {
        run::<u64>(|i| u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15), log2size, 0, &ops)?;
    }

    #[test]
    fn bytes_keys_match_the_model(
        log2size in 0u32..4,
        compact_min in 0usize..8,
        ops in prop::collection::vec(op(), 1..40),
    ) {
        run::<Vec<u8>>(bytes_key, log2size, compact_min, &ops)?;
    }
}

#[test]
fn keys_of_every_type_are_distinct_in_the_generators() {
    // The model relies on distinct indices naming distinct keys.
    fn distinct<K: Eq + std::hash::Hash + Debug>(make: fn(u8) -> K) {
        let keys: HashSet<K> = (0..KEYS).map(make).collect();
        assert_eq!(keys.len(), usize::from(KEYS));
    }
    distinct(int_key);
    distinct(str_key);
    distinct(bytes_key);
}
