"""Measurements, each run in a fresh interpreter: ``python -m compactstore.bench.workers '<json job>'``.

A job is ``{"kind": "b1" | "b2" | "b3" | "b4_keyed" | ..., ...}``; the worker prints one JSON object on its
last stdout line. Memory is measured from ``/proc/self`` (Linux): RSS from ``statm``, private memory from
``smaps_rollup``, peak RSS from ``getrusage``. Every alternative is built in its own process so that one
alternative's heap never counts towards another's.
"""

from __future__ import annotations

import array
import gc
import json
import os
import resource
import sys
import timeit
from typing import Any, Callable

PAGE = os.sysconf("SC_PAGE_SIZE")


# --------------------------------------------------------------------------------------------------------
# memory probes


def rss() -> int:
    """Resident set size now, in bytes (``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def private_bytes() -> int:
    """Private_Clean + Private_Dirty of this process, in bytes (``/proc/self/smaps_rollup``)."""
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1]) * 1024
    return total


def peak_rss() -> int:
    """Peak RSS of this process so far, in bytes (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (``echo 5 > /proc/self/clear_refs``); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_LIBC: Any = None


def settle() -> None:
    """Before a reading: collect garbage, let pyarrow's pool return what it caches, and hand the C heap's
    free memory back to the system (glibc ``malloc_trim``), so that what a build freed is not counted as
    what it holds. Done alike for every alternative."""
    global _LIBC
    gc.collect()
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


# --------------------------------------------------------------------------------------------------------
# B1 / B3: wide records, N entries x 125 int64 members


def member_names(m: int) -> list[str]:
    return [f"m{j:03d}" for j in range(m)]


def wide_type(m: int) -> Any:
    import compactstore as cs

    return cs.make_store("Wide", {name: cs.i64 for name in member_names(m)})


def _fill_columns(write: Callable[[str, Any], None], n: int, m: int) -> None:
    """Write member j of entry i = i * m + j through ``write(name, column)``, one reused column buffer."""
    import numpy as np

    base = np.arange(n, dtype=np.int64) * m
    col = np.empty(n, dtype=np.int64)
    for j, name in enumerate(member_names(m)):
        np.add(base, j, out=col)
        write(name, col)
    del base, col


def build_wide(alt: str, n: int, m: int) -> tuple[Any, Callable[[], int]]:
    """Build B1's structure ``alt``; return it and a function reading member 0 of every entry (B3)."""
    import numpy as np

    import compactstore as cs

    if alt == "dict_int":  # {k: {v: v for v in range(125)}}: int member names
        store: Any = {k: {v: v for v in range(m)} for k in range(n)}

        def read() -> int:
            t = 0
            for k in range(n):
                t += store[k][0]
            return t

        return store, read
    if alt == "dict_str":
        names = member_names(m)
        store = {k: {name: v for v, name in enumerate(names)} for k in range(n)}
        first = names[0]

        def read() -> int:
            t = 0
            for k in range(n):
                t += store[k][first]
            return t

        return store, read
    if alt == "numpy_index":  # one (m, N) array and a {key: column} index
        index = {k: k for k in range(n)}
        arr = np.ones((m, n), dtype=np.int64)
        row = arr[0]

        def read() -> int:
            t = 0
            for k in range(n):
                t += int(row[index[k]])
            return t

        return (arr, index), read
    if alt == "pandas":
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        data = np.ones((n, m), dtype=np.int64)
        df = pd.DataFrame(data, columns=member_names(m))
        del data
        return df, lambda: 0
    T = wide_type(m)
    first = member_names(m)[0]
    if alt == "cs_static":
        s = T(size=n)
        for _ in range(n):
            s.next_index()
        _fill_columns(lambda name, col: np.asarray(s[name]).__setitem__(slice(None), col), n, m)
        c = s[first]

        def read() -> int:
            t = 0
            for i in range(n):
                t += c[i]
            return t

        return s, read
    if alt in ("cs_dynamic", "cs_dynamic16"):
        d = cs.DynamicStore(T) if alt == "cs_dynamic" else cs.DynamicStore(T, log2size=16)
        for _ in range(n):
            d.next_index()
        _fill_columns(lambda name, col: d[name].__setitem__(slice(0, n), col), n, m)
        c = d[first]

        def read() -> int:
            t = 0
            for i in range(n):
                t += c[i]
            return t

        return d, read
    if alt == "cs_keyed":
        pool = build_keyed_wide(T, n, m)

        def read() -> int:
            t = 0
            for k in range(n):
                t += pool[k, first]
            return t

        return pool, read
    raise ValueError(f"unknown alternative {alt!r}")


def build_keyed_wide(T: Any, n: int, m: int) -> Any:
    """A KeyedStore of keys 0..n-1: ``KeyedStore.from_columns`` where present, else key by key."""
    import numpy as np

    import compactstore as cs

    KS = cs.KeyedStore
    if hasattr(KS, "from_columns"):
        keys = np.arange(n, dtype=np.int64)
        base = np.arange(n, dtype=np.int64) * m
        columns = {name: base + j for j, name in enumerate(member_names(m))}
        del base
        pool = KS.from_columns(T, keys=keys, columns=columns, key=cs.i64)
        del columns, keys
        return pool
    pool = KS(T, key=cs.i64)
    for k in range(n):
        pool[k] = {}
    slots = np.fromiter((pool.index_of(k) for k in range(n)), dtype=np.int64, count=n)
    _fill_columns(lambda name, col: pool.members[name].__setitem__(slots, col), n, m)
    del slots
    return pool


def job_b1(alt: str, n: int, m: int) -> dict[str, Any]:
    # a small build first: imports and one-time set-up of the libraries are not the data
    warm, _ = build_wide(alt, 64, m)
    del warm
    settle()
    before = rss()
    store, _ = build_wide(alt, n, m)
    settle()
    gained = rss() - before
    out: dict[str, Any] = {"rss_gained": gained}
    if hasattr(store, "nbytes") and not isinstance(store, tuple):
        out["nbytes"] = int(store.nbytes)
    if alt == "cs_keyed":
        import compactstore as cs

        out["how"] = "from_columns" if hasattr(cs.KeyedStore, "from_columns") else "pool[k] = {} + members[name][slots] = col"
    del store
    return out


def job_b3(alt: str, n: int, m: int) -> dict[str, Any]:
    warm, _ = build_wide(alt, 64, m)
    del warm
    settle()
    before = rss()
    store, read = build_wide(alt, n, m)
    settle()
    size = rss() - before
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: read one member of every entry, measure what became private
        os.close(r)
        try:
            p0 = private_bytes()
            read()
            p1 = private_bytes()
            msg = json.dumps({"private_before": p0, "private_after": p1}).encode()
        except BaseException as e:  # report, never raise out of a forked child
            msg = json.dumps({"error": repr(e)}).encode()
        os.write(w, msg)
        os.close(w)
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 65536)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    child = json.loads(b"".join(chunks))
    if "error" in child:
        raise RuntimeError(f"fork child failed: {child['error']}")
    gained = child["private_after"] - child["private_before"]
    del store
    return {"store_bytes": size, "private_gained": gained, **child}


