//! Store files in the engine: round trips through every mode (the mapping code), refusals of mapped
//! stores, and the fuzzer's findings as regression tests (`tests/fuzz-regressions/`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failure is a panic

use std::sync::Arc;

use compactstore::file::{self, Loaded, Mode, Source};
use compactstore::{
    Access, Dtype, DynamicStore, Error, KeyedStore, Member, MemberType, Schema, Store, Value,
};

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(vec![
            Member::new("x", MemberType::Scalar(Dtype::I64)).unwrap(),
            Member::new("name", MemberType::Str).unwrap(),
            Member::new("cat", MemberType::interned(MemberType::Str)).unwrap(),
            Member::new("o", MemberType::optional(MemberType::Scalar(Dtype::F32))).unwrap(),
        ])
        .unwrap(),
    )
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "cs-files-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn every_mode_round_trips_a_dynamic_store_and_mapped_ones_refuse_writes() {
    let mut d = DynamicStore::new(schema(), 3).unwrap();
    for i in 0..20i64 {
        d.add(&[
            (0, Value::Int(i)),
            (1, Value::Str("n".repeat(i as usize * 3))),
            (2, Value::Str(format!("c{}", i % 3))),
        ])
        .unwrap();
    }
    d.remove(7).unwrap();
    let path = dir().join("d.cstore");
    file::save(Source::Dynamic(&d), &path).unwrap();
    for mode in [Mode::Memory, Mode::ReadOnly, Mode::CopyOnWrite, Mode::ReadWrite] {
        let (loaded, _) = file::load(&path, mode).unwrap();
        let Loaded::Dynamic(mut m) = loaded else {
            panic!("kind")
        };
        m.validate().unwrap();
        assert_eq!(m.len(), d.len());
        for i in d.indices() {
            for k in 0..4 {
                assert_eq!(m.get(i, k).unwrap(), d.get(i, k).unwrap());
            }
        }
        let access = m.access();
        let w = m.set(0, 1, &Value::Str("changed, and long enough for the arena".into()));
        let f = m.set(0, 0, &Value::Int(-1));
        let a = m.add(&[]);
        match mode {
            Mode::Memory | Mode::CopyOnWrite => {
                assert_eq!(access, Access::ReadWrite);
                assert!(w.is_ok() && f.is_ok() && a.is_ok());
                m.validate().unwrap();
            }
            Mode::ReadOnly => {
                assert!(matches!(w, Err(Error::StoreReadOnly(_))));
                assert!(matches!(f, Err(Error::StoreReadOnly(_))));
                assert!(matches!(a, Err(Error::StoreReadOnly(_))));
            }
            Mode::ReadWrite => {
                assert!(matches!(w, Err(Error::StoreReadOnly(_))));
                assert!(f.is_ok());
                assert!(matches!(a, Err(Error::StoreReadOnly(_))));
            }
        }
    }
    // "r+" wrote x = -1 at slot 0 into the file; "c" did not.
    let (loaded, _) = file::load(&path, Mode::Memory).unwrap();
    let Loaded::Dynamic(m) = loaded else {
        panic!("kind")
    };
    assert_eq!(m.get(0, 0).unwrap(), Value::Int(-1));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_keyed_store_maps_its_key_table() {
    let mut k: KeyedStore<String> = KeyedStore::new(schema(), 2).unwrap();
    for i in 0..50 {
        k.insert(&format!("key{i}"), &[(0, Value::Int(i))]).unwrap();
    }
    k.remove("key10");
    let path = dir().join("k.cstore");
    file::save(Source::KeyedStr(&k), &path).unwrap();
    for mode in [Mode::ReadOnly, Mode::Memory] {
        let (loaded, _) = file::load(&path, mode).unwrap();
        let Loaded::KeyedStr(m) = loaded else {
            panic!("kind")
        };
        m.validate().unwrap();
        assert_eq!(m.len(), 49);
        assert_eq!(m.index_of("key10"), None);
        for i in (0..50).filter(|&i| i != 10) {
            let s = m.index_of(&format!("key{i}")).unwrap();
            assert_eq!(m.get(s, 0).unwrap(), Value::Int(i));
        }
        let copy = m.try_clone().unwrap();
        assert_eq!(copy.access(), Access::ReadWrite);
        copy.validate().unwrap();
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn corrupt_bytes_give_a_format_error_or_a_readable_store() {
    let mut d = DynamicStore::new(schema(), 2).unwrap();
    for i in 0..9i64 {
        d.add(&[(0, Value::Int(i)), (1, Value::Str("x".repeat(20)))])
            .unwrap();
    }
    let bytes = file::to_bytes(Source::Dynamic(&d)).unwrap();
    assert!(file::from_bytes(&bytes, true).is_ok());
    for cut in (0..bytes.len()).step_by(7) {
        let r = file::from_bytes(&bytes[..cut], true);
        assert!(matches!(r, Err(Error::Format(_))), "cut {cut}: {r:?}");
    }
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        for ro in [true, false] {
            if let Ok(l) = file::from_bytes(&b, ro) {
                let _ = file::read_all(&l);
                let _ = l.validate();
            }
        }
    }
}

#[test]
fn fuzz_regressions_load_or_fail_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for ro in [true, false] {
            if let Ok(l) = file::from_bytes(&bytes, ro) {
                let _ = file::read_all(&l);
                let _ = l.validate();
            }
        }
        n += 1;
    }
    assert!(n > 0);
}

