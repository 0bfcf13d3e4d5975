"""Optional members: a value plus a validity bit, read and written as the value or None.

The default is None unless one is given (class attribute or `cs.Member(..., default=...)`); a free slot and
a deleted entry read as the default. Values convert and are refused exactly as for the wrapped type.
"""

import copy
import typing
from typing import Any

import numpy as np
import pytest

import compactstore as cs


class Opt(cs.StaticStore):
    ref: cs.i64
    small: cs.Optional(cs.i8)  # type: ignore[valid-type]
    byte: cs.Optional(cs.u8) = 7  # type: ignore[valid-type]
    big: cs.Optional(cs.i64)  # type: ignore[valid-type]
    f: cs.Optional(cs.f32)  # type: ignore[valid-type]
    d: cs.Member(cs.Optional(cs.f64), default=2.5)  # type: ignore[valid-type]
    flag: cs.Optional(cs.bool_)  # type: ignore[valid-type]
    vec: cs.Optional(cs.Array(cs.i16, 3))  # type: ignore[valid-type]
    text: cs.Optional(cs.Str)  # type: ignore[valid-type]
    raw: cs.Optional(cs.Bytes)  # type: ignore[valid-type]
    cat: cs.Optional(cs.Interned(cs.Str))  # type: ignore[valid-type]
    named: cs.Optional(cs.Str) = "a long default string for text"  # type: ignore[valid-type]


DEFAULTS: dict[str, Any] = {
    "ref": 0, "small": None, "byte": 7, "big": None, "f": None, "d": 2.5, "flag": None, "vec": None,
    "text": None, "raw": None, "cat": None, "named": "a long default string for text",
}
GOOD: dict[str, list[Any]] = {
    "small": [0, -128, 127, True],
    "byte": [0, 255, np.uint8(3)],
    "big": [2**63 - 1, -(2**63), 0],
    "f": [0.5, -3, 1e30],
    "d": [0.1, -0.0, float("inf"), 7],
    "flag": [True, False, np.bool_(True)],
    "vec": [[1, 2, 3], np.array([-(2**15), 0, 2**15 - 1])],
    "text": ["", "\x00", "héllo wörld, long enough", "🎉" * 50],
    "raw": [b"", b"\x00\xff", b"z" * 100],
    "cat": ["", "red", "日本語"],
    "named": ["", "short", "x" * 40],
}
BAD: dict[str, list[tuple[Any, type[Exception]]]] = {
    "small": [(128, OverflowError), (-129, OverflowError), (1.5, TypeError), ("1", TypeError)],
    "byte": [(256, OverflowError), (-1, OverflowError), (2.0, TypeError)],
    "big": [(2**63, OverflowError), (2**70, OverflowError), (1.0, TypeError)],
    "f": [(1e39, OverflowError), ("x", TypeError)],
    "d": [("x", TypeError), (b"1", TypeError)],
    "flag": [(1, TypeError), (0, TypeError), ("True", TypeError)],
    "vec": [([1, 2], ValueError), ([1, 2, 3, 4], ValueError), ([1, 2, 2**15], OverflowError), ([1, 2.5, 3], TypeError)],
    "text": [(b"x", TypeError), (3, TypeError)],
    "raw": [("x", TypeError), (3, TypeError)],
    "cat": [(b"x", TypeError), (3, TypeError)],
    "named": [(b"x", TypeError), (1.5, TypeError)],
}
OPTIONAL = [n for n in DEFAULTS if n != "ref"]


def stored(name: str, v: Any) -> Any:
    """What member `name` reads back after writing `v`."""
    if v is None:
        return None
    if name == "f":
        return float(np.float32(v))
    if name == "vec":
        return [int(x) for x in v]
    if name in ("small", "byte", "big"):
        return int(v)
    if name == "d":
        return float(v)
    if name == "flag":
        return bool(v)
    return v


def plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, np.ndarray) else v


@pytest.fixture(params=["static", "dynamic"])
def s(request: Any) -> Any:
    return Opt(8) if request.param == "static" else cs.DynamicStore(Opt, log2size=2)


def test_defaults_are_none_unless_given(s: Any) -> None:
    i = s.next_index()
    assert {n: plain(v) for n, v in s.entry(i).items()} == DEFAULTS
    assert s.entry(i) == DEFAULTS
    for name in OPTIONAL:
        assert s[name][s.size - 1] == DEFAULTS[name]  # free slots too


