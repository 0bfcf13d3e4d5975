"""Pickling every store kind with every protocol: by value (in band or out of band, from read-only
buffers a read-only store), and a store mapped "r"/"r+" as a reference to its file."""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

import compactstore as cs
from test_files import STORES, Rec, snapshot, values

Point = cs.make_store("Point", {"x": cs.i32, "label": str})


class Sub(Rec):
    extra: cs.u8 = 3


PROTOCOLS = [0, 2, 4, 5]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", list(STORES))
def test_round_trip_is_equal_independent_and_writable(kind: str, protocol: int) -> None:
    s = STORES[kind]()
    t = pickle.loads(pickle.dumps(s, protocol=protocol))
    assert type(t) is type(s)
    assert snapshot(t) == snapshot(s)
    t.validate()
    assert t.mmap_mode is None
    # Independent and writable.
    if isinstance(t, cs.KeyedStore):
        k = next(iter(t))
        t[k, "name"] = "changed"
        del t[k]
        t["brand new" if isinstance(k, str) else (b"brand new" if isinstance(k, bytes) else 123456)] = {}
    else:
        i = next(iter(t.indices()))
        t.name[i] = "changed"
        del t[i]
        t.add(ref=1)
    t.validate()
    assert snapshot(s) == snapshot(STORES[kind]())


@pytest.mark.parametrize("kind", list(STORES))
def test_protocol_5_buffers_travel_out_of_band(kind: str) -> None:
    s = STORES[kind]()
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(s, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1 and len(data) < 1024  # the store's bytes are all in the buffer
    size = memoryview(buffers[0]).nbytes
    assert size > len(data)
    # Writable buffers: an ordinary store over them.
    t = pickle.loads(data, buffers=[bytearray(memoryview(b)) for b in buffers])
    assert snapshot(t) == snapshot(s)
    if isinstance(t, cs.KeyedStore):
        del t[next(iter(t))]
    else:
        t.add(ref=5)
    t.validate()
    # Read-only buffers: a read-only store until copy().
    ro = pickle.loads(data, buffers=[memoryview(b).toreadonly() for b in buffers])
    assert snapshot(ro) == snapshot(s)
    with pytest.raises(TypeError, match="read-only"):
        if isinstance(ro, cs.KeyedStore):
            ro[next(iter(ro)), "fitness"] = 1.0
        else:
            ro.fitness[next(iter(ro.indices()))] = 1.0
    c = ro.copy()
    if isinstance(c, cs.KeyedStore):
        del c[next(iter(c))]
    else:
        c.add(ref=5)
    c.validate()
    ro.validate()


def test_read_only_buffers_back_the_store_without_a_copy() -> None:
    import numpy as np

    s = Rec(size=1000)
    for i in range(1000):
        s.add(**values(i))
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(s, protocol=5, buffer_callback=buffers.append)
    raw = bytearray(memoryview(buffers[0]))
    view = memoryview(raw).toreadonly()
    ro = pickle.loads(data, buffers=[view])
    a = np.asarray(ro.fitness)
    lo = np.frombuffer(raw, dtype=np.uint8).ctypes.data
    assert lo <= a.ctypes.data < lo + len(raw)  # the column is the buffer's memory


@pytest.mark.parametrize("mode", ["r", "r+"])
@pytest.mark.parametrize("kind", list(STORES))
def test_a_mapped_store_pickles_as_a_reference_to_its_file(tmp_path: Path, kind: str, mode: str) -> None:
    s = STORES[kind]()
    path = tmp_path / "s"
    s.save(path)
    m = cs.load(path, Rec, mmap_mode=mode)
    for protocol in PROTOCOLS:
        data = pickle.dumps(m, protocol=protocol)
        assert len(data) < 4096
        t = pickle.loads(data)
        assert (t.filename, t.mmap_mode) == (os.path.abspath(path), mode)
        assert snapshot(t) == snapshot(s)
    data = pickle.dumps(m)
    s.save(path)  # the same content, but a new file
    with pytest.raises(ValueError, match="replaced"):
        pickle.loads(data)
    os.remove(path)
    with pytest.raises(FileNotFoundError):
        pickle.loads(data)


def test_a_copy_on_write_store_pickles_by_value(tmp_path: Path) -> None:
    s = STORES["static"]()
    s.save(tmp_path / "s")
    m = cs.load(tmp_path / "s", Rec, mmap_mode="c")
    m.fitness[0] = 99.0
    t = pickle.loads(pickle.dumps(m))
    assert t.mmap_mode is None and t.fitness[0] == 99.0
    assert snapshot(cs.load(tmp_path / "s", Rec)) == snapshot(s)


def test_store_types_made_by_annotations_and_make_store_pickle() -> None:
    p = Point(size=4)
    p.add(x=3, label="three")
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is Point and q.entry(0)["label"] == "three"
    s = Sub(size=3)
    s.add(ref=1, extra=9)
    t = pickle.loads(pickle.dumps(s, protocol=5))
    assert type(t) is Sub and t.extra[0] == 9
    d = cs.DynamicStore(Point)
    d.add(x=1)
    e = pickle.loads(pickle.dumps(d))
    assert isinstance(e, cs.DynamicStore) and e.store_type is Point and e.x[0] == 1
    assert type(e) is type(d)


def test_object_members_and_chunk_views_refuse_to_pickle() -> None:
    class WithObj(cs.StaticStore):
        payload: cs.Object

    s = WithObj(size=2)
    with pytest.raises(TypeError, match="payload"):
        pickle.dumps(s)
    d = STORES["dynamic"]()
    with pytest.raises(TypeError):
        pickle.dumps(d.chunks[0])


def test_copy_and_deepcopy_still_work() -> None:
    s = STORES["keyed-str"]()
    assert snapshot(copy.copy(s)) == snapshot(s)
    assert snapshot(copy.deepcopy(s)) == snapshot(s)


def test_not_a_store_in_a_pickle_is_a_format_error() -> None:
    with pytest.raises(cs.FormatError):
        cs._native._from_buffer(b"not a store at all, but long enough to hold a preamble of 64 bytes....")
    data = bytearray(cs._native._to_bytes(STORES["static"]()))
    data[100] ^= 0xFF
    with pytest.raises(cs.FormatError):
        cs._native._from_buffer(data)
    assert issubclass(cs.FormatError, ValueError)


def _unused(x: Any) -> Any:
    return x


def test_a_keyed_stores_options_survive_pickling(tmp_path: Path) -> None:
    pool = cs.KeyedStore(Rec, key=cs.Str, ignore_unknown=True)
    pool["a"] = {"ref": 1, "unknown member": 5}
    for protocol in (2, 5):
        assert pickle.loads(pickle.dumps(pool, protocol=protocol)).ignore_unknown
    pool.save(tmp_path / "k")
    m = cs.load(tmp_path / "k", Rec, mmap_mode="r")
    assert not m.ignore_unknown  # a file holds the store, not the Python object's options
    assert not pickle.loads(pickle.dumps(cs.KeyedStore(Rec, key=cs.Str))).ignore_unknown


class KR(cs.StaticStore):
    x: cs.i64


def test_a_keyed_stores_key_name_survives_pickling() -> None:
    pool = cs.KeyedStore(KR, key=cs.i64, key_name="ref")
    pool[5] = {"x": 1}
    assert pool.key_name == "ref"
    for protocol in (2, 5):
        back = pickle.loads(pickle.dumps(pool, protocol=protocol))
        assert back.key_name == "ref"
        assert back.to_arrow().column_names == ["ref", "x"]
    assert cs.KeyedStore(KR, key=cs.i64).key_name == "key"
