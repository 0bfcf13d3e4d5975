"""The hot paths of issue 16: `m[i]` on the containers of every store kind, `pool[k, name]`, `pool[k]` and
`pool[k][name]`, and entries made from dicts, each against a plain-Python model, including the error paths
the hand-written slots hand to the general ones."""

from __future__ import annotations

from typing import Any

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
