"""The member container (what s[name] returns): indexing, slices, gather/scatter, numpy views, value rules."""

import array
import gc
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import compactstore as cs


class Rec(cs.StaticStore):
    i64: cs.i64
    i8: cs.i8
    u8: cs.u8
    u32: cs.u32
    u64: cs.u64
    f32: cs.f32
    f64: float
    flag: bool
    vec: cs.Array(cs.i16, 3)
    ro: cs.Member(cs.i32, default=5, read_only=True)
    rovec: cs.Member(cs.Array(cs.u8, 2), default=[1, 2], read_only=True)


NUMERIC = ["i64", "i8", "u8", "u32", "u64", "f32", "f64", "flag", "vec", "ro", "rovec"]
N = 8  # both stores below have 8 slots, all occupied


def filled(kind: str) -> Any:
    """A store of N occupied slots with i64 = 10*i, vec = [i, -i, 2i], u8 = i."""
    s: Any = Rec(N) if kind == "static" else cs.DynamicStore(Rec, log2size=2)
    for i in range(N):
        s.add(i64=10 * i, vec=[i, -i, 2 * i], u8=i, ro=100 + i)
    assert s.size == N
    return s


@pytest.fixture(params=["static", "dynamic"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def s(kind: str) -> Any:
    return filled(kind)


def columns(s: Any) -> dict[str, Any]:
    return {name: s[name][:].tolist() for name in NUMERIC}


# --- m[i], m[i] = v --------------------------------------------------------------------------------------------


def test_getitem_positive_and_negative(s: Any) -> None:
    m = s.i64
    assert [m[i] for i in range(N)] == [10 * i for i in range(N)]
    assert [m[-k] for k in range(1, N + 1)] == [10 * (N - k) for k in range(1, N + 1)]
    assert isinstance(m[0], int)
    assert isinstance(s.f64[0], float)
    assert s.flag[0] is False


def test_setitem_positive_and_negative(s: Any) -> None:
    m = s.i64
    m[1] = -5
    m[-1] = 77
    m[-N] = 3
    assert m[1] == -5
    assert m[N - 1] == 77
    assert m[0] == 3


@pytest.mark.parametrize("index", [N, N + 1, -N - 1, 10**6, -(10**6), 2**63 - 1, -(2**63)])
def test_out_of_range_raises_index_error(s: Any, index: int) -> None:
    before = columns(s)
    with pytest.raises(IndexError):
        s.i64[index]
    with pytest.raises(IndexError):
        s.i64[index] = 1
    with pytest.raises(IndexError):
        s.vec[index, 0]
    with pytest.raises(IndexError):
        s.vec[index, 0] = 1
    assert columns(s) == before


@pytest.mark.parametrize("index", [2**64, 2**70, -(2**70)])
def test_huge_index_raises_index_error(s: Any, index: int) -> None:
    before = columns(s)
    with pytest.raises(IndexError):
        s.i64[index]
    with pytest.raises(IndexError):
        s.i64[index] = 1
    assert columns(s) == before


@pytest.mark.parametrize("index", [2**70, -(2**70)])
def test_huge_array_element_index_raises_index_error(s: Any, index: int) -> None:
    with pytest.raises(IndexError):
        s.vec[index, 0]


def test_bool_index_counts_as_int(s: Any) -> None:
    assert s.i64[True] == 10
    assert s.i64[False] == 0
    s.i64[True] = 11
    assert s.i64[1] == 11


def test_numpy_int_index(s: Any) -> None:
    assert s.i64[np.int64(1)] == 10
    s.i64[np.int32(2)] = 21
    assert s.i64[2] == 21


def test_float_index_raises_type_error(s: Any) -> None:
    with pytest.raises(TypeError):
        s.i64[1.0]
    with pytest.raises(TypeError):
        s.i64[1.0] = 3
    assert s.i64[1] == 10


def test_free_slot_reads_default_and_can_be_written(kind: str) -> None:
    s: Any = Rec(4) if kind == "static" else cs.DynamicStore(Rec, log2size=2)
    assert s.ro[3] == 5
    assert s.rovec[3].tolist() == [1, 2]
    s.i64[3] = 9
    assert s.i64[3] == 9
    assert not s.occupied(3)


# --- Array members ---------------------------------------------------------------------------------------------


def test_array_row_is_a_read_only_copy(s: Any) -> None:
    row = s.vec[2]
    assert isinstance(row, np.ndarray)
    assert row.shape == (3,)
    assert row.dtype == np.dtype(np.int16)
    assert row.tolist() == [2, -2, 4]
    with pytest.raises(ValueError):
        row[0] = 99
    with pytest.raises(ValueError):
        s.vec[2][0] = 99
    assert s.vec[2].tolist() == [2, -2, 4]


def test_array_element_access(s: Any) -> None:
    assert s.vec[3, 0] == 3
    assert s.vec[3, 1] == -3
    assert s.vec[3, -1] == 6
    assert s.vec[-1, 2] == 14
    s.vec[3, 1] = 300
    s.vec[-1, -3] = -1
    assert s.vec[3].tolist() == [3, 300, 6]
    assert s.vec[N - 1].tolist() == [-1, -7, 14]


@pytest.mark.parametrize("k", [3, -4, 100])
def test_array_element_out_of_range_raises_index_error(s: Any, k: int) -> None:
    with pytest.raises(IndexError):
        s.vec[1, k]
    with pytest.raises(IndexError):
        s.vec[1, k] = 0
    assert s.vec[1].tolist() == [1, -1, 2]


def test_array_row_assignment(s: Any) -> None:
    s.vec[0] = [7, 8, 9]
    assert s.vec[0].tolist() == [7, 8, 9]
    s.vec[1] = np.array([-1, -2, -3], dtype=np.int64)
    assert s.vec[1].tolist() == [-1, -2, -3]
    s.vec[2] = (4, 5, 6)
    assert s.vec[2].tolist() == [4, 5, 6]


def test_array_row_from_any_sequence(s: Any) -> None:
    s.vec[0] = range(3)
    assert s.vec[0].tolist() == [0, 1, 2]
    s.vec[1] = array.array("h", [-3, 0, 3])
    assert s.vec[1].tolist() == [-3, 0, 3]
    del s[2]
    assert s.add(vec=range(5, 8)) == 2
    assert s.vec[2].tolist() == [5, 6, 7]


@pytest.mark.parametrize(
    ("row", "exc"),
    [("abc", TypeError), (b"abc", TypeError), (range(2), ValueError), ({1, 2, 3}, TypeError),
     (np.array([[1, 2, 3]]), ValueError), (np.zeros((3, 1)), ValueError), (np.int64(3), TypeError), ([1, 2], ValueError), ([1, 2, 3, 4], ValueError), ([1, 2, 40000], OverflowError), ([1, 2, 3.5], TypeError),
     (5, TypeError), (None, TypeError)],
)
def test_array_row_bad_value_changes_nothing(s: Any, row: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        s.vec[4] = row
    assert s.vec[4].tolist() == [4, -4, 8]


@pytest.mark.parametrize(("v", "exc"), [(40000, OverflowError), (1.5, TypeError), (None, TypeError)])
def test_array_element_bad_value_changes_nothing(s: Any, v: Any, exc: type[Exception]) -> None:
    with pytest.raises(exc):
        s.vec[4, 1] = v
    assert s.vec[4].tolist() == [4, -4, 8]


# --- slices ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sl", [slice(None), slice(2, 5), slice(None, None, 2), slice(None, None, -1), slice(-3, None),
                                slice(6, 2, -2), slice(5, 5), slice(100, 200)])
def test_slice_is_a_numpy_copy(s: Any, sl: slice) -> None:
    want = [10 * i for i in range(N)][sl]
    got = s.i64[sl]
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(np.int64)
    assert got.tolist() == want
    if len(got):
        got[0] = -999
        assert s.i64[sl].tolist() == want


def test_array_member_slice_is_2d(s: Any) -> None:
    got = s.vec[1:4]
    assert isinstance(got, np.ndarray)
    assert got.shape == (3, 3)
    assert got.dtype == np.dtype(np.int16)
    assert got.tolist() == [[1, -1, 2], [2, -2, 4], [3, -3, 6]]
    got[0, 0] = 100
    assert s.vec[1, 0] == 1
    assert s.vec[::-4].tolist() == [[7, -7, 14], [3, -3, 6]]


def test_slice_dtypes(s: Any) -> None:
    for name, dt in [("i8", np.int8), ("u8", np.uint8), ("u32", np.uint32), ("u64", np.uint64), ("f32", np.float32),
                     ("f64", np.float64), ("flag", np.bool_), ("ro", np.int32)]:
        got = s[name][:]
        assert got.dtype == np.dtype(dt), name
        assert len(got) == N


def test_slice_assignment(s: Any) -> None:
    s.i64[2:5] = [1, 2, 3]
    assert s.i64[:].tolist() == [0, 10, 1, 2, 3, 50, 60, 70]
    s.i64[::3] = np.array([-1, -2, -3])
    assert s.i64[:].tolist() == [-1, 10, 1, -2, 3, 50, -3, 70]
    s.i64[::-1] = (0, 1, 2, 3, 4, 5, 6, 7)
    assert s.i64[:].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    s.i64[5:5] = []
    assert s.i64[:].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    s.vec[0:2] = [[1, 1, 1], [2, 2, 2]]
    assert s.vec[:3].tolist() == [[1, 1, 1], [2, 2, 2], [2, -2, 4]]
    s.vec[6:] = np.array([[5, 5, 5], [6, 6, 6]])
    assert s.vec[6:].tolist() == [[5, 5, 5], [6, 6, 6]]


def test_slice_assignment_scalar_broadcast(s: Any) -> None:
    s.i64[2:5] = 4
    assert s.i64[:].tolist() == [0, 10, 4, 4, 4, 50, 60, 70]
    s.f64[:] = 1.5
    assert s.f64[:].tolist() == [1.5] * N


def test_array_slice_assignment_scalar_broadcast(s: Any) -> None:
    s.vec[0:2] = 7
    assert s.vec[:3].tolist() == [[7, 7, 7], [7, 7, 7], [2, -2, 4]]


def test_array_slice_assignment_row_broadcast(s: Any) -> None:
    s.vec[0:2] = [9, 8, 7]
    assert s.vec[:3].tolist() == [[9, 8, 7], [9, 8, 7], [2, -2, 4]]


@pytest.mark.parametrize("values", [[1, 2], [1, 2, 3, 4], [], np.arange(2), np.arange(4)])
def test_slice_assignment_wrong_length_raises_value_error(s: Any, values: Any) -> None:
    before = columns(s)
    with pytest.raises(ValueError):
        s.i64[0:3] = values
    assert columns(s) == before


def test_array_slice_assignment_wrong_length_raises_value_error(s: Any) -> None:
    before = columns(s)
    with pytest.raises(ValueError):
        s.vec[0:3] = [[1, 1, 1], [2, 2, 2]]
    with pytest.raises(ValueError):
        s.vec[0:2] = [[1, 1], [2, 2]]
    assert columns(s) == before


@pytest.mark.parametrize(
    ("name", "values", "exc"),
    [
        ("u8", [1, 300, 2], OverflowError),
        ("u8", [1, 2, -1], OverflowError),
        ("i64", [1, 2.5, 3], TypeError),
        ("i64", [1, None, 3], TypeError),
        ("i64", [2**70, 1, 1], OverflowError),
        ("f32", [1.0, 1e39, 2.0], OverflowError),
        ("flag", [True, 1, False], TypeError),
        ("vec", [[1, 1, 1], [1, 1, 40000], [1, 1, 1]], OverflowError),
        ("vec", [[1, 1, 1], [1, 1], [1, 1, 1]], ValueError),
        ("i64", np.array([1.0, 2.0, 3.0]), TypeError),
    ],
)
def test_slice_assignment_with_one_bad_element_changes_nothing(
    s: Any, name: str, values: Any, exc: type[Exception]
) -> None:
    before = columns(s)
    with pytest.raises(exc):
        s[name][0:3] = values
    assert columns(s) == before


# --- gather / scatter ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "idx",
    [[0, 2, 5], [-1, 0, -1], np.array([3, 1]), np.array([7], dtype=np.uint8), [], [True] * N,
     [i % 3 == 0 for i in range(N)], np.array([i % 2 == 1 for i in range(N)])],
)
def test_gather(s: Any, idx: Any) -> None:
    want = np.arange(0, 10 * N, 10)[idx]
    got = s.i64[idx]
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(np.int64)
    assert got.tolist() == want.tolist()


