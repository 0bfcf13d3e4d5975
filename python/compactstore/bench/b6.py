"""B6: one store read by several worker processes, under each ``multiprocessing`` start method.

The case of pytorch/pytorch#13246 (DataLoader workers copy the dataset): the parent holds 1M B2 records,
and 4 worker processes each read every entry, member by member. What matters is what each worker
*copies*: memory that is its own rather than shared with the parent.

Copies are counted from ``/proc/self/smaps``: the ``Private_Dirty`` pages of anonymous mappings (the
heap, pymalloc's arenas, big ``malloc`` blocks: a forked page written by a reference count, or an
unpickled copy) plus the ``Anonymous`` pages of file mappings (copy-on-write copies of a mapped file's
pages). Not USS or ``Private_Dirty`` alone: a clean page of a ``/dev/shm`` file that only one process
maps counts as private there, although nothing was copied.

Each worker's count at the end of its reading is compared with that of an *idle twin*: the same worker,
started the same way, given a 1-entry object of the same kind and reading it the same way. The
difference is what the data cost the worker: the interpreter's own start-up, imports and the reading
loop's temporaries are in both.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from typing import Any, Iterator

from .workers import build_mixed, mixed_data, rss, settle


def trim() -> None:
    """Hand the C heap's free memory back to the system (glibc ``malloc_trim``)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


METHODS = ("fork", "forkserver", "spawn")
B2_MEMBERS = ("fitness", "generation", "num_codes", "alive", "inputs", "name", "category")


def _smaps() -> Iterator[tuple[str, bool, str, int]]:
    """``(path, anonymous, field, bytes)`` for every size line of ``/proc/self/smaps``: the mapping's path
    (``""`` for an anonymous one), whether it is anonymous memory (no file, or ``[heap]``, ``[stack]``...),
    the field (``"Rss:"``, ``"Private_Dirty:"``, ``"Anonymous:"``...) and its value in bytes."""
    path, anon = "", True
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if not first.endswith(":"):  # a mapping's header: address perms offset dev inode [path]
                parts = line.split(maxsplit=5)
                path = parts[5].strip() if len(parts) > 5 else ""
                anon = parts[4] == "0" and (path == "" or path.startswith("["))
            elif line.rstrip().endswith(" kB"):
                yield path, anon, first, int(line.split()[1]) * 1024


def copies() -> int:
    """Bytes this process has copied rather than shares: ``Private_Dirty`` of anonymous mappings plus
    ``Anonymous`` of file mappings, from ``/proc/self/smaps``."""
    return sum(b for _, anon, field, b in _smaps()
               if field == ("Private_Dirty:" if anon else "Anonymous:"))


def file_pages(path: str) -> tuple[int, int]:
    """``(Rss, Anonymous)`` bytes of this process's mappings of the file at ``path``: the pages of it that
    are resident, and those of them it has copied (written, copy-on-write)."""
    rss = sum(b for p, _, field, b in _smaps() if p == path and field == "Rss:")
    copied = sum(b for p, _, field, b in _smaps() if p == path and field == "Anonymous:")
    return rss, copied


# --------------------------------------------------------------------------------------------------------
# the objects a worker reads, and how it reads them (every entry, every member)


class NumpyIndex:
    """numpy columns and a ``{ref: row}`` dict: the usual hand-made columnar store."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.cols = {name: data[name].copy() for name in B2_MEMBERS}
        self.index = {ref: i for i, ref in enumerate(data["ref"].tolist())}


def read_all(obj: Any) -> int:
    """Read every member of every entry; the number of entries read."""
    n = 0
    if isinstance(obj, dict):
        for k in obj:
            e = obj[k]
            for name in B2_MEMBERS:
                e[name]
            n += 1
    elif isinstance(obj, NumpyIndex):
        cols = [obj.cols[name] for name in B2_MEMBERS]
        for k in obj.index:
            i = obj.index[k]
            for c in cols:
                c[i]
            n += 1
    else:  # a compactstore KeyedStore
        for k in obj:
            e = obj[k]
            for name in B2_MEMBERS:
                e[name]
            n += 1
    return n


def _worker(obj: Any, q: Any) -> None:
    """A worker process's target: note when the object arrived, read it all, report copies."""
    got = time.time()
    try:
        n = read_all(obj)
        trim()  # no gc.collect(): it would write every container's header, a copy of its own
        q.put({"pid": os.getpid(), "got": got, "read": n, "copies": copies(), "end": time.time()})
    except BaseException as e:  # report, never hang the parent
        q.put({"pid": os.getpid(), "error": repr(e)})


