"""`s.share()`: one store read by many worker processes, under every start method, without copies.

Each worker checks two things. The store's pages: the worker's mapping of the shared file is resident (it
read the file) and none of its pages were copied (`Anonymous` of that mapping in /proc/self/smaps is 0).
And nothing else the size of a store: copies counted as the bench's B6 counts them
(`compactstore.bench.b6.copies`: Private_Dirty of anonymous mappings plus Anonymous pages of file
mappings), from before to after the worker's reading of the store, stay within 5% of the store (a private
copy would count 100%). Before the first count the worker reads a twin, another shared file of the same
entries, the same way: what a reading allocates and frees (which under fork dirties pages inherited from a
large parent, such as a long pytest process: up to ~2% of this store was measured) is then paid, and a
full collection precedes each count.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import compactstore as cs
import share_workers as sw

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists("/proc/self/smaps"),
    reason="needs Linux and /proc/self/smaps",
)

METHODS = [m for m in ("fork", "forkserver", "spawn") if m in mp.get_all_start_methods()]
N = 200_000


@pytest.fixture(scope="module")
def pool() -> Any:
    return sw.make_pool(N)


@pytest.fixture(scope="module")
def expected(pool: Any) -> list[Any]:
    return sw.read_all(pool.copy())["digest"]  # (read_all tries a write: on a copy, it succeeds)


def _quiet_fork() -> Any:
    """fork() with threads (numpy/BLAS) warns on 3.12+; the tests know."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("ignore", DeprecationWarning)
    return ctx


@pytest.mark.parametrize("method", METHODS)
def test_pool_workers_read_a_shared_store_without_copying_it(method: str, pool: Any, expected: Any) -> None:
    ctx = mp.get_context(method)
    w = _quiet_fork()
    try:
        with pool.share() as shared, pool.share() as twin:
            size = os.path.getsize(shared.filename)
            assert shared.mmap_mode == "r" and shared.filename.startswith("/dev/shm/")
            with ctx.Pool(2, initializer=sw.init, initargs=(shared,)) as p:
                got = p.map(sw.read_all_after_warming_up, [twin, twin], chunksize=1)
            path = shared.filename
            assert os.path.exists(path)  # the workers' exits did not remove it
    finally:
        w.__exit__(None, None, None)
    assert not os.path.exists(path)  # the end of the with block did
    assert len({r["pid"] for r in got}) == 2
    for r in got:
        assert r["n"] == N and r["digest"] == expected
        assert "read-only" in r["refused"] or "mapped" in r["refused"], r["refused"]
        assert r["mmap_mode"] == "r" and r["filename"] == path
        # the store's pages: read from the shared file, none of them copied
        assert r["file_rss"] >= 0.25 * size and r["file_copied"] == 0, r
        # and nothing else the size of a store: the reading's own copies stay small
        gained = r["copies"]
        assert gained <= 0.05 * size, (f"{method}: a worker copied {gained:,} bytes of a {size:,}-byte store "
                                       f"reading it (after {r['copies_before']:,} bytes of warming up)")


@pytest.mark.parametrize("method", METHODS)
def test_executor_and_task_arguments(method: str, pool: Any, expected: Any) -> None:
    w = _quiet_fork()
    try:
        with pool.share() as shared, ProcessPoolExecutor(2, mp_context=mp.get_context(method)) as ex:
            got = list(ex.map(sw.read_all, [shared, shared]))
    finally:
        w.__exit__(None, None, None)
    assert [r["digest"] for r in got] == [expected, expected]


def test_the_pickled_reference_is_small_and_read_only(pool: Any) -> None:
    with pool.share(writable=True) as shared:
        assert shared.mmap_mode == "r+"
        data = pickle.dumps(shared)
        assert len(data) < 4096
        back = pickle.loads(data)
        assert back.mmap_mode == "r" and back.filename == shared.filename
        k = next(iter(back))
        with pytest.raises(TypeError):
            back[k, "fitness"] = 1.0
        assert back[k, "name"] == pool[k, "name"]