def test_gather_array_member_is_2d(s: Any) -> None:
    got = s.vec[[1, 3]]
    assert got.shape == (2, 3)
    assert got.tolist() == [[1, -1, 2], [3, -3, 6]]
    mask = np.zeros(N, dtype=bool)
    mask[[0, 7]] = True
    assert s.vec[mask].tolist() == [[0, 0, 0], [7, -7, 14]]


@pytest.mark.parametrize("idx", [[0, N], [-N - 1], np.array([1, 100]), [True] * (N - 1), np.ones(N + 1, dtype=bool)])
def test_gather_scatter_bad_index_raises_index_error(s: Any, idx: Any) -> None:
    before = columns(s)
    with pytest.raises(IndexError):
        s.i64[idx]
    with pytest.raises(IndexError):
        s.i64[idx] = 1
    assert columns(s) == before


def test_scatter_by_list_array_and_mask(s: Any) -> None:
    s.i64[[0, 2]] = [-1, -2]
    assert s.i64[:3].tolist() == [-1, 10, -2]
    s.i64[np.array([-1, 3])] = np.array([7, 8])
    assert s.i64[3] == 8
    assert s.i64[N - 1] == 7
    mask = np.array([i >= N - 2 for i in range(N)])
    s.i64[mask] = [100, 200]
    assert s.i64[N - 2 :].tolist() == [100, 200]
    s.i64[[1, 4]] = 0  # a scalar broadcasts
    assert s.i64[[1, 4]].tolist() == [0, 0]
    s.f32[[True] * N] = 0.25
    assert s.f32[:].tolist() == [0.25] * N
    s.vec[[0, 1]] = [[1, 2, 3], [4, 5, 6]]
    assert s.vec[:2].tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.parametrize(
    ("name", "values", "exc"),
    [("i64", [1], ValueError), ("i64", [1, 2, 3], ValueError), ("u8", [1, 256], OverflowError),
     ("i64", [1, 2.0], TypeError), ("flag", [True, 0], TypeError), ("u8", 256, OverflowError),
     ("i64", 0.5, TypeError)],
)
def test_scatter_bad_values_change_nothing(s: Any, name: str, values: Any, exc: type[Exception]) -> None:
    before = columns(s)
    with pytest.raises(exc):
        s[name][[0, 5]] = values
    assert columns(s) == before


