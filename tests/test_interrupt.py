"""Ctrl-C reaches the user as KeyboardInterrupt, never as a PanicException.

rust-numpy loads numpy's C API on first use and panicked when that failed. A SIGINT that arrived during a
long call was raised by the first Python code run afterwards, the import inside that first numpy call, so
the user saw `pyo3_runtime.PanicException`, which neither `except Exception` nor `except KeyboardInterrupt`
catches. The API is now loaded at import, where the error is raised as itself.
"""

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_interrupt_while_numpy_api_loads_is_keyboard_interrupt() -> None:
    # A KeyboardInterrupt raised by the import of numpy's multiarray module: where a pending SIGINT fires.
    out = _run(
        """
        import builtins
        import numpy as np

        real = builtins.__import__

        def interrupted(name, *args, **kwargs):
            if name.endswith("multiarray"):
                raise KeyboardInterrupt
            return real(name, *args, **kwargs)

        builtins.__import__ = interrupted
        try:
            import compactstore as cs

            class G(cs.StaticStore):
                x: cs.i64

            cs.KeyedStore.from_columns(G, np.arange(3), {"x": np.arange(3)})
            print("no interrupt")
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        except BaseException as e:
            print("other", type(e).__module__, type(e).__name__)
        """
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "KeyboardInterrupt", (out.stdout, out.stderr)


# Long calls stop promptly on a signal whose handler raises (Ctrl-C's KeyboardInterrupt): each runs once
# to the end, then again with a timer that fires almost at once. The interrupted run must raise the
# handler's exception and stop well before a full run's time: a ratio within one run, with a wide margin
# (a stop comes within about a millisecond of work; the bound is half of the full run).
_PROMPT = """
import copy, signal, sys, time
import numpy as np
import compactstore as cs

class Stop(Exception):
    pass

def stop(signum, frame):
    raise Stop

signal.signal(signal.SIGALRM, stop)

class G(cs.StaticStore):
    x: cs.i64
    name: cs.Str

n = 4_000_000
keys = np.arange(n)
names = ["a-fairly-long-name-%d" % (i % 1000) for i in range(n)]
pool = cs.KeyedStore.from_columns(G, keys, {"x": keys, "name": names})

def run(call):
    t = time.perf_counter()
    call()
    full = time.perf_counter() - t
    signal.setitimer(signal.ITIMER_REAL, min(0.02, full / 20))
    t = time.perf_counter()
    try:
        call()
        outcome = "finished"
    except Stop:
        outcome = "stopped"
    stopped = time.perf_counter() - t
    signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, stopped / full

for name, call in [
    ("from_columns", lambda: cs.KeyedStore.from_columns(G, keys, {"x": keys})),
    ("from_columns_values", lambda: cs.KeyedStore.from_columns(G, keys, {"name": names})),
    ("validate", pool.validate),
    ("copy", pool.copy),
    ("deepcopy", lambda: copy.deepcopy(pool)),
]:
    outcome, ratio = run(call)
    print(name, outcome, ratio < 0.5, round(ratio, 3))
pool.validate()
print("intact", len(pool) == n)
"""


def test_long_calls_stop_on_a_signal() -> None:
    out = _run(_PROMPT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    for name in ("from_columns", "from_columns_values", "validate", "copy", "deepcopy"):
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.split()[1:3] == ["stopped", "True"], row
    assert "intact True" in lines
