"""No caller input may panic the engine, and no panic may reach Python: random values and keys thrown at
every entry point raise only the documented exceptions (a PanicException or SystemError fails)."""

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import compactstore as cs


class Rec(cs.StaticStore):
    i: cs.i64
    u: cs.u8
    f: cs.f32
    b: cs.bool_
    a: cs.Array(cs.i16, 3)  # type: ignore[valid-type]
    s: str
    c: cs.Interned(cs.Str)  # type: ignore[valid-type]
    o: cs.Optional(cs.u32)  # type: ignore[valid-type]
    x: cs.Object
    r: cs.Member(cs.i32, read_only=True)  # type: ignore[valid-type]


ALLOWED = (TypeError, ValueError, OverflowError, IndexError, KeyError, AttributeError, BufferError)

values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.binary(max_size=40),
    st.lists(st.integers(min_value=-(2**20), max_value=2**20), max_size=4), st.tuples(st.integers()),
    st.just(np.int64(3)), st.just(np.float32(1.5)), st.just(np.arange(3)), st.just(np.bool_(True)),
    st.just(object()), st.just(slice(None, None, -2)), st.just(np.array([True, False])),
)
keys = st.one_of(values, st.tuples(values, values), st.sampled_from(list("iufbasocxr") + ["nope"]))


def poke(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except ALLOWED:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), keys, values), max_size=12))
def test_random_calls_raise_only_api_exceptions(calls: list[tuple[int, Any, Any]]) -> None:
    s = Rec(4)
    d = cs.DynamicStore(Rec, log2size=1)
    pool = cs.KeyedStore(Rec, key=cs.Str)
    for store in (s, d):
        store.add(i=1, s="x" * 20, c="k")
    pool["a"] = {"i": 1}
    for op, key, value in calls:
        store = (s, d)[op % 2]
        name = key if isinstance(key, str) else "i"
        if op < 2:
            poke(lambda: store[name].__setitem__(key if not isinstance(key, str) else 0, value))
            poke(lambda: store[name][key if not isinstance(key, str) else 0])
        elif op < 4:
            poke(lambda: store.entry(0).__setitem__(key, value))
            poke(lambda: store.entry(0)[key])
        elif op < 6:
            poke(lambda: store.add({name: value}))
            poke(lambda: store.__delitem__(value))
            poke(lambda: store.find(name, value))
        elif op < 8:
            poke(lambda: pool.__setitem__(key, value))
            poke(lambda: pool.__setitem__(key, {name: value}))
            poke(lambda: pool[key])
            poke(lambda: pool.pop(key, None))
        else:
            poke(lambda: store.reset(value))
            poke(lambda: cs.DynamicStore(Rec, log2size=value))
            poke(lambda: Rec(value))
    for store in (s, d):
        store.validate()
    pool.validate()


def test_impossible_sizes_are_value_errors_not_aborts() -> None:
    class Wide(cs.StaticStore):
        a: cs.i64
        b: cs.Array(cs.f64, 64)  # type: ignore[valid-type]

    for size in (2**33, 2**40, 2**62):
        try:
            Wide(size)
        except ValueError as e:
            assert "size" in str(e) or "allocate" in str(e)
        else:
            raise AssertionError(f"Wide({size}) was allocated")
    for k in (32, 40, 2**70):
        try:
            cs.DynamicStore(Wide, log2size=k)
        except (ValueError, OverflowError):
            pass
        else:
            raise AssertionError(f"log2size {k} accepted")