# --- iteration / len -------------------------------------------------------------------------------------------


def test_iteration_yields_values_in_order(s: Any) -> None:
    assert list(s.i64) == [10 * i for i in range(N)]
    assert list(s.flag) == [False] * N
    rows = list(s.vec)
    assert len(rows) == N
    assert all(isinstance(r, np.ndarray) for r in rows)
    assert [r.tolist() for r in rows] == [[i, -i, 2 * i] for i in range(N)]


def test_iteration_includes_free_slots(kind: str) -> None:
    s: Any = Rec(4) if kind == "static" else cs.DynamicStore(Rec, log2size=2)
    s.add(i64=1)
    assert list(s.i64) == [1, 0, 0, 0]
    assert list(s.ro) == [5, 5, 5, 5]


def test_len_follows_growth_of_dynamic_store() -> None:
    d = cs.DynamicStore(Rec, log2size=2)
    m = d.i64
    assert len(m) == 4
    for k in range(9):
        d["i64"][d.next_index()] = k * 3
        m[d.last_index] += 1
    assert len(m) == 12
    assert m[:9].tolist() == [k * 3 + 1 for k in range(9)]
    for k in range(4, 9):
        del d[k]
    d.retract()
    assert len(m) == 4
    with pytest.raises(IndexError):
        m[4]
    d.reset(3)
    assert len(m) == 8


