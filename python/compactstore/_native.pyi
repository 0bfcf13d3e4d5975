"""Type stubs of the native module `compactstore._native` (PyO3)."""

from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from os import PathLike
from typing import Any, NoReturn, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Container", "ContainerIterator", "DynamicStore", "Entry", "EntryIterator", "KeyedItems", "KeyedKeys",
    "KeyedStore", "KeyedValues", "MemberAttr", "Schema", "StaticStore", "Store", "__version__",
    "FormatError", "_Loaded", "_file_info", "_file_ref", "_from_buffer", "_load", "_load_ref", "_read_only",
    "_put_objects", "_save", "_to_bytes",
    "_ArrowData", "_arrow_read",
]
__version__: str

@final
class Schema:
    """The members of a store type, in declaration order."""

    def __new__(cls, members: list[tuple[str, str, int, Any, bool]]) -> Schema: ...
    def names(self) -> list[str]:
        """Member names in declaration order."""
    def __len__(self) -> int: ...

class Store:
    """What static and dynamic stores share: member names → member containers, and slot allocation.

    Memory the allocator refuses raises MemoryError, and the call changes nothing.
    """

    @property
    def size(self) -> int:
        """Slots allocated (static: fixed; dynamic: chunks × chunk size)."""
    @property
    def space(self) -> int:
        """Free slots before the store must grow (dynamic: sys.maxsize)."""
    @property
    def last_index(self) -> int:
        """The index most recently returned by next_index/add (-1 before any)."""
    @property
    def nbytes(self) -> int:
        """Bytes held by the store's buffers."""
    def __len__(self) -> int: ...
    def __arrow_c_schema__(self) -> Any:
        """The Arrow schema of the entries (a PyCapsule): the Arrow PyCapsule interface."""
    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The entries as an Arrow stream (a PyCapsule), one record batch per chunk: pyarrow.table(s),
        polars.DataFrame(s) and DuckDB read it. A requested schema may pick members and change a string
        type; anything else raises ValueError."""
    def _cs_arrow_stream(self, members: Any) -> Any:
        """__arrow_c_stream__ of some members (private: to_arrow(members=...))."""
    def next_index(self) -> int:
        """Allocate the lowest free slot at defaults; a full static store raises OverflowError."""
    def add(self, mapping: Mapping[str, Any] | None = None, **members: Any) -> int:
        """next_index() then set the given members; unknown member → KeyError, nothing allocated."""
    def __delitem__(self, i: int, /) -> None: ...
    def occupied(self, i: int) -> bool:
        """Whether slot i holds an entry (out of range → False)."""
    def indices(self) -> EntryIterator:
        """A lazy iterator over the occupied slot indices, ascending (RuntimeError if entries are added or
        removed while it runs)."""
    def empty_indices(self) -> list[int]:
        """Free slot indices below size, ascending."""
    def __getitem__(self, name: str, /) -> Container: ...
    def __setitem__(self, name: str, value: Any, /) -> None: ...
    def __getattr__(self, name: str, /) -> Container: ...
    def __iter__(self) -> Iterator[str]: ...
    def __contains__(self, name: object, /) -> bool: ...
    def keys(self) -> list[str]:
        """Member names."""
    def values(self) -> list[Container]:
        """Member containers."""
    def items(self) -> list[tuple[str, Container]]:
        """(name, container) pairs."""
    def entry(self, i: int) -> Entry:
        """An Entry view of occupied slot i."""
    def validate(self) -> None:
        """Check internal invariants; AssertionError on a broken one."""
    def assertions(self) -> None:
        """`validate()` under the name egp-utils' store used."""
    def find(self, name: str, value: Any) -> npt.NDArray[np.int64]:
        """Occupied indices whose member equals value."""
    def __copy__(self) -> Any: ...
    def __deepcopy__(self, memo: Any, /) -> Any: ...
    def __reduce__(self) -> Any: ...

