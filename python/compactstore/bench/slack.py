"""B2 (memory) — what a dynamic or keyed store of N entries holds resident, against the bytes its entries need.

A dynamic or keyed store is sized in whole chunks of ``2**log2size`` slots, so ``nbytes`` of a store just
past a chunk boundary counts up to one chunk of empty slots. Its fixed-width columns are filled lazily and
allocated zero-filled, so the pages of slots never used should not be resident. These rows measure that: each
store is built in a fresh interpreter (``python -m compactstore.bench.workers``, the same RSS readings from
``/proc/self/statm`` as B1 and B2) with real, non-default values in every member of every entry.

The job ``{"kind": "slack", "alt": "keyed" | "dynamic" | "static", "shape": "mixed40" | "bytes2", "n": N,
"log2size": k | None, "seed": s}`` returns the RSS gained, ``nbytes`` and the byte counts the rows compare
against (see `need`).
"""

from __future__ import annotations

from typing import Any

from .workers import rss, settle

# The 40-member shape: 10 i64, 10 f32, 10 u8, 8 i16, a 12-20 byte str and a 20-120 byte bytes. Numeric
# members have a non-zero default (1), so a store that filled its defaults up front would touch every slot.
MIXED40_NUMERIC = [("i", "i64", 10), ("f", "f32", 10), ("u", "u8", 10), ("h", "i16", 8)]
WIDTH = {"i64": 8, "f32": 4, "u8": 1, "i16": 2}
VIEW = 16  # the per-slot view of a str / bytes member
KEY = 8  # an i64 key, per slot

_TYPES: dict[str, Any] = {}


def store_type(shape: str) -> Any:
    import compactstore as cs

    if shape in _TYPES:
        return _TYPES[shape]
    if shape == "mixed40":
        members: dict[str, Any] = {}
        for prefix, t, count in MIXED40_NUMERIC:
            for j in range(count):
                members[f"{prefix}{j}"] = cs.Member(getattr(cs, t), default=1)
        members["s"] = cs.Str
        members["b"] = cs.Bytes
    elif shape == "numeric38":  # the 40-member shape without its str and bytes members
        members = {f"{prefix}{j}": cs.Member(getattr(cs, t), default=1)
                   for prefix, t, count in MIXED40_NUMERIC for j in range(count)}
    elif shape == "i64":  # one i64 member
        members = {"v": cs.Member(cs.i64, default=1)}
    elif shape == "bytes2":
        members = {"b32": cs.Bytes, "b": cs.Bytes}
    else:
        raise ValueError(f"unknown shape {shape!r}")
    _TYPES[shape] = cs.make_store(f"Slack_{shape}", members, module="compactstore.bench.slack")
    return _TYPES[shape]


def fixed_width(shape: str) -> tuple[int, int]:
    """(numeric bytes per entry, str/bytes views per entry): the fixed-width columns' bytes per slot are
    their sum."""
    numeric = sum(WIDTH[t] * count for _, t, count in MIXED40_NUMERIC)
    if shape == "mixed40":
        return numeric, 2 * VIEW
    if shape == "numeric38":
        return numeric, 0
    if shape == "i64":
        return 8, 0
    return 0, 2 * VIEW