def test_len_follows_reset_of_static_store() -> None:
    s = Rec(4)
    m = s.i64
    s.reset(6)
    assert len(m) == 6
    assert m[:].tolist() == [0] * 6


def test_container_outlives_store_variable() -> None:
    m = Rec(3).i64
    gc.collect()
    m[1] = 4
    assert m[:].tolist() == [0, 4, 0]


# --- numpy ------------------------------------------------------------------------------------------------------


def test_asarray_static_is_zero_copy_and_writable() -> None:
    s = filled("static")
    a = np.asarray(s.i64)
    assert a.dtype == np.dtype(np.int64)
    assert a.shape == (N,)
    assert a.flags.writeable
    assert a.tolist() == [10 * i for i in range(N)]
    a[2] = -7
    assert s.i64[2] == -7
    s.i64[3] = 1234
    assert a[3] == 1234
    b = np.asarray(s.i64)
    assert np.shares_memory(a, b)
    del s[0]
    assert a[0] == 0  # del resets to defaults, visible through the view


def test_asarray_static_array_member_is_2d_view() -> None:
    s = filled("static")
    a = np.asarray(s.vec)
    assert a.shape == (N, 3)
    assert a.dtype == np.dtype(np.int16)
    assert a.tolist() == [[i, -i, 2 * i] for i in range(N)]
    a[1, 2] = 99
    assert s.vec[1, 2] == 99
    s.vec[2] = [5, 5, 5]
    assert a[2].tolist() == [5, 5, 5]


