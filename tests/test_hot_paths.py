"""The hot paths of issue 16: `m[i]` on the containers of every store kind, `pool[k, name]`, `pool[k]` and
`pool[k][name]`, and entries made from dicts, each against a plain-Python model, including the error paths
the hand-written slots hand to the general ones."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compactstore as cs

DTYPES = [cs.bool_, cs.i8, cs.i16, cs.i32, cs.i64, cs.u8, cs.u16, cs.u32, cs.u64, cs.f32, cs.f64]


class Mixed(cs.StaticStore):
    b: cs.bool_ = True
    i8: cs.i8 = -3
    i16: cs.i16
    i32: cs.i32 = 7
    i64: cs.i64 = -(2**40)
    u8: cs.u8 = 200
    u16: cs.u16
    u32: cs.u32 = 2**31
    u64: cs.u64 = 2**63
    f32: cs.f32 = 0.5
    f64: cs.f64 = 1.5
    arr: cs.Array(cs.i32, 2)
    name: str = "x"
    ro: cs.Member(cs.i64, read_only=True)


SCALARS = ["b", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64"]
DEFAULTS: dict[str, Any] = {"b": True, "i8": -3, "i16": 0, "i32": 7, "i64": -(2**40), "u8": 200, "u16": 0,
                            "u32": 2**31, "u64": 2**63, "f32": 0.5, "f64": 1.5}


def stores(n: int) -> dict[str, Any]:
    """A store of each kind holding entries 0..n-1 (keyed: keys 100..100+n-1 in slots 0..n-1)."""
    s = Mixed(n)
    d = cs.DynamicStore(Mixed, log2size=2)
    k = cs.KeyedStore(Mixed, key=cs.i64, log2size=2)
    for i in range(n):
        s.add(ro=i)
        d.add(ro=i)
        k[100 + i] = {"ro": i}
    return {"static": s, "dynamic": d, "keyed": k}


@pytest.mark.parametrize("kind", ["static", "dynamic", "keyed"])
def test_container_reads_defaults_and_writes_of_every_dtype(kind: str) -> None:
    store = stores(6)[kind]
    for name in SCALARS:
        m = store.members[name] if kind == "keyed" else store[name]
        want = DEFAULTS[name]
        n = len(m)
        # Every slot, also unfilled ones of a lazily filled chunk, reads as the default, from both ends.
        for i in range(-n, n):
            assert m[i] == want, (name, i)
            assert type(m[i]) is type(want) or name == "b"
        with pytest.raises(IndexError):
            m[n]
        with pytest.raises(IndexError):
            m[-n - 1]
        with pytest.raises(IndexError):
            m[2**62]
        m[3] = True if name == "b" else 1
        assert m[3] == 1 and m[-n + 3] == 1
    assert (store.members["b"] if kind == "keyed" else store["b"])[0] is True


@pytest.mark.parametrize("kind", ["static", "dynamic", "keyed"])
def test_container_non_scalar_and_bad_writes_take_the_general_path(kind: str) -> None:
    store = stores(4)[kind]
    get = store.members.__getitem__ if kind == "keyed" else store.__getitem__
    assert get("arr")[1].tolist() == [0, 0]
    assert get("name")[2] == "x"
    with pytest.raises(TypeError):
        get("ro")[1] = 5
    assert get("ro")[1] == 1
    with pytest.raises(OverflowError):
        get("u8")[0] = 256
    with pytest.raises(TypeError):
        get("i64")[0] = "no"
    assert get("u8")[0] == 200
    with pytest.raises(TypeError):
        del get("i64")[0]


def test_keyed_container_write_refuses_a_free_slot() -> None:
    k = cs.KeyedStore(Mixed, key=cs.i64, log2size=2)
    k[1] = {}
    m = k.members["i64"]
    assert m[3] == DEFAULTS["i64"]  # a free slot reads as the default
    with pytest.raises(IndexError, match="holds no entry"):
        m[3] = 5


def test_chunk_container_of_a_released_chunk() -> None:
    d = cs.DynamicStore(Mixed, log2size=1)
    for _ in range(4):
        d.add()
    m = d.chunks[1]["i64"]
    assert m[0] == DEFAULTS["i64"] and m[-1] == DEFAULTS["i64"]
    with pytest.raises(IndexError):
        m[2]
    del d[3], d[2]
    d.retract()
    with pytest.raises(ValueError):
        m[0]
    with pytest.raises(ValueError):
        m[0] = 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "set", "get"]), st.integers(-40, 40),
                          st.integers(-(2**31), 2**31 - 1)), max_size=60))
def test_dynamic_container_matches_a_list(ops: list[tuple[str, int, int]]) -> None:
    d = cs.DynamicStore(Mixed, log2size=2)
    m = d["i32"]
    model: list[int | None] = [7] * len(m)  # the value of every slot (None: freed, not asserted)
    live: set[int] = set()
    for op, i, v in ops:
        if op == "add":
            j = d.add(i32=v)
            while len(model) < len(m):
                model.append(7)
            model[j] = v
            live.add(j)
        elif op == "del" and live:
            j = sorted(live)[abs(i) % len(live)]
            del d[j]
            live.discard(j)
            model[j] = None
        elif op == "set":
            if -len(model) <= i < len(model):
                m[i] = v
                model[i] = v
            else:
                with pytest.raises(IndexError):
                    m[i] = v
        else:
            if -len(model) <= i < len(model):
                assert model[i] is None or m[i] == model[i]
            else:
                with pytest.raises(IndexError):
                    m[i]
        while len(model) < len(m):
            model.append(7)
    assert all(v is None or m[i] == v for i, v in enumerate(model))


class Eight(cs.StaticStore):
    a: cs.i64 = 1
    b: cs.f64 = 0.5
    s: str = "z"
    arr: cs.Array(cs.u8, 2)


KEYS: dict[str, tuple[Any, list[Any]]] = {
    "i64": (cs.i64, [-5, 0, 2**40]),
    "u64": (cs.u64, [0, 7, 2**63 + 1]),
    "str": (cs.Str, ["", "k", "ключ"]),
    "bytes": (cs.Bytes, [b"", b"k", b"\xff\x00"]),
}


@pytest.mark.parametrize("kind", list(KEYS))
def test_pool_key_name_reads_for_every_key_type(kind: str) -> None:
    key_type, keys = KEYS[kind]
    pool = cs.KeyedStore(Eight, key=key_type, log2size=1)
    for j, k in enumerate(keys):
        pool[k] = {"a": j, "b": j / 2}
    for j, k in enumerate(keys):
        assert pool[k, "a"] == j and pool[k, "b"] == j / 2 and pool[k, "s"] == "z"
        assert pool[k, "arr"].tolist() == [0, 0]
        # A name that is not the interned object, and an entry, take the general path to the same values.
        assert pool[k, "".join(["a"])] == j
        assert pool[k]["a"] == j and pool[k]["".join("b")] == j / 2
        with pytest.raises(KeyError):
            pool[k, "nope"]
        with pytest.raises(KeyError):
            pool[k, 3]
    absent = {"i64": 1, "u64": 1, "str": "absent", "bytes": b"absent"}[kind]
    with pytest.raises(KeyError):
        pool[absent, "a"]
    with pytest.raises(KeyError):
        pool[absent]
    with pytest.raises(KeyError):
        pool[1.5, "a"]
    with pytest.raises(KeyError):
        pool[keys[0], "a", "b"]


def test_pool_reads_with_keys_the_fast_path_does_not_take() -> None:
    pool = cs.KeyedStore(Eight, key=cs.i64)
    pool[3] = {"a": 30}
    assert pool[np.int64(3), "a"] == 30
    assert pool[np.int64(3)]["a"] == 30
    with pytest.raises(KeyError):
        pool[2**70, "a"]
    with pytest.raises(KeyError):
        pool["3", "a"]
    spool = cs.KeyedStore(Eight, key=cs.Str)
    spool["x"] = {"a": 1}

    class S(str):
        pass

    assert spool[S("x"), "a"] == 1 and spool[S("x")]["a"] == 1
    with pytest.raises(KeyError):
        spool["\ud800", "a"]  # not UTF-8: never a key


def test_pool_entries_are_reused_only_when_nothing_else_holds_them() -> None:
    pool = cs.KeyedStore(Eight, key=cs.i64)
    for k in range(4):
        pool[k] = {"a": 10 * k}
    for _ in range(3):
        for k in range(4):
            assert pool[k]["a"] == 10 * k and pool[k].key == k
    held = [pool[k] for k in range(4)]
    assert [e["a"] for e in held] == [0, 10, 20, 30]
    assert [e.key for e in held] == [0, 1, 2, 3] and len({id(e) for e in held}) == 4
    # A weak reference keeps an entry from being reused: the referent stays the entry of its key.
    r = weakref.ref(pool[1])
    for k in range(4):
        pool[k]["a"]
    if r() is not None:
        assert r().key == 1 and r()["a"] == 10
    # A deleted key's entry is stale, and a reused object never is.
    e = pool[2]
    del pool[2]
    with pytest.raises(KeyError):
        e["a"]
    del e
    assert pool[3]["a"] == 30 and pool[3].valid
    pool[2] = {"a": 5}
    assert pool[2]["a"] == 5


def test_a_pool_with_entries_made_is_freed_without_the_collector() -> None:
    pool = cs.KeyedStore(Eight, key=cs.i64)
    pool[1] = {}
    assert pool[1]["a"] == 1
    e = pool[1]
    gone = weakref.ref(pool)
    gc.disable()
    try:
        del pool
        assert gone() is None
        assert e["a"] == 1  # the entry keeps the data
    finally:
        gc.enable()


class WithObject(cs.StaticStore):
    obj: cs.Object
    x: cs.i64


def test_entries_of_a_pool_with_object_members_keep_the_pool_alive() -> None:
    pool = cs.KeyedStore(WithObject, key=cs.i64)
    pool[1] = {"x": 4}
    e = pool[1]
    assert pool[1] is not e  # no reuse: every entry holds the store
    gone = weakref.ref(pool)
    del pool
    gc.collect()
    assert gone() is not None and e["x"] == 4


def test_entry_name_reads_and_their_errors() -> None:
    s = Eight(3)
    i = s.add(a=9)
    e = s.entry(i)
    assert e["a"] == 9 and e["b"] == 0.5 and e["s"] == "z" and e["arr"].tolist() == [0, 0]
    assert e["".join("a")] == 9
    with pytest.raises(KeyError):
        e["nope"]
    with pytest.raises(KeyError):
        e[0]
    del s[i]
    with pytest.raises(KeyError):
        e["a"]
    s.add()
    with pytest.raises(KeyError):
        e["a"]  # the slot was reused: a new generation
    d = cs.DynamicStore(Eight, log2size=1)
    for _ in range(3):
        d.add()
    ce = d.chunks[1].entry(0)
    assert ce["a"] == 1
    del d[2]
    d.retract()
    with pytest.raises(KeyError):
        ce["a"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["set", "del", "read", "hold", "drop"]), st.integers(0, 12),
                          st.integers(-100, 100)), max_size=80))
def test_pool_hot_reads_match_a_dict_of_dicts(ops: list[tuple[str, int, int]]) -> None:
    pool = cs.KeyedStore(Eight, key=cs.i64, log2size=2)
    model: dict[int, int] = {}
    held: list[tuple[int, Any]] = []
    for op, k, v in ops:
        if op == "set":
            pool[k] = {"a": v}
            model[k] = v
        elif op == "del":
            if k in model:
                del pool[k], model[k]
            else:
                with pytest.raises(KeyError):
                    del pool[k]
        elif op == "read":
            if k in model:
                assert pool[k, "a"] == model[k] and pool[k]["a"] == model[k]
            else:
                with pytest.raises(KeyError):
                    pool[k, "a"]
                with pytest.raises(KeyError):
                    pool[k]
        elif op == "hold" and k in model:
            held.append((k, pool[k]))
        elif op == "drop" and held:
            held.pop(v % len(held))
        for hk, e in held:
            if hk in model and e.valid:
                assert e.key == hk and e["a"] == model[hk]


class Writable(cs.StaticStore):
    a: cs.i64 = 1
    f: cs.f32 = 0.5
    u: cs.u8
    ro: cs.Member(cs.i64, read_only=True)
    s: str = ""


@pytest.mark.parametrize("via", ["tuple", "entry"])
def test_hot_writes_and_their_refusals(via: str) -> None:
    pool = cs.KeyedStore(Writable, key=cs.i64)
    pool[1] = {"ro": 5}
    pool.clear_modified()

    def put(name: str, value: Any) -> None:
        if via == "tuple":
            pool[1, name] = value
        else:
            pool[1][name] = value

    put("a", 7)
    put("f", 0.25)
    put("u", 255)
    put("a", True)
    assert pool[1, "a"] == 1 and pool[1, "f"] == 0.25 and pool[1, "u"] == 255
    assert pool.modified() == [1]
    put("a", 2**40)
    put("f", 3)  # an int into a float member
    put("s", "text")  # not a scalar: the general path
    put("".join("a"), 9)  # not the interned name: the general path
    assert dict(pool[1]) == {"a": 9, "f": 3.0, "u": 255, "ro": 5, "s": "text"}
    with pytest.raises(TypeError):
        put("ro", 6)
    with pytest.raises(OverflowError):
        put("u", 256)
    with pytest.raises(TypeError):
        put("a", "no")
    with pytest.raises(OverflowError):
        put("f", 1e300)
    with pytest.raises(KeyError):
        put("nope", 1)
    assert dict(pool[1]) == {"a": 9, "f": 3.0, "u": 255, "ro": 5, "s": "text"}
    with pytest.raises(KeyError):
        pool[2, "a"] = 1
    assert 2 not in pool


def test_entry_writes_of_stale_and_static_entries() -> None:
    s = Writable(2)
    i = s.add(ro=1)
    e = s.entry(i)
    e["a"] = 4
    e["f"] = 1.5
    assert s.a[i] == 4 and s.f[i] == 1.5
    with pytest.raises(TypeError):
        e["ro"] = 2
    del s[i]
    with pytest.raises(KeyError):
        e["a"] = 5
    s.add()
    with pytest.raises(KeyError):
        e["a"] = 5
    assert s.a[i] == 1
    with pytest.raises(NotImplementedError):  # as before the hand-written slot
        del e["a"]
    pool = cs.KeyedStore(Writable, key=cs.i64)
    pool[1] = {}
    pe = pool[1]
    del pool[1]
    with pytest.raises(KeyError):
        pe["a"] = 3
    with pytest.raises(KeyError):
        del pool[1]


def test_pool_set_from_dicts_of_numbers_and_the_rest() -> None:
    pool = cs.KeyedStore(Writable, key=cs.i64)
    pool[1] = {"a": 5, "f": 2, "u": True, "ro": 9}
    assert dict(pool[1]) == {"a": 5, "f": 2.0, "u": 1, "ro": 9, "s": ""}
    name = "".join(["a"])  # not the interned name
    pool[2] = {name: 6}
    assert pool[2, "a"] == 6 and pool[2, "f"] == 0.5 and pool.modified() == []
    pool[1] = {"a": 7}  # a present key: rewritten, others back to their defaults, marked modified
    assert dict(pool[1]) == {"a": 7, "f": 0.5, "u": 0, "ro": 0, "s": ""} and pool.modified() == [1]
    pool[3] = {"a": 1, "s": "x"}  # a str member: the general path
    assert pool[3, "s"] == "x"
    for bad, err in (({"a": 1.5}, TypeError), ({"u": 256}, OverflowError), ({"zz": 1}, KeyError),
                     ({"a": None}, TypeError), ({"f": 1e300}, OverflowError)):
        with pytest.raises(err):
            pool[4] = bad
        assert 4 not in pool
    assert len(pool) == 3
    loose = cs.KeyedStore(Writable, key=cs.i64, ignore_unknown=True)
    loose[1] = {"a": 2, "zz": 3, "f": None}
    assert dict(loose[1]) == {"a": 2, "f": 0.5, "u": 0, "ro": 0, "s": ""}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.dictionaries(st.sampled_from(["a", "u", "ro"]),
                                                             st.integers(-300, 300), max_size=3)),
                max_size=40))
def test_pool_set_from_dicts_matches_a_dict(ops: list[tuple[int, dict[str, int]]]) -> None:
    pool = cs.KeyedStore(Writable, key=cs.i64, log2size=2)
    model: dict[int, dict[str, Any]] = {}
    for k, d in ops:
        want = {"a": 1, "f": 0.5, "u": 0, "ro": 0, "s": ""} | d
        if not 0 <= want["u"] <= 255:
            with pytest.raises(OverflowError):
                pool[k] = d
            continue
        pool[k] = d
        model[k] = want
    assert {k: dict(pool[k]) for k in pool} == model
    pool.validate()


ALLOWED = (TypeError, ValueError, OverflowError, IndexError, KeyError, NotImplementedError)
ANY = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=4),
    st.binary(max_size=4), st.sampled_from(["a", "f", "u", "ro", "s", "nope"]),
    st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)), st.lists(st.integers(0, 3), max_size=3),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.one_of(ANY, st.tuples(ANY, ANY), st.tuples(ANY, ANY, ANY)),
                          ANY), max_size=30),
       st.sampled_from([cs.i64, cs.u64, cs.Str, cs.Bytes]))
def test_hot_slots_raise_only_api_exceptions(calls: list[tuple[int, Any, Any]], key_type: Any) -> None:
    pool = cs.KeyedStore(Writable, key=key_type, log2size=1)
    first = {cs.i64: 1, cs.u64: 1, cs.Str: "a", cs.Bytes: b"a"}[key_type]
    pool[first] = {"a": 3}
    s = Writable(4)
    s.add()
    d = cs.DynamicStore(Writable, log2size=1)
    d.add()
    entries = [pool[first], s.entry(0), d.entry(0)]
    containers = [pool.members["a"], s["f"], d["u"], s["s"]]
    for op, key, value in calls:
        try:
            if op == 0:
                pool[key]
            elif op == 1:
                pool[key] = value
            elif op == 2:
                pool[(key, value)]
            elif op == 3:
                pool[(key, value)] = 5
            elif op == 4:
                entries[hash(str(key)) % 3][value]
            elif op == 5:
                entries[hash(str(key)) % 3][value] = key
            elif op == 6:
                containers[hash(str(value)) % 4][key]
            elif op == 7:
                containers[hash(str(value)) % 4][key] = value
            else:
                del pool[key]
        except ALLOWED:
            pass
    pool.validate()


NUMPY_NAMES = {"b": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64", "u8": "uint8",
               "u16": "uint16", "u32": "uint32", "u64": "uint64", "f32": "float32", "f64": "float64"}


@pytest.mark.parametrize("kind", ["static", "dynamic", "keyed"])
def test_slice_writes_from_arrays_of_the_member_dtype_and_of_others(kind: str) -> None:
    # An array of exactly a scalar member's dtype is read from its memory (no Python objects); any other
    # array, or one that does not fit, goes through the general conversion with its checks.
    n = 37
    store = stores(n)[kind]

    def m(name: str) -> Any:
        return store.members[name] if kind == "keyed" else store[name]

    rng = np.random.default_rng(5)
    for name in SCALARS:
        dt = np.dtype(NUMPY_NAMES[name])
        if dt.kind == "b":
            a = rng.integers(0, 2, n).astype(bool)
        elif dt.kind == "f":
            a = rng.standard_normal(n).astype(dt)
        else:
            info = np.iinfo(dt)
            a = rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
        m(name)[0:n] = a
        assert m(name)[0:n].tolist() == a.tolist(), name
        m(name)[0:n:2] = a[::-1][0:n:2]  # a non-contiguous array of the dtype
        assert m(name)[0:n:2].tolist() == a[::-1][0:n:2].tolist(), name
    # another dtype that does not fit: refused, nothing written
    before = m("u8")[0:n].tolist()
    with pytest.raises(OverflowError):
        m("u8")[0:n] = np.full(n, 300, np.int64)
    with pytest.raises(ValueError, match="cannot assign 36 values"):
        m("u8")[0:n] = np.zeros(n - 1, np.uint8)
    assert m("u8")[0:n].tolist() == before
    # another dtype that fits: converted
    m("i64")[0:n] = np.arange(n, dtype=np.int32)
    assert m("i64")[0:n].tolist() == list(range(n))
    # a numpy view of the member itself (static store memory), reversed into place
    if kind == "static":
        v = np.asarray(m("i64"))
        m("i64")[0:n] = v[:n][::-1].copy()
        assert m("i64")[0:n].tolist() == list(range(n))[::-1]
        m("i64")[0:n] = v[:n]
        assert m("i64")[0:n].tolist() == list(range(n))[::-1]


@pytest.mark.parametrize("kind", ["static", "dynamic", "keyed"])
def test_slice_writes_from_bool_arrays_and_array_subclasses_take_the_general_path(kind: str) -> None:
    store = stores(4)[kind]

    def m(name: str) -> Any:
        return store.members[name] if kind == "keyed" else store[name]

    # a numpy bool array may hold bytes other than 0 and 1: they are stored as True, as bool() of them is
    odd = np.frombuffer(bytes([2, 0, 255, 1]), np.uint8).view(bool)
    m("b")[0:4] = odd
    assert m("b")[0:4].tolist() == [True, False, True, True]
    if kind == "static":
        assert np.asarray(m("b"))[:4].view(np.uint8).tolist() == [1, 0, 1, 1]
    # a masked array is not read from its memory: its masked values are not written behind the mask
    before = m("i64")[0:4].tolist()
    masked = np.ma.array([10, 20, 30, 40], mask=[0, 1, 0, 0], dtype=np.int64)
    with pytest.raises(TypeError):
        m("i64")[0:4] = masked
    assert m("i64")[0:4].tolist() == before

