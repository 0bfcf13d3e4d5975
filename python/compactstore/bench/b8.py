"""B8: Arrow. A store read by pyarrow and polars (``pa.table(s)``, ``pl.DataFrame(s)``) and built back with
``cs.from_arrow``, each beside pandas/polars doing the same conversion.

Targets: ``pa.table(s)`` of 1M numeric entries ≤ 1 ms (numeric members leave without a copy); with str
members ≥ 1 GB/s (bytes of the Arrow table made per second); ``cs.from_arrow`` of numeric columns ≥ 1 GB/s.
The driver side (``b8_steps``) makes the rows; the measurement (``job_b8``) runs in a fresh interpreter.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any, Callable


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _best(f: Callable[[], Any], repeat: int) -> float:
    """The best wall time of `repeat` calls of `f` (after one warm-up call), in seconds."""
    f()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def job_b8(n: int, repeat: int, seed: int) -> dict[str, Any]:
    """Every B8 timing (seconds, best of `repeat`) and the byte counts behind the rates."""
    import numpy as np

    import compactstore as cs

    out: dict[str, Any] = {"have": {m: _have(m) for m in ("pyarrow", "polars", "pandas")}}
    if not out["have"]["pyarrow"]:
        return out
    import pyarrow as pa

    pl = __import__("polars") if out["have"]["polars"] else None
    pd = __import__("pandas") if out["have"]["pandas"] else None
    rng = np.random.default_rng(seed)

    # (a) numeric: 4 members, 24 bytes per entry
    cols = {
        "a": np.arange(n, dtype=np.int64),
        "b": rng.random(n),
        "c": rng.integers(-(2**31), 2**31 - 1, n, dtype=np.int32),
        "d": rng.random(n).astype(np.float32),
    }
    num = cs.make_store("Num", {"a": cs.i64, "b": cs.f64, "c": cs.i32, "d": cs.f32})
    s = num(size=n)
    for _ in range(n):
        s.next_index()
    for name, arr in cols.items():
        np.asarray(s[name])[:] = arr
    out["numeric_bytes"] = sum(a.nbytes for a in cols.values())
    t = pa.table(s)
    out["zero_copy"] = t.column("a").chunks[0].buffers()[1].address == np.asarray(s["a"]).ctypes.data
    out["export_static"] = _best(lambda: pa.table(s), repeat)
    table = pa.table(cols)
    d = cs.from_arrow(table, num, log2size=16)
    out["dynamic_chunks"] = len(d.chunks)
    out["export_dynamic"] = _best(lambda: pa.table(d), repeat)
    out["import_numeric"] = _best(lambda: cs.from_arrow(table, num), repeat)
    out["import_numeric_inferred"] = _best(lambda: cs.from_arrow(table), repeat)
    out["ref_to_pandas"] = _best(lambda: table.to_pandas(), repeat) if pd is not None else None
    if pl is not None:
        out["export_polars"] = _best(lambda: pl.DataFrame(s), repeat)
        out["ref_pl_from_arrow"] = _best(lambda: pl.from_arrow(table), repeat)
    if pd is not None:
        df = pd.DataFrame(cols)
        out["ref_from_pandas"] = _best(lambda: pa.Table.from_pandas(df, preserve_index=False), repeat)
        if pl is not None:
            out["ref_pl_from_pandas"] = _best(lambda: pl.from_pandas(df), repeat)
    del s, d, t

    # (b) str members: names of 12-20 letters (the B2 record's) and notes of 30-60 letters
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    pool = letters[rng.integers(0, 26, 64 * n)].tobytes().decode()
    lens = rng.integers(12, 21, n)
    nlens = rng.integers(30, 61, n)
    names = [pool[i * 64 : i * 64 + k] for i, k in enumerate(lens.tolist())]
    notes = [pool[i * 64 : i * 64 + k] for i, k in enumerate(nlens.tolist())]
    strs = cs.make_store("Strs", {"name": str, "note": str})
    st = pa.table({"name": pa.array(names, pa.large_string()), "note": pa.array(notes, pa.large_string())})
    ss = cs.from_arrow(st, strs, log2size=max(1, (n - 1).bit_length()))  # one chunk
    out["str_bytes"] = pa.table(ss).nbytes
    out["str_value_bytes"] = int(lens.sum() + nlens.sum())
    out["export_str"] = _best(lambda: pa.table(ss), repeat)
    out["import_str"] = _best(lambda: cs.from_arrow(st, strs), repeat)
    if pl is not None:
        out["export_str_polars"] = _best(lambda: pl.DataFrame(ss), repeat)
        out["ref_str_pl_from_arrow"] = _best(lambda: pl.from_arrow(st), repeat)
    if pd is not None:
        sdf = pd.DataFrame({"name": names, "note": notes}, dtype=object)
        out["ref_str_from_pandas"] = _best(lambda: pa.Table.from_pandas(sdf, preserve_index=False), repeat)
        out["ref_str_to_pandas"] = _best(lambda: st.to_pandas(), repeat)
    return out


def b8_steps(sz: Any, sec: Any) -> list[tuple[str, Callable[[], None]]]:
    """The B8 rows of the benchmark (`sz`: the run's sizes, `sec`: its section) and the one step filling
    them."""
    from compactstore.bench.cli import Row, run_rows

    n, repeat = sz.n_b2, max(sz.repeat, 5)
    sec.params = {"entries": n, "repeat": repeat}
    sec.notes.append(
        f"{n:,} entries; best of {repeat} calls after a warm-up, in a fresh interpreter. Rates are the bytes "
        "of the Arrow data made (or read) per second: numeric columns' values, or the str table's offsets and "
        "bytes (`Table.nbytes`). pyarrow's, polars' and pandas' own conversions are shown for scale."
    )
    ga = f"(a) export: {n:,} entries x 4 numeric members (i64, f64, i32, f32: 24 B/entry)"
    gb = f"(b) export with str members: {n:,} entries x 2 str (12-20 and 30-60 letters)"
    gc_ = f"(c) import: cs.from_arrow of {n:,} rows"
    rows = {
        "export_static": sec.add(ga, Row("pa.table(s), StaticStore (no copy)", target="≤ 1 ms")),
        "export_dynamic": sec.add(ga, Row("pa.table(d), DynamicStore of 2^16-slot chunks")),
        "export_polars": sec.add(ga, Row("pl.DataFrame(s), StaticStore")),
        "ref_from_pandas": sec.add(ga, Row("pa.Table.from_pandas(df), numpy-backed DataFrame", status="reference")),
        "ref_pl_from_pandas": sec.add(ga, Row("pl.from_pandas(df)", status="reference")),
        "export_str": sec.add(gb, Row("pa.table(s), one chunk", target="≥ 1 GB/s")),
        "export_str_polars": sec.add(gb, Row("pl.DataFrame(s)")),
        "ref_str_from_pandas": sec.add(gb, Row("pa.Table.from_pandas(df), object strings", status="reference")),
        "import_numeric": sec.add(gc_, Row("cs.from_arrow(t, Num), numeric", target="≥ 1 GB/s")),
        "import_numeric_inferred": sec.add(gc_, Row("cs.from_arrow(t), numeric, members inferred")),
        "ref_to_pandas": sec.add(gc_, Row("t.to_pandas(), numeric", status="reference")),
        "ref_pl_from_arrow": sec.add(gc_, Row("pl.from_arrow(t), numeric (no copy)", status="reference")),
        "import_str": sec.add(gc_, Row("cs.from_arrow(t, Strs), str")),
        "ref_str_to_pandas": sec.add(gc_, Row("t.to_pandas(), str", status="reference")),
        "ref_str_pl_from_arrow": sec.add(gc_, Row("pl.from_arrow(t), str", status="reference")),
    }

    def step() -> None:
        res = run_rows({"kind": "b8", "n": n, "repeat": repeat, "seed": sz.seed}, rows.values())
        if res is None:
            return
        if not res["have"]["pyarrow"]:
            for r in rows.values():
                r.status, r.figure = "n/a", "n/a (pyarrow not installed)"
            return
        num_b, str_b = res["numeric_bytes"], res["str_bytes"]
        for key, r in rows.items():
            t = res.get(key)
            if t is None:
                r.status, r.figure = "n/a", "n/a (package not installed)"
                continue
            nbytes = str_b if "str" in key else num_b
            rate = nbytes / t / 1e9 if t > 0 else float("inf")
            r.values = {"seconds": t, "gb_per_s": rate}
            r.figure = f"{t * 1e3:,.3f} ms  ({rate:,.2f} GB/s)"
        rows["export_static"].holds = res["export_static"] <= 1e-3
        rows["export_static"].note = "shares the column buffers" if res["zero_copy"] else "copied"
        rows["export_dynamic"].note = f"record batches: {res['dynamic_chunks']}"
        rows["export_str"].holds = rows["export_str"].values["gb_per_s"] >= 1.0
        rows["import_numeric"].holds = rows["import_numeric"].values["gb_per_s"] >= 1.0

    return [("B8 Arrow", step)]
