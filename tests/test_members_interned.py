"""Interned (dictionary-encoded) str and bytes members.

Each entry holds a small code; each distinct value is stored once per chunk. Values no entry uses any more
are reclaimed, so churning through many distinct values keeps `nbytes` bounded.
"""

import copy
from typing import Any

import pytest

import compactstore as cs


class Tagged(cs.StaticStore):
    ref: cs.i64
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    tag: cs.Interned(cs.Bytes)  # type: ignore[valid-type]
    kind: cs.Interned(cs.Str) = "unknown kind, a long default"  # type: ignore[valid-type]
    fixed: cs.Member(cs.Interned(cs.Str), read_only=True)  # type: ignore[valid-type]


STRS = ["", "red", "x" * 15, "x" * 16, "héllo wörld", "日本語", "🎉", "\x00", "a\x00b", "\x00" * 20, "long " * 500]
BYTES = [b"", b"\x00", b"a\x00b", bytes(range(256)), b"\xff" * 16, b"\x80 not utf-8", b"z" * 3000]
MEMBERS = [("cat", STRS), ("tag", BYTES)]


@pytest.fixture(params=["static", "dynamic"])
def kind(request: Any) -> str:
    return str(request.param)


def make(kind: str, size: int = 8) -> Any:
    return Tagged(size) if kind == "static" else cs.DynamicStore(Tagged, log2size=2)


@pytest.mark.parametrize("name, values", MEMBERS)
def test_round_trips_and_shared_values(kind: str, name: str, values: list[Any]) -> None:
    s = make(kind, size=2 * len(values))
    first = [s.add({name: v}) for v in values]
    second = [s.add({name: v}) for v in values]  # every value a second time
    for i, j, v in zip(first, second, values):
        assert s[name][i] == v and s[name][j] == v and type(s[name][i]) is type(v)
        assert s.entry(i)[name] == v
        assert s.entry(i) == s.entry(j) and dict(s.entry(i))[name] == v
    got = s[name][: 2 * len(values)]
    assert type(got) is list and got == values + values
    for v in values:
        assert s.find(name, v).tolist() == [first[values.index(v)], second[values.index(v)]]
    s.validate()


def test_defaults(kind: str) -> None:
    s = make(kind)
    i = s.next_index()
    assert (s.cat[i], s.tag[i], s.kind[i], s.fixed[i]) == ("", b"", "unknown kind, a long default", "")
    assert s.kind[s.size - 1] == "unknown kind, a long default"
    assert s.find("kind", "unknown kind, a long default").tolist() == [i]


@pytest.mark.parametrize("name, values", MEMBERS)
def test_overwrite_keeps_other_users_of_the_value(kind: str, name: str, values: list[Any]) -> None:
    s = make(kind)
    a = s.add({name: values[-1]})
    b = s.add({name: values[-1]})
    for v in values + values[::-1]:
        s[name][a] = v
        assert s[name][a] == v
        assert s[name][b] == values[-1]  # the shared value stays for b
    s[name][b] = values[1]
    assert (s[name][a], s[name][b]) == (values[0], values[1])
    s.validate()


@pytest.mark.parametrize("name, values", MEMBERS)
def test_delete_and_reuse(kind: str, name: str, values: list[Any]) -> None:
    s = make(kind)
    default = s[name][s.size - 1]
    a = s.add({name: values[-1]})
    b = s.add({name: values[2]})
    del s[a]
    assert s[name][a] == default and s[name][b] == values[2]
    assert s.find(name, values[-1]).tolist() == []
    assert s.add({name: values[3]}) == a
    assert (s[name][a], s[name][b]) == (values[3], values[2])
    s.validate()


