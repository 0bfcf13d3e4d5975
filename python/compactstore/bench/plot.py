"""``--plot FILE.png``: B1 and B2 memory per entry and B3 fork sharing as horizontal bar charts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compactstore.bench.cli import Row, Section

CS_COLOR = "#2a9d8f"
OTHER_COLOR = "#8d99ae"
REF_COLOR = "#e9c46a"


def _bars(ax: Any, rows: list[Row], key: str, fmt: Any, xlabel: str, title: str) -> None:
    labels, values, colors = [], [], []
    for r in rows:
        v = r.values.get(key)
        labels.append(r.name if v is not None else f"{r.name}\n({r.figure})")
        values.append(v if v is not None else 0.0)
        if r.name.startswith("compactstore"):
            colors.append(CS_COLOR)
        elif r.name.startswith(("raw data", "information content")):
            colors.append(REF_COLOR)
        else:
            colors.append(OTHER_COLOR)
    y = list(range(len(rows)))[::-1]
    ax.barh(y, values, color=colors, edgecolor="black", linewidth=0.5)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    top = max(values) if values and max(values) > 0 else 1.0
    for yi, r, v in zip(y, rows, values):
        if r.values.get(key) is None:
            ax.text(top * 0.01, yi, "n/a", va="center", fontsize=8, style="italic")
        else:
            mark = "" if r.holds is None else ("  ✓ target" if r.holds else "  ✗ target")
            ax.text(max(v, 0.0) + top * 0.01, yi, fmt(r, v) + mark, va="center", fontsize=8,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1, "alpha": 0.8})
    ax.set_xlim(min(0.0, min(values)), top * 1.35)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def plot(meta: dict[str, Any], sections: list[Section], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {s.key: s for s in sections}
    panels = [k for k in ("B1", "B2", "B3") if k in by]
    if not panels:
        return
    heights = [(len(by[k].rows()) if k != "B2" else len(next(iter(by[k].groups.values()), []))) + 3 for k in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 0.42 * sum(heights) + 1.6),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, key in zip(axes[:, 0], panels):
        sec = by[key]
        rows = sec.rows() if key != "B2" else next(iter(sec.groups.values()), [])  # B2: the mixed record only
        if key == "B1":
            raw = sec.params["raw_bytes"] / sec.params["entries"]
            _bars(ax, rows, "bytes_per_entry",
                  lambda r, v: (f"{v:,.0f} B  (raw + {r.values['bytes_per_key_over_raw']:.1f} B/key; "
                                "target raw + 24)" if "bytes_per_key_over_raw" in r.values
                                else f"{v:,.0f} B  ({r.values['ratio_to_raw']:.2f}× raw)"),
                  "bytes per entry (RSS gained / entries)",
                  f"B1 wide records: {sec.params['entries']:,} entries × {sec.params['members']} int64 members\n"
                  "target: compactstore ≤ 1.03× raw data")
            ax.axvline(raw * 1.03, color="red", linestyle="--", linewidth=1, label="target 1.03× raw")
            ax.legend(loc="lower right", fontsize=8)
        elif key == "B2":
            _bars(ax, rows, "bytes_per_entry", lambda r, v: f"{v:,.1f} B",
                  "bytes per entry, all in (RSS gained / entries)",
                  f"B2 mixed record keyed by ref: {sec.params['entries']:,} entries\n"
                  "target: compactstore ≤ 64 B/entry, all in")
            ax.axvline(64, color="red", linestyle="--", linewidth=1, label="target 64 B/entry")
            ax.legend(loc="lower right", fontsize=8)
        else:
            _bars(ax, rows, "percent_of_store",
                  lambda r, v: f"{v:.2f}%  ({r.values['private_gained'] / 1e6:,.1f} MB)",
                  "private memory gained by the child, % of the store's RSS",
                  f"B3 fork sharing: after fork() a child reads one member of every entry "
                  f"({sec.params['entries']:,} × {sec.params['members']} int64)\n"
                  "target: compactstore ≤ 1% of the store's size")
            ax.axvline(1.0, color="red", linestyle="--", linewidth=1, label="target 1%")
            ax.legend(loc="lower right", fontsize=8)
    preset = " (--quick: sizes too small to mean anything)" if meta.get("preset") == "quick" else ""
    fig.suptitle(f"compactstore {meta['compactstore']} — memory, measured {meta['date']}{preset}\n"
                 f"{meta['cpu']}, Python {meta['python']}, numpy {meta['numpy']}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=110)
    plt.close(fig)
