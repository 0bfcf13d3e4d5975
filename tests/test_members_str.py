"""str and bytes members: round trips, overwrites, delete/reuse, compaction, refusals, containers and entries.

Values longer than 15 bytes live in a chunk's long-value buffer, which is compacted when its garbage exceeds
both the live bytes and max(4096, chunk size); the compaction tests drive that from Python by overwriting
long values many times and check that every live value survives.
"""

import copy
from typing import Any

import pytest

import compactstore as cs

LONG_DEFAULT = "a default that is longer than fifteen bytes"


class Doc(cs.StaticStore):
    ref: cs.i64
    text: str = LONG_DEFAULT
    raw: cs.Bytes
    title: cs.Str = "t"
    ro: cs.Member(str, read_only=True)  # type: ignore[valid-type]


STRS = [
    "",
    "a",
    "x" * 15,
    "x" * 16,
    "héllo wörld",
    "日本語のテキスト、かなり長い文字列です",
    "emoji 🎉🐍 mixed",
    "\x00",
    "a\x00b",
    "\x00" * 40,
    "tail NUL\x00",
    "é" * 8,  # 16 bytes, 8 characters
    "long " * 2000,
    "\U0010ffff" * 5,
]
BYTES = [
    b"",
    b"\x00",
    b"a\x00b",
    bytes(range(256)),
    b"\xff" * 15,
    b"\xff" * 16,
    b"\x80\x81 not utf-8",
    b"\x00" * 100,
    b"z" * 10_000,
]
MEMBERS = [("text", STRS), ("raw", BYTES)]


def make(kind: str, size: int = 8) -> Any:
    return Doc(size) if kind == "static" else cs.DynamicStore(Doc, log2size=2)


@pytest.fixture(params=["static", "dynamic"])
def kind(request: Any) -> str:
    return str(request.param)


def col(s: Any, name: str) -> list[Any]:
    return list(s[name][:])


# --- round trips -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, values", MEMBERS)
def test_round_trip_through_every_path(kind: str, name: str, values: list[Any]) -> None:
    s = make(kind, size=len(values))
    idx = [s.add({name: v}) for v in values]
    assert idx == list(range(len(values)))
    for i, v in zip(idx, values):
        got = s[name][i]
        assert got == v and type(got) is type(v)
        assert s.entry(i)[name] == v
        assert getattr(s.entry(i), name) == v
        assert s[name][i - s.size] == v
    assert s[name][: len(values)] == values
    assert s[name][len(values) - 1 :: -1] == values[::-1]
    assert list(iter(s[name]))[: len(values)] == values
    s.validate()


@pytest.mark.parametrize("name, values", MEMBERS)
def test_write_through_container_entry_slice_and_shorthand(kind: str, name: str, values: list[Any]) -> None:
    s = make(kind)
    for v in values:
        i = s.add()
        s[name][i] = v
        assert s[name][i] == v
        s.entry(i)[name] = values[0]
        assert s[name][i] == values[0]
        s.entry(i).update({name: v})
        assert s[name][i] == v
        s[name] = values[-1]  # shorthand: the entry most recently created
        assert s[name][i] == values[-1]
        s[name][i : i + 1] = [v]
        assert s[name][i] == v
        del s[i]
    s.validate()


def test_str_subclasses_are_stored_as_plain_str() -> None:
    class Sub(str):
        pass

    s = Doc(2)
    s.text[0] = Sub("sub-class value, long enough")
    assert s.text[0] == "sub-class value, long enough" and type(s.text[0]) is str


def test_entry_equality_and_dict_include_str_members(kind: str) -> None:
    s = make(kind)
    i = s.add(ref=3, text="ünïcode\x00" * 5, raw=b"\x00\x01", title="", ro="fixed, and long enough")
    want = {"ref": 3, "text": "ünïcode\x00" * 5, "raw": b"\x00\x01", "title": "", "ro": "fixed, and long enough"}
    assert dict(s.entry(i)) == want
    assert s.entry(i) == want
    assert s.entry(i) != {**want, "text": "ünïcode\x00" * 4}
    assert s.entry(i) != {**want, "raw": b"\x00\x01\x00"}
    assert s.entry(i) != {**want, "raw": "\x00\x01"}  # bytes never equal str
    j = s.add(want)
    assert s.entry(j) == s.entry(i)
    assert list(s.entry(i).values()) == list(want.values())
    assert s.entry(i).get("title") == ""


def test_defaults(kind: str) -> None:
    s = make(kind)
    i = s.next_index()
    assert (s.text[i], s.raw[i], s.title[i], s.ro[i]) == (LONG_DEFAULT, b"", "t", "")
    assert s.text[s.size - 1] == LONG_DEFAULT  # free slots read as the default too


