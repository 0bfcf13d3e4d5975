"""KeyedStore: the mapping of keys to live entries, its extra calls (members, find, modified), keys and
bulk loads (and the Entry parts it relies on)."""


import pickle
from collections.abc import MutableMapping
from typing import Any, Optional

import numpy as np
import pytest

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    inputs: cs.Array(cs.u8, 4)
    origin: cs.Member(cs.i32, default=7, read_only=True)


DEFAULTS: dict[str, Any] = {"ref": 0, "fitness": 0.5, "inputs": [0, 0, 0, 0], "origin": 7}

KEY_SAMPLES: dict[Any, list[Any]] = {
    cs.i64: [0, -1, 5, 2**63 - 1, -(2**63)],
    cs.u64: [0, 1, 5, 2**64 - 1],
    cs.Str: ["", "a", "gene", "ünïcode"],
    cs.Bytes: [b"", b"a", b"\x00\xff", b"gene"],
}


def as_plain(e: Any) -> dict[str, Any]:
    """An entry or snapshot as plain Python values (arrays as lists) for exact comparison."""
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dict(e).items()}


def pool_of(n: int, key: Any = cs.i64, log2size: int = 2) -> cs.KeyedStore:
    pool = cs.KeyedStore(Genes, key=key, log2size=log2size)
    for i in range(n):
        pool[i] = {"ref": i * 10}
    return pool


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("key", list(KEY_SAMPLES), ids=["i64", "u64", "Str", "Bytes"])
def test_construct_each_key_type_roundtrips_keys(key: Any) -> None:
    pool = cs.KeyedStore(Genes, key=key, log2size=1)
    samples = KEY_SAMPLES[key]
    for n, k in enumerate(samples):
        pool[k] = {"ref": n}
    assert len(pool) == len(samples)
    assert sorted(pool, key=repr) == sorted(samples, key=repr)
    for n, k in enumerate(samples):
        assert k in pool
        assert pool[k, "ref"] == n
        assert pool[k].key == k and type(pool[k].key) is type(k)
    assert pool.store_type is Genes
    assert pool.ignore_unknown is False
    assert isinstance(pool, MutableMapping)
    pool.validate()


def test_construct_defaults() -> None:
    pool = cs.KeyedStore(Genes)
    pool[-5] = {}  # default key type is i64: negative ints work
    assert list(pool) == [-5]
    with pytest.raises(TypeError):
        pool["x"] = {}
    assert as_plain(pool[-5]) == DEFAULTS
    assert repr(pool) == "<KeyedStore of Genes len=1>"


@pytest.mark.parametrize("log2size", [0, 1, 3, None])
def test_construct_log2size_grows(log2size: Optional[int]) -> None:
    pool = cs.KeyedStore(Genes, log2size=log2size)
    for i in range(50):
        pool[i] = {"ref": i}
    assert len(pool) == 50
    assert [pool[i, "ref"] for i in range(50)] == list(range(50))
    pool.validate()


def test_construct_errors() -> None:
    with pytest.raises(TypeError):
        cs.KeyedStore(Genes, key=cs.f32)
    with pytest.raises(ValueError):
        cs.KeyedStore(Genes, log2size=-1)
    with pytest.raises(ValueError):
        cs.KeyedStore(Genes, log2size=1000)
    with pytest.raises(TypeError):
        cs.KeyedStore(Genes, log2size="3")
    with pytest.raises(TypeError):
        cs.KeyedStore(int)
    # Keyed stores pickle (issue 14): an empty one comes back empty and writable.
    assert len(pickle.loads(pickle.dumps(cs.KeyedStore(Genes)))) == 0


def test_construct_ignore_unknown() -> None:
    pool = cs.KeyedStore(Genes, ignore_unknown=True)
    assert pool.ignore_unknown is True
    pool[1] = {"ref": 3, "bogus": 1, "fitness": None, "inputs": None}
    assert as_plain(pool[1]) == {**DEFAULTS, "ref": 3}
    pool[1] = {"ref": None, "fitness": 2.0, "other": "x"}  # replace: ref back to default
    assert as_plain(pool[1]) == {**DEFAULTS, "fitness": 2.0}
    # Values that are given are still checked.
    with pytest.raises(TypeError):
        pool[1] = {"ref": 1.5}
    with pytest.raises(OverflowError):
        pool[1] = {"inputs": [300, 0, 0, 0]}
    assert as_plain(pool[1]) == {**DEFAULTS, "fitness": 2.0}
    # The entry's own update stays strict (API: e.update is strict).
    with pytest.raises(KeyError):
        pool[1].update({"bogus": 1})


