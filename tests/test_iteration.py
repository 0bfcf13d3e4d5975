"""Iteration is lazy and dict-like: `iter(pool)`, `pool.keys()/values()/items()`, `s.indices()`, `iter(m)`.

The bug class: iterators that first copied every key (or index, or value) into a list. Breaking out of a loop
over a 2M-entry store still cost the whole list (76 MiB), and the copy hid changes made during the loop: after
`pool.clear()` the loop went on yielding every key, and deleting keys inside `for v in pool.values()` raised
`KeyError` from the iterator. Iterators now walk the store's slots from a cursor and, as a dict's do, raise
`RuntimeError` on the next step once entries were added or removed (writing members is fine).
"""

import collections.abc as abc
import gc
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import compactstore as cs


class G(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f64 = 0.5


def keyed(keys: Any) -> cs.KeyedStore:
    pool = cs.KeyedStore(G, log2size=3)
    for k in keys:
        pool[k] = {"ref": k * 10}
    return pool


# -- laziness ------------------------------------------------------------------------------------------

BIG = 2_000_000


@pytest.fixture(scope="module")
def big_pool() -> cs.KeyedStore:
    keys = np.arange(BIG, dtype=np.int64)
    return cs.KeyedStore.from_columns(G, keys, {"ref": keys})


def peak_bytes_of(f: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        f()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def first(it: Any) -> Any:
    for x in it:
        return x
    return None


@pytest.mark.parametrize("make", ["iter", "keys", "values", "items"])
def test_breaking_out_of_a_loop_over_2m_keys_allocates_nothing_proportional(big_pool: cs.KeyedStore, make: str) -> None:
    # Was 76 MiB: the whole key list (for values and items, a list of keys then a lookup each) came first.
    view = {"iter": lambda: big_pool, "keys": big_pool.keys, "values": big_pool.values, "items": big_pool.items}
    got: list[Any] = []
    peak = peak_bytes_of(lambda: got.append(first(view[make]())))
    assert peak < 64 * 1024, peak
    x = got[0]
    if make in ("iter", "keys"):
        assert x == 0
    elif make == "values":
        assert x.key == 0 and x["ref"] == 0
    else:
        assert x[0] == 0 and x[1]["ref"] == 0


def test_breaking_out_of_indices_and_member_iteration_allocates_nothing_proportional() -> None:
    s = G(BIG)
    for _ in range(BIG):
        s.next_index()
    s.ref[0] = 1
    assert peak_bytes_of(lambda: first(s.indices())) < 64 * 1024
    assert peak_bytes_of(lambda: first(s.ref)) < 64 * 1024
    assert first(s.indices()) == 0 and first(s.ref) == 1


def test_length_hints_count_what_is_left() -> None:
    pool = keyed(range(5))
    it = iter(pool)
    assert it.__length_hint__() == 5
    next(it)
    assert it.__length_hint__() == 4
    assert list(it) == [1, 2, 3, 4] and it.__length_hint__() == 0
    s = G(8)
    m = iter(s.ref)
    next(m)
    assert m.__length_hint__() == 7


# -- changes during iteration --------------------------------------------------------------------------


def test_clear_inside_the_loop_stops_it_with_runtime_error() -> None:
    # Was: the loop went on yielding every key of the cleared store.
    pool = keyed(range(5))
    seen = []
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        for k in pool:
            seen.append(k)
            pool.clear()
    assert seen == [0]


def test_deleting_inside_a_values_loop_raises_runtime_error_not_key_error() -> None:
    # Was: KeyError from the iterator (it looked up keys deleted since the list of keys was made).
    pool = keyed(range(5))
    with pytest.raises(RuntimeError, match="changed size during iteration"):
        for v in pool.values():
            del pool[4 - v.key]


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p.__setitem__(99, {}),
        lambda p: p.__delitem__(3),
        lambda p: p.pop(3),
        lambda p: p.popitem(),
        lambda p: p.setdefault(98, {}),
        lambda p: p.update({97: {}}),
        lambda p: p.clear(),
    ],
)
@pytest.mark.parametrize("view", ["iter", "keys", "values", "items"])
def test_adding_or_removing_entries_raises_on_the_next_step(change: Any, view: str) -> None:
    pool = keyed(range(5))
    it = iter(pool) if view == "iter" else iter(getattr(pool, view)())
    next(it)
    change(pool)
    with pytest.raises(RuntimeError, match="KeyedStore changed size during iteration"):
        next(it)
    # then exhausted, as a dict's iterator is
    assert list(it) == []