class StaticStore(Store):
    """A store of a fixed number of slots. Derive with annotated members."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...
    def __init__(self, size: int | None = None) -> None:
        """Give the store size slots (default 65536), all free; run again, it re-initialises the store."""
    def reset(self, size: int | None = None) -> None:
        """Drop every entry (optionally change size)."""
    def clone(self) -> Any:
        """A new, empty store of the same type and size."""
    def copy(self) -> Any:
        """An independent store with the same entries."""

class DynamicStore(Store):
    """A store growing in chunks of StoreType(2**log2size)."""

    def __new__(cls, store_type: type[StaticStore], *args: Any, **kwargs: Any) -> DynamicStore: ...
    def __init__(self, store_type: type[StaticStore], log2size: int | None = None) -> None:
        """Give the store one empty chunk of 2**log2size slots; run again, it re-initialises the store."""
    @property
    def store_type(self) -> type[StaticStore]:
        """The static store type of the chunks."""
    @property
    def log2size(self) -> int:
        """log2 of the chunk size."""
    @property
    def chunks(self) -> list[Any]:
        """The static stores (chunks) this store is made of."""
    def retract(self) -> int:
        """Release trailing empty chunks (keeps one); returns how many."""
    def reset(self, log2size: int | None = None, *, size: int | None = None) -> None:
        """Drop every entry, keeping one chunk; optionally change log2size (also spelled size=)."""
    def clone(self) -> DynamicStore:
        """A new, empty dynamic store of the same type, chunk size and size (as many chunks, all empty)."""
    def copy(self) -> DynamicStore:
        """An independent store with the same entries."""

@final
class Container:
    """A live view of one member, indexable 0..N-1."""

    @property
    def name(self) -> str:
        """The member's name."""
    @property
    def dtype(self) -> np.dtype[Any]:
        """The member's numpy dtype."""
    @property
    def read_only(self) -> bool:
        """Whether the member is read-only."""
    def __len__(self) -> int: ...
    def __getitem__(self, key: Any, /) -> Any: ...
    def __setitem__(self, key: Any, value: Any, /) -> None: ...
    def __iter__(self) -> ContainerIterator: ...
    def __array__(self, dtype: Any = None, copy: bool | None = None, /) -> npt.NDArray[Any]: ...
    def to_numpy(self) -> npt.NDArray[Any]:
        """Same as np.asarray(m)."""