@pytest.mark.parametrize("name", ["i8", "u8", "u32", "u64", "f32", "f64", "flag"])
def test_asarray_static_views_every_dtype(name: str) -> None:
    s = filled("static")
    a = np.asarray(s[name])
    assert a.dtype == s[name].dtype
    a[1] = 1
    assert s[name][1] == 1
    s[name][2] = True if name == "flag" else 2
    assert a[2] == (True if name == "flag" else 2)


def test_asarray_of_read_only_member_is_not_writable() -> None:
    s = filled("static")
    a = np.asarray(s.ro)
    assert a.tolist() == [100 + i for i in range(N)]
    assert not a.flags.writeable
    with pytest.raises(ValueError):
        a[0] = 1
    assert s.ro[0] == 100


def test_to_numpy_static_is_the_same_view() -> None:
    s = filled("static")
    a = s.i64.to_numpy()
    assert isinstance(a, np.ndarray)
    assert a.tolist() == [10 * i for i in range(N)]
    a[0] = 5
    assert s.i64[0] == 5
    assert np.shares_memory(a, np.asarray(s.i64))


@pytest.mark.parametrize("how", ["asarray", "to_numpy"])
def test_numpy_of_dynamic_store_is_a_copy(how: str) -> None:
    d = filled("dynamic")
    a = np.asarray(d.i64) if how == "asarray" else d.i64.to_numpy()
    assert isinstance(a, np.ndarray)
    assert a.dtype == np.dtype(np.int64)
    assert a.tolist() == [10 * i for i in range(N)]
    a[0] = 99
    assert d.i64[0] == 0
    d.i64[1] = 5
    assert a[1] == 10
    v = np.asarray(d.vec) if how == "asarray" else d.vec.to_numpy()
    assert v.shape == (N, 3)
    assert v[7].tolist() == [7, -7, 14]


def test_asarray_copy_false_on_dynamic_store_raises() -> None:
    d = filled("dynamic")
    with pytest.raises(ValueError):
        np.asarray(d.i64, copy=False)


def test_asarray_copy_false_on_static_store_is_the_view() -> None:
    s = filled("static")
    a = np.asarray(s.i64, copy=False)
    a[0] = 17
    assert s.i64[0] == 17
    b = np.array(s.i64, copy=True)
    b[1] = 18
    assert s.i64[1] == 10


def test_name_and_dtype(s: Any) -> None:
    for name in NUMERIC:
        assert s[name].name == name
    assert s.i64.dtype == np.dtype(np.int64)
    assert s.f32.dtype == np.dtype(np.float32)
    assert s.f64.dtype == np.dtype(np.float64)
    assert s.flag.dtype == np.dtype(np.bool_)
    assert s.vec.dtype == np.dtype(np.int16)
    assert s.u64.dtype == np.dtype(np.uint64)


def test_repr_shows_a_short_preview() -> None:
    s = Rec(1000)
    for k in range(1000):
        s.add(i64=123456 + k)
    r = repr(s.i64)
    assert "i64" in r
    assert "123456" in r
    assert len(r) < 300


