"""Files: save/load round trips of every store kind and member type in every mmap_mode, and the refusals
of read-only ("r") and in-place ("r+") stores."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

import compactstore as cs


class Rec(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    flag: cs.bool_
    inputs: cs.Array(cs.u8, 3)  # type: ignore[valid-type]
    name: str = ""
    blob: bytes = b"d"
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    bcat: cs.Interned(cs.Bytes) = b"x"  # type: ignore[valid-type]
    parent: cs.Optional(cs.i64)  # type: ignore[valid-type]
    oname: cs.Optional(cs.Str)  # type: ignore[valid-type]
    ocat: cs.Optional(cs.Interned(cs.Str))  # type: ignore[valid-type]
    oarr: cs.Optional(cs.Array(cs.i16, 2))  # type: ignore[valid-type]


MODES = [None, "r", "c", "r+"]


def values(i: int) -> dict[str, Any]:
    return {
        "ref": i,
        "fitness": i / 4,
        "flag": i % 3 == 0,
        "inputs": [i % 256, 1, 2],
        "name": "n" * (i % 40),
        "blob": bytes([i % 256]) * (i % 300),
        "cat": f"c{i % 5}",
        "bcat": b"b%d" % (i % 4),
        "parent": None if i % 2 else i * 10,
        "oname": None if i % 3 else "o" * (i % 20),
        "ocat": None if i % 4 == 0 else f"q{i % 3}",
        "oarr": None if i % 5 == 0 else [i, -i],
    }


def plain(e: Any) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in e.items()}


def snapshot(s: Any) -> Any:
    if isinstance(s, cs.KeyedStore):
        return (
            sorted((k, plain(e)) for k, e in s.items()),
            sorted(s.modified()),
            s.store_type,
        )
    return (
        [(i, plain(s.entry(i))) for i in s.indices()],
        list(s.empty_indices()),
        s.last_index,
        len(s),
        s.size,
    )


def make_static(n: int = 60) -> Rec:
    s = Rec(size=n + 10)
    for i in range(n):
        s.add(**values(i))
    for i in (3, 17, 40):
        del s[i]
    s.add(**values(999))  # reuses slot 3: last_index is 3
    return s


def make_dynamic(n: int = 70) -> Any:
    d = cs.DynamicStore(Rec, log2size=4)
    for i in range(n):
        d.add(**values(i))
    for i in (5, 33, 69):
        del d[i]
    return d


def make_keyed(key: Any, n: int = 50) -> Any:
    k = cs.KeyedStore(Rec, key=key, log2size=4)
    conv: Callable[[int], Any] = {
        cs.i64: lambda i: i - 20,
        cs.u64: lambda i: i * 7,
        cs.Str: lambda i: f"key{i}",
        cs.Bytes: lambda i: b"key%d" % i,
    }[key]
    for i in range(n):
        k[conv(i)] = values(i)
    for i in (1, 20, 30):
        del k[conv(i)]
    k.clear_modified()
    k[conv(4)]["fitness"] = 7.0
    k[conv(8)] = values(88)
    return k


STORES: dict[str, Callable[[], Any]] = {
    "static": make_static,
    "dynamic": make_dynamic,
    "keyed-i64": lambda: make_keyed(cs.i64),
    "keyed-u64": lambda: make_keyed(cs.u64),
    "keyed-str": lambda: make_keyed(cs.Str),
    "keyed-bytes": lambda: make_keyed(cs.Bytes),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(STORES))
def test_round_trip_every_kind_and_mode(tmp_path: Path, kind: str, mode: str | None) -> None:
    s = STORES[kind]()
    path = tmp_path / "s.cstore"
    s.save(path)
    m = cs.load(path, Rec, mmap_mode=mode)
    assert type(m) is type(s)
    assert snapshot(m) == snapshot(s)
    m.validate()
    if mode is None:
        assert m.filename is None and m.mmap_mode is None
    else:
        assert m.filename == os.path.abspath(path) and m.mmap_mode == mode
    # Without a store type, one is made from the file's members.
    n = cs.load(str(path), mmap_mode=mode)
    assert [x.name for x in n.values()] if not isinstance(n, cs.KeyedStore) else True
    assert snapshot(n)[:-1] == snapshot(s)[:-1] if isinstance(s, cs.KeyedStore) else snapshot(n) == snapshot(s)


def test_store_type_mismatch_is_a_type_error(tmp_path: Path) -> None:
    class Other(cs.StaticStore):
        x: cs.i64

    make_static().save(tmp_path / "s")
    with pytest.raises(TypeError):
        cs.load(tmp_path / "s", Other)
    with pytest.raises(TypeError):
        cs.load(tmp_path / "s", int)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        cs.load(tmp_path / "s", Rec, mmap_mode="w")


def test_missing_file_and_directory_errors_are_pythons(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cs.load(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        make_static().save(tmp_path / "no-dir" / "s")
    assert not list(tmp_path.iterdir())


def test_object_members_cannot_be_saved_and_nothing_is_written(tmp_path: Path) -> None:
    class WithObj(cs.StaticStore):
        x: cs.i64
        payload: cs.Object

    s = WithObj(size=4)
    s.add(x=1, payload=[1])
    with pytest.raises(TypeError, match="payload"):
        s.save(tmp_path / "s")
    assert not list(tmp_path.iterdir())


def test_save_replaces_and_old_mappings_keep_reading(tmp_path: Path) -> None:
    path = tmp_path / "s"
    s = make_static()
    s.save(path)
    old = cs.load(path, Rec, mmap_mode="r")
    before = snapshot(old)
    s.fitness[0] = 123.0
    s.save(path)
    assert snapshot(old) == before  # the old mapping is the old file
    assert cs.load(path, Rec).fitness[0] == 123.0
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary file left


def refusals(m: Any) -> list[Callable[[], Any]]:
    """Calls that must all raise TypeError on a read-only store."""
    if isinstance(m, cs.KeyedStore):
        k = next(iter(m))
        return [
            lambda: m.__setitem__(k, {}),
            lambda: m.__delitem__(k),
            lambda: m.pop(k),
            lambda: m.popitem(),
            lambda: m.clear(),
            lambda: m.__setitem__((k, "name"), "zz"),
            lambda: m.__setitem__((k, "fitness"), 2.0),
        ]
    i = next(iter(m.indices()))
    calls = [
        lambda: m.add(ref=1),
        lambda: m.__delitem__(i),
        lambda: m.reset(),
        lambda: m.fitness.__setitem__(i, 1.0),
        lambda: m.name.__setitem__(i, "zz"),
        lambda: m.cat.__setitem__(i, "new"),
        lambda: m.entry(i).__setitem__("ref", 5),
    ]
    if isinstance(m, cs.DynamicStore):
        calls.append(lambda: m.reset(3))
        calls.append(lambda: m.retract())
    return calls


@pytest.mark.parametrize("kind", list(STORES))
def test_read_only_refuses_every_write_and_changes_nothing(tmp_path: Path, kind: str) -> None:
    s = STORES[kind]()
    path = tmp_path / "s"
    s.save(path)
    raw = path.read_bytes()
    m = cs.load(path, Rec, mmap_mode="r")
    before = snapshot(m)
    for call in refusals(m):
        with pytest.raises(TypeError, match="read-only"):
            call()
    assert snapshot(m) == before
    m.validate()
    assert path.read_bytes() == raw


def test_numpy_view_of_a_read_only_store_is_read_only(tmp_path: Path) -> None:
    make_static().save(tmp_path / "s")
    m = cs.load(tmp_path / "s", Rec, mmap_mode="r")
    a = np.asarray(m.fitness)
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1.0
    assert a[1] == make_static().fitness[1]


@pytest.mark.parametrize("kind", list(STORES))
def test_r_plus_writes_fixed_width_in_place_and_refuses_the_rest(tmp_path: Path, kind: str) -> None:
    s = STORES[kind]()
    path = tmp_path / "s"
    s.save(path)
    m = cs.load(path, Rec, mmap_mode="r+")
    raw = path.read_bytes()
    if isinstance(m, cs.KeyedStore):
        k = next(iter(m))
        m[k, "fitness"] = 42.0
        m[k, "ref"] = -5
        refused = [lambda: m.__setitem__((k, "name"), "zz"), lambda: m.__delitem__(k), lambda: m.__setitem__(k, {})]
    else:
        i = next(iter(m.indices()))
        k = i
        m.fitness[i] = 42.0
        m.ref[i] = -5
        m.parent[i] = 77
        refused = [lambda: m.name.__setitem__(i, "zz"), lambda: m.add(ref=1), lambda: m.__delitem__(i), lambda: m.reset()]
    for call in refused:
        before = path.read_bytes()
        with pytest.raises(TypeError):
            call()
        assert path.read_bytes() == before
    assert path.read_bytes() != raw
    del m
    again = cs.load(path, Rec)
    if isinstance(again, cs.KeyedStore):
        assert (again[k, "fitness"], again[k, "ref"]) == (42.0, -5)
    else:
        assert (again.fitness[k], again.ref[k], again.parent[k]) == (42.0, -5, 77)
        if isinstance(again, cs.StaticStore):
            np.asarray(cs.load(path, Rec, mmap_mode="r+").fitness)[k] = 43.0
            assert cs.load(path, Rec).fitness[k] == 43.0


@pytest.mark.parametrize("kind", list(STORES))
def test_copy_on_write_never_changes_the_file(tmp_path: Path, kind: str) -> None:
    s = STORES[kind]()
    path = tmp_path / "s"
    s.save(path)
    raw = path.read_bytes()
    m = cs.load(path, Rec, mmap_mode="c")
    if isinstance(m, cs.KeyedStore):
        for i in range(100):
            m[_new_key(m, i)] = values(i)
        k = next(iter(m))
        m[k, "name"] = "changed" * 10
        del m[k]
    else:
        for i in range(30):
            m.add(**values(i)) if isinstance(m, cs.DynamicStore) or len(m) < m.size else None
        i = next(iter(m.indices()))
        m.name[i] = "changed" * 10
        m.fitness[i] = -1.0
        del m[i]
    m.validate()
    assert path.read_bytes() == raw
    assert snapshot(cs.load(path, Rec)) == snapshot(s)


def _new_key(m: Any, i: int) -> Any:
    sample = next(iter(m))
    if isinstance(sample, str):
        return f"new{i}"
    if isinstance(sample, bytes):
        return b"new%d" % i
    return 10_000 + i


def test_copies_of_mapped_stores_are_in_memory_and_writable(tmp_path: Path) -> None:
    import copy

    make_static().save(tmp_path / "s")
    m = cs.load(tmp_path / "s", Rec, mmap_mode="r")
    for c in (m.copy(), copy.copy(m), copy.deepcopy(m)):
        assert c.mmap_mode is None and c.filename is None
        c.add(ref=5)
        c.fitness[0] = 3.0
        c.validate()
    assert snapshot(m) == snapshot(make_static())


def test_a_chunk_view_cannot_be_saved_alone(tmp_path: Path) -> None:
    d = make_dynamic()
    with pytest.raises(TypeError):
        d.chunks[0].save(tmp_path / "c")  # type: ignore[attr-defined]


def test_empty_and_fresh_stores_round_trip(tmp_path: Path) -> None:
    for s in (Rec(size=0), Rec(size=5), cs.DynamicStore(Rec), cs.KeyedStore(Rec, key=cs.Str)):
        s.save(tmp_path / "e")
        for mode in MODES:
            m = cs.load(tmp_path / "e", Rec, mmap_mode=mode)
            assert snapshot(m) == snapshot(s)
            m.validate()


class AllTypes(cs.StaticStore):
    b: cs.bool_ = True
    i8_: cs.i8 = -3
    i16_: cs.i16
    i32_: cs.i32
    i64_: cs.i64
    u8_: cs.u8
    u16_: cs.u16 = 7
    u32_: cs.u32
    u64_: cs.u64 = 2**64 - 1
    f32_: cs.f32
    f64_: cs.f64 = 0.125
    arr: cs.Array(cs.f64, 2)  # type: ignore[valid-type]
    long_default: str = "a default longer than fifteen bytes"
    ob: cs.Optional(cs.Bytes)  # type: ignore[valid-type]
    ou: cs.Optional(cs.u16) = 5  # type: ignore[valid-type]


@pytest.mark.parametrize("mode", MODES)
def test_every_numeric_type_and_default_round_trips(tmp_path: Path, mode: str | None) -> None:
    s = AllTypes(size=200)
    for i in range(150):
        s.add(
            i16_=-i, i32_=i * 1000, i64_=-(2**40) * i, u8_=i, u32_=i * 7, f32_=i / 8, arr=[i, -i],
            ob=None if i % 2 else b"x" * i, ou=None if i % 3 == 0 else i,
        )
    for i in range(0, 150, 4):
        del s[i]
    s.add()
    s.save(tmp_path / "t")
    m = cs.load(tmp_path / "t", AllTypes, mmap_mode=mode)
    assert snapshot(m) == snapshot(s)
    m.validate()
    if mode in (None, "c"):
        # Slots never written before the save read their defaults, and new entries get them.
        j = m.add()
        fresh = AllTypes(size=1)
        assert plain(m.entry(j)) == plain(fresh.entry(fresh.add()))


@pytest.mark.parametrize("mode", [None, "c", "r", "r+"])
def test_pool_set_from_a_dict_of_numbers_on_a_loaded_keyed_store(tmp_path: Path, mode: str | None) -> None:
    """`pool[k] = {name: number}` takes a fast path of its own (one conversion pass): it too must refuse
    on a read-only or in-place store, and add to a store still using its file's key index."""

    class Num(cs.StaticStore):
        x: cs.f64
        y: cs.i32

    pool = cs.KeyedStore(Num, key=cs.i64)
    for k in range(1000):
        pool[k * 3] = {"x": float(k), "y": k}
    path = str(tmp_path / "num.store")
    pool.save(path)
    before = Path(path).read_bytes()
    s = cs.load(path, Num, mmap_mode=mode)
    if mode in ("r", "r+"):
        with pytest.raises(TypeError):
            s[1] = {"x": 1.0, "y": 1}
        assert 1 not in s and len(s) == 1000
    else:
        s[1] = {"x": 1.5, "y": 7}  # a new key
        s[3] = {"x": 2.5, "y": 8}  # an existing one
        assert (s[1, "x"], s[1, "y"], s[3, "x"], s[6, "y"], len(s)) == (1.5, 7, 2.5, 2, 1001)
        assert all(s[k * 3, "y"] == k for k in range(2, 1000))
        s.validate()
    del s
    assert Path(path).read_bytes() == before
