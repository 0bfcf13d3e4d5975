use super::*;
use crate::schema::{Member, MemberType};

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(vec![
            Member::new("ref", MemberType::Scalar(Dtype::I64))
                .unwrap()
                .read_only(true),
            Member::new("fitness", MemberType::Scalar(Dtype::F32))
                .unwrap()
                .with_default(Value::Float(0.5))
                .unwrap(),
            Member::new("inputs", MemberType::Array(Dtype::U8, 3)).unwrap(),
            Member::new("alive", MemberType::Scalar(Dtype::Bool)).unwrap(),
        ])
        .unwrap(),
    )
}

#[test]
fn replace_rewrites_the_same_slot_and_marks_it_modified() {
    let mut ks = KeyedStore::<i64>::new(schema(), 1).unwrap();
    let (a, new) = ks
        .insert(&7, &[(0, Value::Int(70)), (1, Value::Float(2.0))])
        .unwrap();
    assert!(!new);
    let (b, _) = ks.insert(&8, &[]).unwrap();
    assert!(ks.modified().is_empty());
    let g = ks.store().generation(a).unwrap();
    assert_eq!(ks.insert(&7, &[(0, Value::Int(71))]).unwrap(), (a, true));
    assert_eq!(ks.store().generation(a).unwrap(), g);
    assert_eq!(ks.values(a).unwrap()[..2], [Value::Int(71), Value::Float(0.5)]);
    assert_eq!(ks.modified(), vec![7]);
    assert!(!ks.is_modified(b));
    ks.validate().unwrap();
}

