"""The stubs and py.typed make a user's store definitions type-check under `mypy --strict`."""

import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE = HERE.parent / "python" / "compactstore"

mypy = pytest.importorskip("mypy.api")


def run_mypy(*paths: pathlib.Path) -> tuple[str, int]:
    out, err, status = mypy.run(["--strict", "--no-incremental", *map(str, paths)])
    return out + err, status


def test_user_example_type_checks() -> None:
    out, status = run_mypy(HERE / "typing" / "user_example.py")
    assert status == 0, out


def test_a_type_error_in_user_code_is_caught() -> None:
    # The check can fail: a wrong use of the API is reported.
    bad = HERE / "typing" / "user_example_bad.py"
    bad.write_text("import compactstore as cs\nx: str = cs.DynamicStore.__name__\ny: int = 'a'\n")
    try:
        out, status = run_mypy(bad)
    finally:
        bad.unlink()
    assert status != 0 and "Incompatible types" in out


def test_package_type_checks() -> None:
    out, status = run_mypy(PACKAGE / "__init__.py")
    assert status == 0, out


def test_user_example_runs() -> None:
    done = subprocess.run([sys.executable, str(HERE / "typing" / "user_example.py")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
