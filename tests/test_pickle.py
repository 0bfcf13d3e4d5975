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
from test_files import MODES, STORES, Rec, snapshot, values

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


def test_chunk_views_refuse_to_pickle() -> None:
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


# ------------------------------------------------------------------------- stores with cs.Object members


class ObjRec(cs.StaticStore):
    ref: cs.i64
    payload: cs.Object
    name: str = ""
    cat: cs.Interned(cs.Str)  # type: ignore[valid-type]
    parent: cs.Optional(cs.i64)  # type: ignore[valid-type]
    other: cs.Object


class Unpicklable:
    def __reduce__(self) -> Any:
        raise pickle.PicklingError("Unpicklable refuses")


SHARED = {"shared": [1, 2, 3]}


def obj_values(i: int) -> dict[str, Any]:
    payload: Any = None if i % 5 == 0 else ([i, str(i)] if i % 2 else {"i": i, "l": [i] * 3})
    return {
        "ref": i,
        "payload": payload,
        "name": "n" * (i % 7),
        "cat": f"c{i % 3}",
        "parent": None if i % 4 == 0 else i - 1,
        "other": SHARED if i % 3 == 0 else (i, "t"),
    }


def obj_static() -> ObjRec:
    s = ObjRec(size=40)
    for i in range(30):
        s.add(**obj_values(i))
    for i in (3, 17, 25):
        del s[i]
    s.add(**obj_values(99))  # reuses a freed slot
    return s


def obj_dynamic() -> Any:
    d = cs.DynamicStore(ObjRec, log2size=3)
    for i in range(45):  # several chunks
        d.add(**obj_values(i))
    for i in (2, 9, 10, 11, 30, 44):
        del d[i]
    return d


def obj_keyed(key: Any = cs.Str) -> Any:
    k = cs.KeyedStore(ObjRec, key=key, log2size=3)
    conv: Any = {cs.i64: lambda i: i - 20, cs.u64: lambda i: i * 7, cs.Str: lambda i: f"key{i}", cs.Bytes: lambda i: b"k%d" % i}[key]
    for i in range(40):
        k[conv(i)] = obj_values(i)
    for i in (4, 5, 21):
        del k[conv(i)]
    k.clear_modified()
    k[conv(7), "ref"] = 700  # some modified marks, some not
    k[conv(8), "payload"] = ["changed"]
    return k


OBJ_STORES: dict[str, Any] = {
    "static": obj_static,
    "dynamic": obj_dynamic,
    "keyed-str": obj_keyed,
    "keyed-i64": lambda: obj_keyed(cs.i64),
    "keyed-bytes": lambda: obj_keyed(cs.Bytes),
}


def obj_snapshot(s: Any) -> Any:
    if isinstance(s, cs.KeyedStore):
        return (
            sorted((k, s.index_of(k), e) for k, e in s.items()),
            sorted(s.modified()),
            len(s),
        )
    return (
        [(i, s.entry(i)) for i in s.indices()],
        list(s.empty_indices()),
        s.last_index,
        len(s),
        s.size,
    )


def _round_trips(s: Any) -> list[Any]:
    out = [pickle.loads(pickle.dumps(s, protocol=p)) for p in PROTOCOLS]
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(s, protocol=5, buffer_callback=buffers.append)
    assert len(buffers) == 1  # the image still goes out of band; the objects in band
    out.append(pickle.loads(data, buffers=[bytearray(memoryview(b)) for b in buffers]))
    out.append(pickle.loads(data, buffers=[memoryview(b).toreadonly() for b in buffers]))
    return out


@pytest.mark.parametrize("kind", list(OBJ_STORES))
def test_a_store_with_object_members_pickles(kind: str) -> None:
    s = OBJ_STORES[kind]()
    for t in _round_trips(s):
        assert type(t) is type(s)
        assert obj_snapshot(t) == obj_snapshot(s)
        t.validate()
        if isinstance(t, cs.KeyedStore):
            k = next(iter(t))
            assert t[k, "payload"] is not s[k, "payload"] or t[k, "payload"] is None
            t[k, "payload"] = {"new": 1}
            t[k, "other"] = None
            del t[next(iter(t))]
            t[b"brand new" if isinstance(k, bytes) else ("brand new" if isinstance(k, str) else 123456)] = {
                "payload": [1]
            }
        else:
            i = next(iter(t.indices()))
            t.payload[i] = {"new": 1}
            del t[i]
            t.add(ref=1, payload=object())
        t.validate()
        assert obj_snapshot(s) == obj_snapshot(OBJ_STORES[kind]())


