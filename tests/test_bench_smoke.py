"""Smoke test of ``python -m compactstore.bench``: the whole benchmark at tiny sizes, checked for shape.

The figures at these sizes mean nothing (fixed costs dominate); what is checked is that every section runs,
that each row is either measured with numbers or says why not, and that pandas, pyarrow and matplotlib are
optional.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

import compactstore as cs
from compactstore.bench import main

SECTIONS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8")
STATUSES = {"measured", "reference", "n/a", "skipped", "error"}


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, Path | None]:
    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "bench.json"
    argv = ["--quick", "--no-progress", "--json", str(out)]
    png = None
    if have("matplotlib"):
        png = tmp / "bench.png"
        argv += ["--plot", str(png)]
    capture = pytest.MonkeyPatch()
    buf = io.StringIO()
    capture.setattr(sys, "stdout", buf)
    try:
        assert main(argv) == 0
    finally:
        capture.undo()
    return json.loads(out.read_text()), buf.getvalue(), png


def rows(data: dict[str, Any], section: str) -> list[dict[str, Any]]:
    return [r for group in data["sections"][section]["groups"].values() for r in group]


def row(data: dict[str, Any], section: str, prefix: str) -> dict[str, Any]:
    found = [r for r in rows(data, section) if r["name"].startswith(prefix)]
    assert len(found) >= 1, f"{section}: no row starting with {prefix!r}"
    return found[0]


def test_every_section_is_there(run: tuple[dict[str, Any], str, Path | None]) -> None:
    data, text, _ = run
    assert set(data["sections"]) == set(SECTIONS)
    for key in SECTIONS:
        assert rows(data, key), key
        assert f"\n{key} " in text
    assert data["meta"]["python"] and data["meta"]["numpy"] and data["meta"]["cpu"]
    assert "targets:" in text


def test_rows_are_numbers_or_say_why_not(run: tuple[dict[str, Any], str, Path | None]) -> None:
    data, _, _ = run
    for key in SECTIONS:
        for r in rows(data, key):
            assert r["status"] in STATUSES, r
            assert r["status"] != "error", r  # a measurement that crashed
            if r["status"] in ("measured", "reference"):
                assert r["values"], r
                for v in r["values"].values():
                    assert isinstance(v, (int, float)) and math.isfinite(v), r
                assert r["figure"], r
            else:
                assert r["figure"], r  # says why (n/a, skipped)
            if r["target"] and r["status"] == "measured" and not r["target"].startswith("—"):
                assert isinstance(r["holds"], bool), r


def test_compactstore_rows_are_measured(run: tuple[dict[str, Any], str, Path | None]) -> None:
    # memory figures at --quick sizes are noise around small numbers (they can even come out negative):
    # only their presence is checked; timings are always positive
    data, _, _ = run
    for prefix in ("compactstore StaticStore", "compactstore DynamicStore"):
        assert "bytes_per_entry" in row(data, "B1", prefix)["values"]
        assert "percent_of_store" in row(data, "B3", prefix)["values"]
    assert row(data, "B4", "StaticStore m[i] read")["values"]["ratio"] > 0
    assert row(data, "B4", "np.asarray(m).sum()")["values"]["ratio"] > 0
    assert row(data, "B4", "StaticStore s.add(d)")["values"]["ratio"] > 0
    assert row(data, "B4", "StaticStore np.asarray(m)[:] = arr")["values"]["bytes_per_second"] > 0
    assert {"peak_bytes", "final_bytes"} <= set(row(data, "B5", "compactstore DynamicStore")["values"])


def test_missing_features_are_na_never_numbers(run: tuple[dict[str, Any], str, Path | None]) -> None:
    data, _, _ = run
    b2 = row(data, "B2", "compactstore KeyedStore")
    if not (hasattr(cs, "Str") and hasattr(cs, "Interned")):
        assert b2["status"] == "n/a" and "str members unimplemented" in b2["figure"]
        assert not b2["values"]
    keyed_rows = [row(data, "B1", "compactstore KeyedStore"), row(data, "B4", "pool[k, name] read")]
    for r in keyed_rows:
        if hasattr(cs, "KeyedStore"):
            assert r["status"] == "measured" and r["values"], r
        else:
            assert r["status"] == "n/a" and not r["values"], r


def test_optional_libraries_are_skipped_when_missing(run: tuple[dict[str, Any], str, Path | None]) -> None:
    data, text, png = run
    for lib, section, prefix in (("pandas", "B1", "pandas"), ("pyarrow", "B2", "pyarrow Table")):
        r = row(data, section, prefix)
        if have(lib):
            assert r["status"] == "reference" and "bytes_per_entry" in r["values"]
        else:
            assert r["status"] == "skipped" and f"{lib} not installed" in r["figure"]
            assert "skipped" in text
    if png is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_pieces_are_reported_without_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever this environment has installed or built: a missing library is "skipped", a missing
    compactstore feature "n/a", and neither has a figure."""
    from compactstore.bench import cli

    monkeypatch.setattr(cli, "have", lambda module: False)
    monkeypatch.setattr(cli, "keyed_available", lambda: False)
    monkeypatch.setattr(cli, "str_members_available", lambda: False)
    sz = cli.Sizes.quick()
    secs = {}
    for key, (title, make) in cli.SECTIONS.items():
        secs[key] = cli.Section(key, title)
        make(sz, secs[key])  # builds the rows and the steps; runs nothing

    def get(key: str, prefix: str) -> cli.Row:
        return next(r for r in secs[key].rows() if r.name.startswith(prefix))

    for key, prefix in (("B1", "pandas"), ("B2", "pandas"), ("B2", "pyarrow Table")):
        r = get(key, prefix)
        assert r.status == "skipped" and "not installed" in r.figure and not r.values
    assert get("B2", "compactstore KeyedStore").figure == "not available yet (str members unimplemented)"
    for key, prefix in (("B1", "compactstore KeyedStore"), ("B3", "compactstore KeyedStore"),
                        ("B4", "pool[k][name] read"), ("B4", "pool[k, name] write"),
                        ("B4", "KeyedStore pool[k] = d"), ("B4", "KeyedStore.from_columns")):
        r = get(key, prefix)
        assert r.status == "n/a" and r.figure == "n/a (not built yet)" and r.mark() == "n/a", (key, prefix)