def test_as_many_added_as_removed_is_noticed() -> None:
    # A size check alone misses this; dict says "keys changed during iteration" for it.
    pool = keyed(range(5))
    it = iter(pool)
    next(it)
    del pool[3]
    pool[42] = {}
    assert len(pool) == 5
    with pytest.raises(RuntimeError, match="KeyedStore keys changed during iteration"):
        next(it)


def test_writing_members_during_iteration_is_fine() -> None:
    pool = keyed(range(6))
    for k, e in pool.items():
        e["fitness"] += 1
        pool[k, "ref"] += 1
        pool[k] = {"ref": e["ref"] + 1}  # replaces a present key: same slot, no entry added or removed
        pool.setdefault(k, {})
        pool.update({k: {"ref": pool[k, "ref"] + 1}})
    assert {k: pool[k, "ref"] for k in pool} == {k: k * 10 + 3 for k in range(6)}
    s = cs.DynamicStore(G, log2size=2)
    for i in range(9):
        s.add(ref=i)
    for i in s.indices():
        s.ref[i] += 1
        s.entry(i)["fitness"] = 2.0
    assert list(s.ref)[:9] == list(range(1, 10)) and set(s.fitness[:9]) == {2.0}


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.add(ref=1),
        lambda s: s.next_index(),
        lambda s: s.__delitem__(3),
        lambda s: s.reset(),
    ],
)
def test_indices_raise_when_entries_change(change: Any) -> None:
    for s in (G(16), cs.DynamicStore(G, log2size=2)):
        for i in range(6):
            s.add(ref=i)
        it = s.indices()
        assert next(it) == 0
        change(s)
        with pytest.raises(RuntimeError, match="store .* during iteration"):
            next(it)
        assert list(it) == []


def test_indices_notice_a_reset_to_another_size_refilled_as_before() -> None:
    s = G(8)
    for i in range(3):
        s.add(ref=i)
    it = s.indices()
    next(it)
    s.reset(16)
    for i in range(3):
        s.add(ref=i)
    with pytest.raises(RuntimeError, match="store entries changed during iteration"):
        next(it)


# -- dynamic stores: chunks, holes, retract -------------------------------------------------------------


def test_indices_walk_chunks_holes_and_empty_chunks() -> None:
    s = cs.DynamicStore(G, log2size=2)  # chunks of 4 slots
    for i in range(24):
        s.add(ref=i)
    gone = {0, 2, 3, 4, 5, 6, 7, 9, 12, 13, 14, 15, 23}  # chunk 1 and chunk 3 emptied, holes elsewhere
    for i in gone:
        del s[i]
    want = [i for i in range(24) if i not in gone]
    assert list(s.indices()) == want
    assert [s.ref[i] for i in s.indices()] == want
    # a chunk's own indices are chunk-local
    assert list(s.chunks[2].indices()) == [0, 2, 3]
    assert list(s.chunks[1].indices()) == []