# ---------------------------------------------------------------- the mapping protocol


def test_contains_len_get_del() -> None:
    pool = pool_of(3)
    assert len(pool) == 3
    assert 0 in pool and 2 in pool and 3 not in pool
    assert pool.get(1)["ref"] == 10
    assert pool.get(3) is None
    assert pool.get(3, "d") == "d"
    del pool[1]
    assert 1 not in pool and len(pool) == 2
    with pytest.raises(KeyError):
        del pool[1]
    with pytest.raises(KeyError):
        pool[1]
    assert sorted(pool) == [0, 2]
    pool.validate()


def test_pop_and_popitem_return_snapshots() -> None:
    pool = pool_of(3)
    snap = pool.pop(1)
    assert type(snap) is dict and as_plain(snap) == {**DEFAULTS, "ref": 10}
    assert 1 not in pool
    with pytest.raises(KeyError):
        pool.pop(1)
    assert pool.pop(1, "dflt") == "dflt"
    assert pool.pop(1, None) is None
    with pytest.raises(TypeError):
        pool.pop(1, 2, 3)
    seen = {}
    while pool:
        k, v = pool.popitem()
        assert type(v) is dict and k not in pool
        seen[k] = v["ref"]
    assert seen == {0: 0, 2: 20}
    with pytest.raises(KeyError):
        pool.popitem()
    pool.validate()


def test_setdefault() -> None:
    pool = pool_of(2)
    got = pool.setdefault(1, {"ref": 99})
    assert got == {**DEFAULTS, "ref": 10}  # present: unchanged
    assert pool[1, "ref"] == 10
    got = pool.setdefault(7, {"ref": 70})
    assert got == {**DEFAULTS, "ref": 70}
    assert pool[7] == {**DEFAULTS, "ref": 70}
    # Like `d.setdefault(k, []).append(x)`: the returned value is the stored one, a live Entry.
    assert isinstance(got, cs.Entry)
    got["fitness"] = 3.0
    assert pool[7, "fitness"] == 3.0
    with pytest.raises(TypeError):
        pool.setdefault(8)  # None is not a mapping of member values
    assert 8 not in pool


def test_update_and_clear() -> None:
    pool = pool_of(2)
    pool.update({1: {"ref": 5}, 2: {"fitness": 1.0}})
    pool.update([(3, {"ref": 3})])
    assert as_plain(pool[1]) == {**DEFAULTS, "ref": 5}
    assert as_plain(pool[2]) == {**DEFAULTS, "fitness": 1.0}
    assert pool[3, "ref"] == 3 and len(pool) == 4
    other = cs.KeyedStore(Genes)
    other.update(pool)  # values are entries: mappings of member values
    assert other == pool and dict(other) == dict(pool)
    e = pool[0]
    pool.clear()
    assert len(pool) == 0 and list(pool) == [] and not pool
    with pytest.raises(KeyError):
        e["ref"]
    pool[0] = {"ref": 1}
    assert pool[0, "ref"] == 1 and len(pool) == 1
    assert len(other) == 4  # independent
    pool.validate()


def test_keys_values_items() -> None:
    pool = pool_of(4)
    assert list(pool.keys()) == list(pool) == [0, 1, 2, 3]
    values = list(pool.values())
    assert all(isinstance(v, cs.Entry) for v in values)
    assert [v["ref"] for v in values] == [0, 10, 20, 30]
    assert [(k, v["ref"]) for k, v in pool.items()] == [(k, k * 10) for k in range(4)]
    assert [v.key for v in values] == [0, 1, 2, 3]
    assert 2 in pool.keys() and 9 not in pool.keys()
    assert (1, {**DEFAULTS, "ref": 10}) in pool.items()
    assert (1, {**DEFAULTS, "ref": 11}) not in pool.items()


