"""callgrind harness (bench/callgrind/run.sh): pool[k] = d, s.add(d) (dynamic "add", static "addst"), s.add(**d) and dd[k] = dict(d), 5,000 x 8."""
import sys, compactstore as cs, gc
what = sys.argv[1]; R = int(sys.argv[2])
names = [f"m{j}" for j in range(8)]
E = cs.make_store("E", {nm: cs.i64 for nm in names})
items = [(k * 7919, {nm: (k * 31 + j) << 20 for j, nm in enumerate(names)}) for k in range(5000)]
gc.collect(); gc.disable()
for r in range(R):
    if what == "dict":
        dd = {}
        for k, d in items: dd[k] = dict(d)
    elif what == "keyed":
        pool = cs.KeyedStore(E, key=cs.i64)
        for k, d in items: pool[k] = d
    elif what == "add":
        s = cs.DynamicStore(E)
        for k, d in items: s.add(d)
    elif what == "addst":
        s = E(size=5000)
        for k, d in items: s.add(d)
    elif what == "addkw":
        s = E(size=5000)
        for k, d in items: s.add(**d)
