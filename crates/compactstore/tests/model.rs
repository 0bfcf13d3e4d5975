//! Model-based property tests of [`StaticStore`] and [`DynamicStore`].
//!
//! proptest generates a sequence of 20 to 60 random operations (`next_index`, `add`, `remove` of occupied,
//! free and out-of-range slots, `set`, `set_element`, `set_scalar`, `update` (also of stale entries) and
//! `scatter_values` with good, out-of-range and wrongly typed values, `get`, `find`, `gather`, `scatter`,
//! `retract`, `reset`, resizing resets, `clone`, `clone_empty`), and
//! each one is applied both to a store and to a plain model:
//! `Vec<Option<Vec<Value>>>` (slot -> member values, `None` = free) plus the few things a store remembers
//! besides its entries (values written to free slots, generations, `last_index`). After every step the
//! whole store is compared with the model: every member of every slot through `get` and through the typed
//! per-chunk slices, `len`, `size`, `space`, `occupied`, `indices`, `empty_indices`, `last_index`, the
//! generations, and `validate()`. Every call that the model says must fail must fail with one of the errors
//! the model allows, and change nothing (the comparison after the step checks the "nothing").
//!
//! Dynamic stores use chunks of 1 to 8 slots so that growth, chunk edges and `retract` are hit often;
//! static stores have 0 to 12 slots, so `StoreFull` is hit often too. A failure names the step and the
//! operation, and proptest shrinks the sequence.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use compactstore::{
    Dtype, DynamicStore, Error, Member, MemberType, Scalar, Schema, StaticStore, Store, Value,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// The schema: one member of each kind the engine must get right.
/// `i64`, default 0 (the all-zero default path).
const ID: usize = 0;
/// `u8`, default 7 (a nonzero default is filled into every new and freed slot).
const SMALL: usize = 1;
/// `f32`, default -0.0 (zero in value, not in bytes).
const FITNESS: usize = 2;
/// `bool`, default `true`.
const ALIVE: usize = 3;
/// `i64`, read-only, default -1: written only by `add`.
const REF: usize = 4;
/// `u8[3]`, default `[2, 2, 2]`.
const INPUTS: usize = 5;
/// `str`, default "", compaction minimum 2 bytes (so data-buffer compaction runs on tiny data).
const NAME: usize = 6;
/// `interned[str]`, default "cat": codes into one dictionary shared by every chunk.
const CAT: usize = 7;
/// `optional[i32]`, default None.
const OPT: usize = 8;
/// Number of members.
const MEMBERS: usize = 9;
/// Length of the array member.
const INPUTS_LEN: usize = 3;

fn schema() -> Result<Arc<Schema>, Error> {
    Ok(Arc::new(Schema::new(vec![
        Member::new("id", MemberType::Scalar(Dtype::I64))?,
        Member::new("small", MemberType::Scalar(Dtype::U8))?.with_default(Value::UInt(7))?,
        Member::new("fitness", MemberType::Scalar(Dtype::F32))?.with_default(Value::Float(-0.0))?,
        Member::new("alive", MemberType::Scalar(Dtype::Bool))?.with_default(Value::Bool(true))?,
        Member::new("ref", MemberType::Scalar(Dtype::I64))?
            .with_default(Value::Int(-1))?
            .read_only(true),
        Member::new("inputs", MemberType::Array(Dtype::U8, INPUTS_LEN))?.with_default(Value::UInt(2))?,
        Member::new("name", MemberType::Str)?.with_compact_min(2),
        Member::new("cat", MemberType::interned(MemberType::Str))?.with_default(Value::from("cat"))?,
        Member::new("opt", MemberType::optional(MemberType::Scalar(Dtype::I32)))?,
    ])?))
}

/// The defaults, written out independently of the engine's conversions.
fn defaults() -> Vec<Value> {
    vec![
        Value::Int(0),
        Value::UInt(7),
        Value::Float(-0.0),
        Value::Bool(true),
        Value::Int(-1),
        Value::Array(vec![Value::UInt(2); INPUTS_LEN]),
        Value::Str(String::new()),
        Value::from("cat"),
        Value::Null,
    ]
}

// ---------------------------------------------------------------------------------------------------------
// Expected errors