def test_iteration_is_slot_order_not_insertion_order() -> None:
    pool = pool_of(5)
    del pool[1]
    pool[100] = {}  # reuses the freed slot 1
    assert pool.index_of(100) == 1
    assert list(pool) == sorted(pool, key=pool.index_of)
    assert list(pool) == [0, 100, 2, 3, 4]
    assert [k for k, _ in pool.items()] == list(pool)
    assert [v.key for v in pool.values()] == list(pool)


def test_key_zero_is_an_ordinary_key() -> None:
    for key, zero in [(cs.i64, 0), (cs.u64, 0), (cs.Str, ""), (cs.Bytes, b"")]:
        pool = cs.KeyedStore(Genes, key=key)
        assert zero not in pool and pool.get(zero) is None
        pool[zero] = {"ref": 4}
        assert zero in pool and len(pool) == 1 and list(pool) == [zero]
        assert pool[zero, "ref"] == 4 and pool[zero].key == zero
        del pool[zero]
        assert zero not in pool and len(pool) == 0
        pool.validate()


# ---------------------------------------------------------------- replace semantics


def test_replace_rewrites_same_slot_and_live_views() -> None:
    pool = cs.KeyedStore(Genes, log2size=1)
    pool[1] = {"ref": 1, "fitness": 0.25, "inputs": [1, 2, 3, 4], "origin": 3}
    pool[2] = {}
    slot = pool.index_of(1)
    e = pool[1]
    pool.clear_modified()
    pool[1] = {"fitness": 2.0}
    assert pool.index_of(1) == slot and len(pool) == 2
    # Live view shows the new values; members not given are back to their defaults; read-only rewritten too.
    assert as_plain(e) == {**DEFAULTS, "fitness": 2.0}
    assert e["origin"] == 7
    assert pool.members["origin"][slot] == 7
    assert pool.modified() == [1]
    pool.validate()


def test_replace_read_only_member_with_value() -> None:
    pool = cs.KeyedStore(Genes)
    pool[1] = {"origin": 3}
    pool[1] = {"origin": 4}
    assert pool[1, "origin"] == 4
    with pytest.raises(TypeError):
        pool[1]["origin"] = 5
    with pytest.raises(TypeError):
        pool[1, "origin"] = 5
    with pytest.raises(TypeError):
        pool[1].update({"origin": 5})
    assert pool[1, "origin"] == 4


def test_new_key_is_not_modified() -> None:
    pool = pool_of(3)
    assert pool.modified() == []
    pool[5] = {"ref": 1}
    assert pool.modified() == []


def test_entry_update_changes_only_given_members() -> None:
    pool = cs.KeyedStore(Genes)
    pool[1] = {"ref": 1, "fitness": 0.25, "inputs": [1, 2, 3, 4], "origin": 3}
    pool[1].update({"fitness": 1.5})
    assert as_plain(pool[1]) == {"ref": 1, "fitness": 1.5, "inputs": [1, 2, 3, 4], "origin": 3}
    assert pool.modified() == [1]
    with pytest.raises(KeyError):
        pool[1].update({"ref": 2, "nope": 1})
    assert pool[1, "ref"] == 1


def test_entry_writes_mark_modified() -> None:
    pool = pool_of(3)
    pool[1]["fitness"] += 0.25
    assert pool[1, "fitness"] == 0.75
    assert pool.modified() == [1]
    pool[2, "ref"] = 5
    assert sorted(pool.modified()) == [1, 2]


def test_unknown_member_changes_nothing() -> None:
    pool = pool_of(2)
    before = {k: as_plain(v) for k, v in pool.items()}
    with pytest.raises(KeyError):
        pool[1] = {"ref": 99, "nope": 1}
    with pytest.raises(KeyError):
        pool[5] = {"nope": 1}
    with pytest.raises(KeyError):
        pool.update({7: {"ref": 1, "zzz": 2}})
    assert {k: as_plain(v) for k, v in pool.items()} == before
    assert 5 not in pool and 7 not in pool and len(pool) == 2
    assert pool.modified() == []
    pool.validate()