# --- read-only members -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [("ro", 0, 1), ("ro", -1, 1), ("ro", slice(0, 2), [1, 2]), ("ro", [0, 1], 3), ("ro", np.ones(N, bool), 3),
     ("rovec", 0, [3, 4]), ("rovec", (0, 1), 3), ("rovec", slice(None), [3, 4])],
)
def test_read_only_member_write_raises_type_error_naming_it(s: Any, name: str, key: Any, value: Any) -> None:
    before = columns(s)
    with pytest.raises(TypeError, match=name):
        s[name][key] = value
    assert columns(s) == before
    assert s[name].read_only is True


# --- value rules -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "exc"),
    [
        ("u8", 300, OverflowError),
        ("u8", 256, OverflowError),
        ("u8", -1, OverflowError),
        ("u32", -1, OverflowError),
        ("u32", 2**32, OverflowError),
        ("u64", -1, OverflowError),
        ("u64", 2**64, OverflowError),
        ("i8", 128, OverflowError),
        ("i8", -129, OverflowError),
        ("i64", 2**70, OverflowError),
        ("i64", 2**63, OverflowError),
        ("i64", -(2**63) - 1, OverflowError),
        ("i64", 1.0, TypeError),
        ("i64", 1.5, TypeError),
        ("i64", np.float64(2.0), TypeError),
        ("u8", np.float32(1.0), TypeError),
        ("i64", None, TypeError),
        ("i64", "1", TypeError),
        ("i64", b"1", TypeError),
        ("i64", [1], TypeError),
        ("i64", object(), TypeError),
        ("f64", None, TypeError),
        ("f64", "1.0", TypeError),
        ("f32", 1e39, OverflowError),
        ("f32", -1e39, OverflowError),
        ("f32", np.float64(1e39), OverflowError),
        ("flag", 1, TypeError),
        ("flag", 0, TypeError),
        ("flag", 1.0, TypeError),
        ("flag", None, TypeError),
        ("flag", np.int8(1), TypeError),
        ("flag", "True", TypeError),
    ],
)
def test_bad_value_is_refused_and_nothing_changes(s: Any, name: str, value: Any, exc: type[Exception]) -> None:
    before = columns(s)
    with pytest.raises(exc):
        s[name][3] = value
    assert columns(s) == before


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("u8", 255, 255),
        ("u8", 0, 0),
        ("u8", np.uint8(200), 200),
        ("u8", np.int64(7), 7),
        ("u32", 2**32 - 1, 2**32 - 1),
        ("u64", 2**64 - 1, 2**64 - 1),
        ("u64", np.uint64(2**64 - 1), 2**64 - 1),
        ("i8", -128, -128),
        ("i8", 127, 127),
        ("i64", -(2**63), -(2**63)),
        ("i64", 2**63 - 1, 2**63 - 1),
        ("i64", np.int32(-7), -7),
        ("i64", True, 1),  # a bool counts as an int
        ("i64", False, 0),
        ("i64", np.bool_(True), 1),
        ("f64", 3, 3.0),  # a float member takes ints
        ("f64", 2**70, float(2**70)),
        ("f64", True, 1.0),
        ("f64", np.int64(-4), -4.0),
        ("f64", np.float32(0.5), 0.5),
        ("f64", 1e300, 1e300),
        ("f32", 3, 3.0),
        ("f32", 0.1, float(np.float32(0.1))),
        ("f32", 3.4e38, float(np.float32(3.4e38))),
        ("f32", float("inf"), float("inf")),
        ("flag", True, True),
        ("flag", False, False),
        ("flag", np.bool_(True), True),
    ],
)
def test_good_value_is_stored(s: Any, name: str, value: Any, stored: Any) -> None:
    want = columns(s)
    want[name][3] = stored
    s[name][3] = value
    got = s[name][3]
    assert got == stored
    assert type(got) is type(stored)
    assert columns(s) == want  # nothing else changed


def test_int_beyond_u64_into_float_member() -> None:
    s = filled("static")
    s.f64[0] = 2**70
    s.f32[0] = -(2**70)
    s.f64[1] = 10**300
    assert s.f64[0] == float(2**70)
    assert s.f32[0] == float(np.float32(-(2**70)))
    assert s.f64[1] == float(10**300)
    before = columns(s)
    with pytest.raises(OverflowError):
        s.f32[2] = 10**39  # finite beyond f32: never a silent inf
    with pytest.raises(OverflowError):
        s.f64[2] = 10**400  # beyond f64, as float(10**400)
    assert columns(s) == before


