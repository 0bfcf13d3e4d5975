"""Entry: one slot seen as a dict."""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    inputs: cs.Array(cs.u8, 3)
    alive: bool = True
    born: cs.Member(cs.i32, default=-1, read_only=True)


NAMES = ["ref", "fitness", "inputs", "alive", "born"]


def plain(e: Any) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in e.items()}


@pytest.fixture(params=["static", "dynamic"])
def s(request: pytest.FixtureRequest) -> Any:
    st: Any = Genes(8) if request.param == "static" else cs.DynamicStore(Genes, log2size=2)
    for k in range(6):  # the dynamic store has two chunks
        st.add(ref=k, inputs=[k, k + 1, k + 2], born=100 + k)
    return st


def test_getitem_and_attribute(s: Any) -> None:
    e = s.entry(5)
    assert e["ref"] == 5
    assert e.ref == 5
    assert e["fitness"] == 0.5
    assert e.alive is True
    assert e.born == 105
    row = e["inputs"]
    assert isinstance(row, np.ndarray)
    assert row.tolist() == [5, 6, 7]
    assert e.inputs.tolist() == [5, 6, 7]


def test_unknown_member(s: Any) -> None:
    e = s.entry(0)
    with pytest.raises(KeyError):
        e["nope"]
    with pytest.raises(AttributeError):
        e.nope  # noqa: B018
    with pytest.raises(KeyError):
        e["nope"] = 1
    assert plain(e) == {"ref": 0, "fitness": 0.5, "inputs": [0, 1, 2], "alive": True, "born": 100}


def test_array_value_is_a_read_only_copy(s: Any) -> None:
    e = s.entry(1)
    row = e["inputs"]
    with pytest.raises(ValueError):
        row[0] = 9
    assert s.inputs[1].tolist() == [1, 2, 3]


def test_setitem_writes_the_store(s: Any) -> None:
    e = s.entry(4)
    e["ref"] = -40
    e["fitness"] = 0.25
    e["inputs"] = [9, 8, 7]
    e["alive"] = False
    assert s.ref[4] == -40
    assert s.fitness[4] == 0.25
    assert s.inputs[4].tolist() == [9, 8, 7]
    assert s.alive[4] is False
    assert s.ref[3] == 3  # neighbours untouched


def test_entry_is_a_live_view(s: Any) -> None:
    e = s.entry(2)
    s.ref[2] = 222
    s.inputs[2, 1] = 99
    assert e["ref"] == 222
    assert e["inputs"].tolist() == [2, 99, 4]


@pytest.mark.parametrize(
    ("name", "value", "exc"),
    [("ref", 1.5, TypeError), ("ref", None, TypeError), ("ref", 2**70, OverflowError), ("alive", 1, TypeError),
     ("fitness", 1e39, OverflowError), ("inputs", [1, 2], ValueError), ("inputs", [1, 2, 256], OverflowError),
     ("born", 1, TypeError)],
)
def test_setitem_bad_value_changes_nothing(s: Any, name: str, value: Any, exc: type[Exception]) -> None:
    e = s.entry(3)
    before = plain(e)
    with pytest.raises(exc):
        e[name] = value
    assert plain(e) == before


def test_read_only_member_write_names_it(s: Any) -> None:
    e = s.entry(3)
    with pytest.raises(TypeError, match="born"):
        e["born"] = 1
    with pytest.raises(TypeError, match="born"):
        e.update(born=1)
    assert e["born"] == 103


def test_keys_values_items(s: Any) -> None:
    e = s.entry(2)
    assert list(e.keys()) == NAMES
    values = list(e.values())
    assert values[0] == 2
    assert values[1] == 0.5
    assert values[2].tolist() == [2, 3, 4]
    assert values[3:] == [True, 102]
    items = list(e.items())
    assert [k for k, _ in items] == NAMES
    assert [k for k, _ in items if k != "inputs"] == ["ref", "fitness", "alive", "born"]
    assert dict(items)["ref"] == 2
    assert list(e) == NAMES
    assert "ref" in e
    assert "nope" not in e
    assert 1 not in e