@final
class Entry:
    """One slot seen as a dict of member values (a live view).

    An Entry cannot be copied or pickled (``TypeError``): a copy would be a second view of the same slot.
    ``dict(e)`` is a snapshot of its values.
    """

    @property
    def index(self) -> int:
        """The entry's slot index."""
    @property
    def key(self) -> Any:
        """The entry's key (keyed stores; None otherwise)."""
    @property
    def valid(self) -> bool:
        """Whether the slot still holds this entry."""
    def __getitem__(self, name: str, /) -> Any: ...
    def __setitem__(self, name: str, value: Any, /) -> None: ...
    def __getattr__(self, name: str, /) -> Any: ...
    def keys(self) -> list[str]:
        """Member names."""
    def values(self) -> list[Any]:
        """Member values."""
    def items(self) -> list[tuple[str, Any]]:
        """(name, value) pairs."""
    def get(self, name: str, default: Any = None) -> Any:
        """The value of member name, or default."""
    def update(self, mapping: Mapping[str, Any] | None = None, **members: Any) -> None:
        """Set the given members (strict)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def __contains__(self, name: object, /) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: None  # type: ignore[assignment]
    def __copy__(self) -> NoReturn:
        """Refused (TypeError): an Entry is a live view; dict(e) is a snapshot of its values."""
    def __deepcopy__(self, memo: Any, /) -> NoReturn:
        """Refused (TypeError), as copy.copy(e) is."""
    def __reduce__(self) -> NoReturn:
        """Refused (TypeError): a view of a slot has no meaning apart from its store."""

@final
class MemberAttr:
    """`Genes.fitness`: the data descriptor through which `s.fitness` reaches a member of a store type."""

    def __new__(cls, name: str, m: int) -> MemberAttr: ...
    @property
    def name(self) -> str:
        """The member name."""
    def __get__(self, obj: Any, owner: Any = None, /) -> Any: ...
    def __set__(self, obj: Any, value: Any, /) -> None: ...
    def __delete__(self, obj: Any, /) -> None: ...

class KeyedStore:
    """A dict of entries: key → live Entry, over a dynamic store and a Rust hash index.

    Memory the allocator refuses raises MemoryError, and the call changes nothing.
    """

    def __new__(cls, store_type: type[StaticStore], *args: Any, **kwargs: Any) -> Any: ...
    def __init__(
        self, store_type: type[StaticStore], key: Any = None, log2size: int | None = None,
        ignore_unknown: bool = False, *, key_name: str | None = None
    ) -> None:
        """Check that the arguments are those the store was made with."""
    @classmethod
    def _cs_from_columns(
        cls, store_type: type[StaticStore], key: Any, log2size: int | None, ignore_unknown: bool, keys: Any,
        columns: list[tuple[str, Any]], values: list[tuple[str, list[Any]]]
    ) -> Any:
        """from_columns' constructor (private)."""
    def __arrow_c_schema__(self) -> Any:
        """The Arrow schema of the entries, the key first (as column key_name, "key" by default)."""
    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The entries as an Arrow stream (a PyCapsule), the key first, one record batch per chunk."""
    def _cs_arrow_stream(self, members: Any) -> Any:
        """__arrow_c_stream__ of the key and some members (private: to_arrow(members=...))."""
    def __len__(self) -> int: ...
    def __getitem__(self, key: Any, /) -> Any: ...
    def __setitem__(self, key: Any, value: Any, /) -> None: ...
    def __delitem__(self, key: Any, /) -> None: ...
    def __contains__(self, key: object, /) -> bool: ...
    def __iter__(self) -> EntryIterator: ...
    def keys(self) -> KeyedKeys:
        """A live view of the keys: len, in, lazy iteration in slot order, set operations."""
    def values(self) -> KeyedValues:
        """A live view of the entries: len, in, lazy iteration in slot order."""
    def items(self) -> KeyedItems:
        """A live view of the (key, entry) pairs: len, in, lazy iteration in slot order, set operations."""
    def pop(self, key: Any, *default: Any) -> Any:
        """Remove key; return a dict snapshot of its entry (or default)."""
    def popitem(self) -> tuple[Any, dict[str, Any]]:
        """Remove some entry; return (key, dict snapshot)."""
    def clear(self) -> None:
        """Remove every entry."""
    def index_of(self, key: Any) -> int:
        """The slot index of key (KeyError if absent)."""
    @property
    def members(self) -> dict[str, Container]:
        """Member containers, indexed by slot."""
    def find(self, name: Any, value: Any) -> list[Any]:
        """Keys whose member equals value."""
    def modified(self) -> list[Any]:
        """Keys of entries written after creation."""
    def clear_modified(self, keys: Any = None) -> None:
        """Clear the modified marks of all keys, or of the given keys."""
    def validate(self) -> None:
        """Check internal invariants."""
    @property
    def nbytes(self) -> int:
        """Bytes held by the store, keys, table and bitmap."""
    @property
    def store_type(self) -> type[StaticStore]:
        """The static store type of the entries."""
    @property
    def ignore_unknown(self) -> bool:
        """Whether unknown members are dropped."""
    @property
    def key_name(self) -> str:
        """The name of the key column in Arrow exports (``key_name=``, ``"key"`` by default)."""
    def copy(self) -> Any:
        """An independent keyed store with the same keys, entries and modified marks."""
    def __copy__(self) -> Any: ...
    def __deepcopy__(self, memo: Any, /) -> Any: ...
    def __reduce__(self) -> Any: ...

@final
class EntryIterator(Iterator[Any]):
    """A lazy iterator over a store's occupied slots in slot order: their indices, or a keyed store's keys,
    entries or (key, entry) pairs. RuntimeError if entries are added or removed while it runs."""

    def __iter__(self) -> EntryIterator: ...
    def __next__(self) -> Any: ...
    def __length_hint__(self) -> int: ...

@final
class ContainerIterator(Iterator[Any]):
    """A lazy iterator over a member's values, slot 0 to the store's current size."""

    def __iter__(self) -> ContainerIterator: ...
    def __next__(self) -> Any: ...
    def __length_hint__(self) -> int: ...

@final
class KeyedKeys(KeysView[Any]):
    """`pool.keys()`: a live view of a keyed store's keys, in slot order (a set, as a dict's keys are)."""

    def __len__(self) -> int: ...
    def __iter__(self) -> EntryIterator: ...
    def __contains__(self, key: object, /) -> bool: ...
    @property
    def mapping(self) -> KeyedStore:
        """The keyed store this view shows."""
    def isdisjoint(self, other: Iterable[Any], /) -> bool:
        """Whether the view and other have no element in common."""

@final
class KeyedValues(ValuesView[Any]):
    """`pool.values()`: a live view of a keyed store's entries, in slot order."""

    def __len__(self) -> int: ...
    def __iter__(self) -> EntryIterator: ...
    def __contains__(self, value: object, /) -> bool: ...
    @property
    def mapping(self) -> KeyedStore:
        """The keyed store this view shows."""

