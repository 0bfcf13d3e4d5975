"""The Store interface (allocation, member access, copies) and store type definitions, for a StaticStore
subclass and a DynamicStore."""

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    inputs: cs.Array(cs.u8, 4)
    alive: bool = True
    small: cs.u8 = 7
    born: cs.Member(cs.i32, default=-1, read_only=True)


NAMES = ["ref", "fitness", "inputs", "alive", "small", "born"]
DEFAULTS: dict[str, Any] = {"ref": 0, "fitness": 0.5, "inputs": [0, 0, 0, 0], "alive": True, "small": 7, "born": -1}

CHUNK = 4  # dynamic stores below use log2size=2
STATIC_SIZE = 8


def new_store(kind: str) -> Any:
    if kind == "static":
        return Genes(STATIC_SIZE)
    return cs.DynamicStore(Genes, log2size=2)


@pytest.fixture(params=["static", "dynamic"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str) -> Any:
    return new_store(kind)


def as_plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, np.ndarray) else v


def snapshot(s: Any) -> dict[str, Any]:
    """Everything observable about a store, as plain Python values."""
    return {
        "len": len(s),
        "size": s.size,
        "space": s.space,
        "last_index": s.last_index,
        "indices": list(s.indices()),
        "empty": s.empty_indices(),
        "columns": {name: s[name][:].tolist() for name in NAMES},
    }


def assert_defaults(s: Any, i: int) -> None:
    for name, want in DEFAULTS.items():
        assert as_plain(s[name][i]) == want, name


# --- construction -------------------------------------------------------------------------------------------


def test_static_store_has_the_requested_size() -> None:
    s = Genes(size=10)
    assert s.size == 10
    assert len(s) == 0
    assert s.space == 10
    assert s.last_index == -1
    assert s.empty_indices() == list(range(10))
    assert list(s.indices()) == []


def test_static_store_default_size_is_65536() -> None:
    assert Genes().size == 65536


def test_dynamic_store_starts_with_one_chunk() -> None:
    d = cs.DynamicStore(Genes, log2size=3)
    assert d.size == 8
    assert d.log2size == 3
    assert d.store_type is Genes
    assert len(d) == 0
    assert d.last_index == -1
    assert len(d.chunks) == 1


def test_dynamic_store_default_log2size_is_11() -> None:
    d = cs.DynamicStore(Genes)
    assert d.log2size == 11
    assert d.size == 2048


def test_dynamic_store_refuses_a_non_store_type() -> None:
    with pytest.raises(TypeError):
        cs.DynamicStore(int)  # type: ignore[arg-type]


def test_base_static_store_without_members_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        cs.StaticStore(3)


# --- next_index / add / last_index ---------------------------------------------------------------------------


def test_next_index_allocates_lowest_free_slot_at_defaults(store: Any) -> None:
    assert [store.next_index() for _ in range(3)] == [0, 1, 2]
    assert store.last_index == 2
    assert len(store) == 3
    for i in range(3):
        assert store.occupied(i)
        assert_defaults(store, i)
    del store[1]
    assert store.next_index() == 1
    assert store.last_index == 1


def test_next_index_resets_a_free_slot_written_before_allocation(store: Any) -> None:
    store["ref"][0] = 99
    store["inputs"][0] = [1, 2, 3, 4]
    assert store["ref"][0] == 99
    assert store.next_index() == 0
    assert_defaults(store, 0)


def test_next_index_on_full_static_store_raises_overflow_error() -> None:
    s = Genes(3)
    for _ in range(3):
        s.next_index()
    assert s.space == 0
    with pytest.raises(OverflowError):
        s.next_index()
    with pytest.raises(OverflowError):
        s.add(ref=1)
    assert len(s) == 3
    assert s.last_index == 2


def test_next_index_grows_a_dynamic_store() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for i in range(CHUNK):
        assert d.next_index() == i
    assert d.size == CHUNK
    assert d.next_index() == CHUNK
    assert d.size == 2 * CHUNK
    assert len(d.chunks) == 2
    assert len(d) == CHUNK + 1
    assert d.space == sys.maxsize
    assert_defaults(d, CHUNK)


def test_add_sets_given_members_and_defaults_for_the_rest(store: Any) -> None:
    i = store.add(ref=42, inputs=[1, 2, 3, 4])
    assert i == 0
    assert store.last_index == 0
    assert store["ref"][0] == 42
    assert store["inputs"][0].tolist() == [1, 2, 3, 4]
    assert store["fitness"][0] == 0.5
    assert store["alive"][0] is True
    assert store["small"][0] == 7
    assert store["born"][0] == -1


