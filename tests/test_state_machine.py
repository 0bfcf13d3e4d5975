"""Stateful property tests: a StaticStore and a DynamicStore driven against a dict-of-dicts model.

Each rule performs one operation on the real store and on the model, expecting the same outcome (the value
stored, or the exception raised and nothing changed); after every step every observable value is compared.
"""

import math
import sys
from typing import Any

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import compactstore as cs


class Rec(cs.StaticStore):
    a: cs.i64
    f: cs.f32 = 0.5
    u: cs.u8 = 7
    flag: bool
    vec: cs.Array(cs.i16, 2)
    ro: cs.Member(cs.i32, default=-1, read_only=True)
    name: str = "a default name longer than 15 bytes"
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    opt: cs.Optional(cs.i16)  # type: ignore[valid-type]


NAMES = ["a", "f", "u", "flag", "vec", "ro", "name", "cat", "opt"]
DEFAULTS: dict[str, Any] = {
    "a": 0, "f": 0.5, "u": 7, "flag": False, "vec": [0, 0], "ro": -1,
    "name": "a default name longer than 15 bytes", "cat": "", "opt": None,
}
INT_RANGES = {"a": (-(2**63), 2**63 - 1), "u": (0, 255), "ro": (-(2**31), 2**31 - 1), "opt": (-(2**15), 2**15 - 1)}
F32_MAX = float(np.finfo(np.float32).max)

VALUES: dict[str, st.SearchStrategy[Any]] = {
    "a": st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-5, 5),
        st.sampled_from([2**63, -(2**63) - 1, 2**70, 1.5, 2.0, None, True]),
    ),
    "f": st.one_of(
        st.floats(width=32, allow_nan=False),
        st.integers(-1000, 1000),
        st.sampled_from([1e39, -1e39, None, False]),
    ),
    "u": st.one_of(st.integers(-3, 260), st.sampled_from([0.0, None, True])),
    "flag": st.one_of(st.booleans(), st.sampled_from([0, 1, 1.0, None, np.bool_(True)])),
    "vec": st.one_of(
        st.lists(st.integers(-(2**15), 2**15 - 1), min_size=2, max_size=2),
        st.lists(st.integers(-40000, 40000), min_size=2, max_size=2),
        st.lists(st.integers(-5, 5), min_size=0, max_size=4),
        st.just([1, 2.5]),
    ),
    "ro": st.one_of(st.integers(-(2**31) - 2, 2**31 + 1), st.just(1.5)),
    "name": st.one_of(
        st.text(max_size=20),
        st.text(min_size=14, max_size=40),  # around the 15-byte inline limit and beyond
        st.sampled_from(["x" * 300, "\x00", "a\x00b" * 10, "", None, 3, b"bytes"]),
    ),
    "cat": st.one_of(
        st.sampled_from(["", "red", "green", "a long category name, shared", b"red", None, 1]),
        st.text(max_size=20),
    ),
    "opt": st.one_of(st.none(), st.integers(-(2**15) - 2, 2**15 + 1), st.sampled_from([1.5, "1", True])),
}


def expect(name: str, v: Any) -> Any:
    """The value member `name` stores for `v`, or the exception class a write of `v` raises."""
    if name in ("name", "cat"):
        return v if isinstance(v, str) else TypeError
    if name == "opt" and v is None:
        return None
    if name in INT_RANGES:
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        if not isinstance(v, int):
            return TypeError
        lo, hi = INT_RANGES[name]
        return v if lo <= v <= hi else OverflowError
    if name == "f":
        if isinstance(v, (bool, np.bool_)):
            v = int(v)
        if not isinstance(v, (int, float)):
            return TypeError
        x = float(v)
        if math.isfinite(x) and abs(x) > F32_MAX:
            return OverflowError
        return float(np.float32(x))
    if name == "flag":
        return bool(v) if isinstance(v, (bool, np.bool_)) else TypeError
    assert name == "vec"
    if any(not isinstance(x, int) for x in v):
        return TypeError
    if len(v) != 2:
        return ValueError
    if any(not -(2**15) <= x < 2**15 for x in v):
        return OverflowError
    return list(v)


def is_error(x: Any) -> bool:
    return isinstance(x, type) and issubclass(x, Exception)


def plain(v: Any) -> Any:
    return v.tolist() if isinstance(v, np.ndarray) else v


def column(m: Any) -> list[Any]:
    """Every value of a member container: numeric slices are arrays, the others lists."""
    v = m[:]
    assert isinstance(v, np.ndarray) == (m.name in ("a", "f", "u", "flag", "vec", "ro"))
    return v.tolist() if isinstance(v, np.ndarray) else v