#[test]
fn a_bad_value_changes_nothing() {
    let mut ks = KeyedStore::<i64>::new(schema(), 1).unwrap();
    let (a, _) = ks.insert(&1, &[(1, Value::Float(1.0))]).unwrap();
    let bad = [(1, Value::Float(3.0)), (2, vec![1i64, 2, 300].into())];
    assert!(matches!(ks.insert(&1, &bad), Err(Error::ValueOutOfRange { .. })));
    assert!(matches!(ks.insert(&2, &bad), Err(Error::ValueOutOfRange { .. })));
    assert!(matches!(
        ks.insert(&2, &[(9, Value::Int(0))]),
        Err(Error::IndexOutOfRange { .. })
    ));
    let g = ks.store().generation(a).unwrap();
    assert!(matches!(
        ks.update(a, g, &bad),
        Err(Error::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        ks.update(a, g, &[(1, Value::Float(3.0)), (0, Value::Int(1))]),
        Err(Error::ReadOnly { .. })
    ));
    assert_eq!(
        ks.update(a, g + 1, &[(1, Value::Float(3.0))]),
        Err(Error::StaleEntry { index: a })
    );
    assert_eq!(ks.len(), 1);
    assert_eq!(ks.store().len(), 1);
    assert_eq!(ks.get(a, 1).unwrap(), Value::Float(1.0));
    assert!(ks.modified().is_empty());
    assert!(matches!(
        ks.set(1, 1, &Value::Float(1.0)),
        Err(Error::SlotFree { index: 1 })
    ));
    assert!(matches!(
        ks.set(99, 1, &Value::Float(1.0)),
        Err(Error::IndexOutOfRange { .. })
    ));
    ks.validate().unwrap();
}

#[test]
fn typed_writes_update_and_scatter_mark_keys_modified() {
    let mut ks = KeyedStore::<i64>::new(schema(), 2).unwrap();
    let (a, _) = ks.insert(&1, &[(0, Value::Int(1))]).unwrap();
    let (b, _) = ks.insert(&2, &[(0, Value::Int(2))]).unwrap();
    let free = 2;
    assert!(!ks.store().occupied(free));
    // set_scalar: occupied slots only.
    assert_eq!(
        ks.set_scalar(free, 1, crate::value::Scalar::F32(1.0)),
        Err(Error::SlotFree { index: free })
    );
    assert!(matches!(
        ks.set_scalar(a, 1, crate::value::Scalar::F64(1.0)),
        Err(Error::WrongType { .. })
    ));
    assert_eq!(
        ks.set_scalar(a, 0, crate::value::Scalar::I64(5)),
        Err(Error::ReadOnly { name: "ref".into() })
    );
    assert!(ks.modified().is_empty());
    ks.set_scalar(a, 1, crate::value::Scalar::F32(1.5)).unwrap();
    assert_eq!(ks.get(a, 1).unwrap(), Value::Float(1.5));
    assert_eq!(ks.modified(), vec![1]);
    ks.clear_modified();
    // scatter_values: occupied slots only, checked before anything is written.
    let two = [Value::Float(7.0), Value::Float(8.0)];
    assert_eq!(
        ks.scatter_values(1, &[b, free], &two),
        Err(Error::SlotFree { index: free })
    );
    assert!(matches!(
        ks.scatter_values(1, &[b, a], &[Value::Float(7.0), Value::from("x")]),
        Err(Error::WrongType { .. })
    ));
    assert!(matches!(
        ks.scatter_values(0, &[b], &[Value::Int(3)]),
        Err(Error::ReadOnly { .. })
    ));
    assert_eq!(ks.get(b, 1).unwrap(), Value::Float(0.5));
    assert!(ks.modified().is_empty());
    ks.scatter_values(1, &[b], &two[..1]).unwrap();
    assert_eq!(ks.get(b, 1).unwrap(), Value::Float(7.0));
    assert_eq!(ks.modified(), vec![2]);
    ks.clear_modified();
    // update: the entry of a generation; an empty update marks nothing.
    let g = ks.store().generation(a).unwrap();
    ks.update(a, g, &[]).unwrap();
    assert!(ks.modified().is_empty());
    ks.update(a, g, &[(1, Value::Float(9.0))]).unwrap();
    assert_eq!(ks.modified(), vec![1]);
    assert_eq!(ks.remove(&1), Some(a));
    assert_eq!(
        ks.update(a, g, &[(1, Value::Float(9.0))]),
        Err(Error::StaleEntry { index: a })
    );
    ks.validate().unwrap();
}

#[test]
fn remove_take_pop_and_clear() {
    let mut ks = KeyedStore::<u64>::new(schema(), 1).unwrap();
    for k in 0..10u64 {
        ks.insert(&k, &[(0, Value::Int(k as i64 * 10))]).unwrap();
    }
    assert_eq!(ks.store().chunks().len(), 5);
    assert_eq!(ks.remove(&3), Some(3));
    assert_eq!(ks.remove(&3), None);
    assert_eq!(ks.take(&4).unwrap()[0], Value::Int(40));
    assert_eq!(ks.take(&4), None);
    let (k, v) = ks.pop_first().unwrap();
    assert_eq!((k, v[0].clone()), (0, Value::Int(0)));
    assert_eq!(ks.len(), 7);
    ks.validate().unwrap();
    // The freed slots are reused lowest first, and the new key is found there.
    assert_eq!(ks.insert(&100, &[]).unwrap(), (0, false));
    assert_eq!(ks.key_at(0), Some(&100));
    assert_eq!(ks.key_at(3), None);
    ks.set(0, 1, &Value::Float(1.0)).unwrap();
    ks.clear();
    assert!(ks.is_empty() && ks.modified().is_empty());
    assert_eq!(ks.store().chunks().len(), 1);
    assert_eq!(ks.index_of(&100), None);
    ks.validate().unwrap();
    while ks.pop_first().is_some() {}
    assert_eq!(ks.insert(&5, &[]).unwrap(), (0, false));
}

#[test]
fn string_keys_compact_their_arena() {
    let mut ks = KeyedStore::<String>::with_compaction_threshold(schema(), 2, 8).unwrap();
    let keys: Vec<String> = (0..40)
        .map(|i| format!("key-{i}-{}", "x".repeat(i % 7)))
        .collect();
    for k in &keys {
        ks.insert(k, &[]).unwrap();
    }
    ks.insert("", &[]).unwrap();
    let before = ks.nbytes();
    for k in &keys[..30] {
        assert!(ks.remove(k).is_some());
        ks.validate().unwrap();
    }
    assert!(ks.key_garbage() < 40 * 4);
    assert!(ks.nbytes() < before);
    for k in &keys[30..] {
        assert!(ks.contains(k), "{k}");
        let s = ks.index_of(k).unwrap();
        assert_eq!(ks.key_at(s), Some(k.as_str()));
    }
    assert!(ks.contains(""));
    assert_eq!(ks.len(), 11);
}

#[test]
fn find_compares_values_in_place() {
    let mut ks = KeyedStore::<Vec<u8>>::new(schema(), 2).unwrap();
    for i in 0..12u8 {
        let f = if i % 3 == 0 { -0.0 } else { f64::from(i) };
        ks.insert(&[i], &[(1, Value::Float(f)), (2, vec![i % 2, 0, 1].into())])
            .unwrap();
    }
    let zeros = ks.find(1, &Value::Int(0)).unwrap();
    assert_eq!(zeros, vec![vec![0], vec![3], vec![6], vec![9]]);
    assert_eq!(ks.find(2, &vec![1u8, 0, 1].into()).unwrap().len(), 6);
    assert_eq!(ks.find(1, &Value::Float(f64::NAN)).unwrap().len(), 0);
    assert!(ks.find(2, &Value::Int(1)).is_err());
    assert!(ks.find(3, &Value::Int(1)).is_err());
    // The default value matches occupied slots only.
    assert_eq!(ks.find(3, &Value::Bool(false)).unwrap().len(), 12);
}

#[test]
fn from_columns_and_values_writes_value_columns_at_creation() {
    let schema = Arc::new(
        Schema::new(vec![
            Member::new("ref", MemberType::Scalar(Dtype::I64))
                .unwrap()
                .read_only(true),
            Member::new("name", MemberType::Str).unwrap().read_only(true),
            Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
            Member::new(
                "opt",
                MemberType::Optional(Box::new(MemberType::Scalar(Dtype::U8))),
            )
            .unwrap(),
        ])
        .unwrap(),
    );
    let keys = ["a", "b", "c"];
    let refs: Vec<u8> = [1i64, 2, 3].iter().flat_map(|k| k.to_ne_bytes()).collect();
    let names = [
        Value::from("x"),
        Value::from("a name longer than fifteen bytes"),
        Value::from(""),
    ];
    let cats = [Value::from("p"), Value::from("q"), Value::from("p")];
    let opts = [Value::Null, Value::Int(7), Value::UInt(255)];
    let vals: [(usize, &[Value]); 3] = [(1, &names), (2, &cats), (3, &opts)];
    let ks =
        KeyedStore::<String>::from_columns_and_values(Arc::clone(&schema), 1, &keys, &[(0, &refs)], &vals)
            .unwrap();
    ks.validate().unwrap();
    assert!(ks.modified().is_empty());
    let b = ks.index_of("b").unwrap();
    assert_eq!(
        ks.values(b).unwrap(),
        vec![Value::Int(2), names[1].clone(), Value::from("q"), Value::UInt(7)]
    );
    assert_eq!(ks.get(ks.index_of("a").unwrap(), 3).unwrap(), Value::Null);
    // refused before anything is built: a column of the wrong length, a value that does not fit
    let short: [(usize, &[Value]); 1] = [(2, &cats[..2])];
    assert_eq!(
        KeyedStore::<String>::from_columns_and_values(Arc::clone(&schema), 1, &keys, &[], &short).err(),
        Some(Error::WrongLength { expected: 3, got: 2 })
    );
    let bad = [Value::Null, Value::Int(256), Value::Null];
    let bad: [(usize, &[Value]); 1] = [(3, &bad)];
    assert!(matches!(
        KeyedStore::<String>::from_columns_and_values(Arc::clone(&schema), 1, &keys, &[], &bad),
        Err(Error::ValueOutOfRange { .. })
    ));
    let wrong = [Value::Int(1), Value::Int(2), Value::Int(3)];
    let wrong: [(usize, &[Value]); 1] = [(1, &wrong)];
    assert!(matches!(
        KeyedStore::<String>::from_columns_and_values(schema, 1, &keys, &[], &wrong),
        Err(Error::WrongType { .. })
    ));
}

#[test]
fn from_columns_loads_and_refuses_bad_input() {
    let n = 10usize;
    let keys: Vec<i64> = (0..n as i64).map(|k| k * 7 - 20).collect();
    let refs: Vec<u8> = (0..n as i64).flat_map(|k| (k * 100).to_ne_bytes()).collect();
    let inputs: Vec<u8> = (0..n as u8 * 3).collect();
    let alive: Vec<u8> = (0..n as u8).map(|k| k % 2).collect();
    let cols: [(usize, &[u8]); 3] = [(0, &refs), (2, &inputs), (3, &alive)];
    let ks = KeyedStore::<i64>::from_columns(schema(), 2, &keys, &cols).unwrap();
    ks.validate().unwrap();
    assert_eq!(ks.len(), n);
    let s = ks.index_of(&(9 * 7 - 20)).unwrap();
    assert_eq!(
        ks.values(s).unwrap(),
        vec![
            Value::Int(900),
            Value::Float(0.5),
            vec![27u8, 28, 29].into(),
            Value::Bool(true)
        ]
    );
    assert!(ks.modified().is_empty());

    let mut dup = keys.clone();
    dup[7] = dup[2];
    let e = KeyedStore::<i64>::from_columns(schema(), 2, &dup, &cols).unwrap_err();
    assert_eq!(
        e,
        Error::DuplicateKey {
            key: dup[2].to_string(),
            first: 2,
            second: 7
        }
    );
    assert!(e.to_string().contains("positions 2 and 7"), "{e}");
    assert!(matches!(
        KeyedStore::<i64>::from_columns(schema(), 2, &keys[1..], &cols),
        Err(Error::WrongLength {
            expected: 72,
            got: 80
        })
    ));
    let two = vec![2u8; n];
    assert!(matches!(
        KeyedStore::<i64>::from_columns(schema(), 2, &keys, &[(3, &two)]),
        Err(Error::ValueOutOfRange { .. })
    ));
    assert!(matches!(
        KeyedStore::<i64>::from_columns(schema(), 2, &keys, &[(4, &two)]),
        Err(Error::IndexOutOfRange { .. })
    ));
    let empty = KeyedStore::<String>::from_columns::<&str>(schema(), 2, &[], &[]).unwrap();
    empty.validate().unwrap();

    // Exactly two full chunks: the next insert grows a third, and freed slots are reused first.
    let mut full = KeyedStore::<i64>::from_columns(schema(), 2, &keys[..8], &[]).unwrap();
    full.validate().unwrap();
    assert_eq!(full.insert(&1000, &[]).unwrap(), (8, false));
    assert_eq!(full.store().chunks().len(), 3);
    assert_eq!(full.remove(&keys[5]), Some(5));
    assert_eq!(full.insert(&1001, &[]).unwrap(), (5, false));
    full.validate().unwrap();
}

#[test]
fn validate_catches_a_stale_dirty_bit_and_a_lost_key() {
    // validate() must be able to fail: corrupt each structure by hand.
    let mut ks = KeyedStore::<i64>::new(schema(), 1).unwrap();
    for k in 1..=3 {
        ks.insert(&k, &[]).unwrap(); // slots 0, 1, 2; slot 3 free
    }
    ks.validate().unwrap();
    let mut bad = ks.clone();
    set_bit(&mut bad.dirty, 3);
    assert!(bad.validate().is_err());
    let mut bad = ks.clone();
    bad.keys.put(1, &5); // an occupied slot whose key the table cannot find
    assert!(bad.validate().is_err());
    let mut bad = ks.clone();
    bad.keys.put(3, &5); // a free slot with a stale key
    assert!(bad.validate().is_err());
    let mut bad = ks.clone();
    bad.dirty.push(0);
    assert!(bad.validate().is_err());
    let mut bad = ks.clone();
    bad.table.clear();
    assert!(bad.validate().is_err());
    ks.validate().unwrap();
}

#[test]
fn keyed_stores_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<KeyedStore<i64>>();
    check::<KeyedStore<String>>();
}