def build(alt: str, n: int, seed: int) -> Any:
    if alt == "dict":
        return build_mixed("dict", mixed_data(n, seed))
    if alt == "numpy_index":
        return NumpyIndex(mixed_data(n, seed))
    if alt == "cs_shared":
        return build_mixed("cs_keyed", mixed_data(n, seed)).share()
    raise ValueError(f"unknown alternative {alt!r}")


def run_workers(method: str, obj: Any, workers: int) -> list[dict[str, Any]]:
    """Start ``workers`` processes under ``method``, each reading ``obj``; their reports."""
    ctx = mp.get_context(method)
    q = ctx.Queue()
    t0 = time.time()
    procs = [ctx.Process(target=_worker, args=(obj, q)) for _ in range(workers)]
    for p in procs:
        p.start()
    out = [q.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    for r in out:
        if "error" in r:
            raise RuntimeError(f"a {method} worker failed: {r['error']}")
        r["startup"] = r["got"] - t0
    return out


def job_b6(alt: str, n: int, workers: int, seed: int) -> dict[str, Any]:
    """Per start method: the copies each worker made (over its idle twin's), its start-up time."""
    tiny = build(alt, 1, seed + 1)
    settle()
    before = rss()
    t = time.perf_counter()
    obj = build(alt, n, seed)
    built = time.perf_counter() - t
    settle()
    # The store's size: the file every worker maps (compactstore), else the memory the build holds.
    size = os.path.getsize(obj.filename) if alt == "cs_shared" else rss() - before
    out: dict[str, Any] = {"store_bytes": size, "build_s": built, "methods": {}}
    try:
        for method in METHODS:
            if method not in mp.get_all_start_methods():
                continue
            idle = run_workers(method, tiny, workers)
            real = run_workers(method, obj, workers)
            base = max(r["copies"] for r in idle)
            gained = [r["copies"] - base for r in real]
            out["methods"][method] = {
                "copies_per_worker": max(gained),
                "copies_each": gained,
                "idle_copies": base,
                "startup_s": max(r["startup"] for r in real),
                "read_s": max(r["end"] - r["got"] for r in real),
                "entries_read": [r["read"] for r in real],
            }
    finally:
        if alt == "cs_shared":
            obj.unlink()
            tiny.unlink()
    return out


# --------------------------------------------------------------------------------------------------------
# the section of the report

B6_ALTS = [
    ("dict", "dict of dicts ({ref: {member: value}})"),
    ("numpy_index", "numpy columns + {ref: row} dict"),
    ("cs_shared", "compactstore KeyedStore, s.share()"),
]


def b6_steps(sz: Any, sec: Any) -> list[tuple[str, Any]]:
    from .cli import Row, _mb, run_rows

    n, workers = sz.n_b6, sz.b6_workers
    sec.params = {"entries": n, "workers": workers}
    g = (f"{n:,} B2 records; {workers} worker processes each read every member of every entry; "
         "copies per worker (the most of any worker) as % of the store, and start-up time")
    sec.notes.append("Copies are counted from /proc/self/smaps: Private_Dirty of anonymous mappings plus "
                     "Anonymous (copy-on-write) pages of file mappings, at the end of a worker's reading, less "
                     "those of an idle twin worker given a 1-entry object of the same kind. Under spawn and "
                     "forkserver the object is pickled to the worker (a shared compactstore pickles as a "
                     "reference to its file); under fork it is inherited.")
    steps: list[tuple[str, Any]] = []
    for alt, label in B6_ALTS:
        rows = {}
        for method in METHODS:
            row = sec.add(g, Row(f"{label}, {method}"))
            if alt == "cs_shared":
                row.target = "≤ 1% of store"
            else:
                row.status = "reference"
            rows[method] = row

        def step(alt: str = alt, rows: dict[str, Any] = rows) -> None:
            res = run_rows({"kind": "b6", "alt": alt, "n": n, "workers": workers, "seed": sz.seed},
                           rows.values())
            if res is None:
                return
            size = res["store_bytes"]
            for method, row in rows.items():
                m = res["methods"].get(method)
                if m is None:
                    row.status, row.figure = "n/a", f"n/a ({method} is not available here)"
                    continue
                c = m["copies_per_worker"]
                pct = 100.0 * c / size if size > 0 else float("nan")
                row.values = {"store_bytes": size, "copies_per_worker": c, "percent_of_store": pct,
                              "startup_s": m["startup_s"], "read_s": m["read_s"]}
                row.figure = f"{_mb(c)} of {_mb(size)} = {pct:.2f}%"
                row.note = f"start-up {m['startup_s'] * 1e3:,.0f} ms, reading {m['read_s']:.1f} s"
                if alt == "cs_shared":
                    row.holds = pct <= 1.0

        steps.append((f"B6 {label}", step))
    return steps