class StoreMachine(RuleBasedStateMachine):
    dynamic = False
    LOG2 = 2

    def __init__(self) -> None:
        super().__init__()
        if self.dynamic:
            self.log2 = self.LOG2
            self.s: Any = cs.DynamicStore(Rec, log2size=self.log2)
            self.size = 2**self.log2
        else:
            self.size = 6
            self.s = Rec(self.size)
        self.entries: dict[int, dict[str, Any]] = {}  # occupied slot -> member values
        self.stray: dict[int, dict[str, Any]] = {}  # free slot -> values written there (not defaults)
        self.last_index = -1
        self.views: list[tuple[Any, int, bool]] = []  # (Entry, slot, still valid)

    # --- the model ---------------------------------------------------------------------------------------

    def value(self, i: int, name: str) -> Any:
        if i in self.entries:
            return self.entries[i][name]
        return self.stray.get(i, {}).get(name, DEFAULTS[name])

    def lowest_free(self) -> int | None:
        free = [i for i in range(self.size) if i not in self.entries]
        if free:
            return free[0]
        return self.size if self.dynamic else None

    def allocate(self) -> int:
        i = self.lowest_free()
        assert i is not None
        if i >= self.size:
            self.size += 2**self.log2
        self.entries[i] = dict(DEFAULTS)
        self.stray.pop(i, None)
        self.last_index = i
        return i

    def free(self, i: int) -> None:
        del self.entries[i]
        self.stray.pop(i, None)
        self.views = [(e, j, ok and j != i) for e, j, ok in self.views]

    def snapshot(self) -> dict[str, Any]:
        return {
            "len": len(self.s),
            "size": self.s.size,
            "last": self.s.last_index,
            "cols": {n: column(self.s[n]) for n in NAMES},
            "nbytes": self.s.nbytes,
        }

    def check_refused(self, excs: set[type[Exception]], call: Any) -> None:
        before = self.snapshot()
        with pytest.raises(tuple(excs)):
            call()
        assert self.snapshot() == before

    # --- rules ---------------------------------------------------------------------------------------------

    @rule()
    def next_index(self) -> None:
        if self.lowest_free() is None:
            self.check_refused({OverflowError}, self.s.next_index)
            return
        want = self.allocate()
        assert self.s.next_index() == want

    @rule(data=st.data(), unknown=st.booleans())
    def add(self, data: st.DataObject, unknown: bool) -> None:
        names = data.draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=4))
        members = {n: data.draw(VALUES[n]) for n in names}
        excs = {e for e in (expect(n, v) for n, v in members.items()) if is_error(e)}
        if unknown:
            members["nope"] = 1
            excs.add(KeyError)
        if not excs and self.lowest_free() is None:
            excs = {OverflowError}
        if excs:
            self.check_refused(excs, lambda: self.s.add(**members))
            return
        want = self.allocate()
        self.entries[want].update({n: expect(n, v) for n, v in members.items()})
        assert self.s.add(members) == want

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        i = data.draw(st.integers(-2, self.size + 1))
        if i not in self.entries:
            self.check_refused({IndexError}, lambda: self.s.__delitem__(i))
            return
        del self.s[i]
        self.free(i)

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def delete_occupied(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.entries)))
        del self.s[i]
        self.free(i)

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def write(self, data: st.DataObject, name: str) -> None:
        i = data.draw(st.integers(-self.size - 1, self.size))
        v = data.draw(VALUES[name])
        want = expect(name, v)
        excs: set[type[Exception]] = set()
        if name == "ro":
            excs.add(TypeError)
        if not -self.size <= i < self.size:
            excs.add(IndexError)
        if is_error(want):
            excs.add(want)
        if excs:
            self.check_refused(excs, lambda: self.s[name].__setitem__(i, v))
            return
        self.s[name][i] = v
        j = i % self.size
        if j in self.entries:
            self.entries[j][name] = want
        else:
            self.stray.setdefault(j, {})[name] = want

    @rule(data=st.data(), name=st.sampled_from(NAMES), wrong_length=st.booleans(), scalar=st.booleans())
    def write_slice(self, data: st.DataObject, name: str, wrong_length: bool, scalar: bool) -> None:
        bound = st.one_of(st.none(), st.integers(-self.size - 2, self.size + 2))
        sl = slice(data.draw(bound), data.draw(bound), data.draw(st.sampled_from([None, 1, 2, 3, -1, -2])))
        idx = list(range(*sl.indices(self.size)))
        excs: set[type[Exception]] = set()
        if scalar and name != "vec":
            values: Any = data.draw(VALUES[name])
            w = expect(name, values)
            wants = [w] * len(idx)
            if is_error(w):
                excs.add(w)
        else:
            n = len(idx) + (data.draw(st.sampled_from([-1, 1])) if wrong_length else 0)
            values = [data.draw(VALUES[name]) for _ in range(max(n, 0))]
            wants = [expect(name, v) for v in values]
            excs |= {w for w in wants if is_error(w)}
            if len(values) != len(idx):
                excs.add(ValueError)
        if name == "ro":
            excs.add(TypeError)
        if excs:
            self.check_refused(excs, lambda: self.s[name].__setitem__(sl, values))
            return
        self.s[name][sl] = values
        for j, w in zip(idx, wants):
            if j in self.entries:
                self.entries[j][name] = w
            else:
                self.stray.setdefault(j, {})[name] = w

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def shorthand(self, data: st.DataObject, name: str) -> None:
        v = data.draw(VALUES[name])
        want = expect(name, v)
        excs: set[type[Exception]] = set()
        if self.last_index not in self.entries:
            excs.add(IndexError)
        if is_error(want):
            excs.add(want)
        if excs:
            self.check_refused(excs, lambda: self.s.__setitem__(name, v))
            return
        self.s[name] = v  # read-only members too
        self.entries[self.last_index][name] = want

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def entry_update(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.entries)))
        names = data.draw(st.lists(st.sampled_from(NAMES + ["nope"]), unique=True, max_size=3))
        members = {n: (1 if n == "nope" else data.draw(VALUES[n])) for n in names}
        excs: set[type[Exception]] = set()
        for n, v in members.items():
            if n == "nope":
                excs.add(KeyError)
                continue
            w = expect(n, v)
            if is_error(w):
                excs.add(w)
            if n == "ro":
                excs.add(TypeError)
        e = self.s.entry(i)
        if excs:
            self.check_refused(excs, lambda: e.update(members))
            return
        e.update(members)
        self.entries[i].update({n: expect(n, v) for n, v in members.items()})

    @precondition(lambda self: self.entries)
    @rule(data=st.data())
    def take_view(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.entries)))
        self.views.append((self.s.entry(i), i, True))
        self.views = self.views[-6:]

    @rule(data=st.data(), name=st.sampled_from(NAMES))
    def find(self, data: st.DataObject, name: str) -> None:
        candidates = [self.value(i, name) for i in range(self.size)]
        v = data.draw(st.sampled_from(candidates)) if candidates else DEFAULTS[name]
        want = [i for i in sorted(self.entries) if self.entries[i][name] == v]
        assert self.s.find(name, v).tolist() == want

    @precondition(lambda self: self.dynamic)
    @rule()
    def retract(self) -> None:
        chunk = 2**self.log2
        n = self.size // chunk
        keep = max([i // chunk + 1 for i in self.entries] + [1])
        assert self.s.retract() == n - keep
        self.size = keep * chunk
        self.stray = {i: v for i, v in self.stray.items() if i < self.size}

    @rule(data=st.data())
    def reset(self, data: st.DataObject) -> None:
        if self.dynamic:
            k = data.draw(st.one_of(st.none(), st.integers(0, 3)))
            self.s.reset(k)
            if k is not None:
                self.log2 = k
            self.size = 2**self.log2
        else:
            size = data.draw(st.one_of(st.none(), st.integers(0, 10)))
            self.s.reset(size)
            if size is not None:
                self.size = size
        self.entries.clear()
        self.stray.clear()
        self.last_index = -1
        self.views = [(e, j, False) for e, j, _ in self.views]  # every view is stale after a reset

    # --- checks --------------------------------------------------------------------------------------------

    @invariant()
    def matches_model(self) -> None:
        s = self.s
        assert len(s) == len(self.entries)
        assert s.size == self.size
        assert s.space == (sys.maxsize if self.dynamic else self.size - len(self.entries))
        assert s.last_index == self.last_index
        assert list(s.indices()) == sorted(self.entries)
        assert s.empty_indices() == [i for i in range(self.size) if i not in self.entries]
        for name in NAMES:
            m = s[name]
            assert len(m) == self.size
            assert column(m) == [self.value(i, name) for i in range(self.size)], name
        for i in self.entries:
            assert s.occupied(i)
            got = {k: plain(v) for k, v in s.entry(i).items()}
            assert got == self.entries[i]
            assert s.entry(i) == self.entries[i]
        assert not s.occupied(self.size)
        s.validate()

    @invariant()
    def views_are_live_or_stale(self) -> None:
        for e, i, ok in self.views:
            if ok:
                assert i in self.entries
                assert e["a"] == self.entries[i]["a"]
                assert e.index == i
            else:
                with pytest.raises(KeyError):
                    e["a"]


class DynamicStoreMachine(StoreMachine):
    dynamic = True


SETTINGS = settings(
    max_examples=60, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

TestStaticStoreMachine = StoreMachine.TestCase
TestStaticStoreMachine.settings = SETTINGS
TestDynamicStoreMachine = DynamicStoreMachine.TestCase
TestDynamicStoreMachine.settings = SETTINGS
