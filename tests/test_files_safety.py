"""Files under attack: a saver killed with SIGKILL at random moments always leaves the old or the new
store; corrupt files (empty, truncated at every section boundary, random bytes, bit flips in the
header, tables, views and dictionaries) are refused with FormatError or load and read without a crash
(checked in subprocesses, so a crash fails the test instead of the test run)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import compactstore as cs
from test_files import STORES, Rec, snapshot

HERE = Path(__file__).parent

SAVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    from test_files import make_static, make_keyed
    import compactstore as cs
    a = make_static(200)
    b = make_static(300)
    b.fitness[0] = 1234.0
    path = sys.argv[1]
    print("ready", flush=True)
    while True:
        a.save(path)
        b.save(path)
    """
)


def test_a_killed_saver_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    from test_files import make_static

    a = make_static(200)
    b = make_static(300)
    b.fitness[0] = 1234.0
    path = tmp_path / "s.cstore"
    a.save(path)
    expected = [snapshot(a), snapshot(b)]
    rng = random.Random(14)
    script = SAVER.format(here=str(HERE))
    for _ in range(25):
        p = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE)
        assert p.stdout is not None
        assert p.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.05))
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()
        for mode in (None, "r"):
            got = snapshot(cs.load(path, Rec, mmap_mode=mode))
            assert got in expected
    # A kill can leave a temporary file beside the store (never the store half-written).
    assert all(q.name == "s.cstore" or q.name.startswith(".s.cstore.tmp-") for q in tmp_path.iterdir())


CHECKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {here!r})
    import compactstore as cs
    from test_files import Rec
    outcomes = {{"refused": 0, "loaded": 0}}
    for name in sys.argv[1:]:
        for mode in (None, "r", "c", "r+"):
            try:
                s = cs.load(name, Rec, mmap_mode=mode)
            except cs.FormatError:
                outcomes["refused"] += 1
                continue
            except TypeError:
                outcomes["refused"] += 1  # the schema in a (checksummed) header cannot change; kept safe
                continue
            outcomes["loaded"] += 1
            try:
                if isinstance(s, cs.KeyedStore):
                    for k in list(s):
                        dict(s[k])
                    s.modified()
                else:
                    for i in s.indices():
                        dict(s.entry(i))
                s.validate()
            except (AssertionError, IndexError, KeyError, ValueError, RuntimeError, TypeError, UnicodeError):
                pass  # a corrupt store may fail to read; it must not crash
            del s
    print(outcomes["refused"], outcomes["loaded"])
    """
)


def variants(good: bytes, rng: random.Random) -> list[bytes]:
    header_len = int.from_bytes(good[16:24], "little")
    data_start = (64 + header_len + 63) // 64 * 64
    out = [b"", good[:10], good[:64], bytes(rng.getrandbits(8) for _ in range(len(good)))]
    out += [good[:cut] for cut in range(64, len(good), 64)]  # every buffer starts at a 64-byte boundary
    out.append(good[: data_start - 1])
    out.append(good + b"\0" * 64)
    regions = [(0, 64), (64, data_start), (data_start, len(good))]  # preamble, header/tables, buffers
    for lo, hi in regions:
        for _ in range(40 if lo < data_start else 200):
            b = bytearray(good)
            pos = rng.randrange(lo, hi)
            b[pos] ^= 1 << rng.randrange(8)
            out.append(bytes(b))
    # Whole-word damage in the buffers: views, codes, dictionary offsets, key spans, table buckets.
    for _ in range(150):
        b = bytearray(good)
        pos = rng.randrange(data_start, len(good) - 8) // 8 * 8
        b[pos : pos + 8] = rng.choice([b"\xff" * 8, b"\x00" * 8, rng.randbytes(8)])
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("kind", list(STORES))
def test_corrupt_files_are_refused_or_read_without_a_crash(tmp_path: Path, kind: str) -> None:
    s = STORES[kind]()
    good_path = tmp_path / "good"
    s.save(good_path)
    good = good_path.read_bytes()
    rng = random.Random(sum(map(ord, kind)))
    names = []
    for n, v in enumerate(variants(good, rng)):
        p = tmp_path / f"v{n}"
        p.write_bytes(v)
        names.append(str(p))
    r = subprocess.run(
        [sys.executable, "-c", CHECKER.format(here=str(HERE)), *names],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    refused, loaded = map(int, r.stdout.split())
    assert refused > len(names)  # the truncations, random bytes and header flips at least
    assert loaded > 0  # flips in the buffers load (a mapped store checks them as it reads)
    os.remove(good_path)