@final
class KeyedItems(ItemsView[Any, Any]):
    """`pool.items()`: a live view of a keyed store's (key, entry) pairs, in slot order (a set, as a dict's
    items are)."""

    def __len__(self) -> int: ...
    def __iter__(self) -> EntryIterator: ...
    def __contains__(self, item: object, /) -> bool: ...
    @property
    def mapping(self) -> KeyedStore:
        """The keyed store this view shows."""
    def isdisjoint(self, other: Iterable[Any], /) -> bool:
        """Whether the view and other have no element in common."""

@final
class _ArrowData:
    """Record batches read from an Arrow producer (private: from_arrow)."""

    def infer(self, key: str | None = None) -> list[tuple[str, Any]]:
        """The members a store type needs for the columns (but key): [(name, type parts)]."""
    def names(self) -> list[str]:
        """The column names, in order."""
    def __len__(self) -> int: ...
    def to_dynamic(self, cls: type, store_type: type[StaticStore], log2size: Any) -> Any:
        """A dynamic store of class cls holding the rows."""
    def to_keyed(self, cls: type, store_type: type[StaticStore], key: str, log2size: Any) -> Any:
        """A keyed store of class cls keyed by column key."""

def _arrow_read(data: Any) -> _ArrowData:
    """Read everything an object with __arrow_c_stream__ or __arrow_c_array__ produces (private)."""

class FormatError(ValueError):
    """A file or buffer that is not a valid store: wrong magic or version, truncated, or a check failed."""

@final
class _Loaded:
    """A loaded store waiting for its Python type (made by `_load`, `_from_buffer`, `_load_ref`)."""

    @property
    def kind(self) -> str: ...
    @property
    def key(self) -> str | None: ...
    def members(self) -> list[tuple[str, Any, Any, bool]]: ...
    def build(
        self, cls: type, store_type: type, ignore_unknown: bool = False, key_name: str | None = None
    ) -> Any: ...

def _save(store: Any, path: str | PathLike[str]) -> None: ...
def _to_bytes(store: Any, objects: bool = False) -> bytearray: ...
def _put_objects(store: Any, name: str, objects: list[tuple[int, Any]]) -> None: ...
def _load(path: str | PathLike[str], mmap_mode: str | None = None) -> _Loaded: ...
def _from_buffer(buffer: Any, objects: bool = False) -> _Loaded: ...
def _file_ref(store: Any) -> tuple[str, str, bytes, tuple[int, int, int, int]] | None: ...
def _load_ref(
    path: str | PathLike[str], mode: str, file_id: bytes, stat: tuple[int, int, int, int]
) -> _Loaded: ...
def _file_info(store: Any) -> tuple[str | None, str | None]: ...
def _read_only(store: Any) -> bool: ...
