"""`sys.getsizeof(store)` counts the store's buffers, not only the Python object around them."""

import sys

import compactstore as cs


class G(cs.StaticStore):
    x: cs.f64
    name: cs.Str


def test_static_store_sizeof_counts_buffers() -> None:
    s = G(100_000)
    assert s.nbytes >= 100_000 * 8
    assert sys.getsizeof(s) >= s.nbytes
    assert sys.getsizeof(s) < s.nbytes + 4096


def test_dynamic_store_sizeof_grows_with_chunks() -> None:
    d = cs.DynamicStore(G, log2size=10)
    small = sys.getsizeof(d)
    for _ in range(5000):
        d.add(x=1.0, name="a" * 40)
    assert sys.getsizeof(d) >= d.nbytes
    assert sys.getsizeof(d) > small + 5000 * 8


def test_keyed_store_sizeof_counts_keys_and_index() -> None:
    pool = cs.KeyedStore(G, key=cs.Str, log2size=10)
    for k in range(3000):
        pool[f"key-{k}"] = {"x": 1.0}
    assert sys.getsizeof(pool) >= pool.nbytes
    assert pool.nbytes > 3000 * 8