@pytest.mark.parametrize("name", OPTIONAL)
def test_round_trips_and_none(s: Any, name: str) -> None:
    i = s.add()
    other = s.add({name: GOOD[name][-1]})
    for v in GOOD[name] + [None] + GOOD[name][::-1] + [None]:
        s[name][i] = v
        assert plain(s[name][i]) == stored(name, v)
        if v is None:
            assert s[name][i] is None
        assert plain(s.entry(i)[name]) == stored(name, v)
        assert plain(s[name][other]) == stored(name, GOOD[name][-1])
    for v in GOOD[name] + [None]:
        s.entry(i)[name] = v
        assert plain(s[name][i]) == stored(name, v)
        j = s.add({name: v})
        assert plain(s[name][j]) == stored(name, v)
        s[name] = GOOD[name][0]  # shorthand: the entry most recently created
        assert plain(s[name][j]) == stored(name, GOOD[name][0])
        s[name] = v
        assert plain(s[name][j]) == stored(name, v)
        assert s.entry(j) == {**DEFAULTS, name: stored(name, v)}
        del s[j]
        assert plain(s[name][j]) == DEFAULTS[name]
    s.validate()


@pytest.mark.parametrize("name", OPTIONAL)
def test_delete_restores_default_and_reuse(s: Any, name: str) -> None:
    i = s.add({name: GOOD[name][0]})
    j = s.add({name: None})
    del s[i]
    assert plain(s[name][i]) == DEFAULTS[name]
    assert s[name][j] is None
    assert s.next_index() == i and plain(s[name][i]) == DEFAULTS[name]
    s.validate()


@pytest.mark.parametrize("name, bad, exc", [(n, v, e) for n, vs in BAD.items() for v, e in vs])
def test_bad_values_are_refused_and_nothing_changes(s: Any, name: str, bad: Any, exc: type) -> None:
    s.add({name: GOOD[name][0]})
    s.add({name: None})
    before = [{k: plain(v) for k, v in s.entry(i).items()} for i in range(2)]
    nbytes = s.nbytes

    def unchanged() -> None:
        assert [{k: plain(v) for k, v in s.entry(i).items()} for i in range(2)] == before
        assert (len(s), s.nbytes) == (2, nbytes)
        s.validate()

    for call in (
        lambda: s[name].__setitem__(1, bad),
        lambda: s[name].__setitem__(slice(0, 2), [None, bad]),
        lambda: s.entry(1).__setitem__(name, bad),
        lambda: s.entry(1).update({"ref": 9, name: bad}),
        lambda: s.__setitem__(name, bad),
        lambda: s.add({"ref": 9, name: bad}),
    ):
        with pytest.raises(exc):
            call()
        unchanged()


@pytest.mark.parametrize("name", OPTIONAL)
def test_slices_are_lists_with_none(s: Any, name: str) -> None:
    for _ in range(4):
        s.add()
    values = [GOOD[name][0], None, GOOD[name][-1], None]
    s[name][0:4] = values
    got = s[name][0:4]
    assert type(got) is list
    assert [plain(v) for v in got] == [stored(name, v) for v in values]
    assert [plain(v) for v in s[name][3::-2]] == [None, None]
    s[name][0:4] = None  # a scalar None broadcasts
    assert s[name][0:4] == [None] * 4
    with pytest.raises(ValueError):
        s[name][0:4] = [None] * 3
    s.validate()


@pytest.mark.parametrize("name", OPTIONAL)
def test_find_none_and_values(s: Any, name: str) -> None:
    a = s.add({name: None})
    b = s.add({name: GOOD[name][0]})
    c = s.add({name: None})
    assert s.find(name, None).tolist() == [a, c]
    assert s.find(name, GOOD[name][0]).tolist() == [b]
    del s[a]
    assert s.find(name, None).tolist() == [c]


def test_index_arrays_are_refused() -> None:
    s = Opt(4)
    with pytest.raises(TypeError):
        s.small[[0, 1]]
    with pytest.raises(TypeError):
        s.f[np.array([True, False, True, False])] = 1.0
    assert s.f[:] == [None] * 4


def test_optional_array_rows_are_read_only_copies() -> None:
    s = Opt(2)
    i = s.add(vec=[1, 2, 3])
    row = s.vec[i]
    assert isinstance(row, np.ndarray) and row.tolist() == [1, 2, 3]
    with pytest.raises(ValueError):
        row[0] = 9
    assert s.vec[i].tolist() == [1, 2, 3]


def test_member_types_as_dtype() -> None:
    s = Opt(1)
    assert s.small.dtype == cs.Optional(cs.i8)
    assert s.vec.dtype == cs.Optional(cs.Array(cs.i16, 3))
    assert s.text.dtype == cs.Optional(cs.Str)
    assert s.cat.dtype == cs.Optional(cs.Interned(cs.Str))


def test_optional_string_churn_keeps_nbytes_bounded(s: Any) -> None:
    for _ in range(8):
        s.add()
    model: dict[int, Any] = {}
    for k in range(10_000):
        i = k % 8
        v = None if k % 3 == 0 else "%d " % k * 40
        s.text[i] = v
        s.cat[i] = v
        model[i] = v
    assert s.text[:8] == [model[i] for i in range(8)] and s.cat[:8] == s.text[:8]
    assert None in model.values() and len(set(model.values())) > 2
    assert s.nbytes < 100_000
    s.validate()