def test_add_takes_a_mapping_and_keywords_and_writes_read_only_members(store: Any) -> None:
    i = store.add({"ref": 1, "fitness": 0.25}, born=5, small=9)
    got = {k: as_plain(v) for k, v in store.entry(i).items()}
    assert got == {"ref": 1, "fitness": 0.25, "inputs": [0, 0, 0, 0], "alive": True, "small": 9, "born": 5}


def test_add_calling_conventions(store: Any) -> None:
    """`add` is a hand-written varargs method (so `add(**d)` reaches it without the keyword dict rebuilt):
    its arguments bind as a Python signature `(self, mapping=None, /?, **members)` would, and the caller's
    dicts are never changed."""
    import functools
    import inspect

    assert str(inspect.signature(type(store).add)) == "(self, /, mapping=None, **members)"
    assert "next_index()" in (cs.Store.add.__doc__ or "")
    d = {"ref": 3, "small": 4}
    i = store.add(**d)
    j = store.add(mapping=d)  # the first parameter may be named
    k = cs.Store.add(store, d, born=2)  # unbound
    m = functools.partial(store.add, born=8)(**d)  # through PyObject_Call
    assert d == {"ref": 3, "small": 4}
    for n in (i, j, k, m):
        assert (store["ref"][n], store["small"][n]) == (3, 4)
    assert [store["born"][n] for n in (i, j, k, m)] == [-1, -1, 2, 8]
    before = len(store)
    with pytest.raises(TypeError, match="takes from 0 to 1 positional arguments but 2 were given"):
        store.add({}, {})
    with pytest.raises(TypeError, match="multiple values for argument 'mapping'"):
        store.add({}, mapping={})
    with pytest.raises(TypeError, match="doesn't apply"):
        cs.Store.add(object())
    kw = {"mapping": {"ref": 5}, "small": 1}
    n = store.add(**kw)
    assert kw == {"mapping": {"ref": 5}, "small": 1}
    assert (store["ref"][n], store["small"][n]) == (5, 1)
    assert len(store) == before + 1


def test_add_of_numbers_writes_every_member_and_defaults_the_rest_of_a_written_free_slot(store: Any) -> None:
    # The one-pass path for records of numbers skips resetting the members it writes: a free slot that
    # was written through a container still gets every other member's default.
    store["ref"][0] = 99
    store["small"][0] = 99
    store["fitness"][0] = 9.0
    store["alive"][0] = False
    i = store.add({"ref": 1}, small=2)
    assert i == 0
    assert (store["ref"][0], store["small"][0], store["fitness"][0], store["alive"][0]) == (1, 2, 0.5, True)
    assert store["born"][0] == -1


def test_add_with_no_members_is_next_index(store: Any) -> None:
    assert store.add() == 0
    assert store.add(None) == 1
    assert_defaults(store, 0)
    assert_defaults(store, 1)


@pytest.mark.parametrize(
    ("members", "exc"),
    [
        ({"nope": 1}, KeyError),
        ({"ref": 1, "nope": 1}, KeyError),
        ({"small": 300}, OverflowError),
        ({"small": -1}, OverflowError),
        ({"ref": 2**70}, OverflowError),
        ({"ref": 1.5}, TypeError),
        ({"ref": None}, TypeError),
        ({"alive": 1}, TypeError),
        ({"fitness": 1e39}, OverflowError),
        ({"inputs": [1, 2]}, ValueError),
        ({"inputs": [1, 2, 3, 300]}, OverflowError),
        ({"born": 2**31}, OverflowError),
        ({"ref": 5, "small": 256}, OverflowError),
    ],
)
def test_add_refused_allocates_nothing(kind: str, members: dict[str, Any], exc: type[Exception]) -> None:
    s = new_store(kind)
    # fill a whole chunk/store but one slot, so a refused add at the boundary must not grow or fill the store
    for k in range(CHUNK - 1):
        s.add(ref=k)
    before = snapshot(s)
    with pytest.raises(exc):
        s.add(**members)
    assert snapshot(s) == before
    # the next good add takes the slot the refused one would have taken
    assert s.add(ref=100) == CHUNK - 1
    s.validate()


def test_add_refused_at_dynamic_chunk_boundary_does_not_grow() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for _ in range(CHUNK):
        d.next_index()
    with pytest.raises(KeyError):
        d.add(nope=1)
    with pytest.raises(OverflowError):
        d.add(small=300)
    assert d.size == CHUNK
    assert len(d.chunks) == 1
    assert len(d) == CHUNK
    assert d.last_index == CHUNK - 1


def test_last_index_is_minus_one_before_any_allocation(store: Any) -> None:
    assert store.last_index == -1
    store.next_index()
    store.next_index()
    assert store.last_index == 1
    del store[1]
    assert store.last_index == 1  # last returned index, even when it has since been freed