# --- overwrite, delete, reuse ------------------------------------------------------------------------------

LENGTHS = [0, 3, 15, 16, 100, 15, 0, 5000, 1, 16, 17, 4999, 2]


@pytest.mark.parametrize("name", ["text", "raw"])
def test_overwrite_shorter_and_longer_keeps_neighbours(kind: str, name: str) -> None:
    s = make(kind)
    conv = (lambda x: x) if name == "text" else str.encode
    left = s.add({name: conv("left neighbour, a long value")})
    mid = s.add()
    right = s.add({name: conv("right neighbour, " + "r" * 30)})
    for n, length in enumerate(LENGTHS):
        v = conv(("%d-" % n + "é" * length)[:length])
        s[name][mid] = v
        assert s[name][mid] == v
        assert s[name][left] == conv("left neighbour, a long value")
        assert s[name][right] == conv("right neighbour, " + "r" * 30)
    s.validate()


@pytest.mark.parametrize("name, values", MEMBERS)
def test_delete_resets_and_slot_is_reused(kind: str, name: str, values: list[Any]) -> None:
    s = make(kind)
    default = s[name][s.size - 1]
    a = s.add({name: values[-1]})
    b = s.add({name: values[3]})
    del s[a]
    assert s[name][a] == default
    assert s[name][b] == values[3]
    assert s.next_index() == a
    assert s[name][a] == default
    s[name][a] = values[5]
    assert (s[name][a], s[name][b]) == (values[5], values[3])
    # a value written to a free slot is reset when the slot is allocated
    free = s.empty_indices()[0]
    s[name][free] = values[-1]
    assert s[name][free] == values[-1]
    assert s.next_index() == free and s[name][free] == default
    s.validate()


def test_reset_and_retract_drop_long_values() -> None:
    d = cs.DynamicStore(Doc, log2size=1)
    for k in range(9):
        d.add(text="value %d " % k * 10, raw=b"%d" % k * 20)
    assert len(d.chunks) == 5
    for k in range(9):
        assert d.text[k] == "value %d " % k * 10 and d.raw[k] == b"%d" % k * 20
    for k in range(2, 9):
        del d[k]
    assert d.retract() == 4
    assert d.text[:] == ["value 0 " * 10, "value 1 " * 10]
    d.reset()
    assert d.text[:] == [LONG_DEFAULT] * d.size and d.raw[:] == [b""] * d.size
    d.validate()


def test_copies_are_independent(kind: str) -> None:
    s = make(kind)
    i = s.add(text="original long text value", raw=b"original bytes value!!")
    for c in (s.copy(), copy.copy(s), copy.deepcopy(s)):
        assert c.entry(i) == s.entry(i)
        c.text[i] = "changed in the copy, long"
        c.raw[i] = b"x"
        assert s.text[i] == "original long text value" and s.raw[i] == b"original bytes value!!"
        c.validate()
    s.text[i] = "changed in the original"
    s.validate()


# --- compaction and nbytes ---------------------------------------------------------------------------------


def value200(k: int) -> str:
    return ("%d:" % k + "abcdéfgh" * 30)[:200]


def test_nbytes_grows_with_long_values_and_shrinks_after_compaction() -> None:
    s = Doc(8)
    base = s.nbytes
    for i in range(8):
        s.add(text="L%d" % i * 5000)
    grown = s.nbytes
    assert grown >= base + 8 * 10_000
    for i in range(8):
        s.text[i] = "short"
    assert s.text[:] == ["short"] * 8
    assert s.nbytes < base + 20_000 < grown
    s.validate()


@pytest.mark.parametrize("name", ["text", "raw"])
def test_many_overwrites_compact_and_keep_every_live_value(kind: str, name: str) -> None:
    s = make(kind)
    for _ in range(8):
        s.add()
    conv = (lambda x: x) if name == "text" else str.encode
    model = {i: s[name][i] for i in range(8)}
    model[7] = conv("a long value that is never overwritten: " + "k" * 50)
    s[name][7] = model[7]
    for k in range(10_000):
        i = k % 7
        v = conv(value200(k)) if k % 5 else conv("s%d" % k)  # mostly long, sometimes short
        s[name][i] = v
        model[i] = v
        if k % 997 == 0:
            assert s[name][:8] == [model[j] for j in range(8)]
            s.validate()
    assert s[name][:8] == [model[j] for j in range(8)]
    assert s.nbytes < 100_000 < 10_000 * 200
    s.validate()