@pytest.mark.parametrize(
    "bad, exc",
    [
        ({"ref": 1.5}, TypeError),
        ({"ref": 2**70}, OverflowError),
        ({"inputs": [1, 2]}, ValueError),
        ({"inputs": [1, 2, 3, 300]}, OverflowError),
        ({"fitness": 1e300}, OverflowError),
        ({"ref": None}, TypeError),
        ({1: 2}, TypeError),
        (5, TypeError),
    ],
)
def test_bad_values_change_nothing(bad: Any, exc: type[Exception]) -> None:
    pool = pool_of(2)
    with pytest.raises(exc):
        pool[1] = bad
    with pytest.raises(exc):
        pool[9] = bad
    assert as_plain(pool[1]) == {**DEFAULTS, "ref": 10}
    assert 9 not in pool and len(pool) == 2
    assert pool.modified() == []
    pool.validate()


# ---------------------------------------------------------------- keys of the wrong type / out of range


WRONG = {
    cs.i64: ["a", b"a", 1.0, None, (1,)],
    cs.u64: ["a", b"a", 1.0, None],
    cs.Str: [1, b"a", None, 1.0],
    cs.Bytes: [1, "a", None, 1.0],
}


@pytest.mark.parametrize("key", list(WRONG), ids=["i64", "u64", "Str", "Bytes"])
def test_wrong_key_types(key: Any) -> None:
    pool = cs.KeyedStore(Genes, key=key)
    good = KEY_SAMPLES[key][1]
    pool[good] = {"ref": 1}
    for bad in WRONG[key]:
        with pytest.raises(TypeError):
            pool[bad] = {}
        assert bad not in pool
        with pytest.raises(KeyError):
            pool[bad]
        with pytest.raises(KeyError):
            del pool[bad]
        with pytest.raises(KeyError):
            pool.index_of(bad)
        assert pool.get(bad) is None
        assert pool.get(bad, 3) == 3
        assert pool.pop(bad, "d") == "d"
        with pytest.raises(KeyError):
            pool.pop(bad)
    assert len(pool) == 1 and list(pool) == [good]
    pool.validate()


@pytest.mark.parametrize(
    "key, bad",
    [(cs.i64, 2**63), (cs.i64, -(2**63) - 1), (cs.i64, 2**70), (cs.u64, -1), (cs.u64, 2**64)],
)
def test_int_keys_out_of_range(key: Any, bad: int) -> None:
    pool = cs.KeyedStore(Genes, key=key)
    pool[1] = {}
    with pytest.raises(OverflowError):
        pool[bad] = {}
    assert bad not in pool
    with pytest.raises(KeyError):
        pool[bad]
    with pytest.raises(KeyError):
        pool[bad, "ref"]
    with pytest.raises(KeyError):
        del pool[bad]
    assert pool.get(bad) is None
    assert pool.pop(bad, 0) == 0
    assert len(pool) == 1
    pool.validate()


def test_numpy_int_keys_and_bool() -> None:
    pool = cs.KeyedStore(Genes)
    pool[np.int64(3)] = {"ref": 3}
    assert 3 in pool and pool[np.int32(3), "ref"] == 3
    assert type(next(iter(pool))) is int
    pool[True] = {"ref": 1}  # a bool counts as an int
    assert 1 in pool and pool[1, "ref"] == 1


# ---------------------------------------------------------------- stale entries


@pytest.mark.parametrize("how", ["del", "pop", "popitem", "clear", "del+reuse"])
def test_stale_entries_raise_key_error(how: str) -> None:
    pool = pool_of(1)
    e = pool[0]
    if how == "del":
        del pool[0]
    elif how == "pop":
        pool.pop(0)
    elif how == "popitem":
        pool.popitem()
    elif how == "clear":
        pool.clear()
    else:
        del pool[0]
        pool[42] = {"ref": 42}
        assert pool.index_of(42) == 0  # the same slot, reused
    for access in (
        lambda: e["ref"],
        lambda: e.__setitem__("ref", 1),
        lambda: e.ref,
        lambda: dict(e),
        lambda: len(e),
        lambda: list(e.values()),
        lambda: e.get("ref"),
        lambda: e.update({"ref": 1}),
        lambda: e == {},
    ):
        with pytest.raises(KeyError):
            access()
    if how == "del+reuse":
        assert pool[42, "ref"] == 42  # nothing written through the stale view


