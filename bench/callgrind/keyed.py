"""callgrind harness (bench/callgrind/run.sh): pool[k, name], pool[k][name] and d[k][name], 1,000 keys x 8."""
import sys, numpy as np, compactstore as cs
what = sys.argv[1]; R = int(sys.argv[2])
names = [f"m{j}" for j in range(8)]
E = cs.make_store("E", {nm: cs.i64 for nm in names})
n = 1000
p8 = cs.KeyedStore(E, key=cs.i64)
for k in range(n): p8[k] = {}
dd = {k: {nm: 0 for nm in names} for k in range(n)}
pairs = [((i * 7919) % n, names[i % 8]) for i in range(10000)]
def run_none():
    for k, nm in pairs: pass
def run_dd():
    for k, nm in pairs: dd[k][nm]
def run_tuple():
    for k, nm in pairs: p8[k, nm]
def run_entry():
    for k, nm in pairs: p8[k][nm]
def run_dd_w():
    for k, nm in pairs: dd[k][nm] = 7
def run_tuple_w():
    for k, nm in pairs: p8[k, nm] = 7
def run_entry_w():
    for k, nm in pairs: p8[k][nm] = 7
import gc; gc.collect(); gc.disable()
f = globals()["run_" + what]
for _ in range(R): f()
