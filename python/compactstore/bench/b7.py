"""B7: files — save, load, map and pickle 1M B2 records, beside pickle of a dict of dicts, np.save/np.load
of the columns, pyarrow Parquet and Arrow IPC.

Targets: ``s.save(path)`` ≥ 1 GB/s; ``cs.load(path, mmap_mode="r")`` ≤ 1 ms and flat from 1M to 10M
entries; ``cs.load(path)`` ≥ 1 GB/s. Each measurement runs in a fresh interpreter (``job_b7``); files go to
the temporary directory (``$TMPDIR``), written and read back at once, so reads come from the page cache.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable

from compactstore.bench.cli import Row, Section, Sizes, Step, have, run_rows

# ---------------------------------------------------------------------------------------------- worker


def _best(f: Callable[[], Any], repeat: int) -> float:
    """The best wall time of `repeat` calls of `f` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def _b2_columns(n: int, seed: int) -> dict[str, Any]:
    from compactstore.bench.workers import CATEGORIES, mixed_data

    d = mixed_data(n, seed)
    d["category_str"] = [CATEGORIES[c] for c in d["category"].tolist()]
    return d


def _pool(d: dict[str, Any]) -> Any:
    import compactstore as cs
    from compactstore.bench.workers import mixed_store_type

    T = mixed_store_type()
    # make_store names the caller's module (workers): put the type there so that pickle finds it.
    import compactstore.bench.workers as workers

    setattr(workers, T.__name__, T)
    cols = {k: d[k] for k in ("fitness", "generation", "num_codes", "alive", "inputs")}
    cols["name"] = d["name"].astype("U20")
    cols["category"] = d["category_str"]
    return cs.KeyedStore.from_columns(T, d["ref"], cols, key=cs.i64)


def job_b7(alt: str, n: int, seed: int, repeat: int) -> dict[str, Any]:
    import pickle

    import numpy as np

    d = _b2_columns(n, seed)
    tmp = tempfile.mkdtemp(prefix="cs-b7-")
    path = os.path.join(tmp, "store")
    out: dict[str, Any] = {}
    try:
        if alt in ("cs", "cs_open"):
            import compactstore as cs

            pool = _pool(d)
            T = pool.store_type
            del d
            out["save_s"] = _best(lambda: pool.save(path), 1 if alt == "cs_open" else repeat)
            out["bytes"] = os.path.getsize(path)
            opened: list[Any] = []
            out["mmap_s"] = _best(lambda: opened.append(cs.load(path, T, mmap_mode="r")), max(repeat, 5))
            m = opened[-1]
            k = int(next(iter(m)))
            out["mmap_lookup_ok"] = m[k, "fitness"] == pool[k, "fitness"]
            del opened, m
            if alt == "cs":
                out["load_s"] = _best(lambda: cs.load(path, T), repeat)
                out["load_c_s"] = _best(lambda: cs.load(path, T, mmap_mode="c"), repeat)
                buffers: list[Any] = []
                out["pickle_dump_s"] = _best(lambda: pickle.dumps(pool, protocol=5), repeat)
                data = pickle.dumps(pool, protocol=5)
                out["pickle_load_s"] = _best(lambda: pickle.loads(data), repeat)
                out["pickle_bytes"] = len(data)
                oob = pickle.dumps(pool, protocol=5, buffer_callback=buffers.append)
                ro = [memoryview(b).toreadonly() for b in buffers]
                out["pickle_oob_load_s"] = _best(lambda: pickle.loads(oob, buffers=ro), repeat)
                mapped = cs.load(path, T, mmap_mode="r")
                out["pickle_ref_bytes"] = len(pickle.dumps(mapped))
        elif alt == "dict_pickle":
            from compactstore.bench.workers import build_mixed

            store = build_mixed("dict", d)
            del d

            def dump() -> None:
                with open(path, "wb") as f:
                    pickle.dump(store, f, protocol=5)
                    f.flush()
                    os.fsync(f.fileno())

            out["save_s"] = _best(dump, 1)
            out["bytes"] = os.path.getsize(path)

            def load() -> None:
                with open(path, "rb") as f:
                    pickle.load(f)

            out["load_s"] = _best(load, 1)
        elif alt == "numpy":
            cols = {k: d[k] for k in ("ref", "fitness", "generation", "num_codes", "alive", "inputs", "name", "category")}
            del d
            os.makedirs(path)

            def save() -> None:
                for k, a in cols.items():
                    with open(os.path.join(path, k + ".npy"), "wb") as f:
                        np.save(f, a)
                        f.flush()
                        os.fsync(f.fileno())

            out["save_s"] = _best(save, repeat)
            out["bytes"] = sum(os.path.getsize(os.path.join(path, k + ".npy")) for k in cols)
            out["load_s"] = _best(lambda: [np.load(os.path.join(path, k + ".npy")) for k in cols], repeat)
            out["mmap_s"] = _best(
                lambda: [np.load(os.path.join(path, k + ".npy"), mmap_mode="r") for k in cols], repeat
            )
        elif alt in ("parquet", "arrow_ipc"):
            import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

            from compactstore.bench.workers import build_mixed

            table = build_mixed("pyarrow", d)
            del d
            if alt == "parquet":
                import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

                out["save_s"] = _best(lambda: pq.write_table(table, path), repeat)
                out["load_s"] = _best(lambda: pq.read_table(path), repeat)
            else:

                def write() -> None:
                    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
                        w.write_table(table)

                out["save_s"] = _best(write, repeat)
                out["load_s"] = _best(lambda: pa.ipc.open_file(pa.OSFile(path, "rb")).read_all(), repeat)

                def mapped() -> None:
                    pa.ipc.open_file(pa.memory_map(path, "r")).read_all()

                out["mmap_s"] = _best(mapped, repeat)
            out["bytes"] = os.path.getsize(path)
        else:
            raise ValueError(f"unknown alternative {alt!r}")
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------- driver

