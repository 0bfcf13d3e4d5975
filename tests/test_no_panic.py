"""No caller input may panic the engine, and no panic may reach Python: random values and keys thrown at
every entry point raise only the documented exceptions (a PanicException or SystemError fails)."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
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


# A size the engine accepts is allocated, and Rec(n) makes ~32 bytes a slot resident at once (its str and
# object columns): a random n of 3e8 filled 10 GB. The random calls keep to what costs little — sizes up to
# 2**SMALL_LOG2 and sizes the engine refuses before allocating; test_large_sizes_fail_cleanly tries the
# accepted large sizes under a memory limit, in a subprocess.
SMALL_LOG2 = 16
MAX_SIZE, MAX_LOG2SIZE = 2**32, 31  # the engine's limits (checked in test_large_sizes_fail_cleanly)


def cheap(n: Any, log2: bool = False) -> bool:
    """Whether a store of `n` slots (or 2**n with `log2`) costs little memory or is refused outright."""
    if not isinstance(n, (int, np.integer)):
        return True
    small, most = (SMALL_LOG2, MAX_LOG2SIZE) if log2 else (2**SMALL_LOG2, MAX_SIZE)
    return not small < int(n) <= most


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
            if cheap(value, log2=store is d):
                poke(lambda: store.reset(value))
            if cheap(value, log2=True):
                poke(lambda: cs.DynamicStore(Rec, log2size=value))
            if cheap(value):
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


# Run in a child whose address space may grow by HEADROOM bytes past what the interpreter has mapped once
# it has imported everything: each large store below either fits or fails to allocate, cleanly.
HEADROOM = 512 << 20
LARGE_SIZES_CHILD = f"""
import resource
from test_no_panic import MAX_LOG2SIZE, MAX_SIZE, Rec, cs

def vm_bytes():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))

_, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + {HEADROOM}, hard))

def attempt(what, make):
    try:
        make()
    except MemoryError:
        print(what, "memory", sep="\\t")
    except ValueError as e:
        print(what, "memory" if "allocate" in str(e) else f"refused: {{e}}", sep="\\t")
    else:
        print(what, "ok", sep="\\t")

s, d = Rec(4), cs.DynamicStore(Rec, log2size=1)
for n in (2**20, 2**24, 2**26, 2**30, MAX_SIZE, MAX_SIZE + 1):
    attempt(f"Rec({{n}})", lambda: Rec(n))
    attempt(f"reset({{n}})", lambda: s.reset(n))
    s.validate()
for k in (20, 24, 26, 30, MAX_LOG2SIZE, MAX_LOG2SIZE + 1):
    attempt(f"log2size={{k}}", lambda: cs.DynamicStore(Rec, log2size=k))
    attempt(f"reset(log2size={{k}})", lambda: d.reset(k))
    d.validate()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc/self/status are Linux's")
def test_large_sizes_fail_cleanly() -> None:
    """Stores the engine accepts but memory cannot hold raise (ValueError or MemoryError), never abort, and
    leave the store they were to replace valid; sizes past the engine's limits are refused as such."""
    done = subprocess.run(
        [sys.executable, "-c", LARGE_SIZES_CHILD],
        cwd=Path(__file__).resolve().parent, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    got = dict(line.split("\t") for line in done.stdout.splitlines())
    assert got["Rec(1048576)"] == "ok" and got["log2size=20"] == "ok", got
    assert got[f"Rec({MAX_SIZE})"] == "memory" and got[f"log2size={MAX_LOG2SIZE}"] == "memory", got
    assert got[f"Rec({MAX_SIZE + 1})"].startswith("refused") and "size" in got[f"Rec({MAX_SIZE + 1})"], got
    assert got[f"log2size={MAX_LOG2SIZE + 1}"].startswith("refused"), got
    assert got[f"reset({MAX_SIZE + 1})"].startswith("refused"), got