@pytest.mark.parametrize(
    "attr",
    [
        "key",
        "index",
    ],
)
def test_stale_entry_key_and_index(attr: str) -> None:
    pool = pool_of(1)
    e = pool[0]
    assert getattr(e, attr) == 0
    del pool[0]
    with pytest.raises(KeyError):
        getattr(e, attr)


# ---------------------------------------------------------------- extra calls


def test_index_of_and_members() -> None:
    pool = pool_of(5, log2size=1)
    slots = {k: pool.index_of(k) for k in pool}
    assert sorted(slots.values()) == list(range(5))
    with pytest.raises(KeyError):
        pool.index_of(99)
    members = pool.members
    assert sorted(members) == sorted(DEFAULTS)
    for k, s in slots.items():
        assert members["ref"][s] == k * 10
        assert pool[k].index == s
    members["fitness"][slots[3]] = 9.0
    assert pool[3, "fitness"] == 9.0
    assert members["inputs"].name == "inputs"
    with pytest.raises(KeyError):
        pool.members["nope"]


def test_find() -> None:
    pool = cs.KeyedStore(Genes, key=cs.Str)
    for name, ref in [("a", 1), ("b", 2), ("c", 1), ("d", 3)]:
        pool[name] = {"ref": ref}
    assert pool.find("ref", 1) == ["a", "c"]
    assert pool.find("ref", 4) == []
    assert sorted(pool.find("fitness", 0.5)) == ["a", "b", "c", "d"]
    del pool["a"]
    assert pool.find("ref", 1) == ["c"]
    with pytest.raises(KeyError):
        pool.find("nope", 1)
    with pytest.raises(TypeError):
        pool.find("ref", 1.5)


def test_modified_and_clear_modified() -> None:
    pool = pool_of(5)
    for k in (1, 2, 3):
        pool[k, "ref"] = -k
    assert sorted(pool.modified()) == [1, 2, 3]
    pool.clear_modified([2, 99, "not a key", -1])  # absent keys (and wrong types) are ignored
    assert sorted(pool.modified()) == [1, 3]
    pool.clear_modified(keys=[3])
    assert pool.modified() == [1]
    del pool[1]
    assert pool.modified() == []
    pool[1] = {}  # re-created: not modified
    assert pool.modified() == []
    pool[4] = {"ref": 1}
    pool[0]["fitness"] = 1.0
    assert sorted(pool.modified()) == [0, 4]
    pool.clear_modified()
    assert pool.modified() == []
    assert pool.modified() == [] and len(pool) == 5


def test_modified_with_str_keys() -> None:
    pool = cs.KeyedStore(Genes, key=cs.Str)
    pool["a"] = {}
    pool["b"] = {}
    pool["b", "ref"] = 1
    assert pool.modified() == ["b"]
    pool.clear_modified(["b"])
    assert pool.modified() == []


def test_entry_key() -> None:
    pool = cs.KeyedStore(Genes, key=cs.Bytes)
    pool[b"k"] = {}
    assert pool[b"k"].key == b"k"
    assert [v.key for v in pool.values()] == [b"k"]


def test_entry_equals_mapping_comparing_every_member() -> None:
    pool = cs.KeyedStore(Genes)
    pool[1] = {"ref": 1, "inputs": [1, 2, 3, 4]}
    e = pool[1]
    full = {"ref": 1, "fitness": 0.5, "inputs": [1, 2, 3, 4], "origin": 7}
    assert e == full
    assert e == {**full, "inputs": np.array([1, 2, 3, 4], dtype=np.uint8)}
    assert e == {**full, "inputs": (1, 2, 3, 4)}
    assert not (e != full)
    assert e != {**full, "inputs": [1, 2, 3, 5]}  # arrays compared element by element
    assert e != {**full, "ref": 2}
    assert e != {k: v for k, v in full.items() if k != "origin"}  # a missing member
    assert e != {**full, "extra": 1}
    assert e == pool[1]
    pool[2] = full
    assert pool[2] == e
    pool[2, "inputs"] = [0, 0, 0, 0]
    assert pool[2] != e


def test_entry_equality_f32_as_stored() -> None:
    pool = cs.KeyedStore(Genes)
    pool[1] = {"fitness": 0.1}
    assert pool[1] == {**DEFAULTS, "fitness": 0.1}
    assert pool[1, "fitness"] == float(np.float32(0.1))


