"""Stores as Arrow producers: pyarrow, polars and DuckDB read every member type of every store kind; numeric
columns leave without a copy; an export outlives its store."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

import compactstore as cs

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
duckdb = pytest.importorskip("duckdb")


class Rec(cs.StaticStore):
    ref: cs.i64
    small: cs.i8 = -3
    wide: cs.u64
    fit: cs.f32 = 0.5
    x: cs.f64
    flag: cs.bool_
    inputs: cs.Array(cs.u8, 3)
    flags: cs.Array(cs.bool_, 2)
    name: str = ""
    blob: bytes
    cat: cs.Interned(cs.Str)
    icat: cs.Interned(cs.Bytes)
    parent: cs.Optional(cs.i64)
    oname: cs.Optional(cs.Str)
    ocat: cs.Optional(cs.Interned(cs.Str))
    oarr: cs.Optional(cs.Array(cs.i16, 2))


NAMES = ["", "a", "é" * 7, "x" * 300, "nul\0byte", "日本語テキスト" * 5, "fifteen-bytes!!", "sixteen-bytes!!!"]


def values(i: int) -> dict:
    return {
        "ref": i * 10,
        "small": -(i % 100),
        "wide": 2**64 - 1 - i,
        "fit": i / 4,
        "x": i * 1.5,
        "flag": i % 3 == 0,
        "inputs": [i % 256, 1, 2],
        "flags": [i % 2 == 0, True],
        "name": NAMES[i % len(NAMES)],
        "blob": bytes([i % 256]) * (i % 20) + b"\0",
        "cat": ["red", "green", "blue"][i % 3],
        "icat": [b"\0a", b"bb"][i % 2],
        "parent": None if i % 4 == 1 else i - 1,
        "oname": None if i % 5 == 2 else NAMES[(i + 1) % len(NAMES)],
        "ocat": None if i % 3 == 2 else ["p", "q"][i % 2],
        "oarr": None if i % 2 else [i, -i],
    }


def py(v):
    """A store or Arrow value as plain Python (lists for arrays, str for categories)."""
    if isinstance(v, np.ndarray):
        return [py(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [py(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float):
        return round(v, 6)
    return v


def rows_of(store, names=None) -> list[dict]:
    names = names or list(Rec._cs_schema.names())
    if isinstance(store, cs.KeyedStore):
        return [{"key": k, **{n: py(e[n]) for n in names}} for k, e in store.items()]
    return [{n: py(store[n][i]) for n in names} for i in store.indices()]


def table_rows(t) -> list[dict]:
    return [{k: py(v) for k, v in r.items()} for r in t.to_pylist()]


def static_store(n: int = 20, holes: bool = False):
    s = Rec(size=n + 5)
    for i in range(n):
        s.add(values(i))
    if holes:
        for i in range(0, n, 3):
            del s[i]
    return s


def dynamic_store(n: int = 23, holes: bool = True):
    d = cs.DynamicStore(Rec, log2size=3)
    for i in range(n):
        d.add(values(i))
    if holes:
        for i in (1, 9, 10, 22):
            del d[i]
    return d


def keyed_store(n: int = 21, key=cs.i64, key_name=None):
    kw = {} if key_name is None else {"key_name": key_name}
    k = cs.KeyedStore(Rec, key=key, log2size=3, **kw)
    for i in range(n):
        k[i if key is cs.i64 else f"k{i}"] = values(i)
    for i in (2, 11):
        if i < n:
            del k[i if key is cs.i64 else f"k{i}"]
    return k


STORES = {
    "static": lambda: static_store(),
    "static-holes": lambda: static_store(holes=True),
    "dynamic": lambda: dynamic_store(holes=False),
    "dynamic-holes": lambda: dynamic_store(),
    "keyed": lambda: keyed_store(),
}


@pytest.fixture(params=sorted(STORES))
def store(request):
    return STORES[request.param]()


def test_the_schema_follows_the_type_table() -> None:
    t = pa.table(static_store(2))
    s = t.schema
    assert s.field("ref").type == pa.int64() and not s.field("ref").nullable
    assert s.field("small").type == pa.int8() and s.field("wide").type == pa.uint64()
    assert s.field("fit").type == pa.float32() and s.field("flag").type == pa.bool_()
    assert s.field("inputs").type == pa.list_(pa.field("item", pa.uint8(), nullable=False), 3)
    assert s.field("name").type == pa.large_string() and s.field("blob").type == pa.large_binary()
    assert s.field("cat").type == pa.dictionary(pa.int32(), pa.large_string())
    assert s.field("icat").type == pa.dictionary(pa.int32(), pa.large_binary())
    assert s.field("parent").type == pa.int64() and s.field("parent").nullable
    assert s.field("ocat").nullable and s.field("oarr").nullable
    assert pa.schema(static_store(0)) == s


def test_pyarrow_reads_every_member_of_every_store(store) -> None:
    t = pa.table(store)
    assert table_rows(t) == rows_of(store)
    assert t.num_rows == len(store)


def test_one_batch_per_chunk() -> None:
    d = dynamic_store()
    batches = pa.table(d).to_batches()
    assert [b.num_rows for b in batches] == [7, 6, 6]
    k = keyed_store()
    assert [b.num_rows for b in pa.table(k).to_batches()] == [7, 7, 5]


def test_polars_reads_every_member_of_every_store(store) -> None:
    # A keyed store is a Mapping, which polars' constructor reads as {column: values}: to_polars() it is.
    df = store.to_polars() if isinstance(store, cs.KeyedStore) else pl.DataFrame(store)
    got = [{k: py(v) for k, v in r.items()} for r in df.to_dicts()]
    assert got == rows_of(store)
    assert df.schema["ref"] == pl.Int64 and df.schema["inputs"] == pl.Array(pl.UInt8, 3)


def test_duckdb_sql_over_a_store(store) -> None:
    s = store  # noqa: F841  (DuckDB finds it by name)
    names = list(Rec._cs_schema.names())
    got = duckdb.sql("select * from s").fetchall()
    want = rows_of(store)
    cols = (["key"] if isinstance(store, cs.KeyedStore) else []) + names
    assert [dict(zip(cols, map(py, r))) for r in got] == want
    total = duckdb.sql("select sum(ref), count(*), count(parent) from s").fetchall()
    assert total == [(sum(r["ref"] for r in want), len(want), sum(r["parent"] is not None for r in want))]
    assert duckdb.sql("select name from s where length(name) = 300").fetchall() == [
        ("x" * 300,) for r in want if r["name"] == "x" * 300
    ]


def test_a_chunk_view_exports_its_chunk() -> None:
    d = dynamic_store()
    chunk = d.chunks[1]
    assert table_rows(pa.table(chunk)) == rows_of(chunk)


def test_members_pick_and_order_columns(store) -> None:
    t = store.to_arrow(members=["name", "ref"])
    keyed = isinstance(store, cs.KeyedStore)
    assert t.column_names == (["key"] if keyed else []) + ["name", "ref"]
    assert store.to_arrow(members=[]).num_rows == len(store)


def test_to_pandas_and_to_polars() -> None:
    s = static_store(5)
    df = s.to_pandas(members=["ref", "name", "parent"])
    assert df["ref"].tolist() == [0, 10, 20, 30, 40]
    assert df["name"].tolist() == NAMES[:5]
    p = s.to_polars(members=["ref", "cat"])
    assert p["cat"].cast(pl.String).to_list() == ["red", "green", "blue", "red", "green"]
    assert s.to_polars().height == 5


@pytest.mark.parametrize("package", ["pyarrow", "polars", "pandas"])
def test_a_missing_package_is_named(monkeypatch, package) -> None:
    monkeypatch.setitem(sys.modules, package, None)
    s = static_store(1)
    call = {"pyarrow": s.to_arrow, "polars": s.to_polars, "pandas": s.to_pandas}[package]
    with pytest.raises(ImportError, match=package):
        call()


def test_int64_column_leaves_without_a_copy() -> None:
    s = static_store(20)
    t = pa.table(s)
    addr = t.column("ref").chunks[0].buffers()[1].address
    assert addr == np.asarray(s["ref"]).__array_interface__["data"][0]
    f = t.column("fit").chunks[0].buffers()[1].address
    assert f == np.asarray(s["fit"]).__array_interface__["data"][0]
    arr = t.column("inputs").chunks[0].values.buffers()[1].address
    assert arr == np.asarray(s["inputs"]).__array_interface__["data"][0]


def test_a_dynamic_chunk_leaves_without_a_copy() -> None:
    d = cs.DynamicStore(Rec, log2size=4)
    for i in range(40):
        d.add(values(i))
    t = pa.table(d)
    for k, batch in enumerate(t.to_batches()):
        addr = batch.column(0).buffers()[1].address
        assert addr == np.asarray(d.chunks[k]["ref"]).__array_interface__["data"][0]


def test_writes_of_numbers_show_through_a_zero_copy_export() -> None:
    s = static_store(5)
    t = pa.table(s)
    s["ref"][1] = 12345
    assert t.column("ref")[1].as_py() == 12345
    s["name"][1] = "changed"  # a copy: does not show
    assert t.column("name")[1].as_py() == NAMES[1]


def test_holes_are_converted_not_shared() -> None:
    s = static_store(10, holes=True)
    t = pa.table(s)
    assert t.column("ref").to_pylist() == [i * 10 for i in range(10) if i % 3]
    assert t.column("ref").chunks[0].buffers()[1].address != np.asarray(s["ref"]).__array_interface__["data"][0]


def _churn() -> None:
    junk = [np.full(1 << 16, 7, np.int64) for _ in range(200)]  # 100 MiB reused from freed memory
    del junk
    gc.collect()


@pytest.mark.parametrize("how", ["del", "resize", "dynamic-reset", "retract", "keyed-clear"])
def test_an_export_outlives_its_store(how) -> None:
    if how == "retract":
        d = cs.DynamicStore(Rec, log2size=4)
        for i in range(50):
            d.add(values(i))
        want = rows_of(d)
        t = pa.table(d)
        for i in range(16, 50):
            del d[i]
        assert d.retract() == 3
    elif how == "dynamic-reset":
        d = cs.DynamicStore(Rec, log2size=3)
        for i in range(30):
            d.add(values(i))
        want = rows_of(d)[8:]  # the chunks reset() drops; the first one is reset in place (see below)
        t = pa.table(d).slice(8)
        d.reset(log2size=5)
        del d
    elif how == "keyed-clear":
        k = keyed_store()
        want = rows_of(k)
        t = pa.table(k)
        k.clear()
    else:
        s = static_store(1000)
        want = rows_of(s)
        t = pa.table(s)
        if how == "del":
            del s
        else:
            s.reset(size=3)
    gc.collect()
    _churn()
    t.validate(full=True)
    if how == "retract":
        # Deleting entries resets their slots in place (shown through the shared columns); the kept chunk's
        # rows are as exported, the dropped chunks' memory is still the table's.
        assert table_rows(t)[:16] == want[:16] and t.num_rows == 50
    else:
        assert table_rows(t) == want


def test_a_polars_frame_outlives_its_store() -> None:
    s = static_store(100)
    want = [r["ref"] for r in rows_of(s)]
    df = pl.DataFrame(s)
    del s
    gc.collect()
    _churn()
    assert df["ref"].to_list() == want


def test_object_members_refuse_to_leave_unless_left_out() -> None:
    class WithObj(cs.StaticStore):
        ref: cs.i64
        payload: cs.Object

    s = WithObj(size=4)
    s.add(ref=1, payload=object())
    with pytest.raises(TypeError, match="payload"):
        pa.table(s)
    with pytest.raises(TypeError, match="payload"):
        s.to_arrow(members=["ref", "payload"])
    assert s.to_arrow(members=["ref"]).column("ref").to_pylist() == [1]
    assert s.to_polars(members=["ref"])["ref"].to_list() == [1]


def test_key_name_names_the_key_column() -> None:
    k = keyed_store(5, key=cs.Str, key_name="ident")
    t = pa.table(k)
    assert t.column_names[0] == "ident"
    assert t.column("ident").to_pylist() == ["k0", "k1", "k3", "k4"]
    assert t.schema.field("ident").type == pa.large_string()
    assert pa.table(keyed_store(3)).column_names[0] == "key"
    with pytest.raises(ValueError, match="ref"):
        cs.KeyedStore(Rec, key_name="ref")
    with pytest.raises(TypeError):
        cs.KeyedStore(Rec, key_name=3)


def test_a_member_named_key_needs_a_key_name() -> None:
    class HasKey(cs.StaticStore):
        key: cs.i64

    k = cs.KeyedStore(HasKey)
    k[1] = {"key": 5}
    with pytest.raises(ValueError, match="key_name"):
        pa.table(k)
    k2 = cs.KeyedStore(HasKey, key_name="id")
    k2[1] = {"key": 5}
    assert pa.table(k2).to_pylist() == [{"id": 1, "key": 5}]


def test_bytes_keys_and_u64_keys() -> None:
    class One(cs.StaticStore):
        v: cs.i32

    kb = cs.KeyedStore(One, key=cs.Bytes)
    kb[b"\0x"] = {"v": 1}
    assert pa.table(kb).column("key").to_pylist() == [b"\0x"]
    ku = cs.KeyedStore(One, key=cs.u64)
    ku[2**64 - 1] = {"v": 2}
    t = pa.table(ku)
    assert t.schema.field("key").type == pa.uint64() and t.column("key").to_pylist() == [2**64 - 1]


def test_requested_schema_changes_string_types_and_picks_members() -> None:
    s = static_store(9)
    want = pa.schema(
        [
            pa.field("name", pa.string_view(), nullable=False),
            pa.field("ref", pa.int64(), nullable=False),
            pa.field("blob", pa.binary(), nullable=False),
            pa.field("cat", pa.dictionary(pa.int32(), pa.string()), nullable=False),
            pa.field("oname", pa.string()),
        ]
    )
    got = pa.RecordBatchReader.from_stream(s, schema=want).read_all()
    assert got.schema == want
    assert got.column("name").to_pylist() == [r["name"] for r in rows_of(s)]
    assert got.column("cat").to_pylist() == [r["cat"] for r in rows_of(s)]
    assert got.column("oname").to_pylist() == [r["oname"] for r in rows_of(s)]


@pytest.mark.parametrize(
    "field",
    [
        pa.field("ref", pa.int32()),
        pa.field("name", pa.int64()),
        pa.field("nope", pa.int64()),
        pa.field("parent", pa.int64(), nullable=False),
    ],
)
def test_a_requested_schema_that_does_not_fit_is_refused(field) -> None:
    s = static_store(3)
    with pytest.raises(ValueError, match=field.name):
        pa.RecordBatchReader.from_stream(s, schema=pa.schema([field]))


def test_empty_stores_export_empty_tables() -> None:
    for s in (Rec(size=0), Rec(size=5), cs.DynamicStore(Rec), cs.KeyedStore(Rec)):
        t = pa.table(s)
        assert t.num_rows == 0
        assert pl.DataFrame(s).height == 0


def test_a_reset_in_place_shows_through_like_a_write() -> None:
    # reset() keeps the buffers and writes the defaults into them, as writes go in place: shared columns then
    # read the defaults (as a numpy view does), converted ones keep the exported values; nothing dangles.
    s = static_store(4)
    t = pa.table(s)
    s.reset()
    _churn()
    assert t.column("ref").to_pylist() == [0, 0, 0, 0]
    assert t.column("name").to_pylist() == NAMES[:4]


def test_defaults_none_codes_and_wide_codes() -> None:
    class D(cs.StaticStore):
        a: cs.Member(cs.Optional(cs.Interned(cs.Str)), default="dflt")
        b: cs.Optional(cs.i64) = 5
        c: cs.Interned(cs.Bytes)
        d: cs.Array(cs.bool_, 3)

    s = D(size=400)
    for i in range(300):
        s.add(a=None if i % 7 == 0 else ("dflt" if i % 5 == 0 else f"v{i}"), c=str(i).encode(), d=[i % 2 == 0, True, False])
    s.add()  # every default
    for i in range(0, 300, 11):
        del s[i]
    want = rows_of(s, ["a", "b", "c", "d"])
    t = pa.table(s)
    assert table_rows(t) == want
    assert t.column("a").null_count == sum(r["a"] is None for r in want)
    back = cs.from_arrow(t, D)
    assert rows_of(back, ["a", "b", "c", "d"]) == want
    assert [{k: py(v) for k, v in r.items()} for r in pl.DataFrame(s).to_dicts()] == want


def test_lazy_defaults_of_bulk_loaded_keyed_stores() -> None:
    class L(cs.StaticStore):
        a: cs.i64
        f: cs.f64 = 1.5
        name: str = "a default of more than fifteen bytes"
        arr: cs.Array(cs.i16, 2) = [7, 8]

    k = cs.KeyedStore.from_columns(L, np.arange(10), {"a": np.arange(10) * 2}, log2size=3)
    t = pa.table(k)
    assert t.column("a").to_pylist() == list(range(0, 20, 2))
    assert t.column("f").to_pylist() == [1.5] * 10
    assert t.column("name").to_pylist() == ["a default of more than fifteen bytes"] * 10
    assert t.column("arr").to_pylist() == [[7, 8]] * 10
    d = cs.DynamicStore(L, log2size=2)
    for i in range(6):
        d.add(a=i)
    assert pa.table(d).column("f").to_pylist() == [1.5] * 6
    assert pa.table(d).column("name").to_pylist() == ["a default of more than fifteen bytes"] * 6


@pytest.mark.parametrize("seed", range(6))
def test_random_churn_exports_what_the_store_holds(seed) -> None:
    import random

    rnd = random.Random(seed)
    d = cs.DynamicStore(Rec, log2size=rnd.choice([1, 2, 4]))
    live: list[int] = []
    for step in range(120):
        r = rnd.random()
        if r < 0.6 or not live:
            live.append(d.add(values(rnd.randrange(1000))))
        elif r < 0.85:
            i = live.pop(rnd.randrange(len(live)))
            del d[i]
        else:
            i = rnd.choice(live)
            v = values(rnd.randrange(1000))
            for name in ("name", "cat", "parent", "oarr", "ref"):
                d[name][i] = v[name]
        if step % 40 == 39:
            d.retract()
    want = rows_of(d)
    assert table_rows(pa.table(d)) == want
    assert rows_of(cs.from_arrow(pa.table(d), Rec)) == want
    s = d  # noqa: F841
    assert duckdb.sql("select count(*) from s").fetchall() == [(len(want),)]
