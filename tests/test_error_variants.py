"""Errors say what happened: the bindings raise engine errors the engine made, or Python errors of their own.

Bug: the bindings built engine errors that did not describe the call — `SlotFree { index: 0 }` for "no
entry at last_index", `Invariant("raw write refused")`, `InvalidArgument("not a dynamic store")` — and
allocation failures were `ValueError`s ("invalid argument: cannot allocate").
"""

import pathlib
import re

import numpy as np
import pytest

import compactstore as cs

BINDINGS = pathlib.Path(__file__).resolve().parents[1] / "crates" / "compactstore-py" / "src"


class S(cs.StaticStore):
    x: cs.u8
    name: str


def test_bindings_make_no_engine_errors_that_misdescribe_the_call() -> None:
    made = []
    for path in sorted(BINDINGS.glob("*.rs")):
        text = path.read_text()
        for pattern in (r"Error::InvalidArgument\((?!_\))", r"Error::Invariant\((?!_\))", r"SlotFree \{ index: 0 \}"):
            made += [f"{path.name}: {m.group(0)}" for m in re.finditer(pattern, text)]
    assert made == []


def test_shorthand_without_an_entry_is_an_index_error_naming_last_index() -> None:
    s = S(2)
    with pytest.raises(IndexError, match="last_index"):
        s["x"] = 1
    s.add(x=1)
    del s[0]
    with pytest.raises(IndexError, match="last_index"):
        s.x = 2
    assert s.x[0] == 0


def test_duplicate_keys_name_the_key_and_both_positions() -> None:
    with pytest.raises(ValueError, match=r"duplicate key 7 at positions 1 and 3"):
        cs.KeyedStore.from_columns(S, np.array([1, 7, 2, 7]), {"x": np.zeros(4, np.uint8)})