#[test]
fn object_members_go_only_into_an_image_with_objects_never_a_file() {
    let schema = Arc::new(
        Schema::new(vec![
            Member::new("x", MemberType::Scalar(Dtype::I64)).unwrap(),
            Member::new("obj", MemberType::Object).unwrap(),
            Member::new("name", MemberType::Str).unwrap(),
        ])
        .unwrap(),
    );
    let mut d = DynamicStore::new(schema, 2).unwrap();
    for i in 0..11i64 {
        d.add(&[(0, Value::Int(i)), (2, Value::Str(format!("n{i}")))])
            .unwrap();
    }
    d.remove(5).unwrap();
    assert!(matches!(
        file::Image::of(Source::Dynamic(&d)),
        Err(Error::WrongType { .. })
    ));
    assert!(file::to_bytes(Source::Dynamic(&d)).is_err());
    let path = dir().join("obj.cstore");
    assert!(file::save(Source::Dynamic(&d), &path).is_err());
    assert!(!path.exists());
    let image = file::Image::with_objects(Source::Dynamic(&d)).unwrap();
    let mut buf = compactstore::column::AlignedBuf::try_zeroed(image.len()).unwrap();
    image.write_into(buf.bytes_mut()).unwrap();
    let len = buf.len();
    let owner = buf.owner();
    let base = buf.as_ptr() as usize - owner.ptr() as usize;
    // Not a file: refused where files are read.
    let r = file::from_backing(Arc::clone(&owner), base, len, false);
    assert!(matches!(r, Err(Error::Format(_))), "{r:?}");
    std::fs::write(&path, buf.bytes()).unwrap();
    assert!(file::load(&path, Mode::Memory).is_err());
    std::fs::remove_file(&path).unwrap();
    for ro in [false, true] {
        let (loaded, _) = file::from_backing_with_objects(Arc::clone(&owner), base, len, ro).unwrap();
        let Loaded::Dynamic(m) = loaded else {
            panic!("kind")
        };
        m.validate().unwrap();
        assert_eq!(m.len(), d.len());
        assert_eq!(m.indices().collect::<Vec<_>>(), d.indices().collect::<Vec<_>>());
        assert_eq!(Store::last_index(&m), Store::last_index(&d));
        for i in d.indices() {
            for k in 0..3 {
                assert_eq!(m.get(i, k).unwrap(), d.get(i, k).unwrap());
            }
        }
    }
}
