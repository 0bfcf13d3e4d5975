"""Allocation failures are `MemoryError`, never an abort, and change nothing.

Bug: under `RLIMIT_AS`, storing large `bytes` values into a small store aborted the process ("memory
allocation of ... bytes failed", SIGABRT) while growing a chunk's data buffer; other allocation failures
raised `ValueError: invalid argument: cannot allocate`. Each case runs in a subprocess whose address space is
capped a few hundred MiB above what it uses at the start, so the tests stay small and an abort fails the test
instead of killing pytest.
"""

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")

PRELUDE = """
import resource
import compactstore as cs
import numpy as np

class B(cs.StaticStore):
    n: cs.i64
    data: bytes
    tag: cs.Interned(cs.Bytes)

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")

MiB = 1 << 20
# Values made before the cap: the store's own copies and buffers are what the cap refuses.
big = b"x" * (100 * MiB)
small = b"kept value, longer than fifteen bytes"
limit = vm_bytes() + 500 * MiB
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))

def room(mib):
    # More room for checking what a refused call left (reading a 100 MiB value back makes two copies).
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + mib * MiB, resource.RLIM_INFINITY))
"""


def run(body: str) -> str:
    code = PRELUDE + textwrap.dedent(body) + "\nprint('OK')\n"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout}\n{p.stderr[-3000:]}"
    assert p.stdout.strip().endswith("OK"), p.stdout
    return p.stdout


def test_growing_bytes_data_raises_memory_error_and_changes_nothing() -> None:
    run(
        """
        s = B(16)
        for i in range(16):
            s.add(n=i, data=small)
        written = 0
        try:
            for i in range(16):
                s.data[i] = big
                written += 1
        except MemoryError as e:
            print("refused after", written, ":", e)
        else:
            raise AssertionError("every 100 MiB value fitted under the cap")
        assert 0 < written < 16
        room(400)
        assert len(s) == 16
        assert s.data[written] == small, "the refused write changed the slot"
        assert all(s.data[i] == big for i in range(written))
        assert all(s.data[i] == small for i in range(written + 1, 16))
        s.validate()
        # still usable: overwrite, delete, allocate again
        for i in range(written):
            s.data[i] = b"short"
        s.data[written] = big
        assert s.data[written] == big
        del s[3]
        assert s.add(n=99, data=b"again") == 3
        s.validate()
        """
    )


def test_add_to_dynamic_and_keyed_stores_raises_memory_error_and_allocates_nothing() -> None:
    run(
        """
        d = cs.DynamicStore(B, log2size=2)
        pool = cs.KeyedStore(B, key=cs.Str, log2size=2)
        for store in (d, pool):
            n, size = 0, d.size
            try:
                for i in range(64):
                    if store is d:
                        size = d.size
                        d.add(n=i, data=big)
                    else:
                        pool[f"k{i}"] = {"n": i, "data": big}
                    n += 1
            except MemoryError:
                pass
            else:
                raise AssertionError("every value fitted under the cap")
            assert len(store) == n > 0
            if store is d:
                assert d.size == size, "a refused add grew the store"
            if store is pool:
                assert f"k{n}" not in pool
            store.validate()
            # Reading 100 MiB back may not fit under the cap either: then a MemoryError (it was a
            # PanicException: PyO3's bytes constructor panics when Python cannot allocate).
            try:
                got = pool["k0", "data"] if store is pool else d.data[0]
            except MemoryError:
                pass
            else:
                assert got == big
                del got
            # free the memory again, then the store works
            if store is d:
                d.reset()
                d.add(n=1, data=small)
                assert d.data[0] == small
            else:
                pool.clear()
                pool["x"] = {"data": small}
                assert pool["x", "data"] == small
            store.validate()
        """
    )


def test_copies_huge_stores_and_interned_values_raise_memory_error() -> None:
    run(
        """
        import copy
        s = B(4)
        for i in range(2):
            s.add(n=i, data=big)
        for make in (s.copy, lambda: copy.deepcopy(s)):
            copies = []
            try:
                for _ in range(4):
                    copies.append(make())
            except MemoryError:
                pass
            else:
                raise AssertionError("four copies of a 200 MiB store under a 500 MiB cap")
            assert len(copies) < 2
            del copies
        assert len(s) == 2
        s.validate()
        for i in range(2):
            del s[i]
        # an interned value too large for the dictionary
        s.add(n=1)
        try:
            for _ in range(5):
                s.tag[0] = big
                s.tag[1] = big + b"1"
                s.tag[2] = big + b"2"
                s.tag[3] = big + b"3"
        except MemoryError:
            pass
        s.validate()
        # a list of 2**27 free slots (1 GiB as Rust usizes) for a 128 MiB store
        class Flags(cs.StaticStore):
            b: cs.bool_
        flags = Flags(2**27)
        try:
            flags.empty_indices()
        except MemoryError:
            pass
        else:
            raise AssertionError("2**27 free slots listed under the cap")
        del flags
        # allocation failures that used to be ValueError("cannot allocate")
        class Wide(cs.StaticStore):
            a: cs.Array(cs.f64, 64)
        for make in (lambda: Wide(2**24), lambda: cs.DynamicStore(Wide, log2size=24),
                     lambda: cs.KeyedStore(Wide, log2size=24)):
            try:
                make()
            except MemoryError as e:
                assert "cannot allocate" in str(e), e
            else:
                raise AssertionError("an 8 GiB store was allocated under the cap")
        """
    )


def test_a_slice_assignment_that_does_not_fit_changes_nothing() -> None:
    run(
        """
        for make in (lambda: B(8), lambda: cs.DynamicStore(B, log2size=2)):
            store = make()
            for i in range(8):
                store.add(n=i, data=small)
            for value in (big, [big] * 8):
                try:
                    store["data"][:] = value
                except MemoryError:
                    pass
                else:
                    raise AssertionError("800 MiB of values fitted under a 500 MiB cap")
                assert store["data"][:] == [small] * 8, "a refused slice assignment wrote some slots"
            store.validate()
            store["data"][:2] = big
            room(400)
            assert store["data"][1] == big and store["data"][2] == small
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
            del store
        """
    )
