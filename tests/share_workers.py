"""Worker functions for tests/test_share.py: a module of its own so that spawn and forkserver workers
import it by name (a test module's functions would drag pytest into every worker)."""

from __future__ import annotations

import gc
import os
from typing import Any

from compactstore.bench.b6 import copies, file_pages

_STORE: Any = None


def init(store: Any) -> None:
    """Pool initializer: keep the store the worker was given."""
    global _STORE
    _STORE = store


def read_all_after_warming_up(twin: Any) -> dict[str, Any]:
    """`read_all` of the initializer's store, with `copies` counting only what the reading added: first the
    same reading of `twin`, another shared file of the same entries (the objects a reading makes and frees,
    of the same sizes, which under fork land in memory inherited from the parent and copy its pages, and
    grow the interpreter's arenas), then the count before, then the reading, then the count after. A copy
    of the store itself (a private copy instead of the shared mapping) would still show in full."""
    warm = read_all(twin)
    r = read_all()
    r["copies_before"] = warm["copies"]
    r["copies"] -= warm["copies"]
    return r


def read_all(store: Any = None, passes: int = 1) -> dict[str, Any]:
    """Read every member of every entry (the initializer's store unless one is given), `passes` times; a
    digest of the values, whether a write is refused, and the worker's copies after the reading."""
    s = _STORE if store is None else store
    n, fit, gen, names, cats, inputs = 0, 0.0, 0, 0, 0, 0
    for _ in range(passes):
        for k in s:
            e = s[k]
            fit += e["fitness"]
            gen += e["generation"]
            names += len(e["name"])
            cats += len(e["category"])
            inputs += int(e["inputs"][0])
            n += 1
    refused = ""
    if n:
        k = next(iter(s))
        try:
            s[k]["fitness"] = -1.0
        except TypeError as ex:
            refused = str(ex)
    # A full collection first, before every count (the warm-up's included): under fork, a collection walks every
    # object inherited from the parent (here a pytest process that has run many tests) and dirties their
    # pages. Whether the reading loop happened to trigger one is not the store's doing.
    gc.collect()
    file_rss, file_copied = file_pages(s.filename) if s.filename else (0, 0)
    return {
        "pid": os.getpid(),
        "n": n,
        "file_rss": file_rss,
        "file_copied": file_copied,
        "digest": [round(fit, 3), gen, names, cats, inputs],
        "refused": refused,
        "copies": copies(),
        "filename": s.filename,
        "mmap_mode": s.mmap_mode,
    }


def wait_and_read(store: Any, ready: Any, written: Any, q: Any) -> None:
    """Process target: say ready, wait for the creator's write, read the member it wrote."""
    ready.set()
    written.wait(60)
    k = next(iter(store))
    q.put((store[k, "fitness"], store.mmap_mode))


def exit_with(store: Any) -> int:
    """A pool task that reads a little and returns: the worker's later exit must leave the file."""
    return len(store)


def unlink_in_worker(store: Any) -> str:
    """Try to remove a shared store's file from a worker: the error's text, or "removed"."""
    try:
        store.unlink()
    except RuntimeError as e:
        return str(e)
    return "removed"


def record_type() -> Any:
    return Rec


import compactstore as cs  # noqa: E402


class Rec(cs.StaticStore):
    """A B2-like record: numbers, an array, a str and an interned str."""

    fitness: cs.f32
    generation: cs.i32
    alive: cs.bool_
    inputs: cs.Array(cs.u8, 4)  # type: ignore[valid-type]
    name: cs.Str
    category: cs.Interned(cs.Str)  # type: ignore[valid-type]


CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def make_pool(n: int) -> Any:
    """A keyed store of n records keyed by i64 (keys 10*i), with str and interned members."""
    import numpy as np

    rng = np.random.default_rng(n)
    keys = np.arange(n, dtype=np.int64) * 10
    names = [f"name-{i}-{'x' * (i % 17)}" for i in range(n)]
    return cs.KeyedStore.from_columns(
        Rec,
        keys,
        {
            "fitness": rng.random(n, dtype=np.float32),
            "generation": rng.integers(0, 1000, n, dtype=np.int32),
            "alive": rng.random(n) < 0.5,
            "inputs": rng.integers(0, 256, (n, 4), dtype=np.uint8),
            "name": names,
            "category": [CATEGORIES[i % 8] for i in range(n)],
        },
        key=cs.i64,
    )


def member_address_and_sum(store: Any, name: str) -> tuple[int, float, bool, str]:
    """In a Ray task: where a member's values are (their address), their sum, whether numpy may write
    them, and the path of the mapping that holds that address (/proc/self/maps)."""
    import numpy as np

    a = np.asarray(store.members[name]) if hasattr(store, "members") else np.asarray(store[name])
    addr = a.__array_interface__["data"][0]
    where = ""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            if lo <= addr < hi:
                where = parts[5].strip() if len(parts) > 5 else "(anonymous)"
                break
    return addr, float(a.sum()), bool(a.flags.writeable), where


def write_refused(store: Any) -> str:
    k = next(iter(store))
    try:
        store[k, "fitness"] = 1.0
    except TypeError as e:
        return str(e)
    return "written"


def write_refused_static(store: Any) -> str:
    try:
        store.generation[0] = 1
    except TypeError as e:
        return str(e)
    return "written"


def partition(path: str) -> Any:
    """A dask partition: a store file, mapped read-only and handed over as a pandas DataFrame."""
    return cs.load(path, mmap_mode="r").to_pandas()
