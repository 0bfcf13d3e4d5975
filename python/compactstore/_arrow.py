"""Arrow at the Python level: ``to_arrow``/``to_pandas``/``to_polars`` of every store and ``from_arrow``.

The stores themselves are Arrow stream producers (``__arrow_c_stream__``, written in Rust on arrow-rs's C
data interface): ``pyarrow.table(s)``, ``polars.DataFrame(s)`` and DuckDB read them with no pyarrow needed
here. These helpers only pick members and import the consumer package, naming it if it is missing.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any


def _need(package: str, what: str) -> Any:
    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise ImportError(f"{what} needs the {package} package (pip install {package})") from e


class _Members:
    """An Arrow stream producer of some members of a store (a keyed store's key first)."""

    __slots__ = ("store", "members")

    def __init__(self, store: Any, members: Any) -> None:
        self.store = store
        self.members = None if members is None else list(members)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        if requested_schema is not None or self.members is None:
            return self.store.__arrow_c_stream__(requested_schema)
        return self.store._cs_arrow_stream(self.members)


def _to_arrow(self: Any, members: Any = None) -> Any:
    """The entries as a ``pyarrow.Table``, one record batch per chunk (a keyed store's key first, as column
    ``key`` or its ``key_name``); ``members`` picks and orders the members (every member by default).

    Numeric and array members leave without a copy where a chunk's entries fill a prefix of its slots: later
    writes of those members show through the table, as through a numpy view, and the table stays valid
    after the store is reset or deleted. A ``cs.Object`` member raises ``TypeError`` unless ``members``
    leaves it out. Needs pyarrow (``ImportError`` naming it otherwise)."""
    pa = _need("pyarrow", "to_arrow()")
    return pa.table(_Members(self, members))


def _to_pandas(self: Any, members: Any = None) -> Any:
    """The entries as a ``pandas.DataFrame`` (through ``to_arrow``: needs pandas and pyarrow)."""
    _need("pandas", "to_pandas()")
    _need("pyarrow", "to_pandas()")
    return _to_arrow(self, members).to_pandas()


def _to_polars(self: Any, members: Any = None) -> Any:
    """The entries as a ``polars.DataFrame``, read straight from the store's Arrow stream (needs polars)."""
    pl = _need("polars", "to_polars()")
    return pl.DataFrame(_Members(self, members))


class ArrowMethods:
    """``to_arrow``, ``to_pandas`` and ``to_polars``: what every store type has (a mixin)."""

    __slots__ = ()

    def to_arrow(self, members: Iterable[str] | None = None) -> Any:
        """The entries as a ``pyarrow.Table``, one record batch per chunk (a keyed store's key first, as
        column ``key`` or its ``key_name``); ``members`` picks and orders the members (every member by
        default).

        Numeric and array members leave without a copy where a chunk's entries fill a prefix of its slots:
        later writes of those members show through the table, as through a numpy view, and the table stays
        valid after the store is reset or deleted. A ``cs.Object`` member raises ``TypeError`` unless
        ``members`` leaves it out. Needs pyarrow (``ImportError`` naming it otherwise)."""
        return _to_arrow(self, members)

    def to_pandas(self, members: Iterable[str] | None = None) -> Any:
        """The entries as a ``pandas.DataFrame``, through ``to_arrow`` (needs pandas and pyarrow)."""
        return _to_pandas(self, members)

    def to_polars(self, members: Iterable[str] | None = None) -> Any:
        """The entries as a ``polars.DataFrame``, read straight from the store's Arrow stream (needs
        polars). ``pl.DataFrame(s)`` does the same for a static or dynamic store; a keyed store is a
        ``Mapping``, which polars' constructor reads as a dict, so use this method for it."""
        return _to_polars(self, members)


def from_arrow(data: Any, store_type: Any = None, *, key: str | None = None, log2size: int | None = None) -> Any:
    """A store built from Arrow data: anything with ``__arrow_c_stream__`` or ``__arrow_c_array__`` (pyarrow
    tables and record batches, polars and pandas DataFrames, DuckDB results).

    Without ``key`` it is a `DynamicStore` (chunks of ``2**log2size`` slots, 11 by default) holding the rows
    in order; with ``key="col"`` a `KeyedStore` keyed by that column (int columns give ``cs.i64`` keys,
    ``uint64`` ``cs.u64``, strings ``cs.Str``, binaries ``cs.Bytes``), which is then not a member and is
    exported again under its name.

    Without ``store_type`` the members are inferred from the Arrow schema (the type table read backwards; a
    column holding nulls becomes ``cs.Optional``). With it, each column goes to the member of its name,
    converted as a write converts a value. A column of a type no member takes, a missing or extra column,
    or a null in a member that is not optional raises ``TypeError``/``ValueError`` naming the column; nothing
    is built.
    """
    import compactstore as cs
    from compactstore import _native

    if not (hasattr(data, "__arrow_c_stream__") or hasattr(data, "__arrow_c_array__")):
        if type(data).__module__.startswith("pandas"):
            pa = _need("pyarrow", "from_arrow() of this pandas object")
            data = pa.Table.from_pandas(data, preserve_index=False)
        elif hasattr(data, "arrow") and callable(data.arrow):  # an older DuckDB relation
            data = data.arrow()
    got = _native._arrow_read(data)
    if store_type is None:
        members = {name: cs._member_type_from_parts(parts) for name, parts in got.infer(key)}
        store_type = cs.make_store("FromArrow", members, module="compactstore")
    elif not (isinstance(store_type, type) and issubclass(store_type, cs.StaticStore)):
        raise TypeError(f"from_arrow takes a store type (a StaticStore subclass), not {store_type!r}")
    if key is None:
        return got.to_dynamic(cs._dynamic_class(cs.DynamicStore, store_type), store_type, log2size)
    return got.to_keyed(cs.KeyedStore, store_type, key, log2size)