@pytest.mark.parametrize("kind", list(OBJ_STORES))
def test_objects_shared_in_the_store_stay_shared(kind: str) -> None:
    s = OBJ_STORES[kind]()
    for t in _round_trips(s):
        if isinstance(t, cs.KeyedStore):
            shared = [t[k, "other"] for k in t if isinstance(t[k, "other"], dict)]
        else:
            shared = [t.other[i] for i in t.indices() if isinstance(t.other[i], dict)]
        assert len(shared) > 2
        assert shared[0] == SHARED and shared[0] is not SHARED
        assert all(x is shared[0] for x in shared)


def test_a_store_pickled_with_a_list_holding_it_and_its_object_keeps_one_object() -> None:
    s = obj_static()
    i = next(iter(s.indices()))
    x = s.payload[i] = ["mine"]
    t, y = pickle.loads(pickle.dumps((s, x)))
    assert t.payload[i] is y and y == ["mine"]


def test_an_unpicklable_object_raises_the_pickle_error() -> None:
    s = obj_static()
    s.payload[next(iter(s.indices()))] = Unpicklable()
    with pytest.raises(pickle.PicklingError, match="Unpicklable refuses"):
        pickle.dumps(s)


def test_an_empty_store_with_object_members_pickles() -> None:
    for s in (ObjRec(size=3), cs.DynamicStore(ObjRec), cs.KeyedStore(ObjRec, key=cs.i64)):
        t = pickle.loads(pickle.dumps(s))
        assert obj_snapshot(t) == obj_snapshot(s)
        t.validate()


def test_saving_a_store_with_object_members_still_refuses(tmp_path: Path) -> None:
    for s in (obj_static(), obj_dynamic(), obj_keyed()):
        path = tmp_path / "s.cstore"
        with pytest.raises(TypeError, match="payload"):
            s.save(path)
        assert not path.exists() and os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match="payload"):
        cs._native._to_bytes(obj_static())


def test_an_image_with_objects_is_not_a_file(tmp_path: Path) -> None:
    data = cs._native._to_bytes(obj_static(), objects=True)
    with pytest.raises(cs.FormatError, match="object member"):
        cs._native._from_buffer(bytearray(data))
    path = tmp_path / "s.cstore"
    path.write_bytes(data)
    for mode in MODES:
        with pytest.raises(cs.FormatError, match="object member"):
            cs.load(path, mmap_mode=mode)


def test_copy_and_deepcopy_of_stores_with_object_members() -> None:
    for make in OBJ_STORES.values():
        s = make()
        assert obj_snapshot(copy.copy(s)) == obj_snapshot(s)
        assert obj_snapshot(copy.deepcopy(s)) == obj_snapshot(s)


class ReadOnlyObj(cs.StaticStore):
    x: cs.i64
    o: cs.Member(cs.Object, read_only=True)  # type: ignore[valid-type]


def test_read_only_object_members_pickle_without_marking_keys_modified() -> None:
    s = ReadOnlyObj(size=4)
    s.add(x=1, o=[1])
    s.add(x=2, o={"a": 2})
    t = pickle.loads(pickle.dumps(s))
    assert [t.entry(i) for i in t.indices()] == [s.entry(i) for i in s.indices()]
    k = cs.KeyedStore(ReadOnlyObj, key=cs.i64)
    k[1] = {"o": [5]}
    k[2] = {"o": [6]}
    k[2, "x"] = 7
    for protocol in PROTOCOLS:
        u = pickle.loads(pickle.dumps(k, protocol=protocol))
        assert dict(u.items()) == dict(k.items()) and u.modified() == k.modified() == [2]


def test_objects_written_to_free_slots_travel_like_other_members_values() -> None:
    """A static store's free slot keeps what is written to it (every member, objects too), and so does its
    pickled copy; a store type made at run time is rebuilt from the image."""

    def make() -> Any:
        class Local(cs.StaticStore):
            x: cs.i64
            o: cs.Object

        return Local

    s = make()(3)
    s.o[1] = {"a": 1}
    s.x[2] = 5
    back = pickle.loads(pickle.dumps(s))
    assert (back.o[1], back.x[2], back.o[0], len(back)) == ({"a": 1}, 5, None, 0)
    d = cs.DynamicStore(ObjRec, log2size=2)
    d.add()
    d["payload"][3] = [1]  # a free slot of the first chunk
    back = pickle.loads(pickle.dumps(d))
    assert (back["payload"][3], back["payload"][0], len(back)) == ([1], None, 1)
