"""Defaults are written when a slot is first used, so untouched slots of a chunk stay untouched pages.

Bug: a `KeyedStore` (default log2size 16) of 20 f64 members with non-zero defaults held 10 MiB of RSS for
one key: every new chunk wrote its defaults into all 65,536 slots up front. A dynamic or keyed store's
chunk now fills a slot's defaults when the slot is allocated or written (a high-water mark per column);
a free slot above the mark still reads as the default through every read path. A `StaticStore` made by the
user keeps filling up front: `np.asarray(m)` of it is a zero-copy view of its memory.
"""

import itertools
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import compactstore as cs

MEMBERS = 20
Many = cs.make_store("Many", {f"m{j}": cs.Member(cs.f64, default=1.5) for j in range(MEMBERS)})


class Mixed(cs.StaticStore):
    x: cs.Member(cs.i32, default=-7)  # type: ignore[valid-type]
    a: cs.Member(cs.Array(cs.u8, 3), default=[1, 2, 3])  # type: ignore[valid-type]
    f: cs.Member(cs.Optional(cs.f32), default=0.5)  # type: ignore[valid-type]
    s: cs.Member(str, default="a default longer than fifteen bytes")  # type: ignore[valid-type]
    t: cs.Member(str, default="short")  # type: ignore[valid-type]


