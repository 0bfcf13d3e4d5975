"""KeyedStore against a model (a dict of dicts plus a set of modified keys), driven by hypothesis.

Modified marks: a key becomes modified by a write after its creation (replacing a present key with
``pool[k] = mapping``, writing through its Entry, ``pool[k, name] = v``); creating a key (also re-creating one
after deletion) does not mark it; ``clear_modified`` and deletion (del/pop/popitem/clear) unmark it.
Live entry views taken along the way must follow the model while their key lives and raise ``KeyError`` once
it has been removed (even when its slot is reused).
"""

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, precondition, rule

import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5
    inputs: cs.Array(cs.u8, 2)
    origin: cs.Member(cs.i32, default=7, read_only=True)
    name: cs.Str = "a default name longer than 15 bytes"
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    note: cs.Optional(cs.Str)  # type: ignore[valid-type]


DEFAULTS: dict[str, Any] = {
    "ref": 0, "fitness": 0.5, "inputs": [0, 0], "origin": 7,
    "name": "a default name longer than 15 bytes", "cat": "", "note": None,
}

keys = st.integers(-3, 12)
refs = st.integers(-(2**63), 2**63 - 1)
fitnesses = st.integers(-64, 64).map(lambda i: i / 4)  # exact in f32
inputs = st.lists(st.integers(0, 255), min_size=2, max_size=2)
names = st.one_of(st.text(max_size=20), st.text(min_size=14, max_size=40), st.just("\x00" * 30))
cats = st.one_of(st.sampled_from(["", "red", "a long category name, shared"]), st.text(max_size=4))
notes = st.one_of(st.none(), names)
writable = {"ref": refs, "fitness": fitnesses, "inputs": inputs, "name": names, "cat": cats, "note": notes}
full_values = st.fixed_dictionaries({}, optional={**writable, "origin": st.integers(-(2**31), 2**31 - 1)})
update_values = st.fixed_dictionaries({}, optional=writable).filter(bool)
member_writes = st.sampled_from(sorted(writable)).flatmap(lambda n: st.tuples(st.just(n), writable[n]))


def plain(e: Any) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dict(e).items()}


class KeyedMachine(RuleBasedStateMachine):
    views = Bundle("views")

    @initialize(log2size=st.integers(1, 3))
    def start(self, log2size: int) -> None:
        self.pool = cs.KeyedStore(Genes, key=cs.i64, log2size=log2size)
        self.model: dict[int, dict[str, Any]] = {}
        self.modified: set[int] = set()
        self.live: dict[int, list[Any]] = {}  # key -> entry views taken while it lived
        self.stale: list[Any] = []

    def _removed(self, k: int) -> None:
        del self.model[k]
        self.modified.discard(k)
        self.stale.extend(self.live.pop(k, []))

    @rule(k=keys, values=full_values)
    def set_entry(self, k: int, values: dict[str, Any]) -> None:
        if k in self.model:
            self.modified.add(k)  # replace: rewrites the same slot
            slot = self.pool.index_of(k)
        self.pool[k] = values
        if k in self.model:
            assert self.pool.index_of(k) == slot
        self.model[k] = {**DEFAULTS, **values}

    @precondition(lambda self: self.model)
    @rule(data=st.data(), values=update_values)
    def update_entry(self, data: st.DataObject, values: dict[str, Any]) -> None:
        k = data.draw(st.sampled_from(sorted(self.model)))
        self.pool[k].update(values)
        self.model[k].update(values)
        self.modified.add(k)

    @precondition(lambda self: self.model)
    @rule(data=st.data(), write=member_writes, via_entry=st.booleans())
    def set_member(self, data: st.DataObject, write: tuple[str, Any], via_entry: bool) -> None:
        k = data.draw(st.sampled_from(sorted(self.model)))
        name, v = write
        if via_entry:
            self.pool[k][name] = v
        else:
            self.pool[k, name] = v
        self.model[k][name] = v
        self.modified.add(k)

    @rule(k=keys, name=st.sampled_from(["ref", "nope"]))
    def set_member_absent_or_unknown(self, k: int, name: str) -> None:
        if k in self.model and name == "ref":
            return
        with pytest.raises(KeyError):
            self.pool[k, name] = 1

    @rule(k=keys, values=full_values)
    def unknown_member_changes_nothing(self, k: int, values: dict[str, Any]) -> None:
        with pytest.raises(KeyError):
            self.pool[k] = {**values, "bogus": 1}

    @precondition(lambda self: self.model)
    @rule(target=views, data=st.data())
    def take_view(self, data: st.DataObject) -> Any:
        k = data.draw(st.sampled_from(sorted(self.model)))
        e = self.pool[k]
        self.live.setdefault(k, []).append(e)
        return e

    @rule(k=keys)
    def delete(self, k: int) -> None:
        if k in self.model:
            del self.pool[k]
            self._removed(k)
        else:
            with pytest.raises(KeyError):
                del self.pool[k]

    @rule(k=keys)
    def pop(self, k: int) -> None:
        if k in self.model:
            snap = self.pool.pop(k)
            assert type(snap) is dict and plain(snap) == self.model[k]
            self._removed(k)
        else:
            assert self.pool.pop(k, None) is None

    @rule()
    def popitem(self) -> None:
        if self.model:
            k, snap = self.pool.popitem()
            assert plain(snap) == self.model[k]
            self._removed(k)
        else:
            with pytest.raises(KeyError):
                self.pool.popitem()

    @rule()
    def clear(self) -> None:
        self.pool.clear()
        for k in list(self.model):
            self._removed(k)

    @rule(ks=st.none() | st.lists(keys, max_size=4))
    def clear_modified(self, ks: Any) -> None:
        self.pool.clear_modified(ks)
        if ks is None:
            self.modified.clear()
        else:
            self.modified.difference_update(ks)

    @rule(data=st.data(), name=st.sampled_from(["cat", "note", "name"]))
    def find(self, data: st.DataObject, name: str) -> None:
        v = data.draw(st.sampled_from([m[name] for m in self.model.values()] or [DEFAULTS[name]]))
        assert self.pool.find(name, v) == [k for k in self.pool if self.model[k][name] == v]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), name=st.sampled_from(["name", "cat"]), bad=st.sampled_from([None, 3, b"x"]))
    def wrong_type_changes_nothing(self, data: st.DataObject, name: str, bad: Any) -> None:
        k = data.draw(st.sampled_from(sorted(self.model)))
        with pytest.raises(TypeError):
            self.pool[k, name] = bad
        with pytest.raises(TypeError):
            self.pool[k] = {name: bad}
        assert plain(self.pool[k]) == self.model[k]

    @invariant()
    def agrees(self) -> None:
        if not hasattr(self, "pool"):
            return
        assert len(self.pool) == len(self.model)
        assert set(self.pool) == set(self.model)
        assert len(list(self.pool)) == len(self.model)
        assert {k: plain(v) for k, v in self.pool.items()} == self.model
        assert set(self.pool.modified()) == self.modified
        assert len(self.pool.modified()) == len(self.modified)
        for k, es in self.live.items():
            for e in es:
                assert plain(e) == self.model[k]
        for e in self.stale:
            with pytest.raises(KeyError):
                e["ref"]
        self.pool.validate()


KeyedMachine.TestCase.settings = settings(
    max_examples=100, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestKeyedMachine = KeyedMachine.TestCase
