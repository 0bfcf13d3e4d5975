"""A store type defined in a module with `from __future__ import annotations` (every annotation a string)."""

from __future__ import annotations

import typing
from typing import ClassVar

import numpy as np

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.Member(cs.i64, read_only=True)  # type: ignore[valid-type]
    fitness: cs.f32 = 0.5
    inputs: cs.Array(cs.u8, 4)  # type: ignore[valid-type]
    name: str = ""
    category: cs.Interned(cs.Str)  # type: ignore[valid-type]
    parent: cs.Optional(cs.i64)  # type: ignore[valid-type]
    created: ClassVar[int] = 0  # not a member
    note: ClassVar[str]


def test_members_come_from_string_annotations() -> None:
    assert list(Genes(1)) == ["ref", "fitness", "inputs", "name", "category", "parent"]
    s = Genes(2)
    i = s.add(ref=7, inputs=[1, 2, 3, 4], name="x", category="c")
    assert (s.ref[i], s.fitness[i], s.inputs[i].tolist(), s.name[i], s.category[i], s.parent[i]) == (
        7, 0.5, [1, 2, 3, 4], "x", "c", None)
    assert s.inputs.dtype == np.uint8 and s.category.dtype == cs.Interned(cs.Str)
    assert Genes.created == 0  # a ClassVar keeps its class attribute


def test_a_subclass_with_only_classvars_keeps_its_parents_members() -> None:
    class More(Genes):
        extra: ClassVar[int] = 1

    assert list(More(1)) == list(Genes(1)) and More.extra == 1


class Maybe(cs.StaticStore):
    count: int | None
    label: typing.Optional[str] = "x"
    row: cs.Array(cs.u8, 2) | None  # type: ignore[valid-type]


def test_string_annotations_spell_optional_as_a_union_with_none() -> None:
    # Bug (issue 11.10): `int | None` / `Optional[str]` were refused, also as string annotations.
    s = Maybe(1)
    i = s.add(count=3)
    assert (s.count[i], s.label[i], s.row[i]) == (3, "x", None)
    assert s.count.dtype == cs.make_store("M", {"c": cs.Optional(int)})(1).c.dtype
