"""`make wheel`'s check, run by a fresh venv that has only the built wheel (and numpy) installed, from outside
the source tree: the installed package imports and a store works. Not a pytest module."""

import pathlib

import numpy as np

import compactstore as cs

where = pathlib.Path(cs.__file__).resolve()
assert "site-packages" in where.parts, f"compactstore was imported from {where}, not from the wheel"


class Point(cs.StaticStore):
    x: cs.f64
    n: cs.Array(cs.u8, 3)  # type: ignore[valid-type]
    tag: str = ""
    kind: cs.Interned(cs.Str)  # type: ignore[valid-type]


s = Point(16)
i = s.add(x=1.5, n=[1, 2, 3], tag="a longer string than fits inline", kind="odd")
assert s.x[i] == 1.5 and list(s.n[i]) == [1, 2, 3] and s.entry(i)["tag"].startswith("a longer")
assert np.asarray(s.x).sum() == 1.5

d = cs.DynamicStore(Point, log2size=2)
for k in range(10):
    d.add(x=k, kind="even" if k % 2 == 0 else "odd")
assert len(d) == 10 and d.x[9] == 9 and d.kind[4] == "even"

pool = cs.KeyedStore(Point, key=cs.Str)
pool["p"] = {"x": 2.0}
assert pool["p", "x"] == 2.0
s.validate(), d.validate(), pool.validate()
print(f"compactstore {cs.__version__}: wheel imported from {where.parent} and a store works")