/// An engine error reduced to what the model can predict (messages of conversion errors are not compared).
#[derive(Debug, Clone, PartialEq)]
enum Expect {
    OutOfRange { index: i64, len: usize },
    SlotFree(usize),
    Full(usize),
    ReadOnly(&'static str),
    WrongType,
    ValueRange,
    WrongLength { expected: usize, got: usize },
    InvalidArgument,
    Stale(usize),
    Other(String),
}

fn classify(e: &Error) -> Expect {
    match e {
        Error::IndexOutOfRange { index, len } => Expect::OutOfRange {
            index: *index,
            len: *len,
        },
        Error::SlotFree { index } => Expect::SlotFree(*index),
        Error::StoreFull { size } => Expect::Full(*size),
        Error::ReadOnly { name } if name == "ref" => Expect::ReadOnly("ref"),
        Error::WrongType { .. } => Expect::WrongType,
        Error::ValueOutOfRange { .. } => Expect::ValueRange,
        Error::WrongLength { expected, got } => Expect::WrongLength {
            expected: *expected,
            got: *got,
        },
        Error::InvalidArgument(_) => Expect::InvalidArgument,
        Error::StaleEntry { index } => Expect::Stale(*index),
        // Anything else (including variants added later) is never expected by the model.
        other => Expect::Other(format!("{other:?}")),
    }
}

fn out_of_range(index: usize, len: usize) -> Expect {
    Expect::OutOfRange {
        index: index as i64,
        len,
    }
}

/// Check an engine result against the model's verdict: `Ok` when the model allows no error, otherwise an
/// error the model lists (when several checks fail, any of them may be reported).
fn expect_outcome<T: fmt::Debug>(got: &Result<T, Error>, allowed: &[Expect]) -> Result<(), TestCaseError> {
    match (got, allowed.is_empty()) {
        (Ok(_), true) => Ok(()),
        (Ok(v), false) => Err(TestCaseError::fail(format!(
            "expected one of {allowed:?}, got Ok({v:?})"
        ))),
        (Err(e), true) => Err(TestCaseError::fail(format!("expected Ok, got {e:?}"))),
        (Err(e), false) => {
            let c = classify(e);
            prop_assert!(allowed.contains(&c), "expected one of {allowed:?}, got {e:?}");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// The model's conversions (the documented rules, written independently of the engine's)

fn to_i64(v: &Value) -> Result<Value, Expect> {
    match *v {
        Value::Bool(b) => Ok(Value::Int(i64::from(b))),
        Value::Int(i) => Ok(Value::Int(i)),
        Value::UInt(u) => i64::try_from(u).map(Value::Int).map_err(|_| Expect::ValueRange),
        _ => Err(Expect::WrongType),
    }
}

fn to_u8(v: &Value) -> Result<Value, Expect> {
    let wide: i128 = match *v {
        Value::Bool(b) => i128::from(b),
        Value::Int(i) => i128::from(i),
        Value::UInt(u) => i128::from(u),
        _ => return Err(Expect::WrongType),
    };
    if (0..=255).contains(&wide) {
        Ok(Value::UInt(wide as u64))
    } else {
        Err(Expect::ValueRange)
    }
}

/// Ints and bools widen to f64 first (as Python's `float(int)` does), then round to f32; a finite value
/// that rounds to infinity is out of range.
fn to_f32(v: &Value) -> Result<Value, Expect> {
    let x = match *v {
        Value::Float(x) => x,
        Value::Bool(b) => f64::from(u8::from(b)),
        Value::Int(i) => i as f64,
        Value::UInt(u) => u as f64,
        _ => return Err(Expect::WrongType),
    };
    let y = x as f32;
    if y.is_infinite() && x.is_finite() {
        return Err(Expect::ValueRange);
    }
    Ok(Value::Float(f64::from(y)))
}

fn to_bool(v: &Value) -> Result<Value, Expect> {
    match *v {
        Value::Bool(b) => Ok(Value::Bool(b)),
        _ => Err(Expect::WrongType),
    }
}

/// The stored form of `v` written to member `m`, or every error the write may report.
fn convert(m: usize, v: &Value) -> Result<Value, Vec<Expect>> {
    let one = |r: Result<Value, Expect>| r.map_err(|e| vec![e]);
    match m {
        ID | REF => one(to_i64(v)),
        SMALL => one(to_u8(v)),
        FITNESS => one(to_f32(v)),
        ALIVE => one(to_bool(v)),
        INPUTS => match v {
            Value::Array(items) if items.len() != INPUTS_LEN => Err(vec![Expect::WrongLength {
                expected: INPUTS_LEN,
                got: items.len(),
            }]),
            Value::Array(items) => {
                let (ok, errs): (Vec<_>, Vec<_>) = items.iter().map(to_u8).partition(Result::is_ok);
                if errs.is_empty() {
                    Ok(Value::Array(ok.into_iter().flatten().collect()))
                } else {
                    Err(errs.into_iter().filter_map(Result::err).collect())
                }
            }
            _ => Err(vec![Expect::WrongType]),
        },
        NAME | CAT => match v {
            Value::Str(s) => Ok(Value::Str(s.clone())),
            _ => Err(vec![Expect::WrongType]),
        },
        OPT => match v {
            Value::Null => Ok(Value::Null),
            v => match one(to_i64(v))? {
                Value::Int(i) if i32::try_from(i).is_ok() => Ok(Value::Int(i)),
                _ => Err(vec![Expect::ValueRange]),
            },
        },
        _ => Err(vec![out_of_range(m, MEMBERS)]),
    }
}

/// Value equality with floats compared bit for bit (so `-0.0 != 0.0`), except that any NaN equals any NaN.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b)),
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------------------
// The model

#[derive(Debug, Clone)]
struct Model {
    /// Slot -> member values; `None` = free.
    entries: Vec<Option<Vec<Value>>>,
    /// Values written to free slots (allowed, as in an array); absent = the defaults.
    scratch: BTreeMap<usize, Vec<Value>>,
    /// Generation per slot: bumped when the slot is freed (by `remove` or `reset`).
    generations: Vec<u32>,
    /// Per chunk (one for a static store): whether `remove` ever freed one of its slots. Until then the
    /// chunk keeps no per-slot generation counters, and `reset` moves every slot's generation forward,
    /// free ones included (a free slot's generation is never seen by a view).
    freed: Vec<bool>,
    last_index: Option<usize>,
    /// `Some(chunk size)` for a dynamic store.
    chunk: Option<usize>,
    /// The generation new slots start at: above every generation of a slot dropped so far (by retract,
    /// reset or a resizing reset), so a view of a dropped slot never sees a later entry in its place.
    next_base: u32,
}

impl Model {
    fn new(size: usize, chunk: Option<usize>) -> Model {
        Model::new_from(size, chunk, 0)
    }

    fn new_from(size: usize, chunk: Option<usize>, base: u32) -> Model {
        Model {
            entries: vec![None; size],
            scratch: BTreeMap::new(),
            generations: vec![base; size],
            freed: vec![false; size.div_ceil(chunk.unwrap_or(size).max(1))],
            last_index: None,
            chunk,
            next_base: base,
        }
    }

    /// Slots `from..` are dropped: new slots start above their generations.
    fn forget(&mut self, from: usize) {
        for &g in &self.generations[from..] {
            self.next_base = self.next_base.max(g.wrapping_add(1));
        }
    }

    /// The base of a store replacing this one by a resizing reset.
    fn base_after_resize(&self) -> u32 {
        let top = self
            .generations
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .wrapping_add(1);
        self.next_base.max(top)
    }

    fn size(&self) -> usize {
        self.entries.len()
    }

    fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    fn occupied(&self) -> Vec<usize> {
        (0..self.size()).filter(|&i| self.entries[i].is_some()).collect()
    }

    fn free(&self) -> Vec<usize> {
        (0..self.size()).filter(|&i| self.entries[i].is_none()).collect()
    }

    /// What slot `i` holds, occupied or not.
    fn values(&self, i: usize) -> Vec<Value> {
        match &self.entries[i] {
            Some(v) => v.clone(),
            None => self.scratch.get(&i).cloned().unwrap_or_else(defaults),
        }
    }

    /// The slot's values, mutably (a free slot's go to `scratch`).
    fn values_mut(&mut self, i: usize) -> &mut Vec<Value> {
        match &mut self.entries[i] {
            Some(v) => v,
            None => self.scratch.entry(i).or_insert_with(defaults),
        }
    }

    /// `next_index`: the lowest free slot, growing a dynamic store by one chunk when none is free.
    fn next_index(&mut self) -> Result<usize, Expect> {
        let i = match self.entries.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                let Some(c) = self.chunk else {
                    return Err(Expect::Full(self.size()));
                };
                let n = self.size();
                self.entries.resize(n + c, None);
                self.generations.resize(n + c, self.next_base);
                self.freed.push(false);
                n
            }
        };
        self.scratch.remove(&i);
        self.entries[i] = Some(defaults());
        self.last_index = Some(i);
        Ok(i)
    }

    fn remove(&mut self, i: usize) -> Result<(), Expect> {
        match self.entries.get(i) {
            None => Err(out_of_range(i, self.size())),
            Some(None) => Err(Expect::SlotFree(i)),
            Some(Some(_)) => {
                self.entries[i] = None;
                self.scratch.remove(&i);
                self.generations[i] = self.generations[i].wrapping_add(1);
                let c = self.chunk.unwrap_or(self.size());
                self.freed[i / c] = true;
                Ok(())
            }
        }
    }

    /// Drop every entry; a dynamic store keeps its first chunk only.
    fn reset(&mut self) {
        let keep = self.chunk.unwrap_or(self.size());
        self.forget(keep);
        let counters = self.freed.first().copied().unwrap_or(false);
        let any = self.entries[..keep].iter().any(Option::is_some);
        for i in 0..keep {
            if self.entries[i].is_some() || (!counters && any) {
                self.generations[i] = self.generations[i].wrapping_add(1);
            }
        }
        self.entries = vec![None; keep];
        self.generations.truncate(keep);
        self.freed.truncate(1);
        self.scratch.clear();
        self.last_index = None;
    }

    /// Drop the trailing chunks that hold no entry, keeping one; returns how many.
    fn retract(&mut self) -> usize {
        let Some(c) = self.chunk else { return 0 };
        let mut n = 0;
        while self.size() > c && self.entries[self.size() - c..].iter().all(Option::is_none) {
            let keep = self.size() - c;
            self.forget(keep);
            self.entries.truncate(keep);
            self.generations.truncate(keep);
            self.freed.pop();
            self.scratch.retain(|&i, _| i < keep);
            n += 1;
        }
        n
    }
}

// ---------------------------------------------------------------------------------------------------------
// The stores under test, behind one interface

/// What the test needs beyond [`Store`]: the operations only one kind has.
trait Harness: Store + Clone + fmt::Debug {
    /// The chunk size of a dynamic store, `None` for a static one.
    fn chunk(&self) -> Option<usize>;
    /// `retract()` for a dynamic store; `None` for a static one.
    fn retract_chunks(&mut self) -> Option<usize>;
    /// `reset_with_size(n)` (`n == 40`: a size beyond `MAX_SIZE`) / `reset_with_log2size(n)`.
    fn reset_sized(&mut self, n: u32) -> Result<(), Error>;
    /// `clone_empty()`.
    fn empty_clone(&self) -> Self;
}

impl Harness for StaticStore {
    fn chunk(&self) -> Option<usize> {
        None
    }
    fn retract_chunks(&mut self) -> Option<usize> {
        None
    }
    fn reset_sized(&mut self, n: u32) -> Result<(), Error> {
        // 40 stands for a size beyond `MAX_SIZE`, refused before anything is allocated.
        let size = if n == 40 { 1 << 40 } else { n as usize };
        self.reset_with_size(size)
    }
    fn empty_clone(&self) -> Self {
        self.clone_empty()
    }
}

impl Harness for DynamicStore {
    fn chunk(&self) -> Option<usize> {
        Some(self.chunk_size())
    }
    fn retract_chunks(&mut self) -> Option<usize> {
        Some(self.retract())
    }
    fn reset_sized(&mut self, n: u32) -> Result<(), Error> {
        self.reset_with_log2size(n)
    }
    fn empty_clone(&self) -> Self {
        self.clone_empty()
    }
}

// ---------------------------------------------------------------------------------------------------------
// Operations

/// A slot, chosen relative to the state when the operation runs.
#[derive(Debug, Clone)]
enum Pick {
    /// The n-th occupied slot (mod their count); an arbitrary, maybe out-of-range, slot if none.
    Occupied(usize),
    /// The n-th free slot; just past the end if none.
    Free(usize),
    /// Slot n as given (often out of range).
    Raw(usize),
    /// A slot far beyond any size.
    Huge(usize),
}

impl Pick {
    fn resolve(&self, model: &Model) -> usize {
        let size = model.size();
        match *self {
            Pick::Occupied(n) => {
                let occ = model.occupied();
                if occ.is_empty() {
                    n % (size + 2)
                } else {
                    occ[n % occ.len()]
                }
            }
            Pick::Free(n) => {
                let free = model.free();
                if free.is_empty() {
                    size + n % 3
                } else {
                    free[n % free.len()]
                }
            }
            Pick::Raw(n) => n,
            Pick::Huge(n) => [usize::MAX, 1 << 33, i64::MAX as usize + 1][n % 3],
        }
    }
}

/// A value to write: either one that suits the member (made from a seed) or an arbitrary one.
#[derive(Debug, Clone)]
enum Val {
    Good(u64),
    Raw(Value),
}

impl Val {
    /// The value for member `m` (for `element`, one element of the array member).
    fn resolve(&self, m: usize, element: bool) -> Value {
        let s = match self {
            Val::Raw(v) => return v.clone(),
            Val::Good(s) => *s,
        };
        match m {
            ID | REF => Value::Int(s as i64),
            SMALL => Value::UInt(s % 256),
            FITNESS => Value::Float(f64::from(s as i32) / 8.0),
            ALIVE => Value::Bool(s & 1 == 1),
            INPUTS if element => Value::Int((s % 256) as i64),
            INPUTS => Value::Array(
                (0..INPUTS_LEN)
                    .map(|k| Value::UInt((s >> (8 * k)) & 0xff))
                    .collect(),
            ),
            // Short, long, empty, unicode, embedded NUL.
            NAME => Value::Str(
                ['a', 'é', '\0', '😀', 'z']
                    .iter()
                    .cycle()
                    .skip((s % 5) as usize)
                    .take(((s >> 3) % 24) as usize)
                    .collect(),
            ),
            CAT => Value::Str(["", "cat", "dog", "a category longer than 15"][(s % 4) as usize].into()),
            OPT if s % 3 == 0 => Value::Null,
            OPT => Value::Int(i64::from(s as i16)),
            _ => Value::Int(s as i64),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    NextIndex,
    /// `add` with `(member, value)` pairs (members may be out of range, values bad).
    Add(Vec<(usize, Val)>),
    Remove(Pick),
    /// Remove the `k` highest occupied slots, one by one (empties trailing chunks, for `Retract`).
    RemoveTop(usize),
    Set(Pick, usize, Val),
    /// `set_element(slot, member, k, value)`.
    SetElement(Pick, usize, usize, Val),
    Get(Pick, usize),
    /// `find(member, value)`: the occupied slots whose member equals the value.
    Find(usize, Val),
    /// `gather` of the f32 member (`false`) or the array member (`true`).
    Gather(Vec<Pick>, bool),
    /// `scatter` to the f32 member, the array member or the read-only member (0, 1, 2); the values are
    /// cycled from the given ones to `len` scalars (right for the indices, or not).
    Scatter(Vec<Pick>, u8, Vec<i16>, usize),
    /// `set_scalar(slot, member, scalar)` with a scalar of one of six dtypes (kind `k % 6`) from a seed.
    SetScalar(Pick, usize, u8, u64),
    /// `update(slot, generation, pairs)` with the slot's generation (or, when `true`, a stale one).
    Update(Pick, bool, Vec<(usize, Val)>),
    /// `scatter_values(member, indices, values)`; the values are one fewer than the indices when `true`.
    ScatterValues(Vec<Pick>, usize, Vec<Val>, bool),
    Retract,
    Reset,
    /// `reset_with_size(n)` (static) or `reset_with_log2size(n % 4)` (dynamic); 40 is refused by both.
    ResetSized(u32),
    Clone,
    CloneEmpty,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        5 => (0..64usize).prop_map(Pick::Occupied),
        3 => (0..64usize).prop_map(Pick::Free),
        2 => (0..40usize).prop_map(Pick::Raw),
        1 => (0..3usize).prop_map(Pick::Huge),
    ]
}

fn scalar_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        (-3i64..300).prop_map(Value::Int),
        prop::sample::select(vec![i64::MIN, -129, -1, 0, 255, 256, i64::MAX]).prop_map(Value::Int),
        prop::sample::select(vec![0, 255, 256, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX])
            .prop_map(Value::UInt),
        prop::sample::select(vec![
            0.0,
            -0.0,
            0.1,
            -2.25,
            1e39,
            -1e39,
            f64::from(f32::MAX),
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e-46,
        ])
        .prop_map(Value::Float),
        any::<f64>().prop_map(Value::Float),
    ]
}

fn raw_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => scalar_value(),
        3 => prop::collection::vec(scalar_value(), 2..=4).prop_map(Value::Array),
        3 => prop::collection::vec((0u64..260).prop_map(Value::UInt), 3).prop_map(Value::Array),
        1 => Just(Value::Str("x".into())),
        1 => Just(Value::Bytes(vec![1])),
        1 => Just(Value::Null),
    ]
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        3 => any::<u64>().prop_map(Val::Good),
        2 => raw_value().prop_map(Val::Raw),
    ]
}