def test_entry_equality_and_dict(kind: str) -> None:
    s = make(kind)
    i = s.add(ref=1, cat="héllo", tag=b"\x00t", fixed="fixed value, long enough to matter")
    want = {"ref": 1, "cat": "héllo", "tag": b"\x00t", "kind": "unknown kind, a long default",
            "fixed": "fixed value, long enough to matter"}
    assert dict(s.entry(i)) == want and s.entry(i) == want
    assert s.entry(i) != {**want, "cat": "hello"}
    assert s.entry(i) != {**want, "tag": "\x00t"}
    j = s.add(want)
    assert s.entry(j) == s.entry(i)


# --- reclamation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cat", "tag"])
def test_unused_values_are_reclaimed_in_one_slot(kind: str, name: str) -> None:
    s = make(kind)
    s.add({name: "a value that stays in use" if name == "cat" else b"a value that stays in use"})
    i = s.add()
    conv = (lambda x: x) if name == "cat" else str.encode
    for k in range(10_000):
        v = conv("distinct value number %06d, padded to be long" % k)
        s[name][i] = v
        if k % 1000 == 0:
            assert s[name][i] == v
            s.validate()
    assert s[name][i] == conv("distinct value number %06d, padded to be long" % 9999)
    assert s[name][0] == conv("a value that stays in use")
    assert s.nbytes < 50_000 < 10_000 * 45
    s.validate()


def test_unused_values_are_reclaimed_across_slots_with_deletes(kind: str) -> None:
    s = make(kind)
    model: dict[int, str] = {}
    for k in range(5000):
        if len(model) == 8:
            victim = sorted(model)[k % 8]
            del s[victim]
            del model[victim]
        v = "value %d " % (k % 3000) * 6  # some values repeat while still in use
        model[s.add(cat=v)] = v
    for i, v in model.items():
        assert s.cat[i] == v
    assert s.nbytes < 50_000
    s.validate()


def test_reclamation_by_slice_writes_and_reset() -> None:
    s = Tagged(8)
    for k in range(3000):
        s.cat[0:8] = ["v%d-%d, long enough for the heap" % (k, j) for j in range(8)]
    assert s.cat[:] == ["v2999-%d, long enough for the heap" % j for j in range(8)]
    assert s.nbytes < 50_000
    s.reset()
    assert s.cat[:] == [""] * 8
    s.validate()


# --- refusals ----------------------------------------------------------------------------------------------

BAD = {"cat": [b"bytes", 3, None, 1.5, ["a"], True], "tag": ["str", 3, None, ["a"]]}


@pytest.mark.parametrize("name, bad", [(n, v) for n, vs in BAD.items() for v in vs])
def test_wrong_types_are_refused_and_nothing_changes(kind: str, name: str, bad: Any) -> None:
    s = make(kind)
    s.add(cat="keep", tag=b"keep")
    s.add(cat="other", tag=b"other")
    before = [dict(s.entry(i)) for i in range(2)]
    nbytes = s.nbytes

    def unchanged() -> None:
        assert [dict(s.entry(i)) for i in range(2)] == before
        assert (len(s), s.nbytes) == (2, nbytes)
        s.validate()

    good = "fine" if name == "cat" else b"fine"
    for call in (
        lambda: s[name].__setitem__(0, bad),
        lambda: s[name].__setitem__(slice(0, 2), [good, bad]),
        lambda: s.entry(0).__setitem__(name, bad),
        lambda: s.entry(0).update({"ref": 5, name: bad}),
        lambda: s.__setitem__(name, bad),
        lambda: s.add({"ref": 5, name: bad}),
        lambda: s.find(name, bad),
    ):
        with pytest.raises(TypeError):
            call()
        unchanged()
    with pytest.raises(TypeError):
        s[name][[0, 1]]


# --- read-only, copies, keyed, dynamic ---------------------------------------------------------------------


def test_read_only_interned(kind: str) -> None:
    s = make(kind)
    i = s.add(fixed="A")
    s["fixed"] = "B"
    assert s.fixed[i] == "B"
    with pytest.raises(TypeError):
        s.fixed[i] = "C"
    with pytest.raises(TypeError):
        s.entry(i)["fixed"] = "C"
    assert s.fixed[i] == "B"