def test_get(s: Any) -> None:
    e = s.entry(1)
    assert e.get("ref") == 1
    assert e.get("ref", 99) == 1
    assert e.get("nope") is None
    assert e.get("nope", 99) == 99
    assert e.get("inputs").tolist() == [1, 2, 3]


def test_dict_and_len_and_index(s: Any) -> None:
    e = s.entry(5)
    d = dict(e)
    assert list(d) == NAMES
    assert d["ref"] == 5
    assert d["inputs"].tolist() == [5, 6, 7]
    assert len(e) == len(NAMES)
    assert e.index == 5
    assert s.entry(0).index == 0


def test_update(s: Any) -> None:
    e = s.entry(0)
    e.update({"ref": 10, "fitness": 1.5}, alive=False, inputs=(7, 7, 7))
    assert plain(e) == {"ref": 10, "fitness": 1.5, "inputs": [7, 7, 7], "alive": False, "born": 100}
    e.update()
    e.update({})
    assert e["ref"] == 10


@pytest.mark.parametrize(
    ("mapping", "kwargs", "exc"),
    [({"ref": 10, "nope": 1}, {}, KeyError), ({}, {"ref": 10, "nope": 1}, KeyError), ({"ref": 10}, {"nope": 1}, KeyError),
     ({"ref": 10, "alive": 1}, {}, TypeError), ({"ref": 10}, {"fitness": 1e39}, OverflowError),
     ({"ref": 10, "inputs": [1]}, {}, ValueError), ({"ref": 10, "born": 5}, {}, TypeError)],
)
def test_update_is_strict_and_atomic(s: Any, mapping: dict[str, Any], kwargs: dict[str, Any],
                                     exc: type[Exception]) -> None:
    e = s.entry(0)
    before = plain(e)
    with pytest.raises(exc):
        e.update(mapping, **kwargs)
    assert plain(e) == before
    assert s.ref[0] == 0


def test_eq_compares_every_member(s: Any) -> None:
    e = s.entry(2)
    want = {"ref": 2, "fitness": 0.5, "inputs": [2, 3, 4], "alive": True, "born": 102}
    assert e == want
    assert not (e != want)
    assert e == {**want, "inputs": np.array([2, 3, 4], dtype=np.uint8)}
    assert e == {**want, "inputs": (2, 3, 4)}
    assert e != {**want, "inputs": [2, 3, 5]}
    assert e != {**want, "ref": 3}
    assert e != {**want, "alive": False}
    assert e != {k: v for k, v in want.items() if k != "born"}  # a missing member
    assert e != {**want, "extra": 1}  # an extra key
    assert e != {**want, "inputs": [2, 3]}
    assert e != {**want, "ref": "2"}
    assert e == s.entry(2)
    assert e != s.entry(3)
    assert e != 5
    assert e != [("ref", 2)]


def test_eq_f32_compares_as_stored(s: Any) -> None:
    e = s.entry(1)
    e["fitness"] = 0.1
    want = plain(e)
    assert e["fitness"] == float(np.float32(0.1))
    assert e["fitness"] != 0.1
    assert e == {**want, "fitness": 0.1}  # 0.1 converts to the same f32
    assert e == {**want, "fitness": float(np.float32(0.1))}
    assert e == {**want, "fitness": np.float32(0.1)}
    assert e != {**want, "fitness": 0.1000001}
    assert e != {**want, "fitness": 1e39}  # not representable: unequal, not an error


def test_entry_not_hashable(s: Any) -> None:
    with pytest.raises(TypeError):
        hash(s.entry(0))


def test_repr_shows_a_preview(s: Any) -> None:
    r = repr(s.entry(4))
    assert "4" in r
    assert "ref" in r