def test_copies_keep_none(s: Any) -> None:
    i = s.add(text=None, small=None, byte=None, named=None, vec=[4, 5, 6])
    for c in (s.copy(), copy.deepcopy(s)):
        assert c.entry(i) == dict(s.entry(i))
        c.byte[i] = 1
        assert s.byte[i] is None


def test_read_only_optional() -> None:
    class R(cs.StaticStore):
        v: cs.Member(cs.Optional(cs.i32), read_only=True)  # type: ignore[valid-type]

    r = R(2)
    i = r.add(v=None)
    assert r.v[i] is None
    with pytest.raises(TypeError):
        r.v[i] = 3
    r["v"] = 4
    assert r.v[i] == 4


def test_keyed_store_none_values() -> None:
    pool = cs.KeyedStore(Opt, key=cs.i64, log2size=1)
    pool[1] = {"byte": None, "text": "t" * 30, "vec": [1, 2, 3]}
    assert pool[1, "byte"] is None and pool[1, "small"] is None and pool[1, "named"] == DEFAULTS["named"]
    pool[1, "text"] = None
    pool[1].update({"cat": "c", "f": None})
    assert {k: plain(v) for k, v in pool[1].items()} == {
        **DEFAULTS, "byte": None, "vec": [1, 2, 3], "cat": "c"}
    pool[2] = {"cat": "c"}
    assert pool.find("cat", "c") == [1, 2] and pool.find("byte", None) == [1]
    assert pool.pop(1)["byte"] is None
    pool.validate()


def test_keyed_ignore_unknown_keeps_none_for_optional_members() -> None:
    class R(cs.StaticStore):
        o: cs.Optional(cs.i32) = 5  # type: ignore[valid-type]
        s: cs.Str = "dflt"

    pool = cs.KeyedStore(R, key=cs.Str, ignore_unknown=True)
    pool["k"] = {"o": None, "s": None, "nope": 1}
    assert dict(pool["k"]) == {"o": None, "s": "dflt"}  # None is a value for an Optional, "not given" else


def test_keyed_ignore_unknown_none_is_not_given_for_plain_members() -> None:
    class R(cs.StaticStore):
        o: cs.Optional(cs.i32)  # type: ignore[valid-type]
        s: cs.Str = "dflt"

    pool = cs.KeyedStore(R, key=cs.Str, ignore_unknown=True)
    pool["k"] = {"o": 3, "s": "x"}
    pool["k"].update({"o": None})
    assert dict(pool["k"]) == {"o": None, "s": "x"}
    pool["k"] = {"o": None, "s": None, "nope": 1}
    assert dict(pool["k"]) == {"o": None, "s": "dflt"}


@pytest.mark.parametrize(
    "spelling, expected",
    [
        (int | None, cs.Optional(int)),
        (typing.Optional[int], cs.Optional(int)),
        (typing.Union[int, None], cs.Optional(int)),
        (typing.Union[None, int], cs.Optional(int)),
        (None | str, cs.Optional(str)),
        (typing.Optional[bytes], cs.Optional(bytes)),
        (cs.f32 | None, cs.Optional(cs.f32)),
        (typing.Optional[cs.Str], cs.Optional(cs.Str)),
        (cs.Array(cs.u8, 2) | None, cs.Optional(cs.Array(cs.u8, 2))),
        (None | cs.Interned(cs.Str), cs.Optional(cs.Interned(cs.Str))),
    ],
)
def test_union_with_none_spells_optional(spelling: Any, expected: Any) -> None:
    # Bug (issue 11.10): `int | None` / `Optional[int]` were refused as member types.
    T = cs.make_store("T", {"v": spelling, "m": cs.Member(spelling, default=None)})

    class C(cs.StaticStore):
        v: spelling  # type: ignore[valid-type]
        m: cs.Member(spelling, default=None)  # type: ignore[valid-type]

    same = cs.make_store("Same", {"v": expected})(1).v.dtype
    for s in (T(2), C(2)):
        assert s.v.dtype == same
        i = s.add()
        assert (s.v[i], s.m[i]) == (None, None)


def test_union_with_none_values_round_trip() -> None:
    class C(cs.StaticStore):
        a: int | None
        b: typing.Optional[str] = "x"
        c: cs.Array(cs.u8, 2) | None  # type: ignore[valid-type]

    s = C(2)
    i = s.add(a=5, c=[1, 2])
    assert (s.a[i], s.b[i], s.c[i].tolist()) == (5, "x", [1, 2])
    s.b[i] = None
    assert s.b[i] is None


@pytest.mark.parametrize("spelling", [int | str, typing.Union[int, str, None], int | str | None])
def test_other_unions_are_refused(spelling: Any) -> None:
    with pytest.raises(TypeError, match="union"):
        cs.make_store("T", {"v": spelling})
    with pytest.raises(TypeError):
        cs.Optional(int | None)  # Optional(Optional(...))