def test_fast_path() -> None:
    pool = pool_of(3)
    assert pool[1, "ref"] == 10
    assert pool[1, "fitness"] == 0.5
    assert list(pool[1, "inputs"]) == [0, 0, 0, 0]
    pool[1, "ref"] = 11
    pool[1, "inputs"] = [1, 2, 3, 4]
    assert pool[1]["ref"] == 11 and list(pool[1]["inputs"]) == [1, 2, 3, 4]
    for bad in [(9, "ref"), (1, "nope"), ("x", "ref"), (2**70, "ref"), (1, 0)]:
        with pytest.raises(KeyError):
            pool[bad]
        with pytest.raises(KeyError):
            pool[bad] = 1
    with pytest.raises(TypeError):
        pool[1, "ref"] = 1.5
    with pytest.raises(OverflowError):
        pool[1, "ref"] = 2**70
    with pytest.raises(ValueError):
        pool[1, "inputs"] = [1]
    assert pool[1, "ref"] == 11
    assert 9 not in pool and len(pool) == 3
    pool.validate()


def test_nbytes_grows() -> None:
    pool = cs.KeyedStore(Genes, log2size=1)
    empty = pool.nbytes
    assert isinstance(empty, int) and empty >= 0
    for i in range(64):
        pool[i] = {}
    assert pool.nbytes > empty
    assert pool.nbytes >= 64 * (8 + 4 + 4 + 4 + 8)  # the columns plus the i64 key column


# ---------------------------------------------------------------- from_columns


def test_from_columns_values() -> None:
    keys = np.array([5, 3, 9, 0], dtype=np.int64)
    pool = cs.KeyedStore.from_columns(
        Genes,
        keys=keys,
        columns={"ref": keys * 2, "fitness": [1.0, 2.0, 3.0, 4.0], "inputs": np.arange(16).reshape(4, 4)},
        log2size=1,
    )
    assert isinstance(pool, cs.KeyedStore) and len(pool) == 4
    assert list(pool) == [5, 3, 9, 0]  # slot order = column order
    assert as_plain(pool[9]) == {"ref": 18, "fitness": 3.0, "inputs": [8, 9, 10, 11], "origin": 7}
    assert as_plain(pool[0]) == {"ref": 0, "fitness": 4.0, "inputs": [12, 13, 14, 15], "origin": 7}
    assert pool.modified() == []
    pool[11] = {}
    assert len(pool) == 5
    pool.validate()


def test_from_columns_key_types() -> None:
    s = cs.KeyedStore.from_columns(Genes, keys=["a", "b"], columns={"ref": [1, 2]}, key=cs.Str)
    assert s["b", "ref"] == 2 and list(s) == ["a", "b"]
    s = cs.KeyedStore.from_columns(Genes, keys=np.array(["x", "y"]), columns={}, key=cs.Str)
    assert list(s) == ["x", "y"] and s["x"] == DEFAULTS
    b = cs.KeyedStore.from_columns(Genes, keys=[b"a", b""], columns={"ref": [1, 2]}, key=cs.Bytes)
    assert b[b"", "ref"] == 2
    u = cs.KeyedStore.from_columns(Genes, keys=np.array([2**64 - 1], dtype=np.uint64), columns={}, key=cs.u64)
    assert list(u) == [2**64 - 1]
    e = cs.KeyedStore.from_columns(Genes, keys=np.array([], dtype=np.int64), columns={"ref": np.array([], dtype=np.int64)})
    assert len(e) == 0
    e.validate()


def test_from_columns_errors() -> None:
    with pytest.raises(ValueError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1, 2, 1]), columns={})
    with pytest.raises(ValueError):
        cs.KeyedStore.from_columns(Genes, keys=["a", "a"], columns={}, key=cs.Str)
    with pytest.raises(ValueError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1, 2]), columns={"ref": [1, 2, 3]})
    with pytest.raises(ValueError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1, 2]), columns={"inputs": np.zeros((3, 4), dtype=np.uint8)})
    with pytest.raises(ValueError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([[1, 2]]), columns={})
    with pytest.raises(KeyError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1]), columns={"nope": [1]})
    with pytest.raises(TypeError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1]), columns={"ref": np.array([1.5])})
    with pytest.raises(TypeError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1.0]), columns={})
    with pytest.raises(OverflowError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([-1]), columns={}, key=cs.u64)
    with pytest.raises(OverflowError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1]), columns={"inputs": np.full((1, 4), 300)})
    with pytest.raises(OverflowError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1]), columns={"fitness": np.array([1e300])})


