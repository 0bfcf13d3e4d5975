"""Resident memory of a dynamic or keyed store just past a chunk boundary is what its entries need, not whole chunks.

A store of 65,537 entries in chunks of 2^16 slots has two chunks, the second holding one entry: `nbytes`
counts 131,072 slots, nearly twice what the entries need. Fixed-width columns are allocated zero-filled and
filled lazily (a high-water mark per column), so the second chunk's pages that no entry uses should never be
resident. Each store here is built in a fresh interpreter by the benchmark's own worker
(`python -m compactstore.bench.workers`, job "slack"), with every member of every entry written with a real
value; RSS is read from /proc/self/statm.

The shape is the 38 numeric members of the benchmark's 40-member record (10 i64, 10 f32, 10 u8, 8 i16 =
146 bytes an entry), each with default 1, so a chunk that filled its defaults when made would touch all of
its slots. The bound: RSS gained ≤ 1.12 × the entries' fixed-width bytes (N × 146, plus N × 8 for a keyed
store's i64 keys), plus, for a keyed store, its hash table (5 bytes a bucket, a power-of-two number of
buckets at most 7/8 full: 655,360 bytes for 65,537 keys), whose size follows the key count, not the chunks.
The 12% covers a page per column, the occupancy bits and the interpreter's own noise.

The same bound is held against a `StaticStore` of 131,072 slots with the same 65,537 entries: a static store
writes its non-zero defaults into every slot when made, so it exceeds the bound about twice over; this is
what the lazy stores would measure if their chunks were filled up front, and shows that the test can fail.

Two allocator conditions are fixed by the worker so that the figure is the store's, not the process's
history:

- a throwaway store of the same size is built and freed first, so that one-time costs of the process (the
  first large slice write maps about 1.2 MB that a second store does not add) are not counted;
- glibc's mmap threshold is pinned at its default 128 KiB (`mallopt(M_MMAP_THRESHOLD)`) for the main test.
  Unpinned, freeing a block of more than 128 KiB raises the threshold to that block's size, and a buffer
  under it then comes from the heap, where `calloc` writes zeros over recycled memory. Column buffers of
  64 KiB or more are anonymous mappings of their own, so the store does not depend on it:
  `test_after_a_large_free` measures the unpinned case against the same bound.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from compactstore.bench.cli import run_worker
from compactstore.bench.slack import table_bytes

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="RSS from /proc, glibc's mallopt")

N = 65_537  # the second chunk of 2^16 slots holds one entry: the worst case for chunk slack
LOG2SIZE = 16
BOUND = 1.12
PIN = 128 * 1024


def measure(alt: str, pinned: bool = True) -> dict[str, Any]:
    return run_worker({"kind": "slack", "alt": alt, "shape": "numeric38", "n": N, "log2size": LOG2SIZE,
                       "seed": 1, "mmap_threshold": PIN if pinned else None, "warm_n": N}, timeout=120)


def bound(res: dict[str, Any]) -> float:
    """1.12 × the entries' fixed-width bytes (numeric members, and keys of a keyed store) + the hash table."""
    fixed = res["numeric_bytes"] + res["key_bytes"]
    return float(BOUND * fixed + res["table_bytes"])


@pytest.fixture(scope="module")
def eager() -> dict[str, Any]:
    res = measure("static")
    assert res["mmap_threshold_pinned"], "glibc's mallopt is not available"
    return res


@pytest.mark.parametrize("alt", ["keyed", "dynamic"])
def test_a_store_one_entry_past_a_chunk_holds_what_its_entries_need(alt: str, eager: dict[str, Any]) -> None:
    res = measure(alt)
    assert res["n"] == N and res["nbytes"] > 1.5 * res["numeric_bytes"]  # nbytes counts both whole chunks
    limit = bound(res)
    assert res["rss_gained"] <= limit, (
        f"{alt} store of {N:,} entries: RSS gained {res['rss_gained']:,} B > {limit:,.0f} B "
        f"({res['rss_gained'] / (res['numeric_bytes'] + res['key_bytes']):.3f}× its fixed-width bytes)"
    )
    # the bound discriminates: a store whose chunks were filled when made (a StaticStore of the same
    # 131,072 slots holding the same entries) exceeds it
    assert eager["numeric_bytes"] == res["numeric_bytes"]
    static_limit = BOUND * eager["numeric_bytes"] + (res["table_bytes"] if alt == "keyed" else 0)
    assert eager["rss_gained"] > 1.5 * static_limit, (
        f"an eagerly filled StaticStore gained only {eager['rss_gained']:,} B (bound {static_limit:,.0f} B): "
        "the measurement does not see untouched pages"
    )


@pytest.mark.parametrize("alt", ["keyed", "dynamic"])
def test_after_a_large_free(alt: str) -> None:
    res = measure(alt, pinned=False)
    assert res["rss_gained"] <= bound(res), (
        f"{alt}: RSS gained {res['rss_gained']:,} B > {bound(res):,.0f} B "
        f"({res['rss_gained'] / (res['numeric_bytes'] + res['key_bytes']):.3f}× its fixed-width bytes)"
    )


def test_the_hash_table_share_is_the_documented_one() -> None:
    # 65,537 keys need 131,072 buckets (65,536 × 7/8 < 65,537 ≤ 131,072 × 7/8), 5 bytes each
    assert table_bytes(N) == 131_072 * 5
    assert table_bytes(57_344) == 65_536 * 5 and table_bytes(57_345) == 131_072 * 5