def test_nan_into_float_member() -> None:
    s = filled("static")
    s.f32[0] = float("nan")
    s.f64[0] = float("nan")
    assert np.isnan(s.f32[0])
    assert np.isnan(s.f64[0])


# --- reset(size) while a zero-copy view is alive ---------------------------------------------------------------


def test_reset_with_size_refused_while_view_alive() -> None:
    s = filled("static")
    a = np.asarray(s.i64)
    v = np.asarray(s.vec)
    with pytest.raises(BufferError):
        s.reset(16)
    assert s.size == N
    assert len(s) == N
    # the views stay valid and still share the store's memory
    assert a.tolist() == [10 * i for i in range(N)]
    a[0] = 42
    assert s.i64[0] == 42
    assert v[1].tolist() == [1, -1, 2]
    del a
    with pytest.raises(BufferError):
        s.reset(16)
    del v
    gc.collect()
    s.reset(16)
    assert s.size == 16
    assert len(s) == 0
    b = np.asarray(s.i64)
    assert b.shape == (16,)
    b[15] = 3
    assert s.i64[15] == 3


def test_reset_without_size_allowed_while_view_alive() -> None:
    s = filled("static")
    a = np.asarray(s.i64)
    s.reset()
    assert len(s) == 0
    assert a.tolist() == [0] * N  # defaults, visible through the view
    s.add(i64=5)
    assert a[0] == 5


def test_view_keeps_memory_alive_after_store_is_dropped() -> None:
    s = filled("static")
    a = np.asarray(s.i64)
    del s
    gc.collect()
    assert a.tolist() == [10 * i for i in range(N)]
    a[1] = 3
    assert a[1] == 3


# --- every write path converts scalars by the same rules (against a plain-Python oracle) --------------------


class Scalars(cs.StaticStore):
    i8: cs.i8
    i16: cs.i16
    i32: cs.i32
    i64: cs.i64
    u8: cs.u8
    u16: cs.u16
    u32: cs.u32
    u64: cs.u64
    f32: cs.f32
    f64: cs.f64
    flag: cs.bool_


SCALARS = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "flag"]
EDGE_FLOATS = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), 3.4028234663852886e38, 3.4028235677973366e38,
               3.4028235e38, 3.402823466385289e38, 1e-46, 1.5, -2.5, 1e308]


def _expected(name: str, v: Any) -> Any:
    """What a write of the exact int / float / bool `v` to member `name` stores, by the conversion rules (as the
    value read back), or the exception type it raises."""
    if name == "flag":
        return v if type(v) is bool else TypeError  # bool_ takes bools only
    if name in ("f32", "f64"):
        if type(v) is int:  # an int member value into a float member: as float(v)
            try:
                v = float(v)
            except OverflowError:
                return OverflowError
        x = float(v)
        if name == "f64" or x != x:
            return ("nan",) if x != x else x
        with np.errstate(over="ignore"):
            y = float(np.float32(x))  # rounded to nearest, as numpy does
        if np.isfinite(x) and not np.isfinite(y):
            return OverflowError  # a finite value beyond f32's range, never a silent inf
        return y
    if type(v) is float:
        return TypeError  # an int member refuses floats
    info = np.iinfo(getattr(np, {"i": "int", "u": "uint"}[name[0]] + name[1:]))
    return int(v) if info.min <= int(v) <= info.max else OverflowError


def _outcome(store: Any, name: str, how: str, value: Any, key: Any = 1) -> Any:
    try:
        if how == "container":  # int index: the hand-written slot and its typed fast path
            store[name][1] = value
        elif how == "entry":
            store.entry(1)[name] = value
        elif how == "add":  # allocates slot 1 (slot 0 is taken)
            assert store.add({name: value}) == 1
        elif how == "keyed":
            store[key] = {name: value}
        else:
            store[key, name] = value
    except Exception as e:  # noqa: BLE001 - the exception type is what is compared
        return type(e)
    got = store[key, name] if how in ("keyed", "keyed_member") else store[name][1]
    return ("nan",) if got != got else got