def test_copies_are_independent(kind: str) -> None:
    s = make(kind)
    i = s.add(cat="shared", tag=b"shared")
    j = s.add(cat="shared", tag=b"shared")
    for c in (s.copy(), copy.deepcopy(s)):
        c.cat[i] = "changed"
        assert (c.cat[i], c.cat[j], s.cat[i], s.cat[j]) == ("changed", "shared", "shared", "shared")
        c.validate()
    s.validate()


def test_dynamic_store_across_chunks() -> None:
    d = cs.DynamicStore(Tagged, log2size=1)
    cats = ["c%d" % (k % 3) for k in range(11)]
    for c in cats:
        d.add(cat=c, tag=c.encode())
    assert d.cat[:11] == cats and d.tag[:11] == [c.encode() for c in cats]
    assert d.find("cat", "c1").tolist() == [k for k in range(11) if cats[k] == "c1"]
    for k in range(2, 11):
        del d[k]
    assert d.retract() == 5  # 6 chunks of 2, one kept
    assert d.cat[:] == cats[:2]
    d.validate()


def test_keyed_store() -> None:
    pool = cs.KeyedStore(Tagged, key=cs.Bytes, log2size=1)
    for k in range(12):
        pool[b"%d" % k] = {"cat": "c%d" % (k % 4), "tag": b"t%d" % (k % 2), "fixed": "f"}
    assert pool.find("cat", "c1") == [b"1", b"5", b"9"]
    pool[b"5", "cat"] = "c2"
    pool[b"9"].update({"cat": "new"})
    assert pool.find("cat", "c1") == [b"1"]
    assert pool[b"9"] == {"ref": 0, "cat": "new", "tag": b"t1", "kind": "unknown kind, a long default",
                          "fixed": "f"}
    assert pool.pop(b"1")["cat"] == "c1"
    assert pool.find("cat", "c1") == []
    with pytest.raises(TypeError):
        pool[b"2", "cat"] = b"c2"
    assert pool[b"2", "cat"] == "c2"
    pool.validate()


class Coded(cs.StaticStore):
    cat: cs.Optional(cs.Interned(cs.Str)) = "dflt"  # type: ignore[valid-type]


def test_codes_start_at_one_byte_and_widen_keeping_every_value() -> None:
    # A chunk's codes are 1 byte each until a value needs code 255, then 2 until 65,535, then 4.
    n = 70_000
    s = Coded(n)
    for _ in range(n):
        s.next_index()
    empty = s.nbytes
    s.cat[0] = None
    s.cat[1] = "dflt"
    want: dict[int, Any] = {0: None, 1: "dflt"}
    for k in range(2, 250):
        s.cat[k] = want[k] = f"v{k}"
    one_byte = s.nbytes
    assert one_byte - empty < n // 2  # the dictionary grew; the codes did not
    for k in range(250, 300):
        s.cat[k] = want[k] = f"v{k}"
    two_bytes = s.nbytes
    assert two_bytes - one_byte >= n  # one more byte per slot
    assert all(s.cat[k] == v for k, v in want.items())
    for k in range(300, n):
        s.cat[k] = want[k] = f"v{k}"
    assert s.nbytes - two_bytes >= 2 * n
    assert s.cat[:] == [want[k] for k in range(n)]
    assert s.find("cat", None).tolist() == [0]
    assert s.find("cat", "v69999").tolist() == [n - 1]
    s.validate()


def test_a_dynamic_store_widens_each_chunk_on_its_own() -> None:
    d = cs.DynamicStore(Coded, log2size=9)
    for k in range(1024):
        d.add(cat=f"v{k}")  # chunk 1 holds codes 513.. and widens; chunk 0 needs 2 bytes for 255..511
    d.add(cat=None)
    assert d.cat[:1025] == [f"v{k}" for k in range(1024)] + [None]
    for k in range(1024):
        del d[k]
    assert d.cat[1024] is None and len(d) == 1
    d.validate()