# --- del / occupied / indices / empty_indices / len / size / space -------------------------------------------


def test_del_frees_the_slot_and_resets_it_to_defaults(store: Any) -> None:
    i = store.add(ref=5, fitness=1.5, inputs=[9, 9, 9, 9], alive=False, small=1, born=3)
    store.add(ref=6)
    del store[i]
    assert not store.occupied(i)
    assert len(store) == 1
    assert_defaults(store, i)
    assert store["ref"][1] == 6
    assert i in store.empty_indices()
    store.validate()


@pytest.mark.parametrize("index", [-1, -100])
def test_del_negative_raises_index_error(store: Any, index: int) -> None:
    store.next_index()
    with pytest.raises(IndexError):
        del store[index]
    assert len(store) == 1


def test_del_out_of_range_raises_index_error(store: Any) -> None:
    store.next_index()
    with pytest.raises(IndexError):
        del store[store.size]
    with pytest.raises(IndexError):
        del store[store.size + 100]
    assert len(store) == 1


def test_del_free_slot_raises_index_error(store: Any) -> None:
    store.next_index()
    with pytest.raises(IndexError):
        del store[1]
    del store[0]
    with pytest.raises(IndexError):
        del store[0]
    assert len(store) == 0


def test_del_huge_index_raises_index_error(store: Any) -> None:
    with pytest.raises(IndexError):
        del store[2**70]


def test_occupied(store: Any) -> None:
    store.next_index()
    store.next_index()
    del store[0]
    assert store.occupied(1) is True
    assert store.occupied(0) is False
    assert store.occupied(2) is False
    assert store.occupied(-1) is False
    assert store.occupied(store.size) is False
    assert store.occupied(10**6) is False
    assert store.occupied(True) is True  # a bool counts as an int


def test_occupied_huge_index_is_false(store: Any) -> None:
    assert store.occupied(2**70) is False


def test_occupied_numpy_int_index(store: Any) -> None:
    store.next_index()
    assert store.occupied(np.int64(0)) is True
    assert store.occupied(np.uint8(1)) is False


def test_indices_and_empty_indices(store: Any) -> None:
    for _ in range(6):
        store.next_index()
    del store[1]
    del store[4]
    it = store.indices()
    assert iter(it) is it  # an iterator
    assert list(it) == [0, 2, 3, 5]
    assert store.empty_indices() == [i for i in range(store.size) if i not in (0, 2, 3, 5)]
    assert sorted(list(store.indices()) + store.empty_indices()) == list(range(store.size))


def test_len_size_space_static() -> None:
    s = Genes(5)
    assert (len(s), s.size, s.space) == (0, 5, 5)
    s.next_index()
    s.next_index()
    assert (len(s), s.size, s.space) == (2, 5, 3)
    del s[0]
    assert (len(s), s.size, s.space) == (1, 5, 4)


def test_len_size_space_dynamic() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    assert (len(d), d.size, d.space) == (0, CHUNK, sys.maxsize)
    for _ in range(CHUNK * 2 + 1):
        d.next_index()
    assert (len(d), d.size, d.space) == (2 * CHUNK + 1, 3 * CHUNK, sys.maxsize)
    del d[0]
    assert len(d) == 2 * CHUNK
    assert d.size == 3 * CHUNK


# --- member access and the shorthand s[name] = v ------------------------------------------------------------


def test_getitem_and_getattr_return_the_member_container(store: Any) -> None:
    i = store.add(ref=3)
    for name in NAMES:
        m = store[name]
        assert m.name == name
        assert getattr(store, name).name == name
    assert store["ref"][i] == 3
    assert store.ref[i] == 3


def test_unknown_member_raises_key_error_and_attribute_error(store: Any) -> None:
    with pytest.raises(KeyError):
        store["nope"]
    with pytest.raises(AttributeError):
        store.nope  # noqa: B018
    assert not hasattr(store, "nope")


def test_shorthand_sets_member_at_last_index(store: Any) -> None:
    store.add(ref=1)
    store.add(ref=2)
    store["ref"] = 20
    store["inputs"] = [4, 3, 2, 1]
    store["born"] = 7  # read-only members too: the entry was just created
    assert store["ref"][:2].tolist() == [1, 20]
    assert store["inputs"][1].tolist() == [4, 3, 2, 1]
    assert store["born"][1] == 7
    assert store["born"][0] == -1


def test_shorthand_without_entry_raises_index_error(store: Any) -> None:
    with pytest.raises(IndexError):
        store["ref"] = 1
    i = store.next_index()
    del store[i]
    with pytest.raises(IndexError):
        store["ref"] = 1
    assert store["ref"][i] == 0


