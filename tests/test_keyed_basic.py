"""KeyedStore basics (the full suite lives in test_keyed*.py)."""

import numpy as np
import pytest

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    inputs: cs.Array(cs.u8, 8)


def test_replace_semantics_and_live_views() -> None:
    pool = cs.KeyedStore(Genes, key=cs.i64, log2size=2)
    pool[5] = {"fitness": 0.25, "inputs": list(range(8))}
    e = pool[5]
    pool[5] = {"ref": 9}
    assert e["ref"] == 9 and e["fitness"] == 0.5
    assert list(e["inputs"]) == [0] * 8
    assert pool.modified() == [5]
    pool.validate()


def test_fast_path_and_modified() -> None:
    pool = cs.KeyedStore(Genes, key=cs.u64)
    pool[1] = {}
    pool[2] = {}
    assert pool.modified() == []
    pool[2, "fitness"] = 2
    assert pool[2, "fitness"] == 2.0
    assert pool.modified() == [2]
    pool.clear_modified([2, 99])
    assert pool.modified() == []
    with pytest.raises(KeyError):
        pool[3, "fitness"]
    with pytest.raises(KeyError):
        pool[1, "nope"]


def test_bad_keys() -> None:
    pool = cs.KeyedStore(Genes, key=cs.i64)
    with pytest.raises(TypeError):
        pool["a"] = {}
    with pytest.raises(OverflowError):
        pool[2**70] = {}
    assert "a" not in pool and 2**70 not in pool
    assert pool.get("a") is None
    with pytest.raises(KeyError):
        del pool[1]
    assert len(pool) == 0


def test_unknown_member_changes_nothing() -> None:
    pool = cs.KeyedStore(Genes)
    pool[1] = {"ref": 1}
    with pytest.raises(KeyError):
        pool[1] = {"ref": 2, "nope": 3}
    with pytest.raises(KeyError):
        pool[2] = {"nope": 3}
    assert pool[1, "ref"] == 1 and len(pool) == 1
    lenient = cs.KeyedStore(Genes, ignore_unknown=True)
    lenient[1] = {"ref": 1, "nope": 3, "fitness": None}
    assert lenient[1] == {"ref": 1, "fitness": 0.5, "inputs": [0] * 8}


def test_pop_returns_snapshot_and_old_views_go_stale() -> None:
    pool = cs.KeyedStore(Genes, key=cs.Str)
    pool["a"] = {"ref": 1}
    e = pool["a"]
    snap = pool.pop("a")
    assert isinstance(snap, dict) and snap["ref"] == 1
    with pytest.raises(KeyError):
        e["ref"]
    assert pool.pop("a", None) is None
    with pytest.raises(KeyError):
        pool.popitem()


def test_from_columns() -> None:
    keys = np.arange(100, 0, -1)
    pool = cs.KeyedStore.from_columns(Genes, keys=keys, columns={"ref": keys * 2, "fitness": np.ones(100)})
    assert len(pool) == 100 and pool[7, "ref"] == 14 and pool[7, "fitness"] == 1.0
    with pytest.raises(ValueError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1, 1]), columns={})
    with pytest.raises(TypeError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1]), columns={"ref": np.array([1.5])})
    with pytest.raises(OverflowError):
        cs.KeyedStore.from_columns(Genes, keys=np.array([1]), columns={"inputs": np.full((1, 8), 300)})