@given(
    name=st.sampled_from(SCALARS),
    value=st.one_of(
        st.integers(min_value=-(2**65), max_value=2**65),
        st.sampled_from([0, 1, -1, 127, 128, -129, 255, 256, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
                         10**400]),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(EDGE_FLOATS),
        st.booleans(),
    ),
    how=st.sampled_from(["container", "entry", "add", "keyed", "keyed_member"]),
    dynamic=st.booleans(),
)
def test_every_write_path_converts_scalars_by_the_rules(name: str, value: Any, how: str, dynamic: bool) -> None:
    if how.startswith("keyed"):
        s: Any = cs.KeyedStore(Scalars, log2size=1)
        s[0] = {}
        s[1] = {}
    else:
        s = cs.DynamicStore(Scalars, log2size=1) if dynamic else Scalars(3)
        for _ in range(1 if how == "add" else 3):
            s.next_index()
    before = {n: (s[1, n] if how.startswith("keyed") else s[n][:3].tolist()) for n in SCALARS if n != name}
    want = _expected(name, value)
    got = _outcome(s, name, how, value)
    assert got == want and type(got) is type(want), (name, value, how)
    after = {n: (s[1, n] if how.startswith("keyed") else s[n][:3].tolist()) for n in SCALARS if n != name}
    assert after == before  # other members untouched (a refused add allocates nothing: slot 1 stays free)
    if how == "add" and isinstance(want, type):
        assert len(s) == 1


def test_a_chunk_member_is_a_zero_copy_view_and_pins_the_chunks() -> None:
    d = cs.DynamicStore(Rec, log2size=1)
    for k in range(3):
        d.add(i64=k, vec=[k, k, k])
    a = np.asarray(d.chunks[1]["i64"])
    v = d.chunks[1].vec.to_numpy()
    assert a.flags.writeable and a.tolist() == [2, 0]
    a[0] = 99
    v[0, 1] = -5
    assert d.i64[2] == 99 and d.vec[2].tolist() == [2, -5, 2]
    d.i64[3] = 7
    assert a[1] == 7  # the same memory both ways
    assert not np.asarray(d.chunks[1]["ro"]).flags.writeable  # a read-only member's view is read-only
    for drop_chunks in (d.retract, d.reset, lambda: d.reset(3)):
        with pytest.raises(BufferError):
            drop_chunks()
    assert d.size == 4 and d.i64[2] == 99  # nothing changed
    for _ in range(2):
        d.add(i64=5)  # growing (adding chunks) is fine: chunks never move
    assert a[0] == 99
    del a, v
    gc.collect()
    d.reset()
    assert d.size == 2 and len(d) == 0
    # with a single chunk, reset() keeps it in place (a view of it stays valid and shows the defaults)
    b = np.asarray(d.chunks[0]["i64"])
    d.add(i64=4)
    d.reset()
    assert b.tolist() == [0, 0]
    with pytest.raises(BufferError):
        d.reset(4)


def test_element_index_of_a_scalar_member_is_too_many_indices(s: Any) -> None:
    before = columns(s)
    for name in ("i64", "f32", "flag"):
        with pytest.raises(IndexError, match="too many indices"):
            s[name][1, 0]
        with pytest.raises(IndexError, match="too many indices"):
            s[name][1, 0] = 1
    assert columns(s) == before
    assert s.vec[1, 2] == 2  # an Array member's elements


def test_an_array_of_length_one_is_an_array_everywhere() -> None:
    class One(cs.StaticStore):
        a: cs.Array(cs.u8, 1)  # type: ignore[valid-type]

    for s in (One(2), cs.DynamicStore(One, log2size=1)):
        i = s.add(a=[5])
        for got in (s.a[i], s.entry(i)["a"]):
            assert isinstance(got, np.ndarray) and got.tolist() == [5]
        s.a[i] = [7]
        s.a[i, 0] += 1
        assert s.a[i].tolist() == [8]
        with pytest.raises(TypeError):
            s.a[i] = 5  # a row is a sequence
        assert s.a[i].tolist() == [8]
    pool = cs.KeyedStore(One)
    pool[1] = {"a": [3]}
    assert isinstance(pool[1, "a"], np.ndarray) and pool[1]["a"].tolist() == [3]