def test_shorthand_refuses_bad_values_and_unknown_members(store: Any) -> None:
    store.add(ref=1)
    with pytest.raises(TypeError):
        store["ref"] = 1.5
    with pytest.raises(OverflowError):
        store["small"] = 300
    with pytest.raises(ValueError):
        store["inputs"] = [1, 2]
    with pytest.raises(KeyError):
        store["nope"] = 1
    assert store["ref"][0] == 1
    assert store["small"][0] == 7
    assert store["inputs"][0].tolist() == [0, 0, 0, 0]


def test_shorthand_on_dynamic_store_after_growth() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(CHUNK + 2):
        d.next_index()
        d["ref"] = k * 10
    assert d["ref"][: CHUNK + 2].tolist() == [k * 10 for k in range(CHUNK + 2)]


# --- dictionary-like view -------------------------------------------------------------------------------------


def test_dict_like_view_of_members(store: Any) -> None:
    assert list(store) == NAMES
    assert list(store.keys()) == NAMES
    values = list(store.values())
    assert [m.name for m in values] == NAMES
    items = list(store.items())
    assert [k for k, _ in items] == NAMES
    assert [m.name for _, m in items] == NAMES
    for name in NAMES:
        assert name in store
    assert "nope" not in store
    assert 1 not in store


def test_member_containers_from_values_are_live(store: Any) -> None:
    containers = dict(store.items())
    i = store.add(ref=8)
    assert containers["ref"][i] == 8
    containers["ref"][i] = 9
    assert store.ref[i] == 9


# --- entry ------------------------------------------------------------------------------------------------------


def test_entry_of_occupied_slot(store: Any) -> None:
    i = store.add(ref=11)
    e = store.entry(i)
    assert e.index == i
    assert e["ref"] == 11


@pytest.mark.parametrize("where", ["free", "size", "negative", "far"])
def test_entry_of_free_or_out_of_range_slot_raises_index_error(store: Any, where: str) -> None:
    store.next_index()
    index = {"free": 1, "size": store.size, "negative": -1, "far": 10**9}[where]
    with pytest.raises(IndexError):
        store.entry(index)


# --- reset / clone / validate ---------------------------------------------------------------------------------


def test_reset_static_keeps_size_and_drops_entries() -> None:
    s = Genes(6)
    for k in range(4):
        s.add(ref=k + 1, small=k)
    s.ref[5] = 55  # a free slot written
    s.reset()
    assert len(s) == 0
    assert s.size == 6
    assert s.last_index == -1
    assert s.empty_indices() == list(range(6))
    for i in range(6):
        assert_defaults(s, i)
    assert s.next_index() == 0
    s.validate()


def test_reset_static_with_size() -> None:
    s = Genes(6)
    for k in range(6):
        s.add(ref=k)
    m = s.ref
    s.reset(10)
    assert s.size == 10
    assert len(s) == 0
    assert s.last_index == -1
    assert len(m) == 10  # containers are live views
    assert m[:].tolist() == [0] * 10
    s.reset(2)
    assert s.size == 2
    assert len(m) == 2
    s.next_index()
    s.next_index()
    with pytest.raises(OverflowError):
        s.next_index()
    s.validate()


def test_reset_dynamic_keeps_one_chunk() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(3 * CHUNK):
        d.add(ref=k)
    d.reset()
    assert len(d) == 0
    assert d.size == CHUNK
    assert len(d.chunks) == 1
    assert d.last_index == -1
    assert d.log2size == 2
    assert d.ref[:].tolist() == [0] * CHUNK
    d.validate()


def test_reset_dynamic_with_log2size() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(2 * CHUNK):
        d.add(ref=k)
    m = d.ref
    d.reset(3)
    assert d.log2size == 3
    assert d.size == 8
    assert len(d) == 0
    assert len(m) == 8
    for k in range(9):
        assert d.add(ref=k) == k
    assert d.size == 16
    assert m[:9].tolist() == list(range(9))
    d.validate()


def test_clone_is_new_empty_store_of_same_type_and_size() -> None:
    s = Genes(7)
    s.add(ref=1)
    c = s.clone()
    assert type(c) is Genes
    assert c.size == 7
    assert len(c) == 0
    assert c.last_index == -1
    c.add(ref=2)
    assert s.ref[0] == 1
    assert len(s) == 1

    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(CHUNK + 1):
        d.add(ref=k)
    dc = d.clone()
    assert isinstance(dc, cs.DynamicStore)
    assert dc.store_type is Genes
    assert dc.log2size == 2
    assert len(dc) == 0
    assert dc.size == d.size == 2 * CHUNK  # as many chunks, all empty
    assert dc.add(ref=9) == 0 and d.ref[0] == 0
    dc.validate()


