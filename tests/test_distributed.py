"""Past one machine: Ray's object store and Dask's scheduler carry stores, with no scheduler of ours.

Ray: `ray.put(store)` pickles it with protocol 5, its buffers out of band, into Ray's shared-memory object
store; a task on the same node gets a read-only store whose buffers are that shared memory (no copy).
Dask: store files are the partitions of a `dask.dataframe`, each read mapped and converted through Arrow,
on a `distributed.LocalCluster` of worker processes (loopback only).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pytest

import compactstore as cs
import share_workers as sw

ray = pytest.importorskip("ray", reason="ray is a test dependency: `make test` installs it")
dd = pytest.importorskip("dask.dataframe", reason="dask is a test dependency: `make test` installs it")
distributed = pytest.importorskip("distributed", reason="dask[distributed] is a test dependency")

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


@pytest.fixture(scope="module")
def ray_local() -> Any:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Ray's workers import share_workers (this folder) by name, as spawned workers do.
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})
    yield ray
    ray.shutdown()


def test_ray_put_and_get_reads_the_object_store_without_a_copy(ray_local: Any) -> None:
    # A static store: np.asarray of its member is a view of the column itself (a dynamic or keyed
    # store's member spans chunks, and np.asarray gathers it into a new array).
    s = sw.Rec(50_000)
    s.generation[:] = np.arange(50_000, dtype=np.int32)
    s.name[:] = [f"n{i}" for i in range(50_000)]
    ref = ray.put(s)
    remote = ray.remote(sw.member_address_and_sum)
    addr, total, writeable, where = ray.get(remote.remote(ref, "generation"))
    assert total == float(np.arange(50_000).sum())
    assert not writeable  # a read-only view: the store itself is read-only in the task
    # The member's values are in Ray's shared object store (plasma, a /dev/shm mapping), not a copy.
    assert "plasma" in where or where.startswith("/dev/shm"), where
    assert "read-only" in ray.get(ray.remote(sw.write_refused_static).remote(ref))
    # A keyed store travels the same way; its tasks cannot write it either.
    pool = sw.make_pool(20_000)
    pref = ray.put(pool)
    assert ray.get(ray.remote(sw.write_refused).remote(pref)) != "written"
    # ray.get in the driver gives an equal store too, and its copy() is writable.
    back = ray.get(pref)
    assert len(back) == len(pool) and back[10, "name"] == pool[10, "name"]
    c = back.copy()
    c[10, "fitness"] = 3.5
    assert c[10, "fitness"] == 3.5


def test_ray_tasks_read_every_kind_of_store(ray_local: Any) -> None:
    s = sw.Rec(4)
    s.generation[2] = 7
    d = cs.DynamicStore(sw.Rec)
    for i in range(3):
        d.add(generation=i, name=f"n{i}")
    for store in (s, d):
        _, total, _, _ = ray.get(ray.remote(sw.member_address_and_sum).remote(ray.put(store), "generation"))
        assert total == float(sum(store["generation"]))


def test_dask_partitions_are_store_files(tmp_path: Any) -> None:
    paths, frames = [], []
    for part in range(3):
        pool = sw.make_pool(1000 + part)
        path = str(tmp_path / f"part{part}.store")
        pool.save(path)
        paths.append(path)
        frames.append(pool.to_pandas())
    import pandas as pd

    expected = pd.concat(frames).groupby("category", observed=True)["generation"].sum().sort_index()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        ddf = dd.from_map(sw.partition, paths)
        got = ddf.groupby("category", observed=True)["generation"].sum().compute().sort_index()
    assert got.to_dict() == expected.to_dict()
