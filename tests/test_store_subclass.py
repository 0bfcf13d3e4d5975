"""Subclasses of a store type: they keep the members; a class attribute gives a member a new default."""

from typing import Any

import numpy as np
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


def test_a_subclass_extends_a_store_type_as_a_dataclass_does() -> None:
    # Bug (issue 11.7): `class More(Genes): extra: cs.i32` was refused ("cannot be extended").
    class More(Genes):
        extra: cs.i32
        fitness = 0.25  # a new default for an inherited member
        label: str = "x"

    class EvenMore(More):
        last: cs.Optional(cs.i64)  # type: ignore[valid-type]

    s = More(2)
    i = s.add(ref=1, extra=2)
    assert list(s) == ["ref", "fitness", "extra", "label"]
    assert (s.ref[i], s.fitness[i], s.extra[i], s.label[i]) == (1, 0.25, 2, "x")
    assert s.extra.dtype == np.int32 and s.extra.name == "extra"
    e = EvenMore(1)
    j = e.add(last=5)
    assert list(e) == ["ref", "fitness", "extra", "label", "last"]
    assert (e.fitness[j], e.last[j], e.label[j]) == (0.25, 5, "x")
    assert list(Genes(1)) == ["ref", "fitness"] and Genes(1).fitness[Genes(1).next_index()] == 0.5
    d = cs.DynamicStore(EvenMore, log2size=1)
    d.add(extra=7)
    assert d.extra[0] == 7 and d.chunks[0].last[0] is None
    assert cs.KeyedStore(More).store_type is More


def test_a_subclass_may_redefine_an_inherited_member() -> None:
    # As in a dataclass: the member keeps its place and takes the subclass's type, default and options.
    class Redefined(Genes):
        ref: cs.Member(cs.u8, read_only=True) = 3  # type: ignore[valid-type]
        extra: cs.i8

    s = Redefined(2)
    i = s.add()
    assert list(s) == ["ref", "fitness", "extra"]
    assert s.ref.dtype == np.uint8 and s.ref[i] == 3 and s.fitness[i] == 0.5
    with pytest.raises(TypeError):
        s.ref[i] = 4  # read-only now
    with pytest.raises(OverflowError):
        s.add(ref=300)

    class NoDefault(Genes):
        fitness: cs.f64  # redefined without a default: the type's zero, as a dataclass field has none

    assert NoDefault(1).fitness[0] == 0.0 and NoDefault(1).fitness.dtype == np.float64
    with pytest.raises(TypeError):

        class Bad(Genes):
            extra: cs.i8 = "x"  # type: ignore[assignment]


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


def test_entry_attribute_assignment_sets_members() -> None:
    class RO(cs.StaticStore):
        ref: cs.i64
        frozen: cs.Member(cs.i64, read_only=True)  # type: ignore[valid-type]

    s = RO(2)
    e = s.entry(s.add(ref=1, frozen=2))
    e.ref = 5
    assert (e.ref, s.ref[e.index]) == (5, 5)
    with pytest.raises(AttributeError):
        e.nope = 1
    with pytest.raises(TypeError):
        e.frozen = 3
    with pytest.raises(TypeError):
        e.ref = "x"
    assert dict(e) == {"ref": 5, "frozen": 2}


def test_dynamic_reset_takes_size_as_log2size() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for _ in range(9):
        d.add()
    d.reset(size=3)
    assert (d.size, d.log2size, len(d)) == (8, 3, 0)
    d.reset(1)
    assert d.size == 2
    d.reset(log2size=2)
    assert d.size == 4
    with pytest.raises(TypeError):
        d.reset(1, size=2)


def test_view_stays_stale_across_a_reset_to_size_zero() -> None:
    # Found by the hypothesis state machine: a resize to 0 slots forgot every generation, so a later resize
    # handed an old view's generation to a new entry in its slot and the view read it.
    s = Genes(2)
    s.next_index()
    del s[0]
    s.next_index()
    del s[0]
    s.next_index()
    e = s.entry(0)  # generation 2
    s.reset()
    s.reset(0)
    s.reset(1)
    s.reset(2)
    s.next_index()
    with pytest.raises(KeyError):
        e["ref"]