def test_validate_and_assertions_pass_on_a_used_store(store: Any) -> None:
    for k in range(2 * CHUNK - 1):
        store.add(ref=k)
    for k in (0, 3, CHUNK + 1):
        del store[k]
    store.ref[0] = 5  # a free slot: validate never checks free slots' values
    assert store.validate() is None
    assert store.assertions() is None


# --- find -------------------------------------------------------------------------------------------------------


def test_find(store: Any) -> None:
    for k in range(2 * CHUNK):
        store.add(ref=k % 3, fitness=0.1 if k % 2 else 0.5)
    del store[3]
    store.ref[3] = 0  # a free slot: never found
    found = store.find("ref", 0)
    assert isinstance(found, np.ndarray)
    assert found.tolist() == [0, 6]
    assert store.find("ref", 1).tolist() == [1, 4, 7]
    assert store.find("ref", 99).tolist() == []
    assert store.find("fitness", 0.1).tolist() == [1, 5, 7]  # 0.1 converts like a write, to f32
    assert store.find("alive", True).tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert store.find("inputs", [0, 0, 0, 0]).tolist() == [0, 1, 2, 4, 5, 6, 7]


def test_find_bad_value_or_member_raises(store: Any) -> None:
    store.add(ref=1)
    with pytest.raises(TypeError):
        store.find("ref", 1.5)
    with pytest.raises(OverflowError):
        store.find("small", 300)
    with pytest.raises(KeyError):
        store.find("nope", 1)


# --- copy -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["copy", "copy.copy", "copy.deepcopy"])
def test_copy_is_independent(kind: str, how: str) -> None:
    s = new_store(kind)
    for k in range(CHUNK + 2):
        s.add(ref=k, inputs=[k, k, k, k], born=k)
    del s[1]
    s.ref[s.size - 1] = 77  # a free slot's value is copied too
    copier: Callable[[Any], Any] = {"copy": lambda x: x.copy(), "copy.copy": copy.copy, "copy.deepcopy": copy.deepcopy}[how]
    c = copier(s)
    assert type(c) is type(s)
    assert c is not s
    assert snapshot(c) == snapshot(s)
    before = snapshot(s)
    c.ref[0] = -5
    c.inputs[0, 0] = 200
    del c[0]
    c.add(ref=1000)
    c.next_index()
    assert snapshot(s) == before
    s.ref[2] = 12345
    assert c.ref[2] == 2
    s.validate()
    c.validate()


# --- nbytes / retract / chunks / repr -------------------------------------------------------------------------


def test_nbytes_counts_the_data_buffers() -> None:
    per_slot = 8 + 4 + 4 + 1 + 1 + 4
    small, big = Genes(100), Genes(1000)
    assert small.nbytes >= 100 * per_slot
    assert big.nbytes >= 1000 * per_slot
    assert big.nbytes - small.nbytes >= 900 * per_slot
    assert big.nbytes < 1000 * per_slot * 2

    d = cs.DynamicStore(Genes, log2size=4)
    one = d.nbytes
    assert one >= 16 * per_slot
    for _ in range(17):
        d.next_index()
    assert d.nbytes >= 2 * 16 * per_slot
    assert d.nbytes > one


def test_retract_releases_trailing_empty_chunks() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(3 * CHUNK):
        d.add(ref=k)
    assert len(d.chunks) == 3
    assert d.retract() == 0
    for k in range(CHUNK, 3 * CHUNK):
        del d[k]
    assert d.retract() == 2
    assert d.size == CHUNK
    assert len(d.chunks) == 1
    assert len(d) == CHUNK
    assert d.ref[:].tolist() == list(range(CHUNK))
    assert d.retract() == 0
    d.validate()


def test_retract_keeps_one_chunk_and_stops_at_an_occupied_chunk() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(3 * CHUNK):
        d.add(ref=k)
    for k in range(3 * CHUNK):
        if k != CHUNK + 1:
            del d[k]
    # chunk 0 is empty but not trailing; chunk 1 holds an entry; chunk 2 is released
    assert d.retract() == 1
    assert d.size == 2 * CHUNK
    del d[CHUNK + 1]
    assert d.retract() == 1
    assert d.size == CHUNK
    assert len(d) == 0
    assert d.retract() == 0  # always keeps one
    assert d.size == CHUNK
    assert d.next_index() == 0
    d.validate()


def test_chunks_are_live_instances_of_the_store_type() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(CHUNK + 2):
        d.add(ref=k)
    chunks = d.chunks
    assert isinstance(chunks, list)
    assert len(chunks) == 2
    for c in chunks:
        assert isinstance(c, Genes)
        assert c.size == CHUNK
    assert len(chunks[0]) == CHUNK
    assert len(chunks[1]) == 2
    assert chunks[1].ref[1] == CHUNK + 1
    chunks[1].ref[0] = 444  # writes through a chunk reach the dynamic store
    assert d.ref[CHUNK] == 444
    d.ref[1] = 111  # and the other way round
    assert chunks[0].ref[1] == 111
    d.add(ref=9)
    assert len(chunks[1]) == 3


