"""Many worker processes read one store: each maps the same pages instead of receiving a copy."""

import multiprocessing as mp

import numpy as np

import compactstore as cs


class Sample(cs.StaticStore):
    label: cs.i32
    weight: cs.f32
    path: cs.Str


def load_batch(args: tuple) -> float:  # a DataLoader-style worker: read a batch of entries
    store, start, stop = args
    return sum(store.weight[i] * store.label[i] for i in range(start, stop))


if __name__ == "__main__":
    n = 100_000
    data = Sample(size=n)  # n slots, filled a column at a time
    data.label[:] = np.arange(n) % 10
    data.weight[:] = 1.0
    data.path[:] = [f"img/{i}.png" for i in range(n)]
    with data.share() as shared, mp.get_context("spawn").Pool(4) as pool:
        # The store pickles as a reference to its file in /dev/shm: a few hundred bytes per task.
        batches = [(shared, i, i + 10_000) for i in range(0, n, 10_000)]
        print(sum(pool.map(load_batch, batches)))  # 450000.0
    # The with block removed the file; so would the end of this process.