def make_data(shape: str, n: int, seed: int) -> dict[str, Any]:
    """Columns of real values: numeric members i * (j + 3) + j + 2 wrapped to the type (never the default 1
    for the first entries, and non-zero bytes on every page), str 12-20 ASCII letters, bytes 20-120 random
    bytes (and 32 for ``b32``)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    base = np.arange(n, dtype=np.int64)
    if shape == "i64":
        return {"v": base * 3 + 2}
    if shape in ("mixed40", "numeric38"):
        for prefix, t, count in MIXED40_NUMERIC:
            for j in range(count):
                v = base * (j + 3) + j + 2
                if t == "u8":
                    v = v % 250 + 2
                elif t == "i16":
                    v = v % 30000 + 2
                cols[f"{prefix}{j}"] = v.astype(np.dtype(getattr(np, {"i64": "int64", "f32": "float32",
                                                                     "u8": "uint8", "i16": "int16"}[t])))
    if shape == "numeric38":
        return cols
    if shape == "mixed40":
        lengths = rng.integers(12, 21, size=n)
        letters = rng.integers(ord("a"), ord("z") + 1, size=(n, 20), dtype=np.uint8).tobytes()
        cols["s"] = [letters[i * 20:i * 20 + ln].decode() for i, ln in enumerate(lengths.tolist())]
        del letters
    else:
        raw32 = rng.integers(0, 256, size=(n, 32), dtype=np.uint8).tobytes()
        cols["b32"] = [raw32[i * 32:(i + 1) * 32] for i in range(n)]
        del raw32
    blens = rng.integers(20, 121, size=n)
    pool = rng.integers(0, 256, size=128 + n, dtype=np.uint8).tobytes()
    cols["b"] = [pool[i % 128 + (i % 7):i % 128 + (i % 7) + ln] for i, ln in enumerate(blens.tolist())]
    return cols


def value_bytes(cols: dict[str, Any]) -> tuple[int, int]:
    """(the str/bytes values' bytes, the bytes of them a chunk's data buffer holds: len - 11 for a value of
    more than 15 bytes, the rest is in the view)."""
    total = buffered = 0
    for name, col in cols.items():
        if isinstance(col, list):
            for v in col:
                ln = len(v.encode()) if isinstance(v, str) else len(v)
                total += ln
                if ln > 15:
                    buffered += ln - 11
    return total, buffered


def table_bytes(n: int) -> int:
    """A keyed store's hash table for n keys: a power-of-two number of buckets at most 7/8 full, 5 bytes
    each (layout.md, "What a store of N entries costs")."""
    buckets = 1
    while buckets * 7 < n * 8:
        buckets *= 2
    return buckets * 5


def build(alt: str, shape: str, cols: dict[str, Any], n: int, log2size: int | None) -> Any:
    import numpy as np

    import compactstore as cs

    T = store_type(shape)
    if alt == "keyed":
        keys = np.arange(1, n + 1, dtype=np.int64)
        return cs.KeyedStore.from_columns(T, keys=keys, columns=cols, key=cs.i64, log2size=log2size)
    if alt == "keyed_set":  # key by key, as pool[k] = {member: value}
        pool = cs.KeyedStore(T, key=cs.i64) if log2size is None else cs.KeyedStore(T, key=cs.i64, log2size=log2size)
        names = list(cols)
        lists = [c.tolist() if hasattr(c, "tolist") else c for c in cols.values()]
        for i, values in enumerate(zip(*lists)):
            pool[i + 1] = dict(zip(names, values))
        del lists
        return pool
    if alt == "dynamic":
        d = cs.DynamicStore(T) if log2size is None else cs.DynamicStore(T, log2size=log2size)
    elif alt == "static":  # sized to whole chunks like the dynamic store, filled up front when made
        d = T(size=-(-n // (1 << (log2size or 16))) * (1 << (log2size or 16)))
    else:
        raise ValueError(f"unknown alternative {alt!r}")
    for _ in range(n):
        d.next_index()
    for name, col in cols.items():
        d[name][0:n] = col
    return d


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def pin_mmap_threshold(size: int) -> bool:
    """Fix glibc's mmap threshold at ``size`` bytes (``mallopt(M_MMAP_THRESHOLD)``), which also turns off its
    dynamic raising: by default, freeing a block of more than 128 KiB that was mmap'd raises the threshold to
    that block's size, and later allocations under it come from the heap, where ``calloc`` of recycled
    memory writes zeros over all of it (making it resident). False where glibc is not there."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, size))
    except (OSError, AttributeError):
        return False


def job_slack(alt: str, shape: str, n: int, log2size: int | None = None, seed: int = 0,
              mmap_threshold: int | None = None, warm_n: int = 64) -> dict[str, Any]:
    pinned = pin_mmap_threshold(mmap_threshold) if mmap_threshold else False
    # a throwaway build first (small by default): imports and one-time set-up are not the data
    warm = build(alt, shape, make_data(shape, warm_n, seed + 1), warm_n, log2size)
    del warm
    cols = make_data(shape, n, seed)  # made before the first reading and kept: only the store is counted
    total, buffered = value_bytes(cols)
    settle()
    before = rss()
    store = build(alt, shape, cols, n, log2size)
    settle()
    gained = rss() - before
    numeric, views = fixed_width(shape)
    out: dict[str, Any] = {
        "rss_gained": gained,
        "nbytes": int(store.nbytes),
        "n": n,
        "numeric_bytes": numeric * n,  # the numeric members' values
        "view_bytes": views * n,  # the str/bytes views
        "value_bytes": total,  # the str/bytes values
        "buffer_bytes": buffered,  # of those, what the data buffers hold
        "key_bytes": KEY * n if alt.startswith("keyed") else 0,
        "table_bytes": table_bytes(n) if alt.startswith("keyed") else 0,
        "log2size": getattr(store, "log2size", None) if alt == "dynamic" else log2size,
        "mmap_threshold_pinned": pinned,
    }
    del store
    return out


