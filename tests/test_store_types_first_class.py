"""Store types made by make_store are ordinary classes (issue 11.8): they belong to the module that made
them, so they pickle by reference; every store, entry and container takes weak references; member names
that belong to Python or to the package are refused with a TypeError naming the member."""

import gc
import pickle
import weakref

import pytest

import compactstore as cs

Point = cs.make_store("Point", {"x": cs.f64, "y": cs.f64})


def test_make_store_takes_the_callers_module_and_pickles_by_reference() -> None:
    # Bug: __module__ was 'compactstore', so pickle (and spawn workers) could not find the type.
    assert Point.__module__ == __name__ and Point.__qualname__ == "Point"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickle.loads(pickle.dumps(Point, protocol)) is Point
    assert cs.make_store("Other", {"x": cs.i8}, module="somewhere.else").__module__ == "somewhere.else"
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(cs.make_store("Local", {"x": cs.i8}))  # not a module-level name: as for a namedtuple


def test_stores_entries_and_containers_take_weak_references() -> None:
    # Bug: weakref.ref(store) raised "cannot create weak reference" for make_store types, DynamicStore,
    # KeyedStore, Entry and Container.
    s = Point(2)
    i = s.add(x=1.0)
    d = cs.DynamicStore(Point, log2size=1)
    pool = cs.KeyedStore(Point)
    pool[3] = {"x": 2.0}
    objects = [s, d, pool, s.entry(i), pool[3], s.x, d.x, d.chunks[0]]
    refs = [weakref.ref(o) for o in objects]
    assert [r() for r in refs] == objects
    m = s.x
    keyed = weakref.WeakKeyDictionary({s: "static", d: "dynamic", m: "container"})
    assert keyed[s] == "static" and keyed[d] == "dynamic" and keyed[m] == "container"
    values = weakref.WeakValueDictionary({"pool": pool, "entry": pool[3]})
    assert values["pool"] is pool
    called = []
    probe = weakref.ref(d, lambda _: called.append(True))
    del objects, d, keyed
    gc.collect()
    assert probe() is None and called == [True]


class Slotted(cs.StaticStore):
    __slots__ = ("note",)
    x: cs.i64


def test_a_slotted_subclass_still_takes_weak_references_and_copies_its_slots() -> None:
    s = Slotted(1)
    s.note = "n"
    assert weakref.ref(s)() is s and s.copy().note == "n"


@pytest.mark.parametrize(
    "name", ["__module__", "__doc__", "__dict__", "__slots__", "__weakref__", "__init__", "__class__", "_cs_x"]
)
def test_reserved_member_names_are_refused_naming_the_member(name: str) -> None:
    with pytest.raises(TypeError, match=f"member name '{name}' is reserved"):
        cs.make_store("Bad", {name: cs.i64})
    with pytest.raises(TypeError, match=f"member name '{name}' is reserved"):
        type("Bad", (cs.StaticStore,), {"__annotations__": {name: cs.i64}})


def test_other_underscore_names_are_members() -> None:
    T = cs.make_store("T", {"_x": cs.i64, "__y": cs.i64, "_": cs.i64, "__": cs.i64, "____": cs.i64})
    s = T(1)
    i = s.add(_x=1, __y=2)
    assert (s["_x"][i], s["__y"][i], list(s)) == (1, 2, ["_x", "__y", "_", "__", "____"])