ALTS = [
    ("cs", "compactstore KeyedStore: save / load / load(mmap_mode='r')", None),
    ("dict_pickle", "dict of dicts: pickle.dump / pickle.load (protocol 5)", None),
    ("numpy", "numpy: np.save / np.load of the 8 columns (no index)", None),
    ("parquet", "pyarrow Parquet: write_table / read_table (no index)", "pyarrow"),
    ("arrow_ipc", "pyarrow Arrow IPC file: write / read (no index)", "pyarrow"),
]


def _gbs(b: float, s: float) -> str:
    return f"{b / s / 1e9:,.2f} GB/s ({s * 1e3:,.1f} ms)"


def steps(sz: Sizes, sec: Section) -> list[Step]:
    n = sz.n_b2
    big = 10 * n
    repeat = max(3, min(sz.repeat, 5))
    sec.params = {"entries": n, "entries_big": big}
    g = f"{n:,} B2 records keyed by ref (the B2 record); files in {tempfile.gettempdir()}"
    sec.notes.append(
        "save is atomic (temporary file, fsync, rename, fsync of the directory) and includes the fsync; the "
        "alternatives' writes are fsynced too (pickle and np.save by us; pyarrow's are not). Loads read "
        "a file just written (page cache). GB/s is the file's size over the time; best of the repeats."
    )
    rows: dict[str, Row] = {}
    save = sec.add(g, Row("compactstore s.save(path)", target="≥ 1 GB/s"))
    load = sec.add(g, Row("compactstore cs.load(path) (into memory, checked whole)", target="≥ 1 GB/s"))
    mmap = sec.add(g, Row(f"compactstore cs.load(path, mmap_mode='r'), {n:,} entries", target="≤ 1 ms"))
    mmap_big = sec.add(g, Row(f"compactstore cs.load(path, mmap_mode='r'), {big:,} entries", target="≤ 1 ms, flat"))
    pick = sec.add(g, Row("compactstore pickle.dumps / loads (protocol 5, in band)", status="reference"))
    for alt, label, needs in ALTS[1:]:
        rows[alt] = sec.add(g, Row(label, status="reference"))
    out: list[Step] = []

    def cs_step() -> None:
        res = run_rows({"kind": "b7", "alt": "cs", "n": n, "seed": sz.seed, "repeat": repeat}, [save, load, mmap, pick])
        if res is None:
            return
        b = res["bytes"]
        save.values = {"seconds": res["save_s"], "bytes": b}
        save.figure = _gbs(b, res["save_s"])
        save.holds = b / res["save_s"] >= 1e9
        load.values = {"seconds": res["load_s"], "bytes": b}
        load.figure = _gbs(b, res["load_s"]) + f"; mmap_mode='c' {res['load_c_s'] * 1e3:,.1f} ms"
        load.holds = b / res["load_s"] >= 1e9
        mmap.values = {"seconds": res["mmap_s"]}
        mmap.figure = f"{res['mmap_s'] * 1e3:,.3f} ms (file {b / 1e6:,.1f} MB)"
        mmap.holds = res["mmap_s"] <= 1e-3 and bool(res["mmap_lookup_ok"])
        pick.values = {k: res[k] for k in ("pickle_dump_s", "pickle_load_s", "pickle_oob_load_s", "pickle_bytes")}
        pick.figure = (
            f"dumps {_gbs(res['pickle_bytes'], res['pickle_dump_s'])}, loads {_gbs(res['pickle_bytes'], res['pickle_load_s'])}"
        )
        pick.note = (
            f"out of band from read-only buffers: loads {res['pickle_oob_load_s'] * 1e3:,.3f} ms; a mapped "
            f"store pickles as a {res['pickle_ref_bytes']:,}-byte reference"
        )

    def big_step() -> None:
        res = run_rows({"kind": "b7", "alt": "cs_open", "n": big, "seed": sz.seed, "repeat": repeat}, mmap_big)
        if res is None:
            return
        mmap_big.values = {"seconds": res["mmap_s"], "bytes": res["bytes"]}
        mmap_big.figure = f"{res['mmap_s'] * 1e3:,.3f} ms (file {res['bytes'] / 1e6:,.1f} MB)"
        small = mmap.values.get("seconds")
        flat = small is None or res["mmap_s"] <= max(3 * small, 1e-3)
        mmap_big.holds = res["mmap_s"] <= 1e-3 and flat and bool(res["mmap_lookup_ok"])

    out.append(("B7 compactstore save/load/map/pickle", cs_step))
    out.append((f"B7 compactstore map at {big:,}", big_step))
    for alt, label, needs in ALTS[1:]:
        row = rows[alt]
        if needs and not have(needs):
            row.status, row.figure = "skipped", f"skipped: {needs} not installed"
            continue

        def step(alt: str = alt, row: Row = row) -> None:
            res = run_rows({"kind": "b7", "alt": alt, "n": n, "seed": sz.seed, "repeat": repeat}, row)
            if res is None:
                return
            b = res["bytes"]
            row.values = {k: v for k, v in res.items() if isinstance(v, (int, float))}
            row.figure = f"save {_gbs(b, res['save_s'])}, load {_gbs(b, res['load_s'])}"
            if "mmap_s" in res:
                row.figure += f", mapped {res['mmap_s'] * 1e3:,.2f} ms"

        out.append((f"B7 {label}", step))
    return out