# --------------------------------------------------------------------------------------------------------
# the rows (in B2's section)

SHAPE_LABEL = {
    "mixed40": "40 members (10 i64, 10 f32, 10 u8, 8 i16, str 12-20 B, bytes 20-120 B)",
    "bytes2": "2 bytes members: 32 B and 20-120 B",
}
PIN = 128 * 1024  # glibc's default mmap threshold, pinned for the diagnostic figures


def need_bytes(res: dict[str, Any]) -> int:
    """The bytes the entries need in the store's own layout, with no slack: every entry's fixed-width slot
    (numeric members and the 16-byte str/bytes views), the data-buffer bytes of its str/bytes values, and for
    a keyed store its 8-byte key and the hash table (sized by the key count alone)."""
    return int(res["numeric_bytes"] + res["view_bytes"] + res["buffer_bytes"] + res["key_bytes"]
               + res["table_bytes"])


def raw_bytes(res: dict[str, Any]) -> int:
    """Raw data: the numeric members' bytes plus the str/bytes values' bytes (no views, no keys)."""
    return int(res["numeric_bytes"] + res["value_bytes"])


def slack_steps(sz: Any, sec: Any) -> list[tuple[str, Any]]:
    """The memory rows added to B2's section: (a)/(b) keyed stores against raw data + 32 B per key, (c) slack of
    dynamic and keyed stores just past chunk boundaries. Every figure is one fresh interpreter."""
    from compactstore.bench.cli import NA_KEYED, NA_STR, Row, keyed_available, run_rows, str_members_available

    n, k = sz.slack_n, sz.slack_log2
    points = list(sz.slack_points)
    sec.params["slack"] = {"entries": n, "log2size": k, "points": points}
    available = keyed_available() and str_members_available()
    why = NA_KEYED if not keyed_available() else NA_STR
    steps: list[tuple[str, Any]] = []
    results: dict[tuple[Any, ...], dict[str, Any]] = {}

    def measure(alt: str, shape: str, count: int, log2size: int | None, rows: list[Any],
                pin: bool = False) -> dict[str, Any] | None:
        """One fresh interpreter; ``pin``: glibc's mmap threshold pinned at 128 KiB and a throwaway build of
        the same size first (the conditions of tests/test_memory_slack.py)."""
        key = (alt, shape, count, log2size, pin)
        if key not in results:
            res = run_rows({"kind": "slack", "alt": alt, "shape": shape, "n": count, "log2size": log2size,
                            "seed": sz.seed, "mmap_threshold": PIN if pin else None,
                            "warm_n": count if pin else 64}, rows)
            if res is None:
                return None
            results[key] = res
        return results[key]

    # (a), (b): keyed stores against the goal
    ga = (f"(memory a/b) KeyedStore (i64 key, log2size {k}) of {n:,} entries: per entry, RSS gained and nbytes "
          "against 1.15 × raw + 32 B per key; raw = numeric members' bytes + the str/bytes values' bytes")
    for shape in ("mixed40", "bytes2"):
        r_rss = sec.add(ga, Row(f"compactstore KeyedStore, {SHAPE_LABEL[shape]}: RSS gained",
                                target="≤ 1.15× raw + 32 B/key"))
        r_nb = sec.add(ga, Row(f"compactstore KeyedStore, {SHAPE_LABEL[shape]}: nbytes",
                               target="≤ 1.15× raw + 32 B/key"))
        if not available:
            for r in (r_rss, r_nb):
                r.status, r.figure = "n/a", why
            continue

        def step_ab(shape: str = shape, r_rss: Any = r_rss, r_nb: Any = r_nb) -> None:
            res = measure("keyed", shape, n, k, [r_rss, r_nb])
            if res is None:
                return
            raw = raw_bytes(res) / n
            goal = 1.15 * raw + 32
            for r, b in ((r_rss, res["rss_gained"]), (r_nb, res["nbytes"])):
                per = b / n
                r.values = {"bytes_per_entry": per, "raw_per_entry": raw, "goal_per_entry": goal,
                            "over_raw_per_key": per - raw}
                r.figure = f"{per:,.1f} B/entry  (raw {raw:,.1f}, goal {goal:,.1f})"
                r.holds = per <= goal
            r_rss.note = f"{(res['rss_gained'] / n - raw):,.1f} B/key over raw"
            r_nb.note = f"{(res['nbytes'] / n - raw):,.1f} B/key over raw"

        steps.append((f"B2 memory keyed {shape}", step_ab))

    # (c): slack past chunk boundaries
    gc_ = (f"(memory c) slack past chunk boundaries, {SHAPE_LABEL['mixed40']}, every member of every entry "
           "written: RSS gained / need − 1, where need = N × (146 B numeric + 2 × 16 B views) + the values' data-buffer "
           "bytes (len − 11 of each value over 15 B), and for a keyed store + N × 8 B keys + its hash table "
           "(5 B × buckets, at most 7/8 full)")
    stores = [("keyed", k, f"KeyedStore (log2size {k})"), ("dynamic", None, "DynamicStore (default log2size 11)"),
              ("dynamic", k, f"DynamicStore (log2size {k})")]
    for alt, log2size, label in stores:
        for count in points:
            row = sec.add(gc_, Row(f"compactstore {label}, {count:,} entries", target="≤ 12%"))
            if not available:
                row.status, row.figure = "n/a", why
                continue
            diagnose = count == points[0]

            def step_c(alt: str = alt, log2size: int | None = log2size, count: int = count, row: Any = row,
                       diagnose: bool = diagnose) -> None:
                res = measure(alt, "mixed40", count, log2size, [row])
                if res is None:
                    return
                need = need_bytes(res)
                s_rss, s_nb = res["rss_gained"] / need - 1, res["nbytes"] / need - 1
                row.values = {"slack": s_rss, "nbytes_slack": s_nb, "rss_bytes": res["rss_gained"],
                              "nbytes": res["nbytes"], "need_bytes": need,
                              "over_raw_per_key": (res["rss_gained"] - raw_bytes(res)) / count}
                row.figure = f"{100 * s_rss:+.1f}%  ({_mb(res['rss_gained'])} for {_mb(need)})"
                row.holds = s_rss <= 0.12
                notes = [f"nbytes {100 * s_nb:+.1f}%"]
                if alt == "keyed":
                    raw = raw_bytes(res) / count
                    notes.append(f"RSS = raw + {row.values['over_raw_per_key']:,.1f} B/key (goal ≤ "
                                 f"{0.15 * raw + 32:,.1f})")
                if diagnose:
                    pinned = measure(alt, "mixed40", count, log2size, [], pin=True)
                    if pinned is not None and pinned.get("mmap_threshold_pinned"):
                        p = pinned["rss_gained"] / need_bytes(pinned) - 1
                        row.values["slack_mmap_pinned"] = p
                        notes.append(f"{100 * p:+.1f}% with glibc's mmap threshold pinned at 128 KiB and after "
                                     "a throwaway build of the same size")
                row.note = "; ".join(notes)

            steps.append((f"B2 memory {label} {count:,}", step_c))

    eager = sec.add(gc_, Row(f"StaticStore of {-(-points[0] >> k) << k:,} slots (fills defaults up front), "
                             f"{points[0]:,} entries", status="reference"))

    def step_eager() -> None:
        res = measure("static", "mixed40", points[0], k, [eager])
        if res is None:
            return
        need = need_bytes(res)
        s = res["rss_gained"] / need - 1
        eager.values = {"slack": s, "nbytes_slack": res["nbytes"] / need - 1, "rss_bytes": res["rss_gained"],
                        "nbytes": res["nbytes"], "need_bytes": need}
        eager.figure = f"{100 * s:+.1f}%  ({_mb(res['rss_gained'])} for {_mb(need)})"
        eager.note = "what the slack would be if chunks were filled when made"

    steps.append(("B2 memory StaticStore (eager)", step_eager))
    sec.notes.append(
        "memory rows: each store is built in a fresh interpreter from columns made beforehand (KeyedStore."
        "from_columns; DynamicStore: next_index() per entry, then d[name][0:N] = column), after a throwaway "
        "build of 64 entries; numeric members have default 1, so a chunk filled when made would touch every "
        "slot. RSS gained and nbytes as in B1. The first row of each store also shows the slack with glibc's "
        "mmap threshold pinned (freeing a block of more than 128 KiB raises it, and heap memory that calloc "
        "clears is resident; column buffers of 64 KiB or more are mapped on their own, so this should not "
        "matter) and without the process's one-time costs (a throwaway build of the same size).")
    return steps


def _mb(b: float) -> str:
    return f"{b / 1e6:,.1f} MB"
