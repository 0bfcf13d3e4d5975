"""The seed's memory comparison: 100,000 entries x 125 int64 members, dict of dicts vs compactstore."""

from __future__ import annotations

import subprocess
import sys

BUILDERS = {
    "dict of dicts": "store = {k: {v: v for v in range(125)} for k in range(N)}",
    "numpy (125, N) int64 + index dict": (
        "import numpy as np\nindex = {k: k for k in range(N)}\nstore = np.ones((125, N), dtype=np.int64)"
    ),
}


def rss_of(code: str, n: int) -> int:
    """Run `code` in a fresh interpreter and return the RSS it added, in bytes."""
    prog = (
        "import resource, os\n"
        "def rss():\n"
        "    with open('/proc/self/statm') as f: return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
        f"N = {n}\n"
        "import numpy, compactstore\n"
        "before = rss()\n"
        f"{code}\n"
        "print(rss() - before)\n"
    )
    out = subprocess.run([sys.executable, "-c", prog], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def main() -> None:
    n = 100_000
    raw = n * 125 * 8
    print(f"{n:,} entries x 125 int64 members (raw data {raw / 1e6:.0f} MB)")
    for name, code in BUILDERS.items():
        used = rss_of(code, n)
        print(f"  {name:40s} {used / 1e6:8.1f} MB  {used / raw:5.2f}x raw")


if __name__ == "__main__":
    main()