#[test]
fn nbytes_counts_about_fourteen_bytes_per_integer_key() {
    let schema =
        Arc::new(Schema::new(vec![Member::new("x", MemberType::Scalar(Dtype::I64)).unwrap()]).unwrap());
    let n = 100_000usize;
    let keys: Vec<i64> = (0..n as i64).collect();
    let ks = KeyedStore::<i64>::from_columns(Arc::clone(&schema), 16, &keys, &[]).unwrap();
    let raw = DynamicStore::new(schema, 16).unwrap();
    let mut bare = raw.clone();
    for _ in 0..n {
        bare.next_index().unwrap();
    }
    let per_key = (ks.nbytes() - bare.nbytes()) as f64 / n as f64;
    // 8 (key) + 5 * buckets / n (table: 131072 buckets) + 1/8 (dirty) + chunk rounding.
    assert!(per_key < 24.0, "{per_key}");
}

#[test]
fn str_interned_and_optional_members_in_a_keyed_store() {
    let schema = Arc::new(
        Schema::new(vec![
            Member::new("name", MemberType::Str).unwrap().with_compact_min(0),
            Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
            Member::new("opt", MemberType::optional(MemberType::Scalar(Dtype::F64))).unwrap(),
        ])
        .unwrap(),
    );
    let dict_len = |p: &KeyedStore<String>| {
        p.store().chunks()[0]
            .column(1)
            .unwrap()
            .as_interned()
            .unwrap()
            .dictionary()
            .read()
            .unwrap()
            .len()
    };
    let mut p = KeyedStore::<String>::new(schema, 1).unwrap();
    for k in 0..5 {
        p.insert(
            &format!("k{k}"),
            &[
                (0, Value::Str(format!("a name long enough to spill {k}"))),
                (1, Value::from(if k < 3 { "low" } else { "high" })),
                (
                    2,
                    if k == 0 {
                        Value::Null
                    } else {
                        Value::Float(f64::from(k))
                    },
                ),
            ],
        )
        .unwrap();
    }
    assert_eq!(
        p.find(1, &Value::from("high")).unwrap(),
        vec!["k3".to_owned(), "k4".to_owned()]
    );
    assert_eq!(p.find(2, &Value::Null).unwrap(), vec!["k0".to_owned()]);
    assert_eq!(dict_len(&p), 2);
    // A failed insert changes nothing, dictionary included.
    assert!(p
        .insert("k9", &[(1, Value::from("new")), (2, Value::from("x"))])
        .is_err());
    assert!(p
        .insert("k1", &[(1, Value::from("new")), (0, Value::Null)])
        .is_err());
    assert_eq!((dict_len(&p), p.len()), (2, 5));
    // Replacing resets the members not given: "high" loses a reference, "" needs none.
    p.insert("k4", &[(2, Value::Null)]).unwrap();
    assert_eq!(
        p.values(p.index_of("k4").unwrap()).unwrap(),
        vec![Value::from(""), Value::from(""), Value::Null]
    );
    assert_eq!(
        p.take("k3"),
        Some(vec![
            Value::from("a name long enough to spill 3"),
            Value::from("low"),
            Value::Float(3.0)
        ])
        .map(|mut v| {
            v[1] = Value::from("high");
            v
        })
    );
    assert_eq!(dict_len(&p), 1, "high is reclaimed");
    let mut q = p.clone();
    q.set(q.index_of("k0").unwrap(), 1, &Value::from("only in q"))
        .unwrap();
    assert_eq!(dict_len(&p), 1);
    assert_eq!(dict_len(&q), 2);
    p.validate().unwrap();
    q.validate().unwrap();
    p.clear();
    assert_eq!(dict_len(&p), 0);
    p.validate().unwrap();
}
