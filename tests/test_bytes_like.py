"""A bytes member takes any bytes-like value (`bytearray`, `memoryview`) as the bytes it holds."""

import array

import numpy as np
import pytest

import compactstore as cs


class B(cs.StaticStore):
    data: cs.Bytes
    tag: cs.Interned(cs.Bytes)
    maybe: cs.Optional(cs.Bytes)
    text: cs.Str


@pytest.mark.parametrize(
    "value",
    [bytearray(b"abc"), memoryview(b"abc"), memoryview(bytearray(b"xabc"))[1:], bytearray(b"a\0" * 300)],
)
def test_bytes_members_take_bytes_like(value: object) -> None:
    s = B(4)
    i = s.add(data=value, tag=value, maybe=value)
    expected = bytes(value)  # type: ignore[call-overload]
    assert s.data[i] == expected and type(s.data[i]) is bytes
    assert s.tag[i] == expected
    assert s.maybe[i] == expected
    s.data[i] = bytearray(b"z")
    assert s.data[i] == b"z"
    e = s.entry(i)
    e["maybe"] = memoryview(b"mv")
    assert e["maybe"] == b"mv"


def test_memoryview_of_other_formats_gives_its_bytes() -> None:
    s = B(2)
    a = array.array("i", [1, 2])
    i = s.add(data=memoryview(a))
    assert s.data[i] == a.tobytes()
    i = s.add(data=memoryview(np.arange(3, dtype=np.uint8)))
    assert s.data[i] == b"\0\1\2"


def test_str_member_refuses_bytes_like() -> None:
    s = B(2)
    i = s.add(text="keep")
    for value in (bytearray(b"abc"), memoryview(b"abc")):
        with pytest.raises(TypeError):
            s.text[i] = value
    assert s.text[i] == "keep"


def test_keyed_bytes_member_takes_bytearray() -> None:
    pool = cs.KeyedStore(B, key=cs.i64)
    pool[1] = {"data": bytearray(b"k1")}
    assert pool[1, "data"] == b"k1"
    pool[1, "data"] = memoryview(b"k2")
    assert pool[1]["data"] == b"k2"