def test_from_columns_ignore_unknown() -> None:
    pool = cs.KeyedStore.from_columns(
        Genes, keys=np.array([1, 2]), columns={"ref": [3, 4], "nope": [0, 0]}, ignore_unknown=True
    )
    assert pool.ignore_unknown is True
    assert pool[2, "ref"] == 4 and sorted(pool[2]) == sorted(DEFAULTS)


def test_validate_after_churn() -> None:
    pool = cs.KeyedStore(Genes, key=cs.u64, log2size=1)
    for i in range(200):
        pool[i * 7919 % 1000] = {"ref": i}
        if i % 3 == 0:
            pool.pop((i // 2) * 7919 % 1000, None)
        pool.validate()
    assert len(pool) == len(set(pool))
    assert all(pool[k, "ref"] >= 0 for k in pool)


@pytest.mark.parametrize(
    "write",
    [
        lambda m, n: m.__setitem__([0, 1, n], 9.0),  # index list ending at a free slot
        lambda m, n: m.__setitem__(np.arange(n + 1) < n + 1, 9.0),  # mask selecting a free slot
        lambda m, n: m.__setitem__(slice(0, n + 1), [9.0] * (n + 1)),  # slice over a free slot
        lambda m, n: m.__setitem__([0, n], [9.0, 9.0]),
    ],
)
def test_members_write_at_a_free_slot_changes_nothing(write: Any) -> None:
    pool = pool_of(3, log2size=2)  # slots 0..2 occupied, slot 3 free
    before = {k: as_plain(pool[k]) for k in pool}
    with pytest.raises(IndexError):
        write(pool.members["fitness"], 3)
    assert {k: as_plain(pool[k]) for k in pool} == before
    assert pool.modified() == []
    pool.validate()


class Mixed(cs.StaticStore):
    x: cs.i64
    name: str
    raw: cs.Bytes
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    maybe: cs.Optional(cs.f32)  # type: ignore[valid-type]
    obj: cs.Object
    label: cs.Member(cs.Str, default="none", read_only=True)  # type: ignore[valid-type]


@pytest.mark.parametrize("key, keys", [(cs.i64, [3, 1, 2]), (cs.Str, ["c", "a", "b"])])
def test_from_columns_takes_value_columns_for_other_members(key: Any, keys: list[Any]) -> None:
    marker = object()
    pool = cs.KeyedStore.from_columns(
        Mixed,
        keys,
        {
            "x": np.array([30, 10, 20]),
            "name": np.array(["thirty", "ten", "a name longer than fifteen bytes"]),  # numpy str array
            "raw": [b"\x00", b"", b"zz"],
            "cat": ("p", "q", "p"),
            "maybe": [None, 1.5, np.float32(2.5)],
            "obj": [marker, None, [1, 2]],
            "label": ["L3", "L1", "L2"],  # read-only members are written: the entries are being created
        },
        key=key,
    )
    pool.validate()
    assert pool.modified() == []
    assert as_plain(pool[keys[2]]) == {"x": 20, "name": "a name longer than fifteen bytes", "raw": b"zz",
                                      "cat": "p", "maybe": 2.5, "obj": [1, 2], "label": "L2"}
    assert pool[keys[0], "obj"] is marker and pool[keys[1], "maybe"] == 1.5 and pool[keys[0], "maybe"] is None
    assert sorted(pool.find("cat", "p"), key=str) == sorted([keys[0], keys[2]], key=str)
    partial = cs.KeyedStore.from_columns(Mixed, keys, {"name": ["a", "b", "c"]}, key=key)
    assert partial[keys[1], "label"] == "none" and partial[keys[1], "name"] == "b"


@pytest.mark.parametrize(
    "columns, exc",
    [
        ({"name": ["a", "b"]}, ValueError),  # wrong length
        ({"name": ["a", "b", 3]}, TypeError),
        ({"raw": ["a", "b", "c"]}, TypeError),  # str for bytes
        ({"cat": [b"a", "b", "c"]}, TypeError),
        ({"maybe": [None, "x", 1.0]}, TypeError),
        ({"maybe": [None, 1e39, 1.0]}, OverflowError),
    ],
)
def test_from_columns_refuses_bad_value_columns(columns: dict[str, Any], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        cs.KeyedStore.from_columns(Mixed, [1, 2, 3], columns)


def test_copy_copy_and_deepcopy_make_independent_pools() -> None:
    import copy

    class WithObj(cs.StaticStore):
        ref: cs.i64
        cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
        obj: cs.Object
        frozen: cs.Member(cs.Object, read_only=True)  # type: ignore[valid-type]

    pool = cs.KeyedStore(WithObj, key=cs.Str, log2size=1)
    for k in "abcde":
        pool[k] = {"ref": ord(k), "cat": k * 2, "obj": [k], "frozen": {k: 1}}
    pool["b", "ref"] = 5
    for make, deep in ((lambda p: p.copy(), False), (copy.copy, False), (lambda p: copy.deepcopy(p), True)):
        c = make(pool)
        assert type(c) is cs.KeyedStore and len(c) == 5 and list(c) == list(pool)
        assert {k: as_plain(c[k]) for k in c} == {k: as_plain(pool[k]) for k in pool}
        assert c.modified() == ["b"]
        assert (c["a", "obj"] is pool["a", "obj"]) is not deep
        assert (c["a", "frozen"] is pool["a", "frozen"]) is not deep
        c["z"] = {"cat": "new"}
        c["a", "cat"] = "changed"
        del c["e"]
        assert "z" not in pool and pool["a", "cat"] == "aa" and "e" in pool
        c.validate()
    pool.validate()  # pickling stores with object members: tests/test_pickle.py


def test_an_entry_is_a_mapping() -> None:
    from collections.abc import Mapping

    pool = pool_of(1)
    assert isinstance(pool[0], Mapping) and not isinstance(pool[0], dict)


def test_clear_modified_refuses_one_str_key() -> None:
    # clear_modified("key1") iterated the string and cleared the unrelated key "k", leaving "key1" marked.
    class KG(cs.StaticStore):
        v: cs.i64

    pool = cs.KeyedStore(KG, key=cs.Str)
    for k in ("k", "key1"):
        pool[k] = {"v": 1}
        pool[k] = {"v": 2}  # a replacement marks the key modified
    assert set(pool.modified()) == {"k", "key1"}
    for arg in ("key1", b"key1", bytearray(b"k"), memoryview(b"k")):
        with pytest.raises(TypeError, match="one key"):
            pool.clear_modified(arg)
    assert set(pool.modified()) == {"k", "key1"}
    pool.clear_modified(["key1"])
    assert set(pool.modified()) == {"k"}


def test_clear_modified_lets_iteration_errors_through() -> None:
    class KG(cs.StaticStore):
        v: cs.i64

    pool = cs.KeyedStore(KG, key=cs.i64)
    pool[1] = {"v": 1}
    pool[1] = {"v": 2}

    def keys():
        yield 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pool.clear_modified(keys())
    assert list(pool.modified()) == [1]


def test_from_columns_refuses_what_is_not_a_store_type() -> None:
    # Used to raise AttributeError ("no attribute '_cs_schema'") where KeyedStore(int) raises TypeError.
    for bad in (int, cs.StaticStore, "Genes", None):
        with pytest.raises(TypeError, match="store type"):
            cs.KeyedStore.from_columns(bad, [1], {})


def test_from_columns_refuses_a_str_as_a_column() -> None:
    # A str given as the column of a str member was split into its characters, one per key.
    class S(cs.StaticStore):
        s: str
        b: bytes

    for col in ({"s": "ab"}, {"b": b"ab"}):
        with pytest.raises(TypeError, match="sequence of values"):
            cs.KeyedStore.from_columns(S, [1, 2], col)
    pool = cs.KeyedStore.from_columns(S, [1, 2], {"s": ["ab", "cd"]})
    assert pool[2, "s"] == "cd"
