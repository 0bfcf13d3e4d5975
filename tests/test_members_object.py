"""cs.Object members: any Python object per entry, garbage-collected, shared by copy, deep-copied by deepcopy."""

import copy
import gc
import weakref
from typing import Any

import pytest

import compactstore as cs


class O(cs.StaticStore):
    ref: cs.i64
    obj: cs.Object


class Node:
    pass


@pytest.fixture(params=["static", "dynamic", "keyed"])
def kind(request: Any) -> str:
    return str(request.param)


def make(kind: str) -> Any:
    if kind == "static":
        return O(4)
    if kind == "dynamic":
        return cs.DynamicStore(O, log2size=1)
    return cs.KeyedStore(O)


def put(store: Any, kind: str, value: Any) -> Any:
    if kind == "keyed":
        k = len(store)
        store[k] = {"obj": value}
        return store[k]
    return store.entry(store.add(obj=value))


def test_round_trip_identity_and_default(kind: str) -> None:
    store = make(kind)
    thing = {"a": [1, 2]}
    e = put(store, kind, thing)
    assert e["obj"] is thing
    e["obj"] = None
    assert e["obj"] is None
    e["obj"] = 5
    assert e["obj"] == 5
    assert O(1).obj[0] is None
    assert O(1).obj.dtype is cs.Object


def test_reference_cycle_through_object_member_is_collected(kind: str) -> None:
    store = make(kind)
    node = Node()
    node.store = store  # type: ignore[attr-defined]
    put(store, kind, node)
    gone = weakref.ref(node)
    del store, node
    gc.collect()
    assert gone() is None


def test_views_keep_the_objects_alive(kind: str) -> None:
    store = make(kind)
    node = Node()
    node.store = store  # type: ignore[attr-defined]
    view = put(store, kind, node)
    gone = weakref.ref(node)
    del store, node
    gc.collect()
    assert gone() is not None and view["obj"] is gone()
    del view
    gc.collect()
    assert gone() is None


def test_delete_drops_the_reference() -> None:
    s = O(2)
    node = Node()
    i = s.add(obj=node)
    gone = weakref.ref(node)
    del node
    assert gone() is not None
    del s[i]
    assert gone() is None and s.obj[i] is None


def test_copy_shares_and_deepcopy_copies() -> None:
    s = O(2)
    s.add(obj=[1, [2]])
    shallow, deep = copy.copy(s), copy.deepcopy(s)
    assert shallow.obj[0] is s.obj[0]
    assert deep.obj[0] is not s.obj[0] and deep.obj[0] == [1, [2]]
    d = cs.DynamicStore(O)
    d.add(obj={"x": 1})
    assert copy.deepcopy(d).obj[0] is not d.obj[0]


def test_object_slices_are_lists_and_index_arrays_refused() -> None:
    s = O(3)
    s.add(obj="a")
    s.add(obj=(1,))
    assert s.obj[:3] == ["a", (1,), None]
    with pytest.raises(TypeError):
        s.obj[[0, 1]]
    s.obj[0:2] = "z"
    assert s.obj[:2] == ["z", "z"]


class Toucher:
    """An object whose finaliser reads the store that held it."""

    def __init__(self, store: Any, seen: list[Any]) -> None:
        self.store, self.seen = store, seen

    def __del__(self) -> None:
        self.seen.append(len(self.store))


def test_finaliser_run_by_an_overwrite_or_delete_can_use_the_store(kind: str) -> None:
    # The old object's last reference drops inside the store call; its finaliser must find the store free
    # (its decrement is deferred until the call returns), not raise "store is in use".
    store = make(kind)
    seen: list[Any] = []
    e = put(store, kind, Toucher(store, seen))
    e["obj"] = None
    assert seen == [len(store)]
    put(store, kind, Toucher(store, seen))
    if kind == "keyed":
        k = len(store) - 1
        del store[k]
    else:
        del store[store.last_index]
    assert len(seen) == 2 and seen[1] == len(store)


class Eq:
    """Equal to any Eq with the same tag; counts the comparisons it takes part in."""

    calls = 0

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def __eq__(self, other: object) -> bool:
        Eq.calls += 1
        return isinstance(other, Eq) and other.tag == self.tag

    __hash__ = None  # type: ignore[assignment]


def test_find_and_entry_equality_use_python_equality(kind: str) -> None:
    s = make(kind)
    a, b, c, d = put(s, kind, 1), put(s, kind, [1, 2]), put(s, kind, None), put(s, kind, Eq(3))
    found = (lambda v: s.find("obj", v)) if kind == "keyed" else (lambda v: s.find("obj", v).tolist())
    ident = (lambda e: e.key) if kind == "keyed" else (lambda e: e.index)
    assert found(1) == found(1.0) == found(True) == [ident(a)]
    assert found([1, 2]) == [ident(b)]
    assert found(None) == [ident(c)]
    assert found(Eq(3)) == [ident(d)] and found(Eq(4)) == []
    assert found("nope") == []
    assert a == {"ref": 0, "obj": 1} and a == dict(a)
    assert b == {"ref": 0, "obj": [1, 2]} and b != {"ref": 0, "obj": [1, 2, 3]}
    assert c == {"ref": 0, "obj": None} and c != {"ref": 0, "obj": 0}
    assert d == {"ref": 0, "obj": Eq(3)} and d != {"ref": 0, "obj": Eq(5)}
    assert a != {"ref": 1, "obj": 1}  # the other members still count


def test_an_eq_that_uses_the_store_does_not_meet_a_busy_store(kind: str) -> None:
    s = make(kind)

    class Peek:
        def __eq__(self, other: object) -> bool:
            len(s)  # would raise RuntimeError if the store were still borrowed
            s.find("ref", 0)
            return True

        __hash__ = None  # type: ignore[assignment]

    e = put(s, kind, Peek())
    assert len(s.find("obj", object())) == 1
    assert e == {"ref": 0, "obj": object()}


def test_deepcopy_of_a_store_an_object_member_refers_back_to(kind: str) -> None:
    s = make(kind)

    class Back:
        def __init__(self, store: Any) -> None:
            self.store = store

    e = put(s, kind, None)
    key = e.key if kind == "keyed" else e.index
    if kind == "keyed":
        s[key, "obj"] = Back(s)
    else:
        s.obj[key] = Back(s)
    c = copy.deepcopy(s)
    back = c[key, "obj"] if kind == "keyed" else c.obj[key]
    assert isinstance(back, Back) and back.store is c  # memo: the copy, not a second copy