def test_compaction_with_deletes_and_reuse() -> None:
    s = Doc(8)
    model: dict[int, str] = {}
    for k in range(6000):
        if len(model) == 8 or (model and k % 3 == 0):
            victim = sorted(model)[k % len(model)]
            del s[victim]
            del model[victim]
        i = s.add(text=value200(k), raw=value200(k).encode()[::-1])
        model[i] = value200(k)
    for i, v in model.items():
        assert s.text[i] == v and s.raw[i] == v.encode()[::-1]
    assert s.nbytes < 100_000
    s.validate()


def test_dynamic_store_compacts_each_chunk() -> None:
    d = cs.DynamicStore(Doc, log2size=2)
    for _ in range(12):
        d.add()
    for k in range(6000):
        d.text[k % 12] = value200(k)
    assert d.text[:] == [value200(k) for k in range(6000 - 12, 6000)]
    assert d.nbytes < 100_000
    d.validate()


# --- refusals ----------------------------------------------------------------------------------------------

BAD = {
    "text": [3, 1.5, None, b"bytes", ["a"], bytearray(b"x"), True],
    "raw": [3, None, "str", ["a"], 1.5],
}


def cases() -> list[tuple[str, Any]]:
    return [(n, v) for n, vs in BAD.items() for v in vs]


@pytest.mark.parametrize("name, bad", cases())
def test_wrong_types_are_refused_and_nothing_changes(kind: str, name: str, bad: Any) -> None:
    s = make(kind)
    s.add(text="keep this long text value", raw=b"keep these long bytes here")
    s.add(text="second", raw=b"2")
    before = [dict(s.entry(i)) for i in range(2)]
    nbytes, size = s.nbytes, s.size

    def unchanged() -> None:
        assert [dict(s.entry(i)) for i in range(2)] == before
        assert (len(s), s.nbytes, s.size) == (2, nbytes, size)
        s.validate()

    with pytest.raises(TypeError):
        s[name][0] = bad
    unchanged()
    with pytest.raises(TypeError):
        s[name][0:2] = ["fine" if name == "text" else b"fine", bad]
    unchanged()
    with pytest.raises(TypeError):
        s.entry(0)[name] = bad
    unchanged()
    with pytest.raises(TypeError):
        s.entry(0).update({"title": "fine", name: bad})
    unchanged()
    with pytest.raises(TypeError):
        s[name] = bad
    unchanged()
    with pytest.raises(TypeError):
        s.add({"title": "x", name: bad})
    unchanged()
    with pytest.raises(TypeError):
        s.find(name, bad)
    unchanged()


def test_unencodable_str_is_refused_and_nothing_changes() -> None:
    s = Doc(2)
    s.add(text="keep this long text value")
    with pytest.raises((UnicodeEncodeError, TypeError)):
        s.text[0] = "lone surrogate \ud800"
    assert s.text[0] == "keep this long text value"
    s.validate()


def test_index_arrays_and_masks_are_refused() -> None:
    s = Doc(4)
    s.add(text="a")
    with pytest.raises(TypeError):
        s.text[[0, 1]]
    with pytest.raises(TypeError):
        s.raw[[True, False, False, False]] = b"x"
    assert s.raw[0] == b""


# --- slices and find ---------------------------------------------------------------------------------------


def test_slices_return_lists_and_assign(kind: str) -> None:
    s = make(kind)
    for v in STRS[:8]:
        s.add(text=v, raw=v.encode())
    got = s.text[0:8:2]
    assert type(got) is list and got == STRS[0:8:2]
    assert s.raw[7:0:-3] == [v.encode() for v in STRS[7:0:-3]]
    assert s.text[100:200] == []
    s.raw[1:4] = [b"p" * 20, b"", b"\x00"]
    assert s.raw[1:4] == [b"p" * 20, b"", b"\x00"]
    s.text[::3] = "broadcast value, long enough"
    assert s.text[0:8:3] == ["broadcast value, long enough"] * 3
    assert s.text[1] == STRS[1]
    with pytest.raises(ValueError):
        s.text[0:3] = ["a", "b"]
    with pytest.raises(ValueError):
        s.raw[0:3] = [b"a", b"b", b"c", b"d"]
    assert s.raw[0:3] == [b"", b"p" * 20, b""]
    s.validate()


def test_find(kind: str) -> None:
    s = make(kind)
    for v in ["x" * 30, "y", "x" * 30, "", "x" * 29]:
        s.add(text=v, raw=v.encode())
    assert s.find("text", "x" * 30).tolist() == [0, 2]
    assert s.find("raw", b"y").tolist() == [1]
    assert s.find("text", "").tolist() == [3]
    assert s.find("text", "absent").tolist() == []
    del s[0]
    assert s.find("text", "x" * 30).tolist() == [2]


