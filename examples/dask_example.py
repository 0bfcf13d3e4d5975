"""Dask: store files are the partitions of a dask DataFrame, each read mapped and handed over as Arrow."""

import os
import tempfile

import dask.dataframe as dd
from distributed import Client, LocalCluster

import compactstore as cs


class Sale(cs.StaticStore):
    shop: cs.Interned(cs.Str)
    amount: cs.f64


def read_part(path: str):
    return cs.load(path, mmap_mode="r").to_pandas()  # maps the file: opening costs the same at any size


if __name__ == "__main__":
    folder = tempfile.mkdtemp()
    paths = []
    for part in range(4):  # in real use: files on shared storage, written by whoever makes the data
        s = cs.DynamicStore(Sale)
        for i in range(1000):
            s.add(shop=["north", "south"][i % 2], amount=float(part))
        paths.append(os.path.join(folder, f"sales-{part}.store"))
        s.save(paths[-1])
    with LocalCluster(n_workers=2, processes=True, host="127.0.0.1", dashboard_address=None) as cluster, \
            Client(cluster):
        df = dd.from_map(read_part, paths)  # an interned member arrives as a pandas Categorical
        print(df.groupby("shop", observed=True)["amount"].sum().compute().to_dict())  # {'north': 3000.0, 'south': 3000.0}