@pytest.mark.skipif(sys.platform != "linux", reason="RSS from /proc")
@pytest.mark.parametrize("kind", ["keyed", "dynamic"])
def test_one_entry_touches_a_page_per_member_not_the_whole_chunk(kind: str) -> None:
    code = f"""
        import compactstore as cs
        PAGE = 4096
        def resident_pages():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1])
        Many = cs.make_store("Many", {{f"m{{j}}": cs.Member(cs.f64, default=1.5) for j in range({MEMBERS})}})
        # The first store of a process pays one-time costs (lazy imports, caches, allocator arenas) that are
        # not the store's: a small store of the same kind is made and dropped first.
        Warm = cs.make_store("Warm", {{"w": cs.f64}})
        if {kind!r} == "keyed":
            w = cs.KeyedStore(Warm, log2size=4)
            w[1] = {{}}
            assert w[1, "w"] == 0.0 and w[1]["w"] == 0.0
        else:
            w = cs.DynamicStore(Warm, log2size=4)
            w.add()
            assert w.w[0] == 0.0
        del w
        before = resident_pages()
        if {kind!r} == "keyed":
            s = cs.KeyedStore(Many)  # chunks of 65,536 slots: 512 KiB per member
            s[1] = {{}}
            assert s[1, "m3"] == 1.5 and s[1]["m19"] == 1.5
        else:
            s = cs.DynamicStore(Many, log2size=16)
            s.add()
            assert s.m3[0] == 1.5
        print(resident_pages() - before)
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    touched = int(out.stdout.split()[-1])
    chunk_pages = MEMBERS * 65536 * 8 // 4096  # what filling the defaults up front touches: 2,560 pages
    # One page per member column where the entry lives, plus bookkeeping and allocator pages.
    assert touched <= 2 * MEMBERS + 24, f"{touched} pages touched (filling the chunk would touch {chunk_pages})"


@pytest.fixture(params=["dynamic", "keyed"])
def lazy_store(request: pytest.FixtureRequest) -> tuple[object, object]:
    """A store with 3 entries in a chunk of 16 slots, and the container of member `x` (slots 3.. free)."""
    if request.param == "dynamic":
        d = cs.DynamicStore(Mixed, log2size=4)
        for _ in range(3):
            d.add()
        return d, d
    pool = cs.KeyedStore(Mixed, log2size=4)
    for k in range(3):
        pool[k] = {}
    return pool, pool.members


def test_free_slots_read_as_defaults_through_every_read_path(lazy_store: tuple[object, object]) -> None:
    store, members = lazy_store
    x, a, f, s, t = (members[n] for n in ("x", "a", "f", "s", "t"))  # type: ignore[index]
    assert len(x) == 16
    assert x[15] == -7 and x[-1] == -7 and x[3] == -7
    assert list(a[15]) == [1, 2, 3] and a[15, 2] == 3
    assert f[9] == 0.5 and s[9] == "a default longer than fifteen bytes" and t[9] == "short"
    assert x[[15, 0, 4]].tolist() == [-7, -7, -7]
    assert x[np.arange(16) % 2 == 0].tolist() == [-7] * 8
    assert x[2:16:5].tolist() == [-7] * 3
    assert a[10:12].tolist() == [[1, 2, 3]] * 2
    assert list(itertools.islice(iter(x), 16)) == [-7] * 16
    assert np.asarray(x).tolist() == [-7] * 16
    assert np.asarray(a).tolist() == [[1, 2, 3]] * 16
    assert s[3:5] == ["a default longer than fifteen bytes"] * 2
    store.validate()  # type: ignore[attr-defined]
    if isinstance(store, cs.KeyedStore):
        assert sorted(store.find("x", -7)) == [0, 1, 2]
        assert store.find("s", "a default longer than fifteen bytes") == [0, 1, 2]
    else:
        assert store.find("x", -7).tolist() == [0, 1, 2]
        assert store.find("a", [1, 2, 3]).tolist() == [0, 1, 2]


def test_writes_to_free_slots_fill_the_gap_and_allocation_resets_them() -> None:
    d = cs.DynamicStore(Mixed, log2size=4)
    d.add()
    d.x[12] = 5  # a free slot far above the filled ones
    d.s[10] = "written to a free slot, long enough"
    assert d.x[12] == 5 and d.x[11] == -7 and d.x[5] == -7
    assert d.s[10] == "written to a free slot, long enough" and d.s[9] == "a default longer than fifteen bytes"
    d.x[[13, 14]] = [1, 2]
    assert d.x[13:16].tolist() == [1, 2, -7]
    d.validate()
    for _ in range(14):
        d.add()
    assert d.x[12] == -7 and d.s[10] == "a default longer than fifteen bytes", "allocation resets to defaults"
    d.validate()
    d.reset()
    assert d.x[12] == -7 and d.s[0] == "a default longer than fifteen bytes" and len(d) == 0
    d.validate()


def test_a_chunk_exported_zero_copy_holds_its_defaults_and_keeps_them() -> None:
    d = cs.DynamicStore(Mixed, log2size=4)
    d.add(x=1)
    chunk = d.chunks[0]
    view = np.asarray(chunk.x)  # zero-copy: the chunk fills every slot first
    assert view.tolist() == [1] + [-7] * 15
    d.reset()  # allowed with one chunk: the view must keep showing what the store reads
    assert view.tolist() == [-7] * 16
    assert d.x[0] == -7
    d.validate()


def test_from_columns_fills_only_the_loaded_slots() -> None:
    pool = cs.KeyedStore.from_columns(Mixed, np.arange(5), {"x": np.arange(5, dtype=np.int32)}, log2size=4)
    assert [pool[k, "x"] for k in range(5)] == [0, 1, 2, 3, 4]
    assert pool.members["x"][7] == -7 and pool.members["a"][2].tolist() == [1, 2, 3]
    assert sorted(pool.find("a", [1, 2, 3])) == [0, 1, 2, 3, 4]
    assert sorted(pool.find("x", 3)) == [3]
    pool.validate()


def test_a_static_store_still_fills_up_front_for_its_zero_copy_views() -> None:
    s = Mixed(4)
    view = np.asarray(s.x)
    assert view.tolist() == [-7] * 4
    s.reset()
    assert view.tolist() == [-7] * 4


@pytest.mark.skipif(sys.platform != "linux", reason="RSS from /proc")
def test_empty_str_and_bytes_defaults_touch_no_pages() -> None:
    # A str/bytes member with the empty default used to zero its (already zeroed) 16-byte views when its
    # column was made: 61 MiB resident for a 4M-slot static store with nothing written, 1 MiB for a keyed
    # store holding one key.
    code = """
        import compactstore as cs
        def resident_pages():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1])
        class Names(cs.StaticStore):
            name: str
            data: bytes
        before = resident_pages()
        s = Names(size=4_000_000)
        pool = cs.KeyedStore(Names)
        pool[1] = {}
        assert s.name[3_999_999] == "" and pool[1, "data"] == b""
        print(resident_pages() - before)
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    touched = int(out.stdout.split()[-1])
    views_pages = 2 * 4_000_000 * 16 // 4096  # what zeroing the views touched: 31,250 pages
    assert touched <= 256, f"{touched} pages touched (zeroing the views would touch {views_pages})"
