"""Subclasses of a store type: they keep the members; a class attribute gives a member a new default."""

import pytest

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5


def test_subclass_keeps_members_and_overrides_defaults() -> None:
    class Sub(Genes):
        fitness = 0.25

    s = Sub(2)
    i = s.next_index()
    assert list(s) == ["ref", "fitness"]
    assert s.fitness[i] == 0.25
    assert isinstance(s.fitness, cs.Container)  # not hidden by the class attribute
    assert Genes(1).fitness[0] == 0.5


def test_subclass_cannot_add_members() -> None:
    with pytest.raises(TypeError):

        class More(Genes):
            extra: cs.i32


def test_bad_default_in_subclass_raises_at_class_creation() -> None:
    with pytest.raises(TypeError):

        class Bad(Genes):
            fitness = "high"


def test_add_takes_pairs_like_dict() -> None:
    s = Genes(2)
    i = s.add([("ref", 5), ("fitness", 0.75)])
    assert (s.ref[i], s.fitness[i]) == (5, 0.75)
    with pytest.raises(KeyError):
        s.add([("nope", 1)])
    assert len(s) == 1
