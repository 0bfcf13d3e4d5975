import numpy as np
import compactstore as cs


class Genes(cs.StaticStore):
    ref: cs.i64
    fitness: cs.f32 = 0.5


def total(store: Genes) -> float:
    i: int = store.add(ref=1)
    store["fitness"][i] = 0.75
    arr = np.asarray(store["fitness"])
    e: cs.Entry = store.entry(i)
    return float(arr.sum()) + float(e["fitness"])


d = cs.DynamicStore(Genes, log2size=4)
n: int = d.next_index()
pool = cs.KeyedStore(Genes, key=cs.i64)
pool[1] = {"ref": 1}
x = pool[1, "fitness"]
print(total(Genes(10)), n, len(pool), x)
