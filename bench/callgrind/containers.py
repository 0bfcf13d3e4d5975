"""callgrind harness (bench/callgrind/run.sh): m[i] / m[i] = v on a container of each store kind, or numpy."""
import sys, numpy as np, compactstore as cs
what = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
T = cs.make_store("One", {"x": cs.i64})
names = [f"m{j}" for j in range(8)]
E = cs.make_store("E", {nm: cs.i64 for nm in names})
n = 1000
idx = [(i * 7919) % n for i in range(N)]
if what in ("static", "static_w"):
    s = T(size=n); [s.next_index() for _ in range(n)]; m = s["x"]
elif what in ("dyn", "dyn_w"):
    d = cs.DynamicStore(T); [d.next_index() for _ in range(n)]; m = d["x"]
elif what in ("keyed", "keyed_w"):
    p = cs.KeyedStore(T, key=cs.i64); [p.__setitem__(k, {}) for k in range(n)]; m = p.members["x"]
elif what == "numpy":
    m = np.zeros(n, dtype=np.int64)
elif what == "dict":
    m = [0]*n
p8 = cs.KeyedStore(E, key=cs.i64)
for k in range(n): p8[k] = {}
dd = {k: {nm: 0 for nm in names} for k in range(n)}
pairs = [(i, names[i % 8]) for i in idx]
if what.endswith("_w") :
    for i in idx: m[i] = 5
elif what in ("static","dyn","keyed","numpy","dict"):
    for i in idx: m[i]
elif what == "tuple":
    for k, nm in pairs: p8[k, nm]
elif what == "entry":
    for k, nm in pairs: p8[k][nm]
elif what == "dd":
    for k, nm in pairs: dd[k][nm]
elif what == "tuple_w":
    for k, nm in pairs: p8[k, nm] = 7
elif what == "entry_w":
    for k, nm in pairs: p8[k][nm] = 7
elif what == "dd_w":
    for k, nm in pairs: dd[k][nm] = 7
elif what == "none":
    for k, nm in pairs: pass
