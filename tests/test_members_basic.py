"""str, bytes, interned and optional members: basics (the full suite is in test_members_*.py)."""

from typing import Any

import numpy as np
import pytest

import compactstore as cs


class Rec(cs.StaticStore):
    ref: cs.i64
    name: str = "anon"
    blob: cs.Bytes
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    score: cs.Optional(cs.f32)  # type: ignore[valid-type]


@pytest.fixture(params=["static", "dynamic"])
def s(request: Any) -> Any:
    return Rec(8) if request.param == "static" else cs.DynamicStore(Rec, log2size=1)


def test_round_trips(s: Any) -> None:
    long = "héllo wörld \x00 " * 10
    i = s.add(ref=1, name=long, blob=b"\x00ab", cat="red", score=None)
    j = s.add(ref=2, name="", cat="red", score=1.5)
    assert (s.name[i], s.blob[i], s.cat[i], s.score[i]) == (long, b"\x00ab", "red", None)
    assert (s.name[j], s.blob[j], s.cat[j], s.score[j]) == ("", b"", "red", 1.5)
    assert s.name[-s.size] == long
    assert s.entry(i) == {"ref": 1, "name": long, "blob": b"\x00ab", "cat": "red", "score": None}
    s.validate()


def test_defaults_and_delete(s: Any) -> None:
    i = s.add(name="x" * 40, cat="blue", score=2.0)
    del s[i]
    assert (s.name[i], s.cat[i], s.score[i]) == ("anon", "", None)
    assert s.next_index() == i and s.name[i] == "anon"


@pytest.mark.parametrize(
    "name, value, exc",
    [("name", 3, TypeError), ("name", None, TypeError), ("name", b"x", TypeError), ("blob", "x", TypeError),
     ("cat", 5, TypeError), ("score", "x", TypeError), ("score", 1e39, OverflowError)],
)
def test_wrong_values_change_nothing(s: Any, name: str, value: Any, exc: type) -> None:
    i = s.add(name="keep", blob=b"keep", cat="keep", score=0.5)
    before = dict(s.entry(i))
    with pytest.raises(exc):
        s[name][i] = value
    assert dict(s.entry(i)) == before


def test_slices_are_lists_and_index_arrays_are_refused(s: Any) -> None:
    s.add(name="a")
    s.add(name="b")
    s.add()
    assert s.name[:2] == ["a", "b"]
    s.name[0:2] = "z"
    assert s.name[:3] == ["z", "z", "anon"]
    s.name[0:2] = ["p", "q"]
    assert s.name[:2] == ["p", "q"]
    with pytest.raises(ValueError):
        s.name[0:2] = ["p"]
    with pytest.raises(TypeError):
        s.name[[0, 1]]
    assert list(np.asarray(s.name)[:2]) == ["p", "q"]


def test_member_types_as_dtype() -> None:
    s = Rec(1)
    assert s.name.dtype == cs.Str
    assert s.blob.dtype == cs.Bytes
    assert s.cat.dtype == cs.Interned(cs.Str)
    assert s.score.dtype == cs.Optional(cs.f32)
    assert s.ref.dtype == np.dtype("int64")


def test_find_and_keyed() -> None:
    pool = cs.KeyedStore(Rec, key=cs.Str)
    pool["a"] = {"name": "x", "cat": "c1", "score": 2}
    pool["b"] = {"name": "y", "cat": "c1"}
    assert pool.find("cat", "c1") == ["a", "b"]
    assert pool["b", "score"] is None
    assert pool.pop("a")["name"] == "x"
    pool.validate()