def test_retract_during_iteration_keeps_the_walk_correct() -> None:
    s = cs.DynamicStore(G, log2size=2)
    for i in range(32):
        s.add(ref=i)
    for i in range(6, 32):
        del s[i]
    seen = []
    for i in s.indices():
        seen.append(i)
        if i == 1:
            assert s.retract() == 6  # only empty trailing chunks go: no entry added or removed
    assert seen == [0, 1, 2, 3, 4, 5]
    # the member container follows the retraction, as a list iterator follows a list
    it = iter(s.ref)
    s.ref[7] = 70
    for i in range(8, 20):
        s.add(ref=i)  # fills 6, 7, then grows
    assert list(it) == [0, 1, 2, 3, 4, 5, *range(8, 20), 0, 0]


def test_a_chunk_iterator_after_its_chunk_was_released_raises_a_clear_error() -> None:
    s = cs.DynamicStore(G, log2size=2)
    for i in range(8):
        s.add(ref=i)
    it = s.chunks[1].indices()
    assert next(it) == 0
    s.reset()
    with pytest.raises(ValueError, match="released"):
        next(it)
    assert list(it) == []


def test_member_iteration_reads_live_values_in_order() -> None:
    s = G(5)
    for i in range(3):
        s.add(ref=i, fitness=i / 2)
    assert list(s.ref) == [0, 1, 2, 0, 0]
    assert list(s.fitness) == [0.0, 0.5, 1.0, 0.5, 0.5]
    it = iter(s.ref)
    assert next(it) == 0
    s.ref[1] = 11
    assert list(it) == [11, 2, 0, 0]
    assert list(it) == []


# -- the views -----------------------------------------------------------------------------------------


def test_views_are_live_dict_like_views() -> None:
    pool = keyed(range(4))
    k, v, i = pool.keys(), pool.values(), pool.items()
    assert isinstance(k, abc.KeysView) and isinstance(v, abc.ValuesView) and isinstance(i, abc.ItemsView)
    assert isinstance(iter(pool), abc.Iterator) and iter(iter(pool)) is not None
    pool[7] = {"ref": 70}
    assert len(k) == len(v) == len(i) == 5  # live: they follow the store
    assert list(k) == list(pool) == [0, 1, 2, 3, 7]
    assert [e.key for e in v] == [0, 1, 2, 3, 7] and [e["ref"] for e in v] == [0, 10, 20, 30, 70]
    assert [(key, e["ref"]) for key, e in i] == [(0, 0), (1, 10), (2, 20), (3, 30), (7, 70)]
    assert 7 in k and 8 not in k and "x" not in k
    assert pool[2] in v and {"ref": 20, "fitness": 0.5} in v and {"ref": 21, "fitness": 0.5} not in v
    assert (1, {"ref": 10, "fitness": 0.5}) in i and (1, {"ref": 11, "fitness": 0.5}) not in i
    assert (9, {}) not in i and 1 not in i and (1, 2, 3) not in i
    assert k.mapping is pool and v.mapping is pool and i.mapping is pool
    assert repr(k) == f"KeyedKeys({pool!r})"


def test_key_and_item_views_are_sets() -> None:
    pool = keyed(range(4))
    k = pool.keys()
    assert k == {0, 1, 2, 3} and {0, 1, 2, 3} == k and k != {0} and k == dict.fromkeys(range(4)).keys()
    assert k != [0, 1, 2, 3]  # not a set: not equal, as for a dict's keys
    assert k < {0, 1, 2, 3, 4} and k <= set(range(4)) and not k > {0, 1, 2, 3} and k >= {1}
    assert k & {1, 9} == {1} and [1, 9] & k == {1}
    assert k | [9] == {0, 1, 2, 3, 9} and {9} | k == {0, 1, 2, 3, 9}
    assert k - {0, 1} == {2, 3} and {0, 9} - k == {9} and [0, 9] - k == {9}
    assert k ^ {0, 9} == {1, 2, 3, 9} and {0, 9} ^ k == {1, 2, 3, 9}
    assert k.isdisjoint([7, 8]) and not k.isdisjoint([3])
    with pytest.raises(TypeError):
        k & 3  # type: ignore[operator]
    with pytest.raises(TypeError):
        hash(k)
    pairs = {(key, e["ref"]) for key, e in pool.items()}
    assert pairs == {(0, 0), (1, 10), (2, 20), (3, 30)}
    assert dict(pool.items()) == pool and pool == {key: {"ref": key * 10, "fitness": 0.5} for key in range(4)}