def test_a_writable_share_shows_the_creators_writes_to_a_spawned_worker(pool: Any) -> None:
    ctx = mp.get_context("spawn")
    with pool.share(writable=True) as shared:
        ready, written, q = ctx.Event(), ctx.Event(), ctx.Queue()
        p = ctx.Process(target=sw.wait_and_read, args=(shared, ready, written, q))
        p.start()
        assert ready.wait(60)
        k = next(iter(shared))
        shared[k, "fitness"] = 42.5
        written.set()
        value, mode = q.get(timeout=60)
        p.join(60)
    assert (value, mode) == (42.5, "r")


def test_unlink_and_the_context_manager(pool: Any) -> None:
    shared = pool.share()
    path = shared.filename
    assert os.path.exists(path)
    k = next(iter(shared))
    shared.unlink()
    assert not os.path.exists(path)
    assert shared[k, "name"] == pool[k, "name"]  # the mapping outlives the name
    shared.unlink()  # a second unlink is a no-op
    with pytest.raises(FileNotFoundError):
        pickle.loads(pickle.dumps(shared))


def test_share_into_a_directory(tmp_path: Any, pool: Any) -> None:
    with pool.share(dir=tmp_path) as shared:
        assert os.path.dirname(shared.filename) == str(tmp_path)
        assert len(shared) == len(pool)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError):
        pool.share(dir=tmp_path / "missing")


def test_share_of_every_store_kind(tmp_path: Any) -> None:
    s = sw.Rec(3)
    s.fitness[1] = 2.5
    s["name"][2] = "two"
    d = cs.DynamicStore(sw.Rec)
    for i in range(5):
        d.add(fitness=float(i), name=f"n{i}")
    for store in (s, d):
        with store.share(dir=tmp_path) as shared:
            assert type(shared) is type(store)
            back = pickle.loads(pickle.dumps(shared))
            assert list(back["fitness"]) == list(store["fitness"])
            assert list(back["name"]) == list(store["name"])


def test_objects_refuse_to_be_shared(tmp_path: Any) -> None:
    class WithObject(cs.StaticStore):
        x: cs.i64
        o: cs.Object

    with pytest.raises(TypeError, match="o"):
        WithObject(2).share(dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


CREATOR = textwrap.dedent(
    """
    import os, sys
    import share_workers as sw
    shared = sw.make_pool(10).share(dir=sys.argv[1])
    print(shared.filename, flush=True)
    pid = os.fork()
    if pid == 0:        # a forked child that exits normally runs atexit: it must not remove the file
        sys.exit(0)
    os.waitpid(pid, 0)
    print(os.path.exists(shared.filename), flush=True)
    if sys.argv[2] == "raise":
        raise RuntimeError("the creator fails")
    """
)


@pytest.mark.parametrize("how", ["return", "raise"])
def test_the_file_goes_when_the_creator_exits(tmp_path: Any, how: str) -> None:
    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, "-W", "ignore", "-c", CREATOR, str(tmp_path), how],
                       capture_output=True, text=True, env=env, timeout=120)
    out = p.stdout.split()
    assert len(out) == 2, p.stderr
    path, after_child = out
    assert after_child == "True"  # the forked child's exit left it
    assert (p.returncode != 0) == (how == "raise")
    assert not os.path.exists(path)  # the creator's exit removed it


def test_a_pool_workers_exit_never_removes_the_file(tmp_path: Any, pool: Any) -> None:
    with pool.share(dir=tmp_path) as shared:
        with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as p:
            assert p.map(sw.exit_with, [shared, shared]) == [N, N]  # two workers came and went
        assert os.path.exists(shared.filename)
        assert pickle.loads(pickle.dumps(shared))[0, "name"] == pool[0, "name"]


def test_only_the_creator_unlinks(tmp_path: Any, pool: Any) -> None:
    with pool.share(dir=tmp_path) as shared:
        back = pickle.loads(pickle.dumps(shared))  # as a worker sees it
        with mp.get_context("spawn").Pool(1) as p:
            err = p.apply(sw.unlink_in_worker, (shared,))
        assert "creat" in err
        assert os.path.exists(shared.filename)
        assert back.filename == shared.filename