/// A member position: mostly valid, sometimes one past the end.
fn member() -> impl Strategy<Value = usize> {
    prop_oneof![10 => 0..MEMBERS, 1 => Just(MEMBERS)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::NextIndex),
        3 => prop::collection::vec((member(), val()), 0..=3).prop_map(Op::Add),
        6 => pick().prop_map(Op::Remove),
        2 => (1..=8usize).prop_map(Op::RemoveTop),
        7 => (pick(), member(), val()).prop_map(|(p, m, v)| Op::Set(p, m, v)),
        4 => (pick(), prop::sample::select(vec![INPUTS, INPUTS, INPUTS, REF, MEMBERS]), 0..=INPUTS_LEN, val())
            .prop_map(|(p, m, k, v)| Op::SetElement(p, m, k, v)),
        2 => (pick(), member()).prop_map(|(p, m)| Op::Get(p, m)),
        1 => (member(), val()).prop_map(|(m, v)| Op::Find(m, v)),
        1 => (prop::collection::vec(pick(), 0..5), any::<bool>()).prop_map(|(p, a)| Op::Gather(p, a)),
        1 => (prop::collection::vec(pick(), 0..5), 0u8..3, prop::collection::vec(any::<i16>(), 1..4), 0..16usize)
            .prop_map(|(p, t, v, n)| Op::Scatter(p, t, v, n)),
        3 => (pick(), member(), 0u8..6, any::<u64>()).prop_map(|(p, m, k, x)| Op::SetScalar(p, m, k, x)),
        2 => (pick(), prop::bool::weighted(0.2), prop::collection::vec((member(), val()), 0..=3))
            .prop_map(|(p, stale, v)| Op::Update(p, stale, v)),
        1 => (prop::collection::vec(pick(), 0..5), member(), prop::collection::vec(val(), 5), prop::bool::weighted(0.2))
            .prop_map(|(p, m, v, short)| Op::ScatterValues(p, m, v, short)),
        3 => Just(Op::Retract),
        1 => prop_oneof![
            2 => Just(Op::Reset),
            2 => (0u32..=12).prop_map(Op::ResetSized),
            1 => Just(Op::ResetSized(40)),
            1 => Just(Op::CloneEmpty),
        ],
        1 => Just(Op::Clone),
    ]
}

