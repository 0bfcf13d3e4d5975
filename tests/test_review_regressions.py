"""Regressions for bugs a review found; each test's first comment names the bug it pins."""

import copy
import gc
import subprocess
import sys
import textwrap
import weakref
from typing import Any

import numpy as np
import pytest

import compactstore as cs


class S(cs.StaticStore):
    o: cs.Object
    a: cs.i64
    b: cs.bool_
    t: str


class Node:
    pass


def test_gc_never_clears_an_object_shared_by_a_broadcast_write() -> None:
    # Bug: m[a:b] = obj put one Python reference in two slots and the collector was told about it twice,
    # so it cleared (and could crash on) an object that was still reachable. Run in a child: a regression
    # would segfault.
    code = textwrap.dedent(
        """
        import functools, gc, compactstore as cs
        class S(cs.StaticStore):
            o: cs.Object
        def f():
            s = S(4); s.add(); s.add()
            p = functools.partial(print, "called", s)
            s["o"][0:2] = p
            del s; gc.collect()
            p()
        f()
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "called" in done.stdout, done.stderr


@pytest.mark.parametrize("dynamic", [False, True])
def test_gc_keeps_objects_of_a_copied_store(dynamic: bool) -> None:
    # Bug: copy() shared one Python reference between the two stores; both reported it and the collector
    # emptied a live object that referenced both.
    store: Any = cs.DynamicStore(S) if dynamic else S(2)
    n = Node()
    store.add(o=n)
    other = store.copy()
    n.a, n.b = store, other  # type: ignore[attr-defined]
    del store, other
    gc.collect()
    assert sorted(vars(n)) == ["a", "b"]
    assert n.a.o[0] is n and n.b.o[0] is n  # type: ignore[attr-defined]


def test_gc_keeps_an_object_broadcast_into_two_slots() -> None:
    # Bug: the same, for one reference in two slots of one store (m[a:b] = obj).
    n = Node()
    s = S(4)
    s.add()
    s.add()
    s["o"][0:2] = n
    n.s = s  # type: ignore[attr-defined]
    del s
    gc.collect()
    assert sorted(vars(n)) == ["s"]


def test_huge_array_length_is_a_type_error_not_an_abort() -> None:
    # Bug: an Array of 2**31 elements aborted the process (allocation of its default), 2**61 panicked.
    for n in (2**17, 2**31, 2**61):
        with pytest.raises(TypeError):
            cs.make_store("X", {"a": cs.Array(cs.u64, n)})


def test_entry_eq_does_not_read_a_slot_reused_by_the_other_mappings_code() -> None:
    # Bug: e == mapping checked the entry was live, then ran the mapping's __len__, which could free and
    # reuse the slot, and compared the new entry's data.
    s = S(2)
    s.add(a=1)
    e = s.entry(0)

    class Sneaky(dict):  # type: ignore[type-arg]
        def __len__(self) -> int:
            del s[0]
            s.add(a=42)
            return dict.__len__(self)

    with pytest.raises(KeyError):
        e == Sneaky(o=None, a=42, b=False, t="")  # noqa: B015


def test_entry_of_a_released_chunk_raises_key_error() -> None:
    # Bug: an Entry of a chunk that retract() released raised ValueError, not KeyError.
    d = cs.DynamicStore(S, log2size=1)
    for k in range(4):
        d.add(a=k)
    e = d.chunks[1].entry(1)
    del d[3]
    del d[2]
    assert d.retract() == 1
    with pytest.raises(KeyError):
        e["a"]


@pytest.mark.parametrize("name", ["b", "t"])
def test_huge_int_into_a_member_that_takes_no_ints_is_a_type_error(name: str) -> None:
    # Bug: 2**64 into a bool or str member raised OverflowError; an int there is the wrong type.
    s = S(1)
    s.add()
    with pytest.raises(TypeError):
        s[name][0] = 2**64


def test_reset_to_the_same_size_is_allowed_while_a_view_exists() -> None:
    # Bug: reset(n) with n == size resets in place, yet was refused with BufferError under a live view.
    s = S(3)
    s.add(a=5)
    view = np.asarray(s.a)
    s.reset(3)
    assert view[0] == 0 and len(s) == 0
    with pytest.raises(BufferError):
        s.reset(4)


def test_del_on_a_container_is_a_type_error() -> None:
    s = S(1)
    with pytest.raises(TypeError):
        del s.a[0]


def test_private_copy_argument_refuses_another_schema() -> None:
    class Other(cs.StaticStore):
        z: cs.f64

    with pytest.raises(TypeError):
        Other(_copy_of=S(1))
    assert copy.copy(S(1)).size == 1


def test_chunk_view_does_not_rebind_to_a_regrown_chunk() -> None:
    # Bug: a chunk view kept only its position; after retract() and regrowth it silently showed the new
    # chunk at that position. It now sees its chunk was released (ValueError; its entries KeyError).
    d = cs.DynamicStore(S, log2size=1)
    for k in range(4):
        d.add(a=k)
    chunk = d.chunks[1]
    e = chunk.entry(0)
    assert chunk.a[0] == 2
    del d[3]
    del d[2]
    d.retract()
    for k in range(2):
        d.add(a=10 + k)
    assert d.a[2] == 10
    with pytest.raises(ValueError):
        chunk.a[0]
    with pytest.raises(KeyError):
        e["a"]
    assert d.chunks[1].a[0] == 10


def test_chunk_entry_bad_value_is_still_a_value_error() -> None:
    # The released-chunk mapping must not turn a chunk entry's own ValueError into a KeyError.
    class V(cs.StaticStore):
        v: cs.Array(cs.u8, 2)  # type: ignore[valid-type]

    d = cs.DynamicStore(V, log2size=1)
    d.add()
    e = d.chunks[0].entry(0)
    with pytest.raises(ValueError):
        e["v"] = [1, 2, 3]
