"""Errors say what went wrong, in the caller's terms.

Bugs: a bad value among several (`s.add(...)`, `pool[k] = {...}`, `e.update`, a default) did not name its
member ("258 out of range for member type u8" in a 50-member store); `s.x[-2**64]` reported "index
9223372036854775807" (a clamped number); `cs.Optional(cs.Object)` was a `ValueError` at class creation where
a bad annotation is a `TypeError`; `KeyedStore.from_columns(G, [], {"x": []})` refused the empty column
("int member takes an int array, not float64"); the Array shape error reported flattened byte counts;
`copy.copy(entry)` said "cannot pickle 'Entry' object".
"""

import copy
import pickle
from typing import Any, Callable

import numpy as np
import pytest

import compactstore as cs


class G(cs.StaticStore):
    x: cs.u8
    name: str
    a: cs.Array(cs.u8, 2)  # type: ignore[valid-type]
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]


@pytest.mark.parametrize(
    ("call", "exc", "message"),
    [
        (lambda s, p: s.add(x=258), OverflowError, "member 'x': 258 out of range for u8"),
        (lambda s, p: s.add({"name": "ok", "x": 1.5}), TypeError, "member 'x': "),
        (lambda s, p: s.add(name=3), TypeError, "member 'name': "),
        (lambda s, p: s.add(a=[1]), ValueError, "member 'a': expected length 2, got 1"),
        (lambda s, p: s.add(cat=5), TypeError, "member 'cat': "),
        (lambda s, p: s.add(x=np.int64(300)), OverflowError, "member 'x': 300 out of range for u8"),
        (lambda s, p: p.__setitem__(1, {"x": 258}), OverflowError, "member 'x': 258 out of range for u8"),
        (lambda s, p: p.__setitem__(1, {"name": b"x"}), TypeError, "member 'name': "),
        (lambda s, p: s.entry(0).update(x=258), OverflowError, "member 'x': 258 out of range for u8"),
        (lambda s, p: s.entry(0).update({"a": [1, 2, 3]}), ValueError, "member 'a': "),
    ],
)
def test_a_bad_value_among_several_names_its_member(
    call: Callable[[Any, Any], object], exc: type[Exception], message: str
) -> None:
    s = G(4)
    s.add(x=7)
    pool = cs.KeyedStore(G)
    with pytest.raises(exc) as info:
        call(s, pool)
    assert str(info.value).startswith(message), str(info.value)
    assert len(s) == 1 and s.x[0] == 7 and len(pool) == 0  # and nothing changed


def test_a_bad_default_names_its_member() -> None:
    with pytest.raises(OverflowError, match=r"^member 'x': 258 out of range for u8"):
        cs.make_store("D", {"x": cs.Member(cs.u8, default=258)})
    with pytest.raises(TypeError, match=r"^member 'y': "):
        cs.make_store("D", {"y": cs.Member(str, default=1)})


@pytest.mark.parametrize("index", [-(2**64), 2**64, 2**63, -(2**63) - 1])
def test_an_index_beyond_int64_is_reported_as_given(index: int) -> None:
    s = G(4)
    s.add()
    for call in (
        lambda: s.x[index],
        lambda: s.x.__setitem__(index, 1),
        lambda: s.a[0, index],
        lambda: s.__delitem__(index),
        lambda: s.entry(index),
    ):
        with pytest.raises(IndexError) as info:
            call()
        assert str(index) in str(info.value) and "9223372036854775807" not in str(info.value).replace(
            str(index), ""
        ), str(info.value)
    assert s.occupied(index) is False
    with pytest.raises(IndexError, match="index 9223372036854775808 out of range"):
        s.x[np.array([0, 2**63], dtype=np.uint64)]


def test_optional_object_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Object"):
        cs.Optional(cs.Object)
    with pytest.raises(TypeError):

        class Bad(cs.StaticStore):
            o: cs.Optional(cs.Object)  # type: ignore[valid-type]


def test_from_columns_takes_empty_columns_and_reports_shapes() -> None:
    for key in (None, cs.Str, cs.u64):
        pool = cs.KeyedStore.from_columns(G, [], {"x": [], "a": [], "name": []}, key=key)
        assert len(pool) == 0
        pool.validate()
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(2, 2\)"):
        cs.KeyedStore.from_columns(G, [1, 2], {"a": np.zeros((2, 3), np.uint8)})
    with pytest.raises(ValueError, match=r"shape \(2,\).*\(2, 2\)"):
        cs.KeyedStore.from_columns(G, [1, 2], {"a": [1, 2]})
    with pytest.raises(ValueError, match="3 rows for 2 keys"):
        cs.KeyedStore.from_columns(G, [1, 2], {"x": [1, 2, 3]})


def test_an_entry_is_not_copied_but_says_how_to_snapshot_it() -> None:
    s = G(2)
    s.add(x=3)
    e = s.entry(0)
    for what in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match=r"live view.*dict\(entry\)"):
            what(e)
    assert dict(e)["x"] == 3


def test_container_and_keyed_member_writes_name_the_member() -> None:
    # `add` and `pool[k] = {...}` named the member of a refused value; a container write and
    # `pool[k, name] = v` said only "999 out of range for u8".
    class Small(cs.StaticStore):
        c: cs.u8
        s: str

    s = Small(4)
    i = s.add()
    with pytest.raises(OverflowError, match="member 'c'"):
        s.c[i] = 999
    with pytest.raises(TypeError, match="member 's'"):
        s.s[i] = 5
    pool = cs.KeyedStore(Small)
    pool[1] = {}
    with pytest.raises(OverflowError, match="member 'c'"):
        pool[1, "c"] = 999
    with pytest.raises(TypeError, match="member 's'"):
        pool[1, "s"] = 5
    assert s.c[i] == 0 and pool[1, "c"] == 0
    with pytest.raises(IndexError):  # an index error is about the index, not the member
        s.c[99] = 1