def test_container_metadata_and_repr() -> None:
    s = Doc(3)
    s.add(text="shown\x00in repr")
    assert s.text.dtype == cs.Str and s.raw.dtype == cs.Bytes
    assert s.text.name == "text" and len(s.text) == 3
    assert "text" in repr(s.text) and "Entry" in repr(s.entry(0))


# --- read-only str members ---------------------------------------------------------------------------------

RO = "read-only value that is longer than fifteen bytes"


def test_read_only_written_at_creation(kind: str) -> None:
    s = make(kind)
    i = s.add(ro=RO)
    assert s.ro[i] == RO
    j = s.add()
    s["ro"] = RO + "!"  # the shorthand writes the entry most recently created
    assert (s.ro[i], s.ro[j]) == (RO, RO + "!")
    s.validate()


def test_read_only_refused_through_containers_and_entries(kind: str) -> None:
    s = make(kind)
    i = s.add(ro=RO)
    for call in (
        lambda: s.ro.__setitem__(i, "x"),
        lambda: s.ro.__setitem__(slice(0, 2), ["x", "y"]),
        lambda: s.entry(i).__setitem__("ro", "x"),
        lambda: s.entry(i).update({"text": "also refused", "ro": "x"}),
    ):
        with pytest.raises(TypeError, match="ro"):
            call()
        assert s.ro[i] == RO and s.text[i] == LONG_DEFAULT
    s.validate()


def test_read_only_in_keyed_store() -> None:
    pool = cs.KeyedStore(Doc, key=cs.Str)
    pool["k" * 20] = {"ro": RO, "text": "v"}
    assert pool["k" * 20]["ro"] == RO
    e = pool["k" * 20]
    pool["k" * 20] = {"ro": RO + " again"}  # replacing rewrites read-only members too
    assert e["ro"] == RO + " again" and e["text"] == LONG_DEFAULT
    with pytest.raises(TypeError):
        pool["k" * 20, "ro"] = "x"
    with pytest.raises(TypeError):
        pool["k" * 20]["ro"] = "x"
    with pytest.raises(TypeError):
        pool.members["ro"][pool.index_of("k" * 20)] = "x"
    assert pool["k" * 20, "ro"] == RO + " again"
    pool.validate()


# --- keyed and dynamic stores ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [cs.Str, cs.Bytes, cs.i64])
def test_keyed_store_round_trips(key: Any) -> None:
    pool = cs.KeyedStore(Doc, key=key, log2size=1)
    conv = {cs.Str: lambda k: "key %d \x00é" % k * 3, cs.Bytes: lambda k: b"k%d\x00" % k * 5, cs.i64: int}[key]
    model = {}
    for k in range(20):
        vals = {"text": STRS[k % len(STRS)], "raw": BYTES[k % len(BYTES)]}
        pool[conv(k)] = vals
        model[conv(k)] = vals
    for k in range(0, 20, 3):
        pool[conv(k)]["text"] = "rewritten %d" % k * 4
        model[conv(k)]["text"] = "rewritten %d" % k * 4
    for k in range(1, 20, 4):
        snap = pool.pop(conv(k))
        assert snap["text"] == model[conv(k)]["text"] and snap["raw"] == model.pop(conv(k))["raw"]
    assert len(pool) == len(model)
    for k, vals in model.items():
        assert pool[k, "text"] == vals["text"] and pool[k, "raw"] == vals["raw"]
        assert pool[k] == {"ref": 0, "title": "t", "ro": "", **vals}
    assert pool.find("text", STRS[2]) == [k for k, v in model.items() if v["text"] == STRS[2]]
    pool.validate()


@pytest.mark.parametrize("n", [15, 16, 26, 27, 253, 254, 255, 256, 1000])
def test_lengths_around_the_view_formats(kind: str, n: int) -> None:
    # <= 15 bytes inline; 16..254 keep 11 bytes in the view; longer ones keep 7 (the rest in the chunk buffer)
    s = make(kind, size=4)
    a, b = s.add(), s.add()
    text = "".join(chr(ord("a") + k % 26) for k in range(n))
    multi = "é" * (n // 2) + "x" * (n % 2)  # 2-byte characters straddle every prefix boundary
    s.text[a] = text
    s.raw[b] = text.encode()
    s.text[b] = multi
    assert (s.text[a], s.raw[b], s.text[b]) == (text, text.encode(), multi)
    for other in ["", "y" * 20, "z" * 254, "w" * 255, "v" * 300]:  # rewrite across formats, and back
        s.text[a] = other
        assert s.text[a] == other and s.text[b] == multi
        s.text[a] = text
        assert s.text[a] == text
    assert s.find("text", text).tolist() == [a]
    s.validate()