// ---------------------------------------------------------------------------------------------------------
// Applying an operation to the store and the model

fn apply<S: Harness>(s: &mut S, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::NextIndex => {
            let got = s.next_index();
            match model.next_index() {
                Ok(i) => prop_assert_eq!(got, Ok(i), "lowest free slot first"),
                Err(e) => expect_outcome(&got, &[e])?,
            }
        }
        Op::Add(pairs) => {
            let values: Vec<(usize, Value)> = pairs.iter().map(|(m, v)| (*m, v.resolve(*m, false))).collect();
            let mut allowed = Vec::new();
            let mut converted = Vec::new();
            for (m, v) in &values {
                match convert(*m, v) {
                    Ok(c) => converted.push((*m, c)),
                    Err(e) => allowed.extend(e),
                }
            }
            let got = s.add(&values);
            if allowed.is_empty() {
                match model.next_index() {
                    Ok(i) => {
                        prop_assert_eq!(&got, &Ok(i), "add takes the lowest free slot");
                        for (m, c) in converted {
                            model.values_mut(i)[m] = c;
                        }
                    }
                    Err(e) => expect_outcome(&got, &[e])?,
                }
            } else {
                // Nothing is allocated when a value is refused, even in a full store.
                if model.chunk.is_none() && model.len() == model.size() {
                    allowed.push(Expect::Full(model.size()));
                }
                expect_outcome(&got, &allowed)?;
            }
        }
        Op::Remove(p) => {
            let i = p.resolve(model);
            let got = s.remove(i);
            match model.remove(i) {
                Ok(()) => prop_assert_eq!(got, Ok(())),
                Err(e) => expect_outcome(&got, &[e])?,
            }
        }
        Op::RemoveTop(k) => {
            for i in model.occupied().into_iter().rev().take(*k) {
                prop_assert_eq!(s.remove(i), Ok(()), "remove({})", i);
                prop_assert_eq!(model.remove(i), Ok(()));
            }
        }
        Op::Set(p, m, v) => {
            let (i, m) = (p.resolve(model), *m);
            let v = v.resolve(m, false);
            let mut allowed = Vec::new();
            if m == REF {
                allowed.push(Expect::ReadOnly("ref"));
            }
            if i >= model.size() {
                allowed.push(out_of_range(i, model.size()));
            }
            let c = convert(m, &v);
            if let Err(e) = &c {
                allowed.extend(e.iter().cloned());
            }
            let got = s.set(i, m, &v);
            expect_outcome(&got, &allowed)?;
            if let (true, Ok(c)) = (allowed.is_empty(), c) {
                model.values_mut(i)[m] = c;
            }
        }
        Op::SetElement(p, m, k, v) => {
            let (i, m, k) = (p.resolve(model), *m, *k);
            let v = v.resolve(m, true);
            let mut allowed = Vec::new();
            match m {
                REF => allowed.push(Expect::ReadOnly("ref")),
                INPUTS => {}
                _ => allowed.push(out_of_range(m, MEMBERS)),
            }
            if i >= model.size() {
                allowed.push(out_of_range(i, model.size()));
            }
            if m == INPUTS && k >= INPUTS_LEN {
                allowed.push(out_of_range(k, INPUTS_LEN));
            }
            let c = to_u8(&v);
            if let (INPUTS, Err(e)) = (m, &c) {
                allowed.push(e.clone());
            }
            let got = s.set_element(i, m, k, &v);
            expect_outcome(&got, &allowed)?;
            if let (true, Ok(c)) = (allowed.is_empty(), c) {
                let Value::Array(items) = &mut model.values_mut(i)[INPUTS] else {
                    return Err(TestCaseError::fail("model: array member holds a scalar"));
                };
                items[k] = c;
            }
        }
        Op::Get(p, m) => {
            let (i, m) = (p.resolve(model), *m);
            let got = s.get(i, m);
            let mut allowed = Vec::new();
            if i >= model.size() {
                allowed.push(out_of_range(i, model.size()));
            }
            if m >= MEMBERS {
                allowed.push(out_of_range(m, MEMBERS));
            }
            expect_outcome(&got, &allowed)?;
            if let Ok(v) = got {
                let want = &model.values(i)[m];
                prop_assert!(same(&v, want), "get({i}, {m}) = {v:?}, model {want:?}");
            }
        }
        Op::Find(m, v) => {
            let m = *m;
            let v = v.resolve(m, false);
            let got = s.find(m, &v);
            match convert(m, &v) {
                Err(allowed) => expect_outcome(&got, &allowed)?,
                Ok(target) => {
                    // Equality as numpy's `==`: NaN matches nothing, -0.0 matches 0.0.
                    let want: Vec<usize> = model
                        .occupied()
                        .into_iter()
                        .filter(|&i| model.values(i)[m] == target)
                        .collect();
                    prop_assert_eq!(got, Ok(want));
                }
            }
        }
        Op::Gather(picks, array) => {
            let idx: Vec<usize> = picks.iter().map(|p| p.resolve(model)).collect();
            let allowed: Vec<Expect> = idx
                .iter()
                .filter(|&&i| i >= model.size())
                .map(|&i| out_of_range(i, model.size()))
                .collect();
            if *array {
                let mut out: Vec<u8> = Vec::new();
                let got = s.gather(INPUTS, &idx, &mut out);
                expect_outcome(&got, &allowed)?;
                if got.is_ok() {
                    let want: Vec<Value> = idx
                        .iter()
                        .flat_map(|&i| match &model.values(i)[INPUTS] {
                            Value::Array(a) => a.clone(),
                            other => vec![other.clone()],
                        })
                        .collect();
                    let got: Vec<Value> = out.into_iter().map(Value::from).collect();
                    prop_assert_eq!(got, want);
                }
                // The wrong element type is refused. (With no index at all, `gather` checks nothing and
                // returns `Ok`; `scatter` checks the type first. Only the non-empty case is pinned.)
                if !idx.is_empty() {
                    let mut wrong: Vec<i8> = Vec::new();
                    let mut allowed = allowed;
                    allowed.push(Expect::WrongType);
                    expect_outcome(&s.gather(INPUTS, &idx, &mut wrong), &allowed)?;
                }
            } else {
                let mut out: Vec<f32> = Vec::new();
                let got = s.gather(FITNESS, &idx, &mut out);
                expect_outcome(&got, &allowed)?;
                if got.is_ok() {
                    let want: Vec<Value> = idx.iter().map(|&i| model.values(i)[FITNESS].clone()).collect();
                    let got: Vec<Value> = out.into_iter().map(Value::from).collect();
                    prop_assert!(
                        got.len() == want.len() && got.iter().zip(&want).all(|(a, b)| same(a, b)),
                        "gather {got:?} != model {want:?}"
                    );
                }
            }
        }
        Op::Scatter(picks, target, seed, n) => {
            let idx: Vec<usize> = picks.iter().map(|p| p.resolve(model)).collect();
            let (m, w) = match target {
                0 => (FITNESS, 1),
                1 => (INPUTS, INPUTS_LEN),
                _ => (REF, 1),
            };
            // Half the time the right number of values, otherwise `n`.
            let len = if n % 2 == 0 { idx.len() * w } else { *n };
            let vals: Vec<i16> = seed.iter().copied().cycle().take(len).collect();
            let mut allowed: Vec<Expect> = idx
                .iter()
                .filter(|&&i| i >= model.size())
                .map(|&i| out_of_range(i, model.size()))
                .collect();
            if len != idx.len() * w {
                allowed.push(Expect::WrongLength {
                    expected: idx.len() * w,
                    got: len,
                });
            }
            if m == REF {
                allowed.push(Expect::ReadOnly("ref"));
            }
            let got = match m {
                FITNESS => {
                    let v: Vec<f32> = vals.iter().map(|&x| f32::from(x) / 4.0).collect();
                    s.scatter(m, &idx, &v)
                }
                INPUTS => {
                    let v: Vec<u8> = vals.iter().map(|&x| x as u8).collect();
                    s.scatter(m, &idx, &v)
                }
                _ => {
                    let v: Vec<i64> = vals.iter().map(|&x| i64::from(x)).collect();
                    s.scatter(m, &idx, &v)
                }
            };
            expect_outcome(&got, &allowed)?;
            if allowed.is_empty() {
                for (j, &i) in idx.iter().enumerate() {
                    let part = &vals[j * w..(j + 1) * w];
                    model.values_mut(i)[m] = if m == FITNESS {
                        Value::Float(f64::from(f32::from(part[0]) / 4.0))
                    } else {
                        Value::Array(part.iter().map(|&x| Value::UInt(u64::from(x as u8))).collect())
                    };
                }
            }
            // A mismatched element type is refused and changes nothing.
            let wrong: Vec<f64> = vec![1.0; idx.len() * w];
            allowed.retain(|e| !matches!(e, Expect::WrongLength { .. }));
            allowed.push(Expect::WrongType);
            expect_outcome(&s.scatter(m, &idx, &wrong), &allowed)?;
        }
        Op::SetScalar(p, m, k, x) => {
            let (i, m) = (p.resolve(model), *m);
            let (scalar, dtype_member) = match k % 6 {
                0 => (Scalar::I64(*x as i64), Some(ID)),
                1 => (Scalar::U8(*x as u8), Some(SMALL)),
                2 => (Scalar::F32(f32::from(*x as i16) / 8.0), Some(FITNESS)),
                3 => (Scalar::Bool(x & 1 == 1), Some(ALIVE)),
                4 => (Scalar::I32(*x as i32), None),
                _ => (Scalar::F64(f64::from(*x as i16)), None),
            };
            let mut allowed = Vec::new();
            match m {
                REF => allowed.push(Expect::ReadOnly("ref")),
                _ if m >= MEMBERS => allowed.push(out_of_range(m, MEMBERS)),
                _ => {}
            }
            // The i64 scalar fits both i64 members (ID, and REF, which is read-only).
            let fits = dtype_member == Some(m) || (m == REF && dtype_member == Some(ID));
            if m < MEMBERS && !fits {
                allowed.push(Expect::WrongType);
            }
            if i >= model.size() {
                allowed.push(out_of_range(i, model.size()));
            }
            let got = s.set_scalar(i, m, scalar);
            expect_outcome(&got, &allowed)?;
            if allowed.is_empty() {
                model.values_mut(i)[m] = Value::from(scalar);
            }
        }
        Op::Update(p, stale, pairs) => {
            let i = p.resolve(model);
            let current = (i < model.size() && model.entries[i].is_some()).then(|| model.generations[i]);
            let generation = match current {
                Some(g) if *stale => g.wrapping_add(1),
                Some(g) => g,
                None => 0,
            };
            let values: Vec<(usize, Value)> = pairs.iter().map(|(m, v)| (*m, v.resolve(*m, false))).collect();
            let mut allowed = Vec::new();
            let mut converted = Vec::new();
            for (m, v) in &values {
                if *m == REF {
                    allowed.push(Expect::ReadOnly("ref"));
                }
                match convert(*m, v) {
                    Ok(c) => converted.push((*m, c)),
                    Err(e) => allowed.extend(e),
                }
            }
            if current.is_none() || *stale {
                // The entry is checked first: nothing else is reported.
                allowed = vec![Expect::Stale(i)];
            }
            let got = s.update(i, generation, &values);
            expect_outcome(&got, &allowed)?;
            if allowed.is_empty() {
                for (m, c) in converted {
                    model.values_mut(i)[m] = c;
                }
            }
        }
        Op::ScatterValues(picks, m, vals, short) => {
            let m = *m;
            let idx: Vec<usize> = picks.iter().map(|p| p.resolve(model)).collect();
            let n = if *short {
                idx.len().saturating_sub(1)
            } else {
                idx.len()
            };
            let values: Vec<Value> = vals.iter().cycle().take(n).map(|v| v.resolve(m, false)).collect();
            let mut allowed: Vec<Expect> = idx
                .iter()
                .filter(|&&i| i >= model.size())
                .map(|&i| out_of_range(i, model.size()))
                .collect();
            // One value per index, or a single value written to every index (a broadcast).
            if n != idx.len() && n != 1 {
                allowed.push(Expect::WrongLength {
                    expected: idx.len(),
                    got: n,
                });
            }
            if m == REF {
                allowed.push(Expect::ReadOnly("ref"));
            }
            if m >= MEMBERS {
                allowed.push(out_of_range(m, MEMBERS));
            }
            let mut converted = Vec::new();
            for v in &values {
                match convert(m, v) {
                    Ok(c) => converted.push(c),
                    Err(e) => allowed.extend(e),
                }
            }
            let got = s.scatter_values(m, &idx, &values);
            expect_outcome(&got, &allowed)?;
            if allowed.is_empty() {
                for (k, &i) in idx.iter().enumerate() {
                    let c = if converted.len() == 1 {
                        &converted[0]
                    } else {
                        &converted[k]
                    };
                    model.values_mut(i)[m] = c.clone();
                }
            }
        }
        Op::Retract => {
            let got = s.retract_chunks();
            let want = model.retract();
            if model.chunk.is_some() {
                prop_assert_eq!(got, Some(want), "retract count");
            }
        }
        Op::Reset => {
            s.reset().map_err(|e| TestCaseError::fail(e.to_string()))?;
            model.reset();
        }
        Op::ResetSized(n) => {
            // A dynamic store takes a valid log2size modulo 4, to keep its chunks tiny.
            let n = if model.chunk.is_some() && *n <= 31 {
                n % 4
            } else {
                *n
            };
            let n = &n;
            let got = s.reset_sized(*n);
            match model.chunk {
                _ if *n == 40 => expect_outcome(&got, &[Expect::InvalidArgument])?,
                Some(_) => {
                    prop_assert_eq!(got, Ok(()));
                    *model = Model::new_from(1 << n, Some(1 << n), model.base_after_resize());
                }
                None => {
                    prop_assert_eq!(got, Ok(()));
                    *model = Model::new_from(*n as usize, None, model.base_after_resize());
                }
            }
        }
        Op::Clone => {
            // A clone is independent: changing it leaves the original as the model says...
            let mut other = s.clone();
            other.reset().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let _ = other.next_index();
            let _ = other.set(0, SMALL, &Value::UInt(99));
            check(s, model)?;
            // ...and it stands on its own once the original is dropped.
            *s = s.clone();
        }
        Op::CloneEmpty => {
            *s = s.empty_clone();
            let size = model.chunk.unwrap_or(model.size());
            *model = Model::new(size, model.chunk);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Comparing the whole store with the model

fn check<S: Harness>(s: &S, model: &Model) -> Result<(), TestCaseError> {
    s.validate()?;
    prop_assert_eq!(s.chunk(), model.chunk, "chunk size");
    let size = model.size();
    prop_assert_eq!(s.size(), size, "size");
    prop_assert_eq!(s.len(), model.len(), "len");
    prop_assert_eq!(s.is_empty(), model.len() == 0, "is_empty");
    let space = if model.chunk.is_some() {
        usize::MAX
    } else {
        size - model.len()
    };
    prop_assert_eq!(s.space(), space, "space");
    prop_assert_eq!(s.last_index(), model.last_index, "last_index");
    prop_assert_eq!(s.indices().collect::<Vec<_>>(), model.occupied(), "indices");
    prop_assert_eq!(s.empty_indices()?, model.free(), "empty_indices");
    // The lazy walk of the bindings' iterators: from every position, the next occupied slot.
    let occupied = model.occupied();
    for from in 0..size + 2 {
        let want = occupied.iter().copied().find(|&i| i >= from);
        prop_assert_eq!(s.next_occupied(from), want, "next_occupied({})", from);
        // The word holding it: exactly the occupied slots from there to the end of its 64-slot word.
        let word = s.next_occupied_word(from).map(|(base, bits)| {
            (0..64)
                .filter(|b| bits >> b & 1 == 1)
                .map(|b| base + b)
                .collect::<Vec<_>>()
        });
        let want_word = want.map(|first| {
            let end = first - first % 64 + 64;
            let end = end.min(model.chunk.map_or(size, |c| (first / c + 1) * c));
            occupied
                .iter()
                .copied()
                .filter(|&i| i >= first && i < end)
                .collect::<Vec<_>>()
        });
        prop_assert_eq!(word, want_word, "next_occupied_word({})", from);
    }
    for i in 0..size + 2 {
        prop_assert_eq!(
            s.occupied(i),
            i < size && model.entries[i].is_some(),
            "occupied({})",
            i
        );
    }
    prop_assert!(!s.occupied(usize::MAX));

    // Every member of every slot, through the untyped path.
    for i in 0..size {
        let want = model.values(i);
        for (m, w) in want.iter().enumerate() {
            let v = s.get(i, m)?;
            prop_assert!(same(&v, w), "get({i}, {m}) = {v:?}, model {w:?}");
        }
        if let Value::Array(items) = &want[INPUTS] {
            for (k, w) in items.iter().enumerate() {
                prop_assert_eq!(&s.get_element(i, INPUTS, k)?, w, "get_element({}, {})", i, k);
            }
        }
        prop_assert_eq!(s.generation(i)?, model.generations[i], "generation({})", i);
    }
    prop_assert!(s.get(size, ID).is_err());
    prop_assert!(s.generation(size).is_err());

    // The same through the typed per-chunk slices.
    let chunk = model.chunk.unwrap_or(size);
    prop_assert_eq!(
        s.chunks().len(),
        if model.chunk.is_some() { size / chunk } else { 1 },
        "chunks"
    );
    for (c, st) in s.chunks().iter().enumerate() {
        prop_assert_eq!(st.size(), chunk, "chunk {} size", c);
        // A dynamic store's chunks fill defaults lazily: every slot below a column's `filled` mark holds
        // its value in memory (and is what `column_slice` covers), every slot ever allocated is below it,
        // and `FixedColumn::slot` reads any slot, filled or not. A static store is always filled.
        let slot = |m: usize, o: usize| -> Result<Value, TestCaseError> {
            let f = st
                .column(m)?
                .values_fixed()
                .ok_or_else(|| TestCaseError::fail("not fixed"))?;
            prop_assert!(
                f.filled() <= chunk,
                "member {} filled {} > {}",
                m,
                f.filled(),
                chunk
            );
            if model.chunk.is_none() {
                prop_assert_eq!(f.filled(), chunk, "a static store's column {} is filled", m);
            }
            if st.slots().is_occupied(o) {
                prop_assert!(
                    o < f.filled(),
                    "occupied slot {} of chunk {} not filled in {}",
                    o,
                    c,
                    m
                );
            }
            Ok(match f.dtype() {
                compactstore::Dtype::I64 => Value::from(f.slot::<i64>(o)?[0]),
                compactstore::Dtype::U8 | compactstore::Dtype::Bool if f.width() > 1 => {
                    Value::from(f.slot::<u8>(o)?.to_vec())
                }
                compactstore::Dtype::U8 | compactstore::Dtype::Bool => Value::from(f.slot::<u8>(o)?[0]),
                compactstore::Dtype::F32 => Value::from(f.slot::<f32>(o)?[0]),
                compactstore::Dtype::I32 => Value::from(f.slot::<i32>(o)?[0]),
                d => return Err(TestCaseError::fail(format!("dtype {d} not in the model"))),
            })
        };
        let ids = st.column_slice::<i64>(ID)?;
        let small = st.column_slice::<u8>(SMALL)?;
        let fit = st.column_slice::<f32>(FITNESS)?;
        let alive = st.column_slice::<u8>(ALIVE)?;
        let refs = st.column_slice::<i64>(REF)?;
        let inputs = st.column_slice::<u8>(INPUTS)?;
        prop_assert!(inputs.len() <= chunk * INPUTS_LEN);
        for o in 0..chunk {
            let want = model.values(c * chunk + o);
            let by_slot = [
                slot(ID, o)?,
                slot(SMALL, o)?,
                slot(FITNESS, o)?,
                slot(ALIVE, o)?,
                slot(REF, o)?,
                slot(INPUTS, o)?,
            ];
            for (m, (t, w)) in by_slot.iter().zip(&want).enumerate() {
                let t = if m == ALIVE {
                    Value::Bool(*t != Value::UInt(0))
                } else {
                    t.clone()
                };
                prop_assert!(
                    same(&t, w),
                    "chunk {c} slot {o} member {m}: slot {t:?}, model {w:?}"
                );
            }
            // The typed slices cover the filled prefix of each column, and agree with the slots there.
            if o >= ids
                .len()
                .min(small.len())
                .min(fit.len())
                .min(alive.len())
                .min(refs.len())
            {
                continue;
            }
            if inputs.len() < (o + 1) * INPUTS_LEN {
                continue;
            }
            let typed = [
                Value::from(ids[o]),
                Value::from(small[o]),
                Value::from(fit[o]),
                Value::Bool(alive[o] != 0),
                Value::from(refs[o]),
                Value::from(inputs[o * INPUTS_LEN..(o + 1) * INPUTS_LEN].to_vec()),
            ];
            prop_assert!(alive[o] <= 1, "bool byte {}", alive[o]);
            for (m, (t, w)) in typed.iter().zip(&want).enumerate() {
                prop_assert!(
                    same(t, w),
                    "chunk {c} slot {o} member {m}: slice {t:?}, model {w:?}"
                );
            }
        }
        prop_assert!(
            st.column_slice::<f64>(FITNESS).is_err(),
            "f32 member viewed as f64"
        );
        prop_assert!(st.column_slice::<u8>(MEMBERS).is_err());
        prop_assert!(st.column_slice::<u8>(NAME).is_err());
        prop_assert!(st.column_slice::<u32>(CAT).is_err());
        // The optional member's values column: None slots hold 0.
        let opt = st.column_slice::<i32>(OPT)?;
        prop_assert!(opt.len() <= chunk);
        for (o, &x) in opt.iter().enumerate() {
            let want = match model.values(c * chunk + o)[OPT] {
                Value::Int(i) => i,
                _ => 0,
            };
            prop_assert_eq!(
                i64::from(x),
                want,
                "chunk {} slot {} optional values column",
                c,
                o
            );
        }
    }
    Ok(())
}

fn run<S: Harness>(mut s: S, mut model: Model, ops: &[Op]) -> Result<(), TestCaseError> {
    check(&s, &model)?;
    for (step, op) in ops.iter().enumerate() {
        let context = |e: TestCaseError| TestCaseError::fail(format!("step {step}, {op:?}: {e}"));
        apply(&mut s, &mut model, op).map_err(context)?;
        check(&s, &model).map_err(context)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn static_store_matches_model(size in 0usize..=12, ops in prop::collection::vec(op(), 20..=60)) {
        let s = StaticStore::new(schema()?, size);
        run(s, Model::new(size, None), &ops)?;
    }

    #[test]
    fn dynamic_store_matches_model(log2size in 0u32..=3, ops in prop::collection::vec(op(), 20..=60)) {
        let s = DynamicStore::new(schema()?, log2size)?;
        run(s, Model::new(1 << log2size, Some(1 << log2size)), &ops)?;
    }
}
