"""The hand-written `m[i]` / `m[i] = v` slots release every reference they drop at once, as CPython does.

They used to run without telling PyO3 that the thread was attached, so whatever they dropped (a replaced
`cs.Object` value, the state of an error they raised) waited in PyO3's deferred-release pool until some other
call went through an ordinary PyO3 wrapper: replaced objects stayed alive, and failed writes piled up memory.
Each test below keeps the container in a variable and makes no other call into the package meanwhile.
"""

import gc
import os
import weakref

import compactstore as cs


class Held(cs.StaticStore):
    obj: cs.Object
    x: cs.f64


class Payload:
    """A weakly referenceable object that records its finalisation."""

    deleted = 0

    def __del__(self) -> None:
        Payload.deleted += 1


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_replaced_object_is_released_at_once() -> None:
    s = Held(4)
    s.add()
    obj = s.obj
    big = Payload()
    ref = weakref.ref(big)
    before = Payload.deleted
    obj[0] = big
    del big
    obj[0] = None  # drops the store's reference: nothing else holds the object
    assert ref() is None
    assert Payload.deleted == before + 1


def test_replaced_objects_do_not_pile_up() -> None:
    s = Held(4)
    s.add()
    obj = s.obj
    refs = []
    for _ in range(1000):
        p = Payload()
        refs.append(weakref.ref(p))
        obj[0] = p
        del p
    obj[0] = None
    assert sum(r() is not None for r in refs) == 0


def test_read_then_drop_releases() -> None:
    s = Held(4)
    s.add()
    obj = s.obj
    p = Payload()
    ref = weakref.ref(p)
    obj[1] = p
    del p
    got = obj[1]
    assert ref() is got
    del got
    obj[1] = None
    assert ref() is None


def test_failed_writes_hold_no_error_state() -> None:
    s = Held(4)
    s.add()
    x = s.x
    for _ in range(20_000):  # warm up pymalloc and the exception machinery
        try:
            x[99] = 1.0
        except IndexError:
            pass
    gc.collect()
    before = _rss()
    for _ in range(200_000):
        try:
            x[99] = 1.0
        except IndexError:
            pass
        try:
            x[0] = "a"
        except TypeError:
            pass
        try:
            x[99]
        except IndexError:
            pass
    grown = _rss() - before
    # Deferred error state cost ~15 MiB for 200k failures of each kind; released at once it costs nothing.
    assert grown < 2 * 1024 * 1024, grown
    assert x[0] == 0.0