def test_attribute_lookup_order_methods_then_members() -> None:
    # `s.name` / `e.name` find the type's attributes first, then members: a member named like a method or
    # property is reached with s[name] / e[name].
    class Clash(cs.StaticStore):
        size: cs.i64
        keys: cs.i64
        index: cs.i64
        ref: cs.i64

        def twice(self) -> int:
            return 2 * len(self)

        @property
        def broken(self) -> int:
            raise ValueError("from the property")

    s = Clash(3)
    i = s.add(size=7, keys=8, index=9, ref=10)
    assert s.size == 3 and s["size"][i] == 7
    assert s.ref[i] == 10 and s.ref.name == "ref"
    assert s.twice() == 2
    with pytest.raises(ValueError, match="from the property"):
        s.broken  # noqa: B018
    with pytest.raises(AttributeError, match="'Clash' object has no attribute 'nope'"):
        s.nope  # noqa: B018
    e = s.entry(i)
    assert callable(e.keys) and e["keys"] == 8
    assert e.index == i and e["index"] == 9
    assert (e.ref, e.size) == (10, 7)
    with pytest.raises(AttributeError, match="'Entry' object has no attribute 'nope'"):
        e.nope  # noqa: B018
    assert getattr(e, "nope", None) is None and getattr(s, "nope", 5) == 5
    d = cs.DynamicStore(Clash, log2size=1)
    j = d.add(ref=4)
    assert d.ref[j] == 4 and d.size == 2 and d.chunks[0].ref[j] == 4
    del s[i]
    with pytest.raises(KeyError):
        e.ref  # noqa: B018  (a stale view raises KeyError on any member access)
    assert e.valid is False


def test_setting_a_member_attribute_is_the_shorthand() -> None:
    # `s.name = v` is `s[name] = v`: member `name` of the entry at last_index (never a hidden attribute)
    class G(cs.StaticStore):
        x: cs.i64
        ro: cs.Member(cs.i64, read_only=True)  # type: ignore[valid-type]

    for s in (G(4), cs.DynamicStore(G, log2size=1)):
        with pytest.raises(IndexError):
            s.x = 1  # no entry yet
        i = s.add()
        j = s.add()
        s.x = 5
        s.ro = 6  # the shorthand may write a read-only member of the newest entry
        assert (s.x[i], s.x[j], s.ro[j]) == (0, 5, 6)
        assert s.x.name == "x"  # still the container
        with pytest.raises(TypeError):
            s.x = "five"
        assert s.x[j] == 5
        with pytest.raises(AttributeError, match="cannot delete member"):
            del s.x
        with pytest.raises(AttributeError):
            s.size = 3  # a property without a setter
    g = G(1)
    g.note = "an ordinary attribute of a subclass instance"
    assert g.note.startswith("an ordinary")
    del g.note
    with pytest.raises(AttributeError):
        g.note  # noqa: B018
    with pytest.raises(AttributeError):
        cs.DynamicStore(G).note = 1  # no instance dict


def test_members_are_class_descriptors_and_lookup_stays_cpythons() -> None:
    from compactstore._native import MemberAttr

    class G(cs.StaticStore):
        ref: cs.i64
        fitness: cs.f32 = 0.5

    class H(G):
        fitness = 0.25  # a new default for the inherited member

    assert isinstance(G.__dict__["ref"], MemberAttr) and G.ref.name == "ref" and "ref" in repr(G.ref)
    assert type(G(1)).__getattribute__ is object.__getattribute__  # methods keep CPython's fast path
    g, h = G(2), H(2)
    i = g.add(ref=3)
    assert (g.ref[i], g.fitness[i], h.fitness[h.add()]) == (3, 0.5, 0.25)
    d = cs.DynamicStore(H, log2size=1)
    d.add(ref=1)
    assert d.chunks[0].fitness[0] == 0.25 and d.chunks[0].ref.name == "ref"  # chunk views are instances too
    with pytest.raises(AttributeError, match="'G' object has no attribute 'nope'"):
        g.nope  # noqa: B018
    # the descriptor of one store type used on a store of another type finds the member by name
    other = cs.make_store("Other", {"x": cs.i8, "ref": cs.i64})(1)
    other.add(ref=9)
    assert G.ref.__get__(other, G)[0] == 9
    with pytest.raises(AttributeError):
        G.fitness.__get__(other, G)