def test_a_chunk_refuses_to_allocate_free_or_reset_slots_and_changes_nothing() -> None:
    d = cs.DynamicStore(Genes, log2size=2)
    for k in range(CHUNK + 2):
        d.add(ref=k)
    chunk = d.chunks[1]
    calls: list[Callable[[], Any]] = [
        chunk.next_index,
        lambda: chunk.add(ref=1),
        lambda: chunk.add({"ref": 1, "fitness": "x"}),  # refused one way or the other, nothing allocated
        lambda: chunk.__delitem__(0),
        chunk.reset,
        lambda: chunk.reset(CHUNK),
        lambda: chunk.reset(2 * CHUNK),
    ]
    for call in calls:
        with pytest.raises((TypeError, KeyError)):
            call()
    with pytest.raises(TypeError, match="cannot allocate or free slots"):
        chunk.add(ref=1)
    assert (len(d), len(chunk), d.size) == (CHUNK + 2, 2, 2 * CHUNK)
    assert [d.ref[i] for i in d.indices()] == list(range(CHUNK + 2))
    chunk.ref[1] = 50  # its members are still written
    assert d.ref[CHUNK + 1] == 50
    assert d.add(ref=9) == CHUNK + 2


def test_repr_names_type_len_and_size() -> None:
    s = Genes(12)
    s.next_index()
    r = repr(s)
    assert "Genes" in r
    assert "len=1" in r
    assert "size=12" in r
    d = cs.DynamicStore(Genes, log2size=2)
    for _ in range(5):
        d.next_index()
    r = repr(d)
    assert "DynamicStore" in r
    assert "Genes" in r
    assert "len=5" in r
    assert "size=8" in r


def test_repr_never_dumps_the_data() -> None:
    s = Genes(10_000)
    for _ in range(100):
        s.add(ref=123456789)
    assert len(repr(s)) < 200
    assert "123456789" not in repr(s)


def test_public_api_has_docstrings() -> None:
    for cls in (cs.StaticStore, cs.DynamicStore, cs.Store):
        assert cls.__doc__
    for name in [
        "next_index", "add", "occupied", "indices", "empty_indices", "entry", "reset", "clone",
        "validate", "assertions", "find", "copy",
    ]:
        assert getattr(cs.StaticStore, name).__doc__, name
        assert getattr(cs.DynamicStore, name).__doc__, name
    for name in ["retract", "chunks", "log2size", "store_type"]:
        assert getattr(cs.DynamicStore, name).__doc__, name
    for name in ["size", "space", "last_index", "nbytes"]:
        assert getattr(cs.Store, name).__doc__, name
    for obj in (cs.make_store, cs.Array, cs.Member, cs.Container, cs.Entry):
        assert obj.__doc__


# --- defining a store type --------------------------------------------------------------------------------------


def test_annotations_define_members_in_declaration_order() -> None:
    class T(cs.StaticStore):
        zeta: int
        alpha: float
        mid: bool
        beta: cs.u16

    assert list(T(1)) == ["zeta", "alpha", "mid", "beta"]


def test_class_attributes_give_defaults() -> None:
    class T(cs.StaticStore):
        a: int = 5
        b: float = 2.5
        c: bool = True
        d: cs.Array(cs.i16, 3) = [1, -2, 3]
        e: cs.i8

    s = T(2)
    i = s.next_index()
    assert s.a[i] == 5
    assert s.b[i] == 2.5
    assert s.c[i] is True
    assert s.d[i].tolist() == [1, -2, 3]
    assert s.e[i] == 0
    # the class attribute moved into the schema: `s.a` is the member container
    assert s.a.name == "a"


@pytest.mark.parametrize(
    ("spelling", "dtype"),
    [
        (bool, np.bool_),
        (int, np.int64),
        (float, np.float64),
        (cs.bool_, np.bool_),
        (cs.i8, np.int8),
        (cs.i16, np.int16),
        (cs.i32, np.int32),
        (cs.i64, np.int64),
        (cs.u8, np.uint8),
        (cs.u16, np.uint16),
        (cs.u32, np.uint32),
        (cs.u64, np.uint64),
        (cs.f32, np.float32),
        (cs.f64, np.float64),
        (np.int16, np.int16),
        (np.uint32, np.uint32),
        (np.float32, np.float32),
        (np.bool_, np.bool_),
    ],
)
def test_member_type_spellings(spelling: Any, dtype: Any) -> None:
    T = type("T", (cs.StaticStore,), {"__annotations__": {"x": spelling}, "__slots__": ()})
    s = T(3)
    assert s.x.dtype == np.dtype(dtype)
    assert np.asarray(s.x).dtype == np.dtype(dtype)


