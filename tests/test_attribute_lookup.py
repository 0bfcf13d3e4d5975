"""`d.name` and `e.name` on dynamic stores and entries go through CPython's private generic lookup
(`_PyObject_GenericGetAttrWithDict`, see crates/compactstore-py/src/attr.rs), whose handling of instance dicts
changed inside CPython across 3.10-3.13 (managed dicts): the outcomes checked here are the same on each
(`make test-versions`)."""

import pytest

import compactstore as cs


class G(cs.StaticStore):
    x: cs.i64


class D(cs.DynamicStore):
    label = "class attribute"

    @property
    def attribute_error(self) -> int:
        raise AttributeError("from the property")

    @property
    def value_error(self) -> int:
        raise ValueError("from the property")


def test_lookup_through_the_generic_path() -> None:
    d = D(G, log2size=1)
    i = d.add(x=3)
    d.extra = 5  # the instance dict of a user subclass
    assert (d.x[i], d.extra, d.label, d.log2size) == (3, 5, "class attribute", 1)
    d.label = "instance"
    assert d.label == "instance" and D.label == "class attribute"
    del d.extra
    with pytest.raises(AttributeError, match="'D' object has no attribute 'extra'"):
        d.extra  # noqa: B018
    with pytest.raises(AttributeError, match="from the property"):
        d.attribute_error  # noqa: B018
    with pytest.raises(ValueError, match="from the property"):
        d.value_error  # noqa: B018
    assert getattr(d, "nope", None) is None and hasattr(d, "x") and not hasattr(d, "attribute_error")
    e = d.entry(i)
    assert e.x == 3 and callable(e.keys)
    with pytest.raises(AttributeError, match="'Entry' object has no attribute 'nope'"):
        e.nope  # noqa: B018