def test_views_and_iterators_of_an_empty_store() -> None:
    pool = keyed([])
    assert list(pool) == list(pool.keys()) == list(pool.values()) == list(pool.items()) == []
    assert len(pool.keys()) == 0 and pool.keys() == set()
    it = iter(pool)
    pool[1] = {}
    with pytest.raises(RuntimeError):
        next(it)
    assert list(G(0).indices()) == [] and list(G(0).ref) == []


# -- iteration and mutation against a dict --------------------------------------------------------------

ops = st.sampled_from(["next", "write", "replace", "setdefault_present", "add", "delete", "pop", "clear",
                       "delete_add", "update_present"])


@settings(max_examples=300)
@given(
    keys=st.lists(st.integers(0, 40), unique=True, max_size=12),
    steps=st.lists(ops, max_size=25),
    view=st.sampled_from(["iter", "keys", "values", "items"]),
)
def test_iteration_with_mutation_matches_a_dict(keys: list[int], steps: list[str], view: str) -> None:
    pool = keyed(keys)
    model = {k: k * 10 for k in keys}
    order = list(pool)  # slot order (a dict's is insertion order: only the set of keys is compared)
    assert sorted(order) == sorted(model)
    it = iter(pool) if view == "iter" else iter(getattr(pool, view)())
    dict_it = iter(model)
    changed = False  # an entry added or removed since the iterators were made
    size_changed = False  # the count differs: a dict must raise too
    pos = 0
    dict_done = False
    fresh = iter(range(100, 10_000))
    for step in steps:
        present = list(model)
        if step == "next":
            if changed:
                with pytest.raises(RuntimeError):
                    next(it)
                if size_changed and not dict_done:
                    with pytest.raises(RuntimeError, match="changed size during iteration"):
                        next(dict_it)
                return
            if pos == len(order):
                with pytest.raises(StopIteration):
                    next(it)
                return
            got = next(it)
            key = order[pos]
            if view in ("iter", "keys"):
                assert got == key
            elif view == "values":
                assert got.key == key and got["ref"] == model[key]
            else:
                assert got[0] == key and got[1]["ref"] == model[key]
            pos += 1
            if not dict_done:
                try:
                    next(dict_it)
                except StopIteration:
                    dict_done = True
            continue
        if not present and step in ("write", "replace", "setdefault_present", "delete", "pop", "delete_add",
                                    "update_present"):
            continue
        k = present[len(present) // 2] if present else None
        if step == "write":
            pool[k, "ref"] += 1
            model[k] += 1
        elif step == "replace":
            pool[k] = {"ref": model[k] + 2}
            model[k] += 2
        elif step == "setdefault_present":
            pool.setdefault(k, {"ref": -1})
            model.setdefault(k, -1)
        elif step == "update_present":
            pool.update({k: {"ref": 5}})
            model.update({k: 5})
        elif step == "add":
            n = next(fresh)
            pool[n] = {"ref": n * 10}
            model[n] = n * 10
            changed = True
        elif step in ("delete", "pop"):
            if step == "delete":
                del pool[k]
            else:
                assert pool.pop(k)["ref"] == model[k]
            del model[k]
            changed = True
        elif step == "clear":
            if model:
                changed = True
            pool.clear()
            model.clear()
        elif step == "delete_add":
            del pool[k]
            del model[k]
            n = next(fresh)
            pool[n] = {"ref": n * 10}
            model[n] = n * 10
            changed = True
        size_changed = changed and len(model) != len(order)
        assert {key: pool[key, "ref"] for key in pool} == model
