"""Store types are Python classes: a subclass may define ``__init__`` with arguments of its own, and
copies, clones and chunk views of its instances are made without calling it (as ``copy.copy`` makes an
instance of an ordinary class: a new object, its state copied)."""

import copy
import inspect
from typing import Any

import pytest

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    obj: cs.Object


class Tracked(Genes):
    # Bug (issue 11.5): super().__init__ raised "object.__init__() takes exactly one argument".
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.created = True


class Labelled(Genes):
    calls = 0

    def __init__(self, label: str, size: int = 16) -> None:
        type(self).calls += 1
        super().__init__(size)
        self.label = label


def test_a_subclass_init_calls_the_base_init() -> None:
    s = Tracked(8)
    assert (s.size, len(s), s.created) == (8, 0, True)
    i = s.add(ref=3)
    assert (s.ref[i], s.fitness[i]) == (3, 0.5)


def test_an_init_with_other_arguments_sizes_the_store_through_super() -> None:
    s = Labelled("a")
    assert (s.label, s.size) == ("a", 16)
    t = Labelled("b", size=4)
    assert (t.label, t.size) == ("b", 4)
    with pytest.raises(TypeError):
        Labelled()  # type: ignore[call-arg]


def test_the_base_init_takes_only_size() -> None:
    assert Genes(3).size == 3 and Genes(size=5).size == 5 and Genes().size == 65536
    with pytest.raises(TypeError):
        Genes(3, 4)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Genes(nope=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Genes("3")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Genes(-1)


@pytest.mark.parametrize("how", ["copy", "copy.copy", "deepcopy"])
def test_copies_of_a_subclass_instance_keep_type_state_and_entries(how: str) -> None:
    s = Labelled("orig", size=4)
    s.tags = ["t"]
    marker = ["shared"]
    i = s.add(ref=7, obj=marker)
    calls = Labelled.calls
    c: Any = {"copy": lambda: s.copy(), "copy.copy": lambda: copy.copy(s), "deepcopy": lambda: copy.deepcopy(s)}[
        how
    ]()
    assert Labelled.calls == calls  # the user's __init__ is not called with the wrong arguments
    assert type(c) is Labelled and (c.label, c.size, len(c), c.ref[i]) == ("orig", 4, 1, 7)
    assert c.tags == ["t"]
    assert (c.tags is s.tags) == (how != "deepcopy")  # the instance dict: shallow or deep, as copy does
    assert (c.obj[i] is marker) == (how != "deepcopy") and c.obj[i] == marker
    c.ref[i] = 8
    c.label = "copy"
    assert (s.ref[i], s.label) == (7, "orig")  # independent


def test_clone_of_a_subclass_instance_is_empty_and_keeps_state() -> None:
    s = Labelled("orig", size=4)
    s.add(ref=1)
    calls = Labelled.calls
    c = s.clone()
    assert Labelled.calls == calls
    assert type(c) is Labelled and (c.label, c.size, len(c)) == ("orig", 4, 0)


def test_dynamic_and_keyed_stores_of_a_subclass_with_init() -> None:
    calls = Labelled.calls
    d = cs.DynamicStore(Labelled, log2size=1)
    for k in range(3):
        d.add(ref=k)
    chunks = d.chunks  # Bug: failed on '_parent'
    assert [type(c) for c in chunks] == [Labelled, Labelled] and chunks[1].ref[0] == 2
    assert d.copy().ref[2] == 2 and copy.deepcopy(d).ref[1] == 1 and d.clone().size == 4
    pool = cs.KeyedStore(Labelled, log2size=1)
    pool[5] = {"ref": 1}
    assert copy.copy(pool)[5]["ref"] == 1 and pool.copy()[5]["ref"] == 1
    bulk = cs.KeyedStore.from_columns(Labelled, keys=[1, 2], columns={"ref": [3, 4]})
    assert bulk[2]["ref"] == 4
    assert Labelled.calls == calls


def test_private_constructor_keywords_are_gone_from_the_signatures() -> None:
    # Issue 12: the private `_copy_of`, `_parent`, `_chunk`, `_keys`, `_columns`, `_values` keywords were
    # in every public constructor's signature (help(), inspect.signature).
    assert str(inspect.signature(Genes)) == "(size=None)"
    assert str(inspect.signature(cs.DynamicStore)) == "(store_type, log2size=None)"
    assert str(inspect.signature(cs.KeyedStore)) == "(store_type, key=None, log2size=None, ignore_unknown=False, *, key_name=None)"
    for name in ("_copy_of", "_parent", "_chunk"):
        with pytest.raises(TypeError):
            Genes(**{name: Genes(1)})
        with pytest.raises(TypeError):
            cs.DynamicStore(Genes, **{name: Genes(1)})
    for name in ("_keys", "_columns", "_values", "_copy_of"):
        with pytest.raises(TypeError):
            cs.KeyedStore(Genes, **{name: []})


def test_calling_init_again_reinitialises_like_list() -> None:
    s = Genes(4)
    s.add(ref=1)
    s.__init__(2)  # type: ignore[misc]
    assert (len(s), s.size, s.last_index) == (0, 2, -1)


def test_dynamic_and_keyed_store_subclasses_with_their_own_init() -> None:
    class MyDyn(cs.DynamicStore):
        def __init__(self, store_type: Any, label: str, log2size: int = 2) -> None:
            super().__init__(store_type, log2size)
            self.label = label

    d = MyDyn(Genes, "x")
    assert isinstance(d, MyDyn) and (d.label, d.log2size, d.size) == ("x", 2, 4)
    d.add(ref=1)
    for c in (d.copy(), copy.copy(d), copy.deepcopy(d)):
        assert type(c) is type(d) and (c.label, c.ref[0], len(c)) == ("x", 1, 1)
    assert (d.clone().label, len(d.clone())) == ("x", 0)
    with pytest.raises(TypeError, match="made for store type Genes"):
        cs.DynamicStore.__init__(d, Tracked)

    class MyPool(cs.KeyedStore):
        def __init__(self, store_type: Any, label: str, key: Any = cs.i64) -> None:
            super().__init__(store_type, key=key)
            self.label = label

    p = MyPool(Genes, "p")
    p[1] = {"ref": 2}
    for c in (p.copy(), copy.copy(p), copy.deepcopy(p)):
        assert type(c) is MyPool and (c.label, c[1]["ref"]) == ("p", 2)
    s = MyPool(Genes, "s", key=cs.Str)
    s["a"] = {"ref": 3}
    assert s["a"]["ref"] == 3
    bulk = MyPool.from_columns(Genes, keys=[4], columns={"ref": [5]})
    assert type(bulk) is MyPool and bulk[4]["ref"] == 5

    class ChoosesKeyInInit(cs.KeyedStore):
        def __init__(self, store_type: Any) -> None:
            super().__init__(store_type, key=cs.Str)  # the constructor never saw key=

    with pytest.raises(TypeError, match="by keyword"):
        ChoosesKeyInInit(Genes)
    with pytest.raises(TypeError):
        cs.KeyedStore(Genes, cs.i64, 4, False, 5)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        cs.KeyedStore(Genes, cs.i64, key=cs.i64)  # type: ignore[misc]
    assert cs.KeyedStore(Genes, cs.Str, 3, True).ignore_unknown is True