def test_array_member() -> None:
    class T(cs.StaticStore):
        v: cs.Array(cs.f32, 3)

    s = T(4)
    i = s.add(v=[0.5, 1.5, 2.5])
    assert s.v.dtype == np.dtype(np.float32)
    row = s.v[i]
    assert isinstance(row, np.ndarray)
    assert row.shape == (3,)
    assert row.tolist() == [0.5, 1.5, 2.5]


def test_member_with_options() -> None:
    class T(cs.StaticStore):
        key: cs.Member(cs.i64, default=-7, read_only=True)
        val: cs.Member(cs.u8, default=3)
        arr: cs.Member(cs.Array(cs.i16, 2), default=[4, 5])

    s = T(3)
    i = s.add(key=10)
    assert s.key.read_only is True
    assert s.val.read_only is False
    assert s.key[i] == 10
    j = s.next_index()
    assert s.key[j] == -7
    assert s.val[j] == 3
    assert s.arr[j].tolist() == [4, 5]
    with pytest.raises(TypeError, match="key"):
        s.key[i] = 1
    assert s.key[i] == 10


def test_member_default_option_wins_over_nothing_and_class_attribute_gives_default() -> None:
    class T(cs.StaticStore):
        a: cs.Member(cs.i32) = 9

    s = T(1)
    assert s.a[s.next_index()] == 9


def test_subclass_without_new_members_keeps_the_parents() -> None:
    class Sub(Genes):
        pass

    s = Sub(2)
    assert list(s) == NAMES
    assert s.fitness[s.next_index()] == 0.5


def test_make_store_with_types() -> None:
    T = cs.make_store("Pair", {"ref": cs.i64, "fitness": cs.f32, "v": cs.Array(cs.u8, 2)})
    assert issubclass(T, cs.StaticStore)
    assert T.__name__ == "Pair"
    s = T(5)
    assert list(s) == ["ref", "fitness", "v"]
    i = s.add(ref=3, fitness=0.25, v=[1, 2])
    assert (s.ref[i], s.fitness[i], s.v[i].tolist()) == (3, 0.25, [1, 2])
    assert s.fitness.dtype == np.dtype(np.float32)
    d = cs.DynamicStore(T, log2size=1)
    for k in range(3):
        d.add(ref=k)
    assert d.ref[:3].tolist() == [0, 1, 2]


def test_make_store_with_field_definition_dicts() -> None:
    T = cs.make_store(
        "Origin",
        {
            "ref": {"type": np.int64, "length": 1, "default": 0, "read_only": True},
            "vec": {"type": np.float32, "length": 4, "default": 1.5, "indexed": True, "read_count": 0},
            "count": {"type": np.int32, "length": 1, "default": 7, "write_count": 3},
            "flag": {"type": np.bool_, "length": 1, "default": False},
        },
    )
    s = T(3)
    assert list(s) == ["ref", "vec", "count", "flag"]
    i = s.add(ref=12)
    assert s.ref.read_only is True
    assert s.vec.read_only is False
    assert s.ref[i] == 12
    assert s.vec.dtype == np.dtype(np.float32)
    assert s.vec[i].tolist() == [1.5, 1.5, 1.5, 1.5]  # length > 1: an Array filled with the scalar default
    assert s.count[i] == 7
    assert s.count.dtype == np.dtype(np.int32)
    assert s.flag[i] is False
    with pytest.raises(TypeError, match="ref"):
        s.ref[i] = 1
    assert s.ref[i] == 12


def test_make_store_refuses_bad_types() -> None:
    with pytest.raises(TypeError):
        cs.make_store("X", {"a": list})
    with pytest.raises(TypeError):
        cs.make_store("X", [("a", int)])  # type: ignore[arg-type]


def _define(annotation: Any, default: Any = None) -> type:
    ns: dict[str, Any] = {"__annotations__": {"x": annotation}}
    if default is not None:
        ns["x"] = default
    return type("Bad", (cs.StaticStore,), ns)


@pytest.mark.parametrize(
    "annotation",
    [list, dict, 5, None, np.complex128, np.float16, object, cs.Member],
    ids=lambda a: repr(a),
)
def test_bad_annotation_raises_type_error_at_class_creation(annotation: Any) -> None:
    with pytest.raises(TypeError):
        _define(annotation)


def test_array_length_takes_any_int() -> None:
    assert cs.Array(cs.u8, np.int64(3)).length == 3
    T = cs.make_store("T", {"v": {"type": np.int16, "length": np.int32(2), "default": 4}})
    s = T(2)
    assert s.v[s.next_index()].tolist() == [4, 4]


