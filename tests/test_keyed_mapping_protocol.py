"""CPython's own mapping-protocol tests (Lib/test/mapping_tests.py) run against KeyedStore.

The store's values are live `Entry` views, so the reference values are mappings of member values holding
every member (`pop`/`popitem` return dict snapshots, which compare equal to them only if complete); an entry
compares equal to such a mapping.
"""

from typing import Any

import pytest

import compactstore as cs

try:
    from test import mapping_tests
except ImportError:  # pragma: no cover - only on Pythons built without the `test` package
    pytest.skip(
        "CPython's test.mapping_tests is not installed with this Python (the optional `test` package)",
        allow_module_level=True,
    )


class Point(cs.StaticStore):
    x: cs.i64
    y: cs.f64 = 0.5


def _new_pool() -> cs.KeyedStore:
    return cs.KeyedStore(Point, key=cs.Str, log2size=1)


def _multiset(values: Any) -> list[Any]:
    """Entries/mappings as a sorted list of item tuples: an order-free comparison without hashing."""
    return sorted(tuple(sorted(dict(v).items())) for v in values)


class TestKeyedStoreMappingProtocol(mapping_tests.BasicTestMappingProtocol):
    type2test = staticmethod(_new_pool)

    def _reference(self) -> dict[str, dict[str, Any]]:
        return {
            "1": {"x": 2, "y": 0.5},
            "key1": {"x": -1, "y": 1.25},
            "key2": {"x": 123, "y": -3.0},
        }

    # Override: the original checks `set(values) == set(reference values)` and the same for items, but live
    # Entry views are unhashable by design (they are mutable), and so are the reference dicts. This is the
    # same test with those set comparisons done as sorted lists of member items.
    def test_read(self) -> None:
        p = self._empty_mapping()
        d = self._full_mapping(self.reference)
        for key, value in self.reference.items():
            self.assertEqual(d[key], value)
        knownkey = list(self.other.keys())[0]
        self.assertRaises(KeyError, lambda: d[knownkey])
        self.assertEqual(len(p), 0)
        self.assertEqual(len(d), len(self.reference))
        for k in self.reference:
            self.assertIn(k, d)
        for k in self.other:
            self.assertNotIn(k, d)
        self.assertEqual(p, p)
        self.assertEqual(d, d)
        self.assertNotEqual(p, d)
        self.assertNotEqual(d, p)
        self.assertFalse(p)
        self.assertTrue(d)
        for it, lst in ((iter(d.keys()), list(d.keys())), (iter(d), list(d.keys()))):
            self.assertTrue(hasattr(it, "__next__") and hasattr(it, "__iter__"))
            self.assertTrue(set(it) == set(lst) == set(self.reference.keys()))
        it = iter(d.values())
        self.assertTrue(hasattr(it, "__next__") and hasattr(it, "__iter__"))
        self.assertTrue(
            _multiset(it) == _multiset(d.values()) == _multiset(self.reference.values())
        )
        it2 = iter(d.items())
        self.assertTrue(hasattr(it2, "__next__") and hasattr(it2, "__iter__"))
        items = sorted((k, tuple(sorted(dict(v).items()))) for k, v in it2)
        ref_items = sorted((k, tuple(sorted(v.items()))) for k, v in self.reference.items())
        self.assertEqual(items, ref_items)
        key, value = next(iter(d.items()))
        knownkey, knownvalue = next(iter(self.other.items()))
        self.assertEqual(d.get(key, knownvalue), value)
        self.assertEqual(d.get(knownkey, knownvalue), knownvalue)
        self.assertNotIn(knownkey, d)

    # Override: the original's FailingUserDict yields key 'a' with value 'a' (`__getitem__` returns the key)
    # and expects the exception raised by the *next* key; a str is not a mapping of member values, so the
    # store refuses it with TypeError first. Same test with a storable value.
    def test_update(self) -> None:
        d = self._empty_mapping()
        d.update(self.other)
        self.assertEqual(list(d.items()), list(self.other.items()))
        d = self._empty_mapping()
        d.update()
        self.assertEqual(d, self._empty_mapping())
        d = self._empty_mapping()
        d.update(self.other.items())
        self.assertEqual(list(d.items()), list(self.other.items()))
        d = self._empty_mapping()
        d.update(iter(self.other.items()))
        self.assertEqual(list(d.items()), list(self.other.items()))
        self.assertRaises((TypeError, AttributeError), d.update, 42)

        reference = self.reference

        class SimpleUserDict:
            def keys(self) -> Any:
                return reference.keys()

            def __getitem__(self, i: str) -> Any:
                return reference[i]

        d.clear()
        d.update(SimpleUserDict())
        self.assertEqual(sorted(d.items()), sorted(self.reference.items()))

        class Exc(Exception):
            pass

        d = self._empty_mapping()

        class FailingKeys:
            def keys(self) -> Any:
                raise Exc

        self.assertRaises(Exc, d.update, FailingKeys())
        d.clear()

        class FailingIter:
            def keys(self) -> Any:
                class BogonIter:
                    def __init__(self) -> None:
                        self.i = 1

                    def __iter__(self) -> Any:
                        return self

                    def __next__(self) -> str:
                        if self.i:
                            self.i = 0
                            return "a"
                        raise Exc

                return BogonIter()

            def __getitem__(self, key: str) -> dict[str, int]:
                return {"x": 1}  # the original returns `key` (a str): not storable

        self.assertRaises(Exc, d.update, FailingIter())
        self.assertEqual(d["a"], {"x": 1, "y": 0.5})  # the first pair went in before the failure

        class FailingGetitem:
            def keys(self) -> Any:
                return iter("abc")

            def __getitem__(self, key: str) -> Any:
                raise Exc

        self.assertRaises(Exc, d.update, FailingGetitem())

        d = self._empty_mapping()

        class badseq:
            def __iter__(self) -> Any:
                return self

            def __next__(self) -> Any:
                raise Exc()

        self.assertRaises(Exc, d.update, badseq())
        self.assertRaises(ValueError, d.update, [(1, 2, 3)])
        self.assertEqual(len(d), 0)


def test_reference_values_are_storable() -> None:
    """The reference mapping round-trips through the store (what BasicTestMappingProtocol assumes)."""
    ref = TestKeyedStoreMappingProtocol("test_len")._reference()
    pool = _new_pool()
    pool.update(ref)
    assert pool == ref and dict(pool) == ref
    assert {k: dict(v) for k, v in pool.items()} == ref
    with pytest.raises(TypeError):
        hash(pool["1"])  # why test_read is overridden