def test_a_member_named_like_a_metaclass_attribute_is_still_a_member() -> None:
    class M(cs.StaticStore):
        mro: cs.i64  # `type` has an attribute `mro`; instances of M do not

    s = M(2)
    i = s.add(mro=4)
    assert s.mro[i] == 4 and s.mro.name == "mro"
    s.mro = 5  # the shorthand
    assert s["mro"][i] == 5
    d = cs.DynamicStore(M)
    d.add(mro=1)
    d.mro = 2
    assert d.mro[0] == 2


def test_object_member_default_check_does_not_compare_with_eq() -> None:
    with pytest.raises(TypeError, match="default is None"):
        cs.make_store("Bad", {"o": cs.Member(cs.Object, default=np.zeros(3))})


def test_dynamic_stores_get_a_class_per_store_type_with_member_descriptors() -> None:
    import gc
    import weakref

    from compactstore._native import MemberAttr

    class G(cs.StaticStore):
        ref: cs.i64
        size_: cs.i64

    a, b = cs.DynamicStore(G, log2size=1), cs.DynamicStore(G)
    assert type(a) is type(b) and type(a).__name__ == "DynamicStore" and isinstance(a, cs.DynamicStore)
    assert isinstance(type(a).__dict__["ref"], MemberAttr)
    assert type(a).__getattribute__ is object.__getattribute__
    i = a.add(ref=4)
    assert (a.ref[i], a.size, type(a.copy()) is type(a), type(a.clone()) is type(a)) == (4, 2, True, True)
    with pytest.raises(AttributeError, match="'DynamicStore' object has no attribute 'nope'"):
        a.nope  # noqa: B018
    with pytest.raises(TypeError):
        cs.DynamicStore(int)  # type: ignore[arg-type]
    # the per-type class does not keep its store type alive
    ref = weakref.ref(G)
    del G, a, b
    gc.collect()
    assert ref() is None


def test_a_user_subclass_of_dynamic_store_keeps_members_and_methods() -> None:
    import gc
    import weakref

    class G(cs.StaticStore):
        x: cs.i64

    class H(cs.StaticStore):
        y: cs.i64

    class MyDyn(cs.DynamicStore):
        def total(self) -> int:
            return sum(self.x[i] for i in self.indices())

    d = MyDyn(G, log2size=1)
    d.add(x=2)
    d.add(x=3)
    assert isinstance(d, MyDyn) and type(d).__name__ == "MyDyn" and d.total() == 5 and d.x[1] == 3
    assert type(d.copy()) is type(d) and type(d.clone()) is type(d)
    other = type(cs.DynamicStore(G))(H)  # a per-type class asked for another store type
    assert other.y.name == "y" and isinstance(other, cs.DynamicStore)
    ref = weakref.ref(H)
    del other, H
    gc.collect()
    assert ref() is None


def test_dynamic_store_classes_free_with_their_users_and_keep_errors() -> None:
    import gc
    import weakref

    class G(cs.StaticStore):
        x: cs.i64

    class H(cs.StaticStore):
        y: cs.i64

    def local() -> Any:
        class Local(cs.DynamicStore):
            pass

        Local(G)
        return weakref.ref(Local)

    ref = local()
    gc.collect()
    assert ref() is None  # a local subclass is not kept alive by its per-type classes
    with pytest.raises(TypeError, match="has no members"):
        cs.DynamicStore(cs.StaticStore)

    class X(type(cs.DynamicStore(G))):  # a user subclass of a per-type class
        def hi(self) -> str:
            return "hi"

    x = X(H)
    assert isinstance(x, X) and x.hi() == "hi" and x.y.name == "y"
    assert not hasattr(x, "x")  # G's member descriptor on a store of H: AttributeError, not KeyError
    assert type(cs.DynamicStore(G)).__doc__ == cs.DynamicStore.__doc__
