"""The Python examples in README.md and docs/ run as written, and their `# -> value` comments are true.

Every ```python block of a file runs, in order, in one namespace per file. A top-level statement whose last
line ends in `# -> text` must be an expression; its value is compared with `eval(text)` in the same namespace
(floats to 1e-6 relative, numpy arrays element by element, tuples and lists item by item). Two spaces end the
text, so a remark may follow: `# -> 0.5  (the default)`. Write examples
that must not run (output, other languages) in other fences (`text`, `sh`, `rust`).
"""

from __future__ import annotations

import ast
import io
import math
import pathlib
import re
import tokenize
from typing import Any

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)
EXPECT = re.compile(r"#\s*->\s*(.+?)(?:\s{2,}.*)?$")  # two spaces end the value: a remark may follow


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, np.ndarray) or isinstance(want, np.ndarray):
        return bool(np.array_equal(np.asarray(got), np.asarray(want)))
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want
    if isinstance(want, float) and isinstance(got, (int, float, np.floating, np.integer)):
        return math.isclose(float(got), want, rel_tol=1e-6, abs_tol=1e-12)
    if isinstance(want, (tuple, list)) and isinstance(got, type(want)):
        return len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    return bool(got == want)


def _name(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def _expectations(code: str) -> dict[int, str]:
    """`{line: expected text}` for each `# -> text` comment of `code`."""
    out = {}
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.COMMENT and (m := EXPECT.match(tok.string)):
            out[tok.start[0]] = m.group(1)
    return out


def run_examples(path: pathlib.Path) -> int:
    """Run the Python blocks of `path`; return how many `# ->` comments were checked."""
    text = path.read_text()
    namespace: dict[str, Any] = {"__name__": f"example_{path.stem}"}
    checked = 0
    for block in BLOCK.finditer(text):
        code = block.group(1)
        first_line = text.count("\n", 0, block.start(1)) + 1
        where = f"{_name(path)}:{first_line}"
        expected = _expectations(code)
        tree = ast.parse(code, filename=where)
        for stmt in tree.body:
            assert stmt.end_lineno is not None
            want_text = next((expected.pop(n) for n in range(stmt.lineno, stmt.end_lineno + 1) if n in expected), None)
            line = f"{_name(path)}:{first_line + stmt.lineno - 1}"
            if want_text is None:
                exec(compile(ast.Module([stmt], []), line, "exec", dont_inherit=True), namespace)
                continue
            assert isinstance(stmt, ast.Expr), f"{line}: a `# ->` comment must follow an expression"
            got = eval(compile(ast.Expression(stmt.value), line, "eval", dont_inherit=True), namespace)
            want = eval(want_text, namespace)
            assert _same(got, want), f"{line}: {ast.unparse(stmt.value)} is {got!r}, the comment says {want_text}"
            checked += 1
        assert not expected, f"{where}: `# ->` comments inside a statement: {expected}"
    return checked


def test_readme_quick_start_is_checked() -> None:
    assert run_examples(ROOT / "README.md") >= 3, "the README's quick start states values with `# ->`"


@pytest.mark.parametrize("path", FILES[1:], ids=_name)
def test_docs_examples(path: pathlib.Path) -> None:
    run_examples(path)


def test_the_checker_catches_a_wrong_comment(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.md"
    bad.write_text("```python\nx = 0.75\nx  # -> 0.5\n```\n")
    with pytest.raises(AssertionError, match="the comment says 0.5"):
        run_examples(bad)


def test_every_public_name_has_a_reference_entry() -> None:
    import compactstore as cs

    reference = "\n".join(p.read_text() for p in (ROOT / "docs" / "reference").glob("*.md"))
    missing = [
        name
        for name in cs.__all__
        if f"::: compactstore.{name}\n" not in reference
        and f'id="compactstore.{name}"' not in reference
        and f"{{ #compactstore.{name} }}" not in reference
    ]
    assert missing == [], f"public names without an entry in docs/reference: {missing}"


# Examples that start worker processes cannot run inside this test's namespace (a spawned worker imports
# the functions it runs by module name), so they are files of their own under examples/, shown in the docs
# as a ```python title="examples/NAME.py" block that must equal the file. Each file runs as a script; every
# `print(...)  # text` line states what it prints.
TITLED = re.compile(r'^```python title="(examples/[^"]+)"\n(.*?)^```', flags=re.S | re.M)
PRINTS = re.compile(r"^\s*print\(.*\)\s*#\s*(.+?)\s*$", flags=re.M)
EXAMPLE_FILES = sorted((ROOT / "examples").glob("*.py"))


def test_example_files_shown_in_the_docs_are_the_files() -> None:
    shown = 0
    for path in FILES:
        for m in TITLED.finditer(path.read_text()):
            assert (ROOT / m.group(1)).read_text() == m.group(2), f"{_name(path)} shows {m.group(1)} changed"
            shown += 1
    assert shown >= 1


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_files_run_and_print_what_they_say(example: pathlib.Path) -> None:
    import subprocess
    import sys

    want = PRINTS.findall(example.read_text())
    assert want, f"{example.name}: no `print(...)  # value` line"
    p = subprocess.run([sys.executable, str(example)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.splitlines()[-len(want):] == want, p.stdout[-2000:]
