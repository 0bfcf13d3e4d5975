"""Review of "Leaving the process" (files, mmap, pickle, Arrow): regressions found by the review."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

import compactstore as cs


class Rec(cs.StaticStore):
    a: cs.i64
    o: cs.Optional(cs.i64)  # type: ignore[valid-type]
    name: str = ""


def _make(kind: str) -> Any:
    if kind == "static":
        s: Any = Rec(size=6)
        for i in range(4):
            s.add(a=i, o=None if i % 2 else i, name=f"n{i}")
    elif kind == "dynamic":
        s = cs.DynamicStore(Rec, log2size=2)
        for i in range(6):
            s.add(a=i, o=None if i % 2 else i, name=f"n{i}")
    else:
        s = cs.KeyedStore(Rec, key=cs.i64, log2size=2)
        for i in range(6):
            s[i * 3] = {"a": i, "o": None if i % 2 else i, "name": f"n{i}"}
    return s


def _rows(s: Any) -> Any:
    if isinstance(s, cs.KeyedStore):
        return sorted((k, dict(e.items())) for k, e in s.items())
    return [(i, dict(s.entry(i).items())) for i in s.indices()]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("mode", [None, "r", "r+", "c"])
@pytest.mark.parametrize("kind", ["static", "dynamic", "keyed"])
def test_store_loaded_without_store_type_pickles(tmp_path: Path, kind: str, mode: Any, protocol: int) -> None:
    # cs.load without store_type makes the record type at run time: pickling used to fail with
    # PicklingError (the made type cannot be found by its name).
    p = tmp_path / "s.cs"
    _make(kind).save(p)
    s = cs.load(p, mmap_mode=mode)
    t = pickle.loads(pickle.dumps(s, protocol=protocol))
    assert _rows(t) == _rows(s)
    assert t.mmap_mode == (mode if mode in ("r", "r+") else None)
    t.validate()


@pytest.mark.parametrize("kind", ["dynamic", "keyed"])
def test_store_from_arrow_without_store_type_pickles(kind: str) -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"k": [1, 2, 3], "x": [1.5, 2.5, None]})
    s = cs.from_arrow(table, key="k" if kind == "keyed" else None)
    t = pickle.loads(pickle.dumps(s, protocol=5))
    assert _rows(t) == _rows(s)


def _key_offset(data: bytes, key: int) -> int:
    """The offset of the i64 key ``key`` in a saved keyed store's key column (found once)."""
    raw = key.to_bytes(8, "little", signed=True)
    assert data.count(raw) >= 1
    return data.index(raw)


@pytest.mark.parametrize("mode", [None, "c"])
def test_writable_load_refuses_a_key_column_that_does_not_match_its_table(tmp_path: Path, mode: Any) -> None:
    # A file whose key column holds a key twice (or a key its table bucket does not name) used to load into
    # memory: the key iterated but was not found (`k in pool` False), validate() failed, and the first
    # insert raised FormatError. A store loaded writable is checked whole: FormatError at load.
    s = cs.KeyedStore(Rec, key=cs.i64, log2size=2)
    for i in range(7):
        s[1000 + i * 7919] = {"a": i}
    p = tmp_path / "k.cs"
    s.save(p)
    data = bytearray(p.read_bytes())
    at = _key_offset(bytes(data), 1000)
    data[at : at + 8] = (1000 + 7919).to_bytes(8, "little", signed=True)  # slot 0 now repeats slot 1's key
    bad = tmp_path / "bad.cs"
    bad.write_bytes(bytes(data))
    with pytest.raises(cs.FormatError):
        cs.load(bad, mmap_mode=mode)
    data[at : at + 8] = (123456789).to_bytes(8, "little", signed=True)  # a key its bucket does not name
    bad.write_bytes(bytes(data))
    with pytest.raises(cs.FormatError):
        cs.load(bad, mmap_mode=mode)
    # The intact file still loads and validates.
    t = cs.load(p, mmap_mode=mode)
    t.validate()
    assert sorted(t.keys()) == sorted(s.keys())


def test_file_errors_are_pythons_own(tmp_path: Path) -> None:
    # load/save raised FileNotFoundError("No such file or directory (os error 2)") with errno and filename
    # None; Python's own error carries both.
    missing = tmp_path / "missing.cs"
    with pytest.raises(FileNotFoundError) as e:
        cs.load(missing)
    assert (e.value.errno, e.value.filename) == (2, str(missing))
    with pytest.raises(FileNotFoundError) as e:
        cs.load(missing, mmap_mode="r")
    assert (e.value.errno, e.value.filename) == (2, str(missing))
    nowhere = tmp_path / "no-such-dir" / "s.cs"
    with pytest.raises(FileNotFoundError) as e:
        _make("static").save(nowhere)
    assert e.value.errno == 2 and e.value.filename is not None
    with pytest.raises(IsADirectoryError) as e:
        cs.load(tmp_path)
    assert e.value.filename == str(tmp_path)
    # A store mapped "r" whose file was removed: the pickled reference fails as Python's would.
    p = tmp_path / "s.cs"
    _make("static").save(p)
    data = pickle.dumps(cs.load(p, mmap_mode="r"))
    p.unlink()
    with pytest.raises(FileNotFoundError) as e:
        pickle.loads(data)
    assert e.value.filename == str(p)
