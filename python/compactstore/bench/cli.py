"""The benchmark driver: runs the measurements (each in a fresh interpreter), checks them against
compactstore's performance targets B1-B8, prints the tables, writes JSON and draws the plot."""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

Step = tuple[str, Callable[[], None]]  # a label for the progress bar, and the measurement

# --------------------------------------------------------------------------------------------------------
# sizes


@dataclass
class Sizes:
    n_b1: int = 100_000  # B1: entries x 125 int64 members
    n_b2: int = 1_000_000  # B2: mixed records (B2 is defined at 1M; ~15 s)
    n_b3: int = 100_000  # B3: entries x 125 int64 members, forked
    n_b5: int = 100_000  # B5: entries x 125 int64 members, grown
    members: int = 125
    b4_keys: int = 300_000  # B4 (a): the big keyed shape (x b4_members); the small one is 1,000 x 8
    b4_members: int = 40  # B4 (a): members of the big keyed shape
    b4_ops: int = 200_000  # random accesses per timing
    b4_container_n: int = 100_000  # B4 (b): m[i] on a member of this many entries
    b4_sum_n: int = 1_000_000  # B4 (b): np.asarray(m).sum() over this many int64
    b4_add_n: int = 100_000  # B4 (b): entries added from dicts
    b4_bulk_n: int = 100_000  # B4 (b): bulk load of this many entries x 125 int64
    repeat: int = 5  # timing repeats (best taken)
    b5_block_log2: int = 11  # B5: chunk (and growth block) size, log2
    n_b6: int = 1_000_000  # B6: B2 records read by worker processes
    b6_workers: int = 4  # B6: worker processes per start method
    slack_n: int = 300_000  # B2 memory rows: keyed stores of this many entries
    slack_log2: int = 16  # B2 memory rows: the keyed store's chunk size (its default) and the dynamic one's
    slack_points: tuple[int, ...] = (65_537, 100_000, 300_000)  # B2 memory rows: entries for the slack rows
    seed: int = 20240607

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            n_b1=2_000,
            n_b2=2_000,
            n_b3=2_000,
            n_b5=5_000,
            b4_keys=2_000,
            b4_members=8,
            b4_ops=20_000,
            b4_container_n=10_000,
            b4_sum_n=100_000,
            b4_add_n=2_000,
            b4_bulk_n=2_000,
            repeat=3,
            b5_block_log2=8,
            n_b6=2_000,
            b6_workers=2,
            slack_n=3_000,
            slack_log2=8,
            slack_points=(257, 400, 3_000),
        )

    @classmethod
    def full(cls) -> Sizes:
        return cls(n_b1=1_000_000, n_b2=1_000_000, n_b3=1_000_000, n_b5=1_000_000)


# --------------------------------------------------------------------------------------------------------
# results


@dataclass
class Row:
    """One line of a table: a measured figure, the target it is held to, and whether it holds."""

    name: str
    figure: str = ""
    target: str = ""
    holds: bool | None = None
    status: str = "measured"  # measured | reference | n/a | skipped | error
    note: str = ""
    values: dict[str, float] = field(default_factory=dict)  # the numbers behind the figure

    def mark(self) -> str:
        if self.status in ("n/a", "skipped", "error"):
            return self.status
        if self.status == "reference":
            return "(reference)"
        if self.holds is None:
            return ""
        return "✓" if self.holds else "✗"


