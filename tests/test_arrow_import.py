"""cs.from_arrow: stores built from pyarrow, polars, pandas, DuckDB and bare PyCapsule producers; bad
schemas name the column and build nothing."""

from __future__ import annotations

import numpy as np
import pytest

import compactstore as cs

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
pd = pytest.importorskip("pandas")
duckdb = pytest.importorskip("duckdb")

from test_arrow import STORES, Rec, keyed_store, py, rows_of, static_store, table_rows  # noqa: E402


class StreamOnly:
    """A producer with only __arrow_c_stream__ (not pyarrow)."""

    def __init__(self, data):
        self.data = data

    def __arrow_c_stream__(self, requested_schema=None):
        return self.data.__arrow_c_stream__(requested_schema)


@pytest.mark.parametrize("kind", sorted(STORES))
def test_round_trip_through_arrow_into_the_store_type(kind) -> None:
    src = STORES[kind]()
    t = pa.table(src)
    if isinstance(src, cs.KeyedStore):
        back = cs.from_arrow(t, Rec, key="key")
        assert isinstance(back, cs.KeyedStore)
        assert rows_of(back) == rows_of(src)
    else:
        back = cs.from_arrow(t, Rec, log2size=2)
        assert isinstance(back, cs.DynamicStore) and back.store_type is Rec
        assert rows_of(back) == rows_of(src)
        assert [len(c) for c in back.chunks] == [4] * (len(src) // 4) + ([len(src) % 4] if len(src) % 4 else [])


@pytest.mark.parametrize("kind", sorted(STORES))
def test_round_trip_with_inferred_members(kind) -> None:
    src = STORES[kind]()
    key = "key" if isinstance(src, cs.KeyedStore) else None
    back = cs.from_arrow(src.to_arrow(), key=key)
    assert table_rows(back.to_arrow()) == table_rows(src.to_arrow())
    assert back.to_arrow().schema == src.to_arrow().schema


def test_inferred_member_types() -> None:
    t = pa.table(
        {
            "i": pa.array([1, 2], pa.int32()),
            "u": pa.array([1, 2], pa.uint16()),
            "f": pa.array([1.5, None], pa.float64()),
            "b": pa.array([True, False]),
            "s": pa.array(["a", "b"], pa.string()),
            "sv": pa.array(["a", None], pa.string_view()),
            "by": pa.array([b"a", b"b"], pa.binary()),
            "d": pa.array(["x", "y"]).dictionary_encode(),
            "a": pa.array([[1, 2], [3, 4]], pa.list_(pa.int8(), 2)),
        }
    )
    d = cs.from_arrow(t)
    dt = {n: d[n].dtype for n in d.keys()}
    assert dt["i"] == np.dtype(np.int32) and dt["u"] == np.dtype(np.uint16) and dt["b"] == np.dtype(bool)
    assert dt["f"] == cs.Optional(np.float64)
    assert dt["s"] is cs.Str and dt["by"] is cs.Bytes and dt["sv"] == cs.Optional(cs.Str)
    assert dt["d"] == cs.Interned(cs.Str)
    assert dt["a"] == np.dtype(np.int8)  # an Array member's container dtype is its scalar type
    assert d["a"][1].tolist() == [3, 4]
    assert [d["f"][i] for i in d.indices()] == [1.5, None]
    assert [d["sv"][i] for i in d.indices()] == ["a", None]


def test_a_producer_with_only_arrow_c_stream() -> None:
    t = pa.table({"ref": pa.array(np.arange(10, dtype=np.int64)), "name": [str(i) for i in range(10)]})
    d = cs.from_arrow(StreamOnly(t))
    assert d["ref"][9] == 9 and d["name"][3] == "3"
    # a store is such a producer too, and so is a chunk view
    d2 = cs.from_arrow(StreamOnly(static_store(6)), Rec)
    assert rows_of(d2) == rows_of(static_store(6))


def test_arrow_c_array_producers() -> None:
    batch = pa.record_batch({"ref": pa.array([1, 2, 3], pa.int64())})
    assert not hasattr(batch, "__arrow_c_stream__") or True
    d = cs.from_arrow(batch)
    assert [d["ref"][i] for i in d.indices()] == [1, 2, 3]

    class ArrayOnly:
        def __arrow_c_array__(self, requested_schema=None):
            return batch.__arrow_c_array__(requested_schema)

    d = cs.from_arrow(ArrayOnly())
    assert len(d) == 3
    with pytest.raises(TypeError, match="table or record batch"):

        class IntArray:
            def __arrow_c_array__(self, requested_schema=None):
                return pa.array([1, 2]).__arrow_c_array__(requested_schema)

        cs.from_arrow(IntArray())


def test_polars_pandas_and_duckdb_sources() -> None:
    src = static_store(12)
    want = rows_of(src)
    assert rows_of(cs.from_arrow(pl.DataFrame(src), Rec)) == want
    assert rows_of(cs.from_arrow(src.to_polars(), Rec)) == want
    df = pd.DataFrame({"ref": np.arange(5, dtype=np.int64), "name": list("abcde")})
    d = cs.from_arrow(df)
    assert [d["name"][i] for i in d.indices()] == list("abcde")
    s = src  # noqa: F841
    rel = duckdb.sql("select ref, name from s where ref >= 50")
    d = cs.from_arrow(rel)
    assert [d["ref"][i] for i in d.indices()] == [r["ref"] for r in want if r["ref"] >= 50]


def test_keyed_imports_by_key_column() -> None:
    t = pa.table({"id": ["b", "a", "c"], "x": pa.array([1, 2, 3], pa.int32())})
    k = cs.from_arrow(t, key="id")
    assert isinstance(k, cs.KeyedStore) and list(k.keys()) == ["b", "a", "c"]
    assert k["a", "x"] == 2 and "id" not in k["a"]
    assert k.to_arrow().column_names == ["id", "x"]  # the key keeps its name
    ku = cs.from_arrow(pa.table({"k": pa.array([2**64 - 1], pa.uint64())}), key="k")
    assert list(ku.keys()) == [2**64 - 1]
    kb = cs.from_arrow(pa.table({"k": pa.array([b"\0"], pa.binary()), "v": [1.0]}), key="k")
    assert list(kb.keys()) == [b"\0"]
    ki = cs.from_arrow(pa.table({"k": pa.array([-1, 5], pa.int8()), "v": [1, 2]}), key="k")
    assert ki[-1, "v"] == 1
    with pytest.raises(ValueError, match="duplicate key"):
        cs.from_arrow(pa.table({"k": [1, 1]}), key="k")
    with pytest.raises(ValueError, match="nope"):
        cs.from_arrow(t, key="nope")
    with pytest.raises(ValueError, match="id"):
        cs.from_arrow(pa.table({"id": pa.array([1, None])}), key="id")
    with pytest.raises(TypeError, match="id"):
        cs.from_arrow(pa.table({"id": [1.5]}), key="id")
    with pytest.raises(ValueError, match="x"):
        cs.from_arrow(pa.table({"x": [1], "v": [2]}), make_x(), key="x")


def make_x():
    class X(cs.StaticStore):
        x: cs.i64
        v: cs.i64

    return X


def test_conversions_like_writes() -> None:
    class T(cs.StaticStore):
        a: cs.i64
        b: cs.u8
        c: cs.f32
        d: cs.Array(cs.i32, 2)
        e: cs.Interned(cs.Bytes)

    t = pa.table(
        {
            "a": pa.array([1, 2], pa.int16()),
            "b": pa.array([3, 255], pa.int64()),
            "c": pa.array([1, 2], pa.int32()),
            "d": pa.array([[1, 2], [3, 4]], pa.list_(pa.int64(), 2)),
            "e": pa.array([b"x", b"y"]),
        }
    )
    d = cs.from_arrow(t, T)
    assert [d["a"][i] for i in d.indices()] == [1, 2] and d["b"][1] == 255 and d["c"][1] == 2.0
    assert d["d"][1].tolist() == [3, 4] and d["e"][0] == b"x"
    bad = t.set_column(1, "b", pa.array([3, 300], pa.int64()))
    with pytest.raises(OverflowError, match="'b'|\"b\""):
        cs.from_arrow(bad, T)


@pytest.mark.parametrize(
    "table, store_type, exc, column",
    [
        (lambda: pa.table({"when": pa.array([1], pa.date32())}), None, TypeError, "when"),
        (lambda: pa.table({"d": pa.array([1], pa.duration("s"))}), None, TypeError, "d"),
        (lambda: pa.table({"l": pa.array([[1]], pa.list_(pa.int64()))}), None, TypeError, "l"),
        (lambda: pa.table({"ref": [1]}), "Rec", ValueError, "small"),  # missing member column
        (lambda: pa.table(static_store(2)).append_column("extra", pa.array([1, 2])), "Rec", ValueError, "extra"),
        (lambda: pa.table(static_store(2)).set_column(0, "ref", pa.array([1, None])), "Rec", ValueError, "ref"),
        (lambda: pa.table(static_store(2)).set_column(8, "name", pa.array([1, 2])), "Rec", TypeError, "name"),
        (lambda: pa.table(static_store(2)).set_column(8, "name", pa.array([b"a", b"b"])), "Rec", TypeError, "name"),
    ],
)
def test_bad_schemas_name_the_column_and_build_nothing(table, store_type, exc, column) -> None:
    before = len(Rec._cs_schema.names())
    with pytest.raises(exc, match=f"['\"]{column}['\"]"):
        cs.from_arrow(table(), Rec if store_type else None)
    assert len(Rec._cs_schema.names()) == before


def test_not_an_arrow_producer() -> None:
    with pytest.raises(TypeError, match="Arrow producer"):
        cs.from_arrow([1, 2, 3])
    with pytest.raises(TypeError, match="store type"):
        cs.from_arrow(pa.table({"a": [1]}), int)


def test_many_batches_across_chunks() -> None:
    batches = [pa.record_batch({"v": pa.array(np.arange(k * 5, k * 5 + 5, dtype=np.int64))}) for k in range(7)]
    t = pa.Table.from_batches(batches)
    d = cs.from_arrow(t, log2size=3)
    assert [d["v"][i] for i in d.indices()] == list(range(35))
    assert [b.num_rows for b in pa.table(d).to_batches()] == [8, 8, 8, 8, 3]
    sliced = t.slice(3, 20)
    d = cs.from_arrow(sliced, log2size=2)
    assert [d["v"][i] for i in d.indices()] == list(range(3, 23))


def test_defaults_and_read_only_members_take_the_column() -> None:
    class T(cs.StaticStore):
        ref: cs.Member(cs.i64, read_only=True)
        f: cs.f64 = 1.5

    d = cs.from_arrow(pa.table({"ref": [7, 8], "f": [0.0, 2.0]}), T)
    assert d["ref"][0] == 7 and d["f"][0] == 0.0 and d["f"][1] == 2.0
    d.add(ref=9)
    assert d["f"][2] == 1.5


def test_the_empty_table() -> None:
    t = pa.table(static_store(0))
    d = cs.from_arrow(t, Rec)
    assert len(d) == 0
    assert cs.from_arrow(t).to_arrow().num_rows == 0


def test_keyed_round_trip_with_str_keys_through_polars() -> None:
    k = keyed_store(9, key=cs.Str, key_name="ident")
    back = cs.from_arrow(k.to_polars(), Rec, key="ident")
    assert [(a, py(b["ref"])) for a, b in back.items()] == [(a, py(b["ref"])) for a, b in k.items()]
