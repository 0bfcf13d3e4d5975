"""compactstore's benchmarks: ``python -m compactstore.bench [--quick | --full] [--json FILE] [--plot FILE.png]``.

Measures compactstore's performance targets B1-B5 against the alternatives a Python programmer would use
(dict of dicts, slots dataclasses, numpy, pandas, pyarrow), each figure taken by the run itself and each pair
compared within the same run, and prints every figure next to its target with whether it holds.

- **B1** RSS of N entries x 125 int64 members, each alternative built in a fresh interpreter.
- **B2** bytes per entry, all in, of the mixed record keyed by ``ref``.
  Its memory rows: keyed stores of 300,000 entries against 1.15 × raw data + 32 B per key, and the RSS slack
  of dynamic and keyed stores just past chunk boundaries (``compactstore.bench.slack``).
- **B3** private memory a forked child gains by reading one member of every entry.
- **B4** access speed as ratios to the alternative, timed in one process (best of several repeats).
- **B5** peak RSS while growing a dynamic store, against numpy arrays grown by doubling.

pandas, pyarrow, matplotlib and tqdm (the ``bench`` extra) are optional: an alternative whose library is not
installed is skipped and the output says so.
"""

from __future__ import annotations

from compactstore.bench.cli import main

__all__ = ["main"]
