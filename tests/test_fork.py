"""Reading a store after fork() keeps its pages shared: the child's private memory barely grows.

The child reads one member of every entry through the container API and measures its private memory
(Private_Clean + Private_Dirty in /proc/self/smaps_rollup) before and after; reads must not copy pages.
"""

import json
import os
import sys
import warnings
from typing import Any

import numpy as np
import pytest

import compactstore as cs

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists("/proc/self/smaps_rollup"),
    reason="needs Linux fork() and /proc/self/smaps_rollup",
)

N_ENTRIES = 100_000
N_MEMBERS = 125


def private_bytes() -> int:
    """Private_Clean + Private_Dirty of this process, in bytes."""
    total = 0
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Private_Clean", "Private_Dirty"):
                total += int(rest.split()[0]) * 1024
    return total


def run_in_child(fn: Any) -> dict[str, Any]:
    """fork(), run `fn` in the child, return the dict it produces (sent back as JSON through a pipe)."""
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (numpy/BLAS) warns on 3.12+
        pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(r)
        code = 0
        try:
            out = fn()
        except BaseException as e:  # report everything back to the parent
            out = {"error": f"{type(e).__name__}: {e}"}
            code = 1
        try:
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    while data := os.read(r, 65536):
        chunks.append(data)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    result: dict[str, Any] = json.loads(b"".join(chunks) or b'{"error": "no output"}')
    assert "error" not in result, result["error"]
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    return result


@pytest.fixture(scope="module")
def big_store() -> Any:
    Wide = cs.make_store("Wide", {f"m{k}": cs.i64 for k in range(N_MEMBERS)})
    s = Wide(N_ENTRIES)
    for _ in range(N_ENTRIES):
        s.next_index()
    base = np.arange(N_ENTRIES, dtype=np.int64)
    for k in range(N_MEMBERS):
        np.asarray(s[f"m{k}"])[:] = base * 3 + k  # fill through the zero-copy view: every page written
    assert len(s) == N_ENTRIES
    return s


def test_fork_reads_keep_pages_shared(big_store: Any) -> None:
    s = big_store
    nbytes = s.nbytes
    assert nbytes >= N_ENTRIES * N_MEMBERS * 8
    name = f"m{N_MEMBERS // 2}"
    k = N_MEMBERS // 2
    want = sum(range(N_ENTRIES)) * 3 + k * N_ENTRIES

    def child() -> dict[str, Any]:
        m = s[name]
        n = len(m)
        before = private_bytes()
        total = sum(m[i] for i in range(n))
        first, last = m[0], m[n - 1]
        after = private_bytes()
        return {"total": total, "first": first, "last": last, "n": n, "growth": after - before}

    got = run_in_child(child)
    assert got["n"] == N_ENTRIES
    assert got["first"] == k
    assert got["last"] == (N_ENTRIES - 1) * 3 + k
    assert got["total"] == want
    assert got["growth"] < 0.02 * nbytes, f"child's private memory grew {got['growth']} bytes for a {nbytes}-byte store"


def test_fork_measurement_detects_copied_pages(big_store: Any) -> None:
    """The measurement works: writing one member in the child does copy its pages."""
    s = big_store
    name = "m0"
    column_bytes = N_ENTRIES * 8

    def child() -> dict[str, Any]:
        before = private_bytes()
        a = np.asarray(s[name])
        a += 1  # touches every page of one column
        after = private_bytes()
        return {"growth": after - before, "v": int(s[name][5])}

    got = run_in_child(child)
    assert got["v"] == 5 * 3 + 1
    assert got["growth"] >= 0.9 * column_bytes
    assert s[name][5] == 5 * 3  # the parent's copy is untouched
