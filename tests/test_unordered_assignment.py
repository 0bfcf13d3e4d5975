"""Slice, index and mask assignment refuse sets: a set has no order, so which value lands where is arbitrary."""

import numpy as np
import pytest

import compactstore as cs


class N(cs.StaticStore):
    x: cs.i64
    s: cs.Str


@pytest.mark.parametrize("values", [{1, 2, 3}, frozenset({1, 2, 3})])
def test_slice_assignment_refuses_sets(values: object) -> None:
    st = N(3)
    for _ in range(3):
        st.add(x=7)
    with pytest.raises(TypeError, match="no order"):
        st.x[0:3] = values
    with pytest.raises(TypeError, match="no order"):
        st.x[[0, 1, 2]] = values
    with pytest.raises(TypeError, match="no order"):
        st.x[np.array([True, True, True])] = values
    assert list(st.x) == [7, 7, 7]


def test_str_slice_assignment_refuses_sets() -> None:
    st = N(2)
    st.add(s="a")
    st.add(s="b")
    with pytest.raises(TypeError, match="no order"):
        st.s[0:2] = {"x", "y"}
    assert list(st.s) == ["a", "b"]


def test_lists_and_arrays_still_assign() -> None:
    st = N(3)
    st.x[0:3] = [1, 2, 3]
    st.x[[0, 2]] = np.array([9, 8])
    assert list(st.x) == [9, 2, 8]