def test_bad_array_annotation_raises_type_error() -> None:
    with pytest.raises(TypeError):
        cs.Array(cs.i8, 0)
    with pytest.raises(TypeError):
        cs.Array(cs.i8, -1)
    with pytest.raises(TypeError):
        cs.Array(cs.i8, 2.0)
    with pytest.raises(TypeError):
        cs.Array(cs.i8, True)
    with pytest.raises(TypeError):
        cs.Array(list, 2)
    with pytest.raises(TypeError):
        cs.Member(cs.Member(int))


def test_bad_default_raises_at_class_creation() -> None:
    with pytest.raises(OverflowError):
        _define(cs.u8, 300)
    with pytest.raises(TypeError):
        _define(int, 1.5)
    with pytest.raises(ValueError):
        _define(cs.Array(cs.i8, 2), [1, 2, 3])


def test_string_annotations_are_evaluated_in_the_module() -> None:
    # `from __future__ import annotations` makes every annotation a string (tests/test_future_annotations.py)
    assert _define("cs.Array(cs.u8, 2)")(1).x.dtype == np.uint8
    with pytest.raises(TypeError, match="cannot evaluate"):
        _define("not_defined_anywhere")
    with pytest.raises(TypeError):
        _define("list")


def test_none_default_needs_an_optional_member() -> None:
    for t in (cs.i64, cs.Str, cs.Array(cs.u8, 2), cs.Interned(cs.Str)):
        with pytest.raises(TypeError, match="cs.Optional"):
            type("Bad", (cs.StaticStore,), {"__annotations__": {"x": t}, "x": None})
    ok = type("Ok", (cs.StaticStore,), {"__annotations__": {"x": cs.Optional(cs.i64), "o": cs.Object}, "x": None,
                                        "o": None})
    assert (ok(1).x[0], ok(1).o[0]) == (None, None)
    # egp-utils' field-definition dicts say "no default" with None
    assert cs.make_store("F", {"ref": {"type": np.int64, "length": 1, "default": None}})(1).ref[0] == 0


def test_object_member_defaults_to_none_only() -> None:
    with pytest.raises(TypeError, match="default is None"):
        type("Bad", (cs.StaticStore,), {"__annotations__": {"o": cs.Object}, "o": 5})
    with pytest.raises(TypeError, match="default is None"):
        cs.make_store("Bad", {"o": cs.Member(cs.Object, default=[])})


def test_repr_of_a_released_chunk_says_so() -> None:
    d = cs.DynamicStore(Genes, log2size=1)
    for k in range(3):
        d.add(ref=k)
    c = d.chunks[1]
    del d[2]
    assert d.retract() == 1
    assert "released" in repr(c)
    with pytest.raises(ValueError):
        len(c)


def test_add_converts_mixed_records_in_one_pass_and_refuses_with_nothing_allocated() -> None:
    class Rec(cs.StaticStore):
        a: cs.i64
        name: str
        b: cs.f32
        tags: cs.Interned(cs.Str)  # type: ignore[valid-type]
        flag: bool

    for s in (Rec(4), cs.DynamicStore(Rec, log2size=1)):
        i = s.add({"a": 1, "name": "x" * 20, "b": 2, "tags": "t", "flag": True})  # raw, then Values
        j = s.add({"name": "y", "a": 3}, b=1.5)
        assert (s.a[i], s.name[i], s.b[i], s.tags[i], s.flag[i]) == (1, "x" * 20, 2.0, "t", True)
        assert (s.a[j], s.name[j], s.b[j], s.flag[j]) == (3, "y", 1.5, False)
        n = len(s)
        for bad, exc in [({"a": 1, "name": "z", "nope": 1}, KeyError), ({"a": 1, "name": 5}, TypeError),
                         ({"name": "z", "a": 2**70}, OverflowError), ({1: 2}, TypeError)]:
            with pytest.raises(exc):
                s.add(bad)
            assert len(s) == n
        s.validate()


def test_a_value_whose_conversion_changes_the_mapping_does_not_panic() -> None:
    class Rec(cs.StaticStore):
        a: cs.i64
        b: cs.i64

    record: dict[str, Any] = {}

    class Sneaky:
        def __index__(self) -> int:
            record["extra"] = 1  # changes the dict being converted
            return 3

    for store in (Rec(2), cs.KeyedStore(Rec)):
        record.clear()
        record.update(a=Sneaky(), b=4)
        if isinstance(store, cs.KeyedStore):
            store[1] = record
            assert (store[1, "a"], store[1, "b"]) == (3, 4)
        else:
            i = store.add(record)
            assert (store.a[i], store.b[i]) == (3, 4)
