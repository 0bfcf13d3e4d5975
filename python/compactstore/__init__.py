"""compactstore: many records stored compactly, each member in its own typed, contiguous column."""

from compactstore._native import __version__

__all__ = ["__version__"]