ACCESSES: dict[str, Callable[[Any], Any]] = {
    "getitem": lambda e: e["ref"],
    "getitem_array": lambda e: e["inputs"],
    "getattr": lambda e: e.ref,
    "setitem": lambda e: e.__setitem__("ref", 1),
    "keys": lambda e: e.keys(),
    "values": lambda e: e.values(),
    "items": lambda e: e.items(),
    "get": lambda e: e.get("ref"),
    "get_unknown": lambda e: e.get("nope", 0),
    "update": lambda e: e.update(ref=1),
    "update_empty": lambda e: e.update(),
    "dict": lambda e: dict(e),
    "len": lambda e: len(e),
    "iter": lambda e: list(e),
    "contains": lambda e: "ref" in e,
    "eq": lambda e: e == {},
}


@pytest.mark.parametrize("access", ACCESSES)
def test_stale_after_del_raises_key_error(s: Any, access: str) -> None:
    e = s.entry(4)
    del s[4]
    assert e.valid is False
    with pytest.raises(KeyError):
        ACCESSES[access](e)
    assert s.ref[4] == 0
    assert not s.occupied(4)


@pytest.mark.parametrize("access", ACCESSES)
def test_stale_after_del_and_reuse_raises_key_error(s: Any, access: str) -> None:
    e = s.entry(4)
    del s[4]
    assert s.add(ref=444, inputs=[4, 4, 4]) == 4  # the same slot, a new entry
    with pytest.raises(KeyError):
        ACCESSES[access](e)
    fresh = s.entry(4)
    assert fresh.valid is True
    assert plain(fresh) == {"ref": 444, "fitness": 0.5, "inputs": [4, 4, 4], "alive": True, "born": -1}


@pytest.mark.parametrize("access", ["getitem", "setitem", "dict", "eq"])
def test_stale_after_reset_raises_key_error(s: Any, access: str) -> None:
    e = s.entry(1)
    s.reset()
    for _ in range(3):
        s.next_index()
    with pytest.raises(KeyError):
        ACCESSES[access](e)
    assert s.ref[1] == 0


def test_stale_after_dynamic_retract_raises_key_error() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(6):
        d.add(ref=k)
    e = d.entry(5)
    del d[4]
    del d[5]
    assert d.retract() == 1
    assert e.valid is False
    with pytest.raises(KeyError):
        e["ref"]
    with pytest.raises(KeyError):
        e["ref"] = 1
    assert d.size == 4


def _regrow(st: Any, n: int) -> None:
    for k in range(n):
        st.add(ref=1000 + k)


def test_stale_after_dynamic_retract_and_regrowth() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    _regrow(d, 6)
    e = d.entry(5)
    del d[4]
    del d[5]
    d.retract()
    _regrow(d, 2)
    assert d.ref[5] == 1001
    with pytest.raises(KeyError):
        e["ref"]


def test_stale_after_dynamic_reset_dropping_chunks_and_reuse() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    _regrow(d, 5)
    e = d.entry(4)
    d.reset()
    _regrow(d, 5)
    with pytest.raises(KeyError):
        e["ref"]


def test_stale_after_dynamic_reset_with_log2size_and_reuse() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    _regrow(d, 1)
    e = d.entry(0)
    d.reset(3)
    _regrow(d, 1)
    with pytest.raises(KeyError):
        e["ref"]


def test_stale_after_static_reset_with_size_and_reuse() -> None:
    st = Genes(4)
    _regrow(st, 1)
    e = st.entry(0)
    st.reset(5)
    _regrow(st, 1)
    with pytest.raises(KeyError):
        e["ref"]


def test_stale_after_static_reset_same_size_and_reuse() -> None:
    st = Genes(4)
    _regrow(st, 1)
    e = st.entry(0)
    st.reset(4)
    _regrow(st, 1)
    with pytest.raises(KeyError):
        e["ref"]
    assert st.entry(0)["ref"] == 1000


def test_entries_of_a_dynamic_store_across_chunks() -> None:
    d = cs.DynamicStore(Genes, log2size=1)
    for k in range(7):
        d.add(ref=k * 11)
    entries = [d.entry(i) for i in range(7)]
    assert [e["ref"] for e in entries] == [k * 11 for k in range(7)]
    entries[6]["ref"] = -1
    assert d.ref[6] == -1
    d.next_index()  # growth never invalidates an entry
    assert entries[0]["ref"] == 0
    assert all(e.valid for e in entries)
