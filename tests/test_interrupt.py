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