# --------------------------------------------------------------------------------------------------------
# B2: the mixed record, keyed by ref

CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


def mixed_data(n: int, seed: int) -> dict[str, Any]:
    """The B2 records as numpy columns (names: random ASCII letters, 12..20 long, 16 on average)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    refs = rng.choice(np.int64(2) ** 62, size=n, replace=False).astype(np.int64)
    lengths = rng.integers(12, 21, size=n)
    letters = rng.integers(ord("a"), ord("z") + 1, size=(n, 20), dtype=np.uint8)
    letters[np.arange(20)[None, :] >= lengths[:, None]] = 0
    names = letters.view("S20").ravel()  # trailing NULs are not part of a numpy bytes value
    del letters
    return {
        "ref": refs,
        "fitness": rng.random(n, dtype=np.float32),
        "generation": rng.integers(0, 1_000_000, size=n, dtype=np.int32),
        "num_codes": rng.integers(0, 65536, size=n, dtype=np.uint16),
        "alive": rng.random(n) < 0.5,
        "inputs": rng.integers(0, 256, size=(n, 8), dtype=np.uint8),
        "name": names,
        "category": rng.integers(0, len(CATEGORIES), size=n, dtype=np.uint8),
        "name_bytes": int(lengths.sum()),
    }


def mixed_rows(data: dict[str, Any], chunk: int = 1024) -> Any:
    """The records as tuples of Python values, converted a chunk at a time."""
    n = len(data["ref"])
    cats = CATEGORIES
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        names = data["name"][a:b].astype("U20").tolist()
        cols = zip(
            data["ref"][a:b].tolist(),
            data["fitness"][a:b].tolist(),
            data["generation"][a:b].tolist(),
            data["num_codes"][a:b].tolist(),
            data["alive"][a:b].tolist(),
            data["inputs"][a:b].tolist(),
            names,
            [cats[c] for c in data["category"][a:b].tolist()],
        )
        yield from cols


_MIXED: Any = None  # the B2 record type, made once


def __getattr__(name: str) -> Any:
    """``workers.Mixed`` is the B2 record type (made on first use): the name its stores pickle by, so a
    spawned worker process finds it."""
    if name == "Mixed":
        return mixed_store_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def mixed_store_type() -> Any:
    """The B2 record as a compactstore type; AttributeError / TypeError while str members are missing."""
    import compactstore as cs

    global _MIXED
    if _MIXED is not None:
        return _MIXED
    Str = getattr(cs, "Str")
    Interned = getattr(cs, "Interned")
    _MIXED = cs.make_store(
        "Mixed",
        {
            "fitness": cs.f32,
            "generation": cs.i32,
            "num_codes": cs.u16,
            "alive": cs.bool_,
            "inputs": cs.Array(cs.u8, 8),
            "name": Str,
            "category": Interned(Str),
        },
        module="compactstore.bench.workers",
    )
    return _MIXED


def build_mixed(alt: str, data: dict[str, Any]) -> Any:
    import numpy as np

    if alt == "dict":
        store: Any = {}
        for ref, fit, gen, nc, alive, inputs, name, cat in mixed_rows(data):
            store[ref] = {
                "ref": ref,
                "fitness": fit,
                "generation": gen,
                "num_codes": nc,
                "alive": alive,
                "inputs": inputs,
                "name": name,
                "category": cat,
            }
        return store
    if alt == "slots":
        from dataclasses import dataclass

        @dataclass(slots=True)
        class Gene:
            ref: int
            fitness: float
            generation: int
            num_codes: int
            alive: bool
            inputs: list[int]
            name: str
            category: str

        return {row[0]: Gene(*row) for row in mixed_rows(data)}
    if alt == "pandas":
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        n = len(data["ref"])
        cols: dict[str, Any] = {
            "fitness": data["fitness"].copy(),
            "generation": data["generation"].copy(),
            "num_codes": data["num_codes"].copy(),
            "alive": data["alive"].copy(),
        }
        for k in range(8):
            cols[f"inputs_{k}"] = data["inputs"][:, k].copy()
        cols["name"] = np.array(data["name"].astype("U20").tolist(), dtype=object)
        cols["category"] = pd.Categorical.from_codes(data["category"].astype(np.int8), categories=CATEGORIES)
        df = pd.DataFrame(cols, index=pd.Index(data["ref"].copy(), name="ref"))
        del cols
        df.index.get_loc(int(data["ref"][n // 2]))  # build the index's hash table, as a keyed lookup does
        return df
    if alt in ("pyarrow", "pyarrow_index"):
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

        n = len(data["ref"])
        table = pa.table(
            {
                "ref": pa.array(data["ref"]),
                "fitness": pa.array(data["fitness"]),
                "generation": pa.array(data["generation"]),
                "num_codes": pa.array(data["num_codes"]),
                "alive": pa.array(data["alive"]),
                "inputs": pa.FixedSizeListArray.from_arrays(pa.array(data["inputs"].ravel()), 8),
                "name": pa.array(data["name"].astype("U20"), type=pa.string()),
                "category": pa.DictionaryArray.from_arrays(
                    pa.array(data["category"].astype(np.int8)), pa.array(CATEGORIES)
                ),
            }
        )
        if alt == "pyarrow":
            return table
        index = {ref: i for i, ref in enumerate(data["ref"].tolist())}
        return table, index
    if alt == "cs_keyed":
        import compactstore as cs

        T = mixed_store_type()
        pool = cs.KeyedStore(T, key=cs.i64)
        for ref, fit, gen, nc, alive, inputs, name, cat in mixed_rows(data):
            pool[ref] = {
                "fitness": fit,
                "generation": gen,
                "num_codes": nc,
                "alive": alive,
                "inputs": inputs,
                "name": name,
                "category": cat,
            }
        return pool
    raise ValueError(f"unknown alternative {alt!r}")


def job_b2(alt: str, n: int, seed: int) -> dict[str, Any]:
    # a small build first (fails here, before any measuring, if str members are missing): imports and
    # one-time set-up of the libraries are not the data
    warm = build_mixed(alt, mixed_data(64, seed + 1))
    del warm
    settle()
    before = rss()  # the source columns below are freed before the reading: the structure is what stays
    data = mixed_data(n, seed)
    name_bytes = data["name_bytes"]
    store = build_mixed(alt, data)
    del data
    settle()
    gained = rss() - before
    out: dict[str, Any] = {"rss_gained": gained, "name_bytes": name_bytes}
    if hasattr(store, "nbytes") and not isinstance(store, tuple):
        out["nbytes"] = int(store.nbytes)
    if alt == "pandas":
        out["layout"] = ", ".join(f"{c} {t}" for c, t in store.dtypes.astype(str).items() if c in ("name", "category"))
    if alt.startswith("pyarrow"):
        table = store if alt == "pyarrow" else store[0]
        out["layout"] = ", ".join(f"{f.name} {f.type}" for f in table.schema if f.name in ("inputs", "name", "category"))
    del store
    return out


# --------------------------------------------------------------------------------------------------------
# B4: speed, as ratios within one process


class Timings:
    """Timers run round-robin: every repeat times each statement once, so that a burst of load from other
    processes hits the alternatives alike; the best of the repeats is kept for each."""

    def __init__(self, ns: dict[str, Any], repeat: int) -> None:
        self.ns, self.repeat = ns, repeat
        self.timers: dict[str, tuple[timeit.Timer, int, int]] = {}

    def add(self, key: str, stmt: str, ops: int = 1, setup: str = "pass", number: int = 1) -> None:
        """Time ``stmt`` (names in ``ns`` bound as locals first); report seconds / ``ops`` per run."""
        bind = "; ".join(f"{k} = __ns[{k!r}]" for k in self.ns) or "pass"
        timer = timeit.Timer(stmt, setup=f"{bind}\n{setup}", globals={"__ns": self.ns})
        self.timers[key] = (timer, ops, number)

    def run(self) -> dict[str, float]:
        """Nanoseconds per op (best of the repeats) for every statement added."""
        best = {key: float("inf") for key in self.timers}
        for _ in range(self.repeat):
            for key, (timer, _ops, number) in self.timers.items():
                best[key] = min(best[key], timer.timeit(number) / number)
        return {key: best[key] / self.timers[key][1] * 1e9 for key in self.timers}


def job_b4_keyed(n: int, m: int, ops: int, repeat: int, seed: int) -> dict[str, Any]:
    """Random ``pool[k][name]`` / ``pool[k, name]`` reads and writes against a dict of dicts (str names)."""
    import numpy as np

    import compactstore as cs

    rng = np.random.default_rng(seed)
    names = member_names(m)
    keys = rng.choice(np.int64(2) ** 40, size=n, replace=False).astype(np.int64)
    klist = keys.tolist()
    dd = {k: {name: j for j, name in enumerate(names)} for k in klist}
    pick_k = rng.integers(0, n, size=ops)
    pick_m = rng.integers(0, m, size=ops)
    pairs = [(klist[a], names[b]) for a, b in zip(pick_k.tolist(), pick_m.tolist())]
    T = cs.make_store("Shape", {name: cs.i64 for name in names})
    s = T(size=n)
    for _ in range(n):
        s.next_index()
    slot_pairs = [(a, names[b]) for a, b in zip(pick_k.tolist(), pick_m.tolist())]
    ns: dict[str, Any] = {"dd": dd, "pairs": pairs, "s": s, "slot_pairs": slot_pairs}
    if hasattr(cs, "KeyedStore"):
        pool = cs.KeyedStore(T, key=cs.i64)
        for k in klist:
            pool[k] = {}
        ns["pool"] = pool
    t = Timings(ns, repeat)
    t.add("loop", "for k, n in pairs: pass", ops)
    t.add("dict_read", "for k, n in pairs: dd[k][n]", ops)
    t.add("dict_write", "for k, n in pairs: dd[k][n] = 7", ops)
    t.add("entry_read", "for i, n in slot_pairs: s.entry(i)[n]", ops)
    t.add("entry_write", "for i, n in slot_pairs: s.entry(i)[n] = 7", ops)
    if "pool" in ns:
        t.add("pool_entry_read", "for k, n in pairs: pool[k][n]", ops)
        t.add("pool_entry_write", "for k, n in pairs: pool[k][n] = 7", ops)
        t.add("pool_tuple_read", "for k, n in pairs: pool[k, n]", ops)
        t.add("pool_tuple_write", "for k, n in pairs: pool[k, n] = 7", ops)
    return {"n": n, "m": m, "ops": ops, **t.run()}


def job_b4_container(n: int, ops: int, repeat: int, seed: int, sum_n: int) -> dict[str, Any]:
    """``m[i]`` against numpy ``a[i]``, ``array.array`` and ``list``; ``np.asarray(m).sum()``; ``entry[name]``."""
    import numpy as np

    import compactstore as cs

    rng = np.random.default_rng(seed)
    vals = rng.integers(-(2**40), 2**40, size=n, dtype=np.int64)
    T = cs.make_store("One", {"x": cs.i64})
    s = T(size=n)
    for _ in range(n):
        s.next_index()
    np.asarray(s["x"])[:] = vals
    d = cs.DynamicStore(T)
    for _ in range(n):
        d.next_index()
    d["x"][0:n] = vals
    idx = rng.integers(0, n, size=ops).tolist()
    ks = None
    if hasattr(cs, "KeyedStore"):
        pool = cs.KeyedStore(T, key=cs.i64)
        for k in range(n):
            pool[k] = {}
        ks = pool.members["x"]
        ks[0:n] = vals
    ns: dict[str, Any] = {
        "idx": idx,
        "m": s["x"],
        "dm": d["x"],
        "km": ks,
        "a": vals.copy(),
        "arr": array.array("q", vals.tolist()),
        "lst": vals.tolist(),
    }
    t = Timings(ns, repeat)
    t.add("loop", "for i in idx: pass", ops)
    for key, obj in (("numpy", "a"), ("static", "m"), ("dynamic", "dm"), ("keyed", "km"), ("array", "arr"),
                     ("list", "lst")):
        if ns[obj] is None:
            continue
        t.add(f"{key}_read", f"for i in idx: {obj}[i]", ops)
        t.add(f"{key}_write", f"for i in idx: {obj}[i] = 12345", ops)
    res: dict[str, Any] = {"n": n, "ops": ops, **t.run()}

    # np.asarray(m).sum() against the same numbers in a numpy array
    big = cs.make_store("Sum", {"x": cs.i64})(size=sum_n)
    for _ in range(sum_n):
        big.next_index()
    np.asarray(big["x"])[:] = np.arange(sum_n, dtype=np.int64)
    sns = {"np": np, "m": big["x"], "a": np.arange(sum_n, dtype=np.int64)}
    number = max(1, 20_000_000 // max(sum_n, 1))
    res["sum_n"] = sum_n
    t = Timings(sns, repeat)
    t.add("sum_numpy", "a.sum()", number=number)
    t.add("sum_static", "np.asarray(m).sum()", number=number)
    res.update(t.run())

    # entry[name] on ready-made Entry views against the inner dicts of a dict of dicts (1,000 x 8)
    names = member_names(8)
    E = cs.make_store("Eight", {name: cs.i64 for name in names})
    es = E(size=1000)
    for _ in range(1000):
        es.next_index()
    entries = [es.entry(i) for i in range(1000)]
    rows = [{name: j for j, name in enumerate(names)} for _ in range(1000)]
    pick_i = rng.integers(0, 1000, size=ops).tolist()
    pick_m = rng.integers(0, 8, size=ops).tolist()
    ens = {
        "epairs": [(entries[i], names[j]) for i, j in zip(pick_i, pick_m)],
        "dpairs": [(rows[i], names[j]) for i, j in zip(pick_i, pick_m)],
    }
    t = Timings(ens, repeat)
    t.add("entry_loop", "for e, n in epairs: pass", ops)
    t.add("entry_dict_read", "for e, n in dpairs: e[n]", ops)
    t.add("entry_read", "for e, n in epairs: e[n]", ops)
    t.add("entry_dict_write", "for e, n in dpairs: e[n] = 7", ops)
    t.add("entry_write", "for e, n in epairs: e[n] = 7", ops)
    res.update(t.run())
    return res


def job_b4_add(n: int, repeat: int, seed: int) -> dict[str, Any]:
    """Adding n entries of 8 members from dicts against building the dict of dicts."""
    import numpy as np

    import compactstore as cs

    rng = np.random.default_rng(seed)
    names = member_names(8)
    vals = rng.integers(-(2**40), 2**40, size=(n, 8), dtype=np.int64).tolist()
    keys = rng.choice(np.int64(2) ** 40, size=n, replace=False).astype(np.int64).tolist()
    items = [(k, dict(zip(names, row))) for k, row in zip(keys, vals)]
    T = cs.make_store("Eight", {name: cs.i64 for name in names})
    ns: dict[str, Any] = {"items": items, "T": T, "cs": cs}
    t = Timings(ns, repeat)
    t.add("dict", "for k, d in items: dd[k] = dict(d)", n, setup="dd = {}")
    t.add("static_add", "for k, d in items: s.add(d)", n, setup=f"s = T(size={n})")
    t.add("static_add_kw", "for k, d in items: s.add(**d)", n, setup=f"s = T(size={n})")
    t.add("dynamic_add", "for k, d in items: s.add(d)", n, setup="s = cs.DynamicStore(T)")
    t.add("dynamic_add_kw", "for k, d in items: s.add(**d)", n, setup="s = cs.DynamicStore(T)")
    if hasattr(cs, "KeyedStore"):
        t.add("keyed_set", "for k, d in items: pool[k] = d", n, setup="pool = cs.KeyedStore(T, key=cs.i64)")
    return {"n": n, **t.run()}


def job_b4_bulk(n: int, m: int, repeat: int) -> dict[str, Any]:
    """Bulk load of n entries x m int64 members from numpy arrays, in bytes per second."""
    import numpy as np

    import compactstore as cs

    names = member_names(m)
    cols = [(name, np.arange(n, dtype=np.int64) * m + j) for j, name in enumerate(names)]
    T = wide_type(m)
    nbytes = n * m * 8
    ns: dict[str, Any] = {"cols": cols, "T": T, "np": np, "cs": cs, "n": n}
    ns["keys"] = np.arange(n, dtype=np.int64)
    ns["cdict"] = dict(cols)
    t = Timings(ns, repeat)
    # the same copy into numpy arrays already allocated and touched, as the store's slots are
    t.add("numpy_copy", "for (name, a), b in zip(cols, dst): b[:] = a",
          setup="dst = [np.ones(n, dtype=np.int64) for _ in cols]")
    t.add("static_columns", "for name, a in cols: np.asarray(s[name])[:] = a",
          setup="s = T(size=n)\nfor _ in range(n): s.next_index()")
    t.add("static_alloc", "s = T(size=n)\nfor _ in range(n): s.next_index()")
    t.add("static_all", "s = T(size=n)\nfor _ in range(n): s.next_index()\n"
          "for name, a in cols: np.asarray(s[name])[:] = a")
    if hasattr(cs, "KeyedStore") and hasattr(cs.KeyedStore, "from_columns"):
        t.add("keyed_from_columns", "cs.KeyedStore.from_columns(T, keys=keys, columns=cdict, key=cs.i64)")
    sec = {k: v / 1e9 for k, v in t.run().items()}  # seconds per run
    res: dict[str, Any] = {"n": n, "m": m, "bytes": nbytes, "static_alloc_s": sec.pop("static_alloc")}
    res["static_all_s"] = sec["static_all"]
    for k, v in sec.items():
        res[k] = (nbytes + (n * 8 if k == "keyed_from_columns" else 0)) / v
    return res


# --------------------------------------------------------------------------------------------------------
# B5: peak RSS while growing


def job_b5(alt: str, n: int, m: int, block_log2: int) -> dict[str, Any]:
    """Grow to n entries of m int64 members, a block of 2**block_log2 entries at a time."""
    import numpy as np

    import compactstore as cs

    block = 1 << block_log2
    names = member_names(m)
    src = np.arange(block * m, dtype=np.int64).reshape(block, m) + 1  # one block of rows, reused
    src_cols = [np.ascontiguousarray(src[:, j]) for j in range(m)]
    T = wide_type(m)
    settle()
    before = rss()
    peak_reset = reset_peak()
    peak_before = peak_rss()
    if alt == "cs_dynamic":
        d = cs.DynamicStore(T, log2size=block_log2)
        for start in range(0, n, block):
            stop = min(n, start + block)
            for _ in range(start, stop):
                d.next_index()
            for name, col in zip(names, src_cols):
                d[name][start:stop] = col[: stop - start]
        store: Any = d
    elif alt == "numpy_doubling":  # rows of m int64, capacity doubled (np.empty + copy) when full
        cap = block
        arr = np.empty((cap, m), dtype=np.int64)
        for start in range(0, n, block):
            stop = min(n, start + block)
            if stop > cap:
                new = np.empty((cap * 2, m), dtype=np.int64)
                new[:cap] = arr
                arr = new
                del new
                cap *= 2
            arr[start:stop] = src[: stop - start]
        store = arr
    else:
        raise ValueError(f"unknown alternative {alt!r}")
    settle()
    final = rss() - before
    peak = peak_rss() - before
    out = {
        "final": final,
        "peak": peak,
        "peak_reset": peak_reset,
        "peak_moved": peak_rss() > peak_before,
    }
    del store
    return out


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "b1": job_b1,
    "b2": job_b2,
    "b3": job_b3,
    "b4_keyed": job_b4_keyed,
    "b4_container": job_b4_container,
    "b4_add": job_b4_add,
    "b4_bulk": job_b4_bulk,
    "b5": job_b5,
    "b6": lambda **job: _b6().job_b6(**job),
    "b8": lambda **job: __import__("compactstore.bench.b8", fromlist=["job_b8"]).job_b8(**job),
    "b7": lambda **job: __import__("compactstore.bench.b7", fromlist=["job_b7"]).job_b7(**job),
    "slack": lambda **job: __import__("compactstore.bench.slack", fromlist=["job_slack"]).job_slack(**job),
}


def _b6() -> Any:
    from . import b6

    return b6


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(args[0])
    kind = job.pop("kind")
    out = JOBS[kind](**job)
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