@dataclass
class Section:
    key: str
    title: str
    groups: dict[str, list[Row]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def add(self, group: str, row: Row) -> Row:
        self.groups.setdefault(group, []).append(row)
        return row

    def rows(self) -> list[Row]:
        return [r for rows in self.groups.values() for r in rows]


class WorkerError(RuntimeError):
    pass


def run_worker(job: dict[str, Any], timeout: float = 3600) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its JSON result."""
    cmd = [sys.executable, "-m", "compactstore.bench.workers", json.dumps(job)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise WorkerError(f"{job.get('kind')} {job.get('alt', '')}: exit {p.returncode}: {tail}")
    return dict(json.loads(p.stdout.strip().splitlines()[-1]))


def run_rows(job: dict[str, Any], rows: Any) -> dict[str, Any] | None:
    """`run_worker(job)`, or None after marking every row (a `Row` or an iterable of them) that is not n/a
    as failed with the worker's error."""
    try:
        return run_worker(job)
    except WorkerError as e:
        for r in [rows] if isinstance(rows, Row) else list(rows):
            if r.status != "n/a":
                r.status, r.figure = "error", str(e)
        return None


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "?"


def keyed_available() -> bool:
    import compactstore as cs

    return hasattr(cs, "KeyedStore")


def str_members_available() -> bool:
    from compactstore.bench.workers import mixed_store_type

    try:
        mixed_store_type()
    except (AttributeError, TypeError):
        return False
    return True


MEMORY_METHOD = ("RSS gained (/proc/self/statm) from before the data is made to after it is built, each "
                 "alternative in a fresh interpreter; before each reading gc.collect() and glibc malloc_trim(0) "
                 "return what the build freed; nbytes is the store's own count of its buffers.")
NA_KEYED = "n/a (not built yet)"
NA_STR = "not available yet (str members unimplemented)"


def _mb(b: float) -> str:
    return f"{b / 1e6:,.1f} MB"


def _ns(t: float) -> str:
    return f"{t:,.0f} ns"


def _ratio(r: float) -> str:
    return f"{r:.2f}×"


# --------------------------------------------------------------------------------------------------------
# B1: wide records, N entries x 125 int64 members

B1_ALTS = [
    ("dict_int", "dict of dicts (int member names)", None),
    ("dict_str", "dict of dicts (str member names)", None),
    ("numpy_index", "numpy (125, N) int64 + {key: column} dict", None),
    ("pandas", "pandas DataFrame (N x 125 int64)", "pandas"),
    ("cs_static", "compactstore StaticStore", None),
    ("cs_dynamic", "compactstore DynamicStore (default log2size 11)", None),
    ("cs_dynamic16", "compactstore DynamicStore (log2size 16)", None),
    ("cs_keyed", "compactstore KeyedStore (key i64)", "keyed"),
]


def b1_steps(sz: Sizes, sec: Section) -> list[Step]:
    n, m = sz.n_b1, sz.members
    raw = n * m * 8
    sec.params = {"entries": n, "members": m, "raw_bytes": raw}
    g = f"{n:,} entries x {m} int64 members; raw data {_mb(raw)}"
    sec.notes.append(MEMORY_METHOD)
    sec.add(g, Row("raw data (N x 125 x 8 bytes)", f"{_mb(raw)}  {raw / n:,.0f} B/entry", status="reference",
                   values={"rss_bytes": raw, "bytes_per_entry": raw / n, "ratio_to_raw": 1.0}))
    steps: list[Step] = []
    for alt, label, needs in B1_ALTS:
        row = sec.add(g, Row(label))
        if alt in ("cs_static", "cs_dynamic", "cs_dynamic16"):
            row.target = "≤ 1.03× raw"
        if alt == "cs_keyed":
            row.target = "≤ raw + 24 B/key"
        if needs == "keyed" and not keyed_available():
            row.status, row.figure = "n/a", NA_KEYED
            continue
        if needs == "pandas" and not have("pandas"):
            row.status, row.figure = "skipped", "skipped: pandas not installed"
            sec.notes.append("pandas is not installed: its row is skipped (pip install compactstore[bench]).")
            continue

        def step(alt: str = alt, row: Row = row) -> None:
            res = run_rows({"kind": "b1", "alt": alt, "n": n, "m": m}, row)
            if res is None:
                return
            used = res["rss_gained"]
            row.values = {"rss_bytes": used, "bytes_per_entry": used / n, "ratio_to_raw": used / raw}
            row.figure = f"{_mb(used)}  {used / n:,.0f} B/entry  {used / raw:.3f}× raw"
            if "nbytes" in res:
                row.values["nbytes"] = res["nbytes"]
                row.note = f"nbytes {res['nbytes'] / n:,.1f} B/entry"
            if alt in ("cs_static", "cs_dynamic", "cs_dynamic16"):
                row.holds = used <= 1.03 * raw
            elif alt == "cs_keyed":
                per_key = (used - raw) / n
                row.values["bytes_per_key_over_raw"] = per_key
                row.figure += f"  (raw + {per_key:.1f} B/key)"
                row.note += f"; built with {res.get('how', '?')}"
                row.holds = per_key <= 24
            else:
                row.status = "reference"

        steps.append((f"B1 {label}", step))
    return steps


# --------------------------------------------------------------------------------------------------------
# B2: the mixed record

B2_ALTS = [
    ("dict", "dict of dicts ({ref: {member: value}})", None),
    ("slots", "slots dataclasses ({ref: Gene})", None),
    ("pandas", "pandas DataFrame, index=ref (hash table built)", "pandas"),
    ("pyarrow", "pyarrow Table (no key index)", "pyarrow"),
    ("pyarrow_index", "pyarrow Table + {ref: row} dict", "pyarrow"),
    ("cs_keyed", "compactstore KeyedStore (Str, Interned)", "cs_str"),
]


def b2_steps(sz: Sizes, sec: Section) -> list[Step]:
    n = sz.n_b2
    sec.params = {"entries": n}
    g = (f"{n:,} records {{ref i64, fitness f32, generation i32, num_codes u16, alive bool, inputs u8[8], "
         f"name str 12-20 chars, category 1 of 8 str}} keyed by ref; bytes per entry, all in")
    sec.notes.append("dict of dicts and dataclasses hold inputs as a list of 8 ints and share the 8 category "
                     "strings (ref is both the key and a member); pandas holds inputs as 8 uint8 columns and "
                     "category as a Categorical; each alternative is built from the same numpy columns in a "
                     "fresh interpreter after a small warm-up build, and the columns are freed before the reading.")
    sec.notes.append(MEMORY_METHOD)
    info = sec.add(g, Row("information content (8+4+4+2+1+8 B + name bytes + 3 bits)", status="reference"))
    steps: list[Step] = []
    missing_noted = set()
    for alt, label, needs in B2_ALTS:
        row = sec.add(g, Row(label))
        if alt == "cs_keyed":
            row.target = "≤ 64 B/entry"
            if not str_members_available():
                row.status, row.figure = "n/a", NA_STR
                continue
            if not keyed_available():
                row.status, row.figure = "n/a", NA_KEYED
                continue
        if needs in ("pandas", "pyarrow") and not have(needs):
            row.status, row.figure = "skipped", f"skipped: {needs} not installed"
            if needs not in missing_noted:
                missing_noted.add(needs)
                sec.notes.append(f"{needs} is not installed: its rows are skipped (pip install compactstore[bench]).")
            continue

        def step(alt: str = alt, row: Row = row) -> None:
            res = run_rows({"kind": "b2", "alt": alt, "n": n, "seed": sz.seed}, row)
            if res is None:
                return
            used = res["rss_gained"]
            per = used / n
            row.values = {"rss_bytes": used, "bytes_per_entry": per}
            row.figure = f"{per:,.1f} B/entry  ({_mb(used)})"
            notes = []
            if "nbytes" in res:
                row.values["nbytes"] = res["nbytes"]
                notes.append(f"nbytes {res['nbytes'] / n:,.1f} B/entry")
            if "layout" in res:
                notes.append(res["layout"])
            row.note = "; ".join(notes)
            if alt == "cs_keyed":
                row.holds = per <= 64
            else:
                row.status = "reference"
            if not info.values:
                content = 8 + 4 + 4 + 2 + 1 + 8 + res["name_bytes"] / n + 3 / 8
                info.values = {"bytes_per_entry": content}
                info.figure = f"{content:,.1f} B/entry"

        steps.append((f"B2 {label}", step))
    from compactstore.bench.slack import slack_steps

    steps += slack_steps(sz, sec)
    return steps


# --------------------------------------------------------------------------------------------------------
# B3: fork sharing

B3_ALTS = [
    ("dict_int", "dict of dicts (int member names)", None),
    ("numpy_index", "numpy (125, N) + {key: column} dict", None),
    ("cs_static", "compactstore StaticStore, m[i]", None),
    ("cs_dynamic", "compactstore DynamicStore, m[i]", None),
    ("cs_keyed", "compactstore KeyedStore, pool[k, name]", "keyed"),
]


def b3_steps(sz: Sizes, sec: Section) -> list[Step]:
    n, m = sz.n_b3, sz.members
    sec.params = {"entries": n, "members": m}
    g = (f"{n:,} entries x {m} int64; after fork() a child reads member 0 of every entry; "
         "private memory it gains (smaps_rollup Private_Clean + Private_Dirty), as % of the store's RSS")
    steps: list[Step] = []
    for alt, label, needs in B3_ALTS:
        row = sec.add(g, Row(label))
        if alt.startswith("cs_"):
            row.target = "≤ 1% of store"
        if needs == "keyed" and not keyed_available():
            row.status, row.figure = "n/a", NA_KEYED
            continue

        def step(alt: str = alt, row: Row = row) -> None:
            res = run_rows({"kind": "b3", "alt": alt, "n": n, "m": m}, row)
            if res is None:
                return
            size, gained = res["store_bytes"], res["private_gained"]
            pct = 100.0 * gained / size if size > 0 else float("nan")
            row.values = {"store_bytes": size, "private_gained": gained, "percent_of_store": pct}
            row.figure = f"{_mb(gained)} of {_mb(size)} = {pct:.2f}%"
            if alt.startswith("cs_"):
                row.holds = pct <= 1.0
            else:
                row.status = "reference"

        steps.append((f"B3 {label}", step))
    return steps


# --------------------------------------------------------------------------------------------------------
# B4: speed


def _vs(row: Row, t: float, ref: float, ref_name: str, limit: float | None) -> None:
    r = t / ref
    row.values = {"ns": t, "ratio": r}
    row.figure = f"{_ns(t)}  {_ratio(r)} {ref_name}"
    if limit is not None:
        row.holds = r <= limit
    else:
        row.status = "reference"


def b4_steps(sz: Sizes, sec: Section) -> list[Step]:
    sec.params = {"ops": sz.b4_ops, "repeat": sz.repeat}
    sec.notes.append(f"Times are per iteration of a Python for loop over {sz.b4_ops:,} random accesses "
                     f"(fixed seeds), best of {sz.repeat} runs; the bare loop is shown for scale and is "
                     "included in both sides of every ratio.")
    keyed = keyed_available()
    steps: list[Step] = []

    def keyed_shape(n: int, m: int, entry_limit: float, tuple_limit: float) -> None:
        g = f"(a) keyed, {n:,} keys x {m} int64 members, random key and member"
        rows: dict[str, Row] = {}
        rows["loop"] = sec.add(g, Row("bare loop `for k, n in pairs: pass`", status="reference"))
        for op in ("read", "write"):
            rows[f"dict_{op}"] = sec.add(g, Row(f"dict of dicts d[k][name] {op}", status="reference"))
            rows[f"pool_entry_{op}"] = sec.add(g, Row(f"pool[k][name] {op}", target=f"≤ {entry_limit}× dict"))
            rows[f"pool_tuple_{op}"] = sec.add(g, Row(f"pool[k, name] {op}", target=f"≤ {tuple_limit}× dict"))
            rows[f"entry_{op}"] = sec.add(g, Row(f"StaticStore s.entry(i)[name] {op} (no key lookup)"))
        if not keyed:
            for k, r in rows.items():
                if k.startswith("pool_"):
                    r.status, r.figure = "n/a", NA_KEYED

        def step() -> None:
            res = run_rows({"kind": "b4_keyed", "n": n, "m": m, "ops": sz.b4_ops, "repeat": sz.repeat,
                            "seed": sz.seed}, rows.values())
            if res is None:
                return
            rows["loop"].values = {"ns": res["loop"]}
            rows["loop"].figure = _ns(res["loop"])
            for op in ("read", "write"):
                ref = res[f"dict_{op}"]
                rows[f"dict_{op}"].values = {"ns": ref}
                rows[f"dict_{op}"].figure = _ns(ref)
                _vs(rows[f"entry_{op}"], res[f"entry_{op}"], ref, "dict", None)
                rows[f"entry_{op}"].status = "measured"
                if keyed:
                    _vs(rows[f"pool_entry_{op}"], res[f"pool_entry_{op}"], ref, "dict", entry_limit)
                    _vs(rows[f"pool_tuple_{op}"], res[f"pool_tuple_{op}"], ref, "dict", tuple_limit)

        steps.append((f"B4 keyed {n:,} x {m}", step))

    keyed_shape(sz.b4_keys, sz.b4_members, 0.3, 0.3)
    keyed_shape(1000, 8, 1.0, 0.8)

    # (b) containers
    g = f"(b) container m[i], int64 member of {sz.b4_container_n:,} entries, random i"
    crow: dict[str, Row] = {}
    crow["loop"] = sec.add(g, Row("bare loop `for i in idx: pass`", status="reference"))
    for op, limit in (("read", 0.6), ("write", 0.5)):
        crow[f"numpy_{op}"] = sec.add(g, Row(f"numpy a[i] {op}", status="reference"))
        crow[f"static_{op}"] = sec.add(g, Row(f"StaticStore m[i] {op}", target=f"≤ {limit}× numpy"))
        crow[f"dynamic_{op}"] = sec.add(g, Row(f"DynamicStore m[i] {op}", target=f"≤ {limit}× numpy"))
        crow[f"keyed_{op}"] = sec.add(g, Row(f"KeyedStore pool.members[name][i] {op}", target=f"≤ {limit}× numpy"))
        crow[f"array_{op}"] = sec.add(g, Row(f"array.array('q') a[i] {op}", status="reference"))
        crow[f"list_{op}"] = sec.add(g, Row(f"list a[i] {op}", status="reference"))
    gs = f"(b) np.asarray(m).sum() over {sz.b4_sum_n:,} int64"
    crow["sum_numpy"] = sec.add(gs, Row("numpy a.sum()", status="reference"))
    crow["sum_static"] = sec.add(gs, Row("np.asarray(m).sum(), StaticStore", target="≈ 1.0× numpy (≤ 1.1×)"))
    ge = "(b) entry[name] on ready-made views, 1,000 entries x 8 int64, random entry and member"
    for op in ("read", "write"):
        crow[f"entry_dict_{op}"] = sec.add(ge, Row(f"dict row[name] {op}", status="reference"))
        crow[f"entry_{op}"] = sec.add(ge, Row(f"Entry e[name] {op}", target="— (no target)"))

    def container_step() -> None:
        res = run_rows({"kind": "b4_container", "n": sz.b4_container_n, "ops": sz.b4_ops,
                        "repeat": sz.repeat, "seed": sz.seed, "sum_n": sz.b4_sum_n}, crow.values())
        if res is None:
            return
        crow["loop"].values = {"ns": res["loop"]}
        crow["loop"].figure = _ns(res["loop"])
        for op, limit in (("read", 0.6), ("write", 0.5)):
            ref = res[f"numpy_{op}"]
            crow[f"numpy_{op}"].values = {"ns": ref}
            crow[f"numpy_{op}"].figure = _ns(ref)
            for k in ("static", "dynamic", "keyed"):
                if f"{k}_{op}" not in res:
                    crow[f"{k}_{op}"].status, crow[f"{k}_{op}"].figure = "n/a", NA_KEYED
                    continue
                r = crow[f"{k}_{op}"]
                _vs(r, res[f"{k}_{op}"], ref, "numpy", limit)
                t = res[f"{k}_{op}"]
                r.note = f"{t / res[f'array_{op}']:.2f}× array.array, {t / res[f'list_{op}']:.2f}× list"
                r.values["ratio_array"] = t / res[f"array_{op}"]
                r.values["ratio_list"] = t / res[f"list_{op}"]
            _vs(crow[f"array_{op}"], res[f"array_{op}"], ref, "numpy", None)
            _vs(crow[f"list_{op}"], res[f"list_{op}"], ref, "numpy", None)
        ref = res["sum_numpy"]
        crow["sum_numpy"].values = {"ns": ref}
        crow["sum_numpy"].figure = _ns(ref)
        _vs(crow["sum_static"], res["sum_static"], ref, "numpy", 1.1)
        for op in ("read", "write"):
            ref = res[f"entry_dict_{op}"]
            crow[f"entry_dict_{op}"].values = {"ns": ref}
            crow[f"entry_dict_{op}"].figure = _ns(ref)
            _vs(crow[f"entry_{op}"], res[f"entry_{op}"], ref, "dict", None)
            crow[f"entry_{op}"].status = "measured"

    steps.append(("B4 containers", container_step))

    # (b) adding entries from dicts
    g = f"(b) adding {sz.b4_add_n:,} entries of 8 int64 members from dicts"
    arow: dict[str, Row] = {}
    arow["dict"] = sec.add(g, Row("dict of dicts: dd[k] = dict(d)", status="reference"))
    arow["static_add"] = sec.add(g, Row("StaticStore s.add(d)", target="≤ 1.5× dict"))
    arow["static_add_kw"] = sec.add(g, Row("StaticStore s.add(**d)", target="≤ 1.5× dict"))
    arow["dynamic_add"] = sec.add(g, Row("DynamicStore s.add(d)", target="≤ 1.5× dict"))
    arow["dynamic_add_kw"] = sec.add(g, Row("DynamicStore s.add(**d)", target="≤ 1.5× dict"))
    arow["keyed_set"] = sec.add(g, Row("KeyedStore pool[k] = d", target="≤ 1.5× dict"))
    if not keyed:
        arow["keyed_set"].status, arow["keyed_set"].figure = "n/a", NA_KEYED

    def add_step() -> None:
        res = run_rows({"kind": "b4_add", "n": sz.b4_add_n, "repeat": sz.repeat, "seed": sz.seed}, arow.values())
        if res is None:
            return
        ref = res["dict"]
        arow["dict"].values = {"ns": ref}
        arow["dict"].figure = _ns(ref) + " per entry"
        for k in ("static_add", "static_add_kw", "dynamic_add", "dynamic_add_kw", "keyed_set"):
            if k in res:
                _vs(arow[k], res[k], ref, "dict", 1.5)

    steps.append(("B4 add from dicts", add_step))

    # (b) bulk load
    g = f"(b) bulk load of {sz.b4_bulk_n:,} entries x {sz.members} int64 from numpy arrays"
    brow: dict[str, Row] = {}
    brow["numpy_copy"] = sec.add(g, Row("numpy: b[:] = a into allocated arrays (this machine's copy speed)",
                                        status="reference"))
    brow["static_columns"] = sec.add(g, Row("StaticStore np.asarray(m)[:] = arr, every member", target="≥ 1 GB/s"))
    brow["static_all"] = sec.add(g, Row("StaticStore: T(size=N), next_index() x N, then the same writes",
                                        status="reference"))
    brow["keyed_from_columns"] = sec.add(g, Row("KeyedStore.from_columns (keys + columns)", target="≥ 1 GB/s"))
    if not keyed:
        brow["keyed_from_columns"].status, brow["keyed_from_columns"].figure = "n/a", NA_KEYED

    def bulk_step() -> None:
        res = run_rows({"kind": "b4_bulk", "n": sz.b4_bulk_n, "m": sz.members, "repeat": sz.repeat}, brow.values())
        if res is None:
            return
        for k, r in brow.items():
            if k == "static_all":
                continue
            if k in res:
                r.values = {"bytes_per_second": res[k]}
                r.figure = f"{res[k] / 1e9:.2f} GB/s"
                if k != "numpy_copy":
                    r.holds = res[k] >= 1e9
            elif k == "keyed_from_columns" and keyed:
                r.status, r.figure = "n/a", "n/a (KeyedStore.from_columns not built yet)"
        brow["static_columns"].note = (f"slots allocated beforehand with next_index(): "
                                       f"{res['static_alloc_s'] * 1e3:.1f} ms for {sz.b4_bulk_n:,} entries")
        brow["static_columns"].values["alloc_seconds"] = res["static_alloc_s"]
        r = brow["static_all"]
        r.values = {"bytes_per_second": res["bytes"] / res["static_all_s"], "seconds": res["static_all_s"]}
        r.figure = f"{res['bytes'] / res['static_all_s'] / 1e9:.2f} GB/s"
        r.note = "the API has no bulk slot allocation: one next_index() call per entry"

    steps.append(("B4 bulk load", bulk_step))
    return steps


# --------------------------------------------------------------------------------------------------------
# B5: growth


def b5_steps(sz: Sizes, sec: Section) -> list[Step]:
    n, m = sz.n_b5, sz.members
    block = 1 << sz.b5_block_log2
    sec.params = {"entries": n, "members": m, "block": block}
    g = (f"growing to {n:,} entries x {m} int64 (the B1 record), {block:,} entries at a time; "
         "peak RSS (ru_maxrss) and final RSS gained, in a fresh interpreter")
    rows = {
        "cs_dynamic": sec.add(g, Row(f"compactstore DynamicStore (log2size {sz.b5_block_log2})",
                                     target="peak ≤ 1.05× final")),
        "numpy_doubling": sec.add(g, Row(f"numpy (cap, {m}) array, capacity doubled (np.empty + copy)",
                                         status="reference")),
    }
    steps: list[Step] = []
    for alt, row in rows.items():

        def step(alt: str = alt, row: Row = row) -> None:
            res = run_rows({"kind": "b5", "alt": alt, "n": n, "m": m, "block_log2": sz.b5_block_log2}, row)
            if res is None:
                return
            final, peak = res["final"], res["peak"]
            r = peak / final if final > 0 else float("nan")
            row.values = {"final_bytes": final, "peak_bytes": peak, "peak_over_final": r}
            raw = n * m * 8
            row.values["peak_over_raw"] = peak / raw
            row.figure = f"peak {_mb(peak)} ({peak / raw:.2f}× raw), final {_mb(final)}: {r:.3f}× final"
            if not res["peak_reset"]:
                row.note = "peak mark could not be reset: peak includes start-up"
            if alt == "cs_dynamic":
                row.holds = r <= 1.05

        steps.append((f"B5 {row.name}", step))
    return steps


# --------------------------------------------------------------------------------------------------------
# output


def machine() -> dict[str, Any]:
    import numpy as np

    import compactstore as cs

    cpu = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    commit = ""
    try:  # the source tree the package was built from, when run from a checkout
        here = os.path.dirname(os.path.abspath(__file__))
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                                cwd=here, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    built = ""
    try:  # when the extension module was built: the checkout may have moved on since
        mtime = os.path.getmtime(cs._native.__file__)
        built = datetime.datetime.fromtimestamp(mtime, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    except (AttributeError, OSError):
        pass
    return {
        "git": commit,
        "extension_built": built,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "compactstore": cs.__version__,
        "platform": platform.platform(),
    }


def format_section(sec: Section) -> str:
    lines = [f"{sec.key} {sec.title}"]
    for group, rows in sec.groups.items():
        lines.append(f"  {group}")
        w = max(len(r.name) for r in rows)
        fw = max(len(r.figure) for r in rows)
        tw = max(len(r.target) for r in rows)
        for r in rows:
            tail = f"  [{r.note}]" if r.note else ""
            lines.append(f"    {r.name:<{w}}  {r.figure:<{fw}}  {r.target:<{tw}}  {r.mark()}{tail}".rstrip())
    for note in sec.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def summary(sections: list[Section]) -> str:
    held = missed = na = 0
    for sec in sections:
        for r in sec.rows():
            if r.target and r.status == "measured" and r.holds is not None:
                held += r.holds
                missed += not r.holds
            elif r.target and r.status in ("n/a", "skipped", "error"):
                na += 1
    return f"targets: {held} held, {missed} missed, {na} not measured (n/a)"


def to_json(meta: dict[str, Any], sections: list[Section]) -> dict[str, Any]:
    return {
        "meta": meta,
        "sections": {
            s.key: {
                "title": s.title,
                "params": s.params,
                "notes": s.notes,
                "groups": {g: [asdict(r) for r in rows] for g, rows in s.groups.items()},
            }
            for s in sections
        },
    }


class Progress:
    """tqdm when importable, else a plain line per step on stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, 0, enabled
        self.bar: Any = None
        if enabled and have("tqdm"):
            from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

            self.bar = tqdm(total=total, desc="compactstore bench", unit="step", file=sys.stderr)

    def start(self, label: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(label[:50])
        elif self.enabled:
            print(f"[{self.done + 1}/{self.total}] {label} ...", file=sys.stderr, flush=True)

    def step(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _b6_steps(sz: Sizes, sec: Section) -> list[Step]:
    from .b6 import b6_steps

    return b6_steps(sz, sec)


SECTIONS: dict[str, tuple[str, Callable[[Sizes, Section], list[Step]]]] = {
    "B1": ("wide records: RSS of N entries x 125 int64 members", b1_steps),
    "B2": ("mixed record: bytes per entry, all in", b2_steps),
    "B3": ("fork sharing: private memory a reading child gains", b3_steps),
    "B4": ("access speed, as ratios in one run", b4_steps),
    "B5": ("growth: peak RSS over final RSS", b5_steps),
    "B6": ("sharing: what each worker process copies, per start method", _b6_steps),
    "B8": ("Arrow: pa.table(s), pl.DataFrame(s) and cs.from_arrow", lambda sz, sec: __import__("compactstore.bench.b8", fromlist=["b8_steps"]).b8_steps(sz, sec)),
    "B7": ("files: save, load, map and pickle", lambda sz, sec: importlib.import_module("compactstore.bench.b7").steps(sz, sec)),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m compactstore.bench",
        description="Measure compactstore against dict of dicts, dataclasses, numpy, pandas and pyarrow "
        "(performance targets B1-B8).",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes (seconds; for tests)")
    size.add_argument("--full", action="store_true", help="1M entries for B1, B2, B3 and B5")
    p.add_argument("-n", "--entries", type=int, help="entries for B1, B2, B3 and B5 (overrides the preset)")
    p.add_argument("--repeat", type=int, help="timing repeats for B4 (best taken)")
    p.add_argument("--ops", type=int, help="random accesses per B4 timing")
    p.add_argument("--only", help="comma-separated sections to run, e.g. B1,B4")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw B1/B2 memory per entry and B3 sharing (matplotlib)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sz = Sizes.quick() if args.quick else Sizes.full() if args.full else Sizes()
    if args.entries:
        sz.n_b1 = sz.n_b2 = sz.n_b3 = sz.n_b5 = args.entries
    if args.repeat:
        sz.repeat = args.repeat
    if args.ops:
        sz.b4_ops = args.ops
    wanted = [s.strip().upper() for s in args.only.split(",")] if args.only else list(SECTIONS)
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")

    meta = machine()
    meta["command"] = " ".join(["python -m compactstore.bench", *(argv if argv is not None else sys.argv[1:])])
    meta["preset"] = "quick" if args.quick else "full" if args.full else "default"
    meta["sizes"] = asdict(sz)
    meta["optional"] = {m: have(m) for m in ("pandas", "pyarrow", "matplotlib", "tqdm")}
    meta["versions"] = {m: _version(m) for m, ok in meta["optional"].items() if ok}
    meta["features"] = {"KeyedStore": keyed_available(), "str members": str_members_available()}

    sections: list[Section] = []
    steps: list[Step] = []
    for key in SECTIONS:
        if key not in wanted:
            continue
        title, make = SECTIONS[key]
        sec = Section(key, title)
        sections.append(sec)
        steps += make(sz, sec)

    t0 = time.perf_counter()
    progress = Progress(len(steps), enabled=not args.no_progress)
    try:
        for label, fn in steps:
            progress.start(label)
            fn()
            progress.step()
    finally:
        progress.close()
    meta["seconds"] = round(time.perf_counter() - t0, 1)

    src = f"checkout {meta['git']}, " if meta["git"] else ""
    print(f"compactstore {meta['compactstore']} ({src}extension built {meta['extension_built']}) "
          f"benchmarks ({meta['preset']}), {meta['date']}")
    libs = "".join(f", {m} {v}" for m, v in meta["versions"].items() if m in ("pandas", "pyarrow"))
    print(f"{meta['cpu']}, {meta['cores']} cores; Python {meta['python']}, numpy {meta['numpy']}{libs}")
    if args.quick:
        print("--quick: sizes far too small for the figures to mean anything (fixed costs dominate); "
              "this checks that the benchmark runs")
    missing = [m for m, ok in meta["optional"].items() if not ok and m in ("pandas", "pyarrow")]
    if missing:
        print(f"not installed, their alternatives skipped: {', '.join(missing)} (pip install compactstore[bench])")
    for sec in sections:
        print()
        print(format_section(sec))
    print()
    print(summary(sections) + f"; {meta['seconds']} s")

    if args.json:
        with open(args.json, "w") as f:
            json.dump(to_json(meta, sections), f, indent=1, ensure_ascii=False)
            f.write("\n")
        print(f"wrote {args.json}")
    if args.plot:
        if not have("matplotlib"):
            print("--plot: matplotlib is not installed (pip install compactstore[bench]); no plot drawn")
        else:
            from compactstore.bench.plot import plot

            plot(meta, sections, args.plot)
            print(f"wrote {args.plot}")
    return 0
