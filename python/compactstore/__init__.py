"""compactstore: many records stored compactly, each member in its own typed, contiguous column.

Derive a store type from :class:`StaticStore` with annotated members (or use :func:`make_store`), then
index each member 0..N-1::

    import compactstore as cs

    class Genes(cs.StaticStore):
        ref: cs.i64
        fitness: cs.f32 = 0.5
        inputs: cs.Array(cs.u8, 8)

    s = Genes(size=1000)
    i = s.add(ref=42)
    s["fitness"][i] += 0.1
    d = cs.DynamicStore(Genes, log2size=11)   # grows in chunks of Genes(2**11)
"""

from __future__ import annotations

import collections.abc
import inspect
from collections.abc import MutableMapping
import operator
import os
import pickle
import sys
import types
import typing
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, TypeAlias

import numpy as np

from compactstore._native import Container, Entry, MemberAttr, Schema, Store, __version__
from compactstore._native import DynamicStore as _NativeDynamicStore
from compactstore._native import KeyedStore as _NativeKeyedStore
from compactstore._native import StaticStore as _NativeStaticStore
from compactstore._native import FormatError
from compactstore import _native
from compactstore import _share
from compactstore._arrow import ArrowMethods as _ArrowMethods
from compactstore._arrow import from_arrow

__all__ = [
    "Array",
    "Bytes",
    "Interned",
    "KeyedStore",
    "Object",
    "Optional",
    "Str",
    "Container",
    "DynamicStore",
    "Entry",
    "FormatError",
    "Member",
    "StaticStore",
    "Store",
    "__version__",
    "bool_",
    "f32",
    "from_arrow",
    "f64",
    "i8",
    "i16",
    "i32",
    "i64",
    "load",
    "make_store",
    "u8",
    "u16",
    "u32",
    "u64",
]

# Member types: the numpy scalar types themselves, so `np.int16` and `cs.i16` are the same spelling. Type
# checkers see the Python type a member reads as (`int`, `float`, `bool`), so `fitness: cs.f32 = 0.5` in a
# store class type-checks under `mypy --strict`.
if TYPE_CHECKING:
    bool_: TypeAlias = bool
    i8: TypeAlias = int
    i16: TypeAlias = int
    i32: TypeAlias = int
    i64: TypeAlias = int
    u8: TypeAlias = int
    u16: TypeAlias = int
    u32: TypeAlias = int
    u64: TypeAlias = int
    f32: TypeAlias = float
    f64: TypeAlias = float
else:
    bool_ = np.bool_
    i8 = np.int8
    i16 = np.int16
    i32 = np.int32
    i64 = np.int64
    u8 = np.uint8
    u16 = np.uint16
    u32 = np.uint32
    u64 = np.uint64
    f32 = np.float32
    f64 = np.float64



class Str:
    """Variable-length UTF-8 text (same as annotating ``str``); also a `KeyedStore` key type.

    Short values live inline in a 16-byte view per entry, long ones in a per-chunk buffer whose garbage is
    compacted as it grows."""


class Bytes:
    """Variable-length bytes (same as annotating ``bytes``); also a `KeyedStore` key type."""


class Interned:
    """`Interned(cs.Str)` / `Interned(cs.Bytes)`: a small code per entry into one dictionary of the distinct
    values, shared by every chunk of a store; values no entry uses any more are reclaimed. For members with
    few distinct values (categories, labels)."""

    __slots__ = ("type",)

    def __init__(self, type: Any) -> None:
        if type in (str, Str):
            self.type: Any = Str
        elif type in (bytes, Bytes):
            self.type = Bytes
        else:
            raise TypeError(f"Interned takes cs.Str or cs.Bytes, not {type!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interned) and other.type is self.type

    def __hash__(self) -> int:
        return hash(("Interned", self.type))

    def __repr__(self) -> str:
        return f"Interned({self.type.__name__})"

    def __or__(self, other: Any) -> Any:
        """``cs.Interned(cs.Str) | None`` is ``cs.Optional(cs.Interned(cs.Str))``."""
        return Optional(self) if other is None else NotImplemented

    __ror__ = __or__


class Object:
    """`cs.Object`: a reference to any Python object per entry, ``None`` by default.

    Opt-in for what fits no other member type: neither compact (the objects live on the Python heap) nor
    fork-friendly (reading one writes its reference count). Objects take part in Python's garbage collector,
    so cycles through an object member are collected. ``copy()`` shares the objects; ``copy.deepcopy()``
    deep-copies them."""


class Optional:
    """`Optional(T)`: any member type T, or ``None`` (a validity bit per entry; an interned member uses a
    reserved code instead). The default is ``None`` unless one is given. ``T | None``,
    ``typing.Optional[T]`` and ``typing.Union[T, None]`` are the same member type (on Python 3.10,
    ``typing.Optional`` takes only classes: spell ``cs.Array(...) | None`` there)."""

    __slots__ = ("type",)

    def __init__(self, type: Any) -> None:
        if isinstance(_optional_union(type), Optional):
            raise TypeError("Optional(Optional(...)) is not a member type")
        if type is Object:
            raise TypeError("Optional(cs.Object) is not a member type: a cs.Object member holds None already")
        _parse(type)
        self.type: Any = type

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Optional) and _parse(other.type) == _parse(self.type)

    def __hash__(self) -> int:
        return hash(("Optional", _parse(self.type)))

    def __repr__(self) -> str:
        return f"Optional({self.type!r})"


_NUMPY_NAMES = {
    "bool": "bool",
    "int8": "i8",
    "int16": "i16",
    "int32": "i32",
    "int64": "i64",
    "uint8": "u8",
    "uint16": "u16",
    "uint32": "u32",
    "uint64": "u64",
    "float32": "f32",
    "float64": "f64",
}
_BUILTINS = {bool: "bool", int: "i64", float: "f64"}


class Array:
    """`Array(T, n)`: n values of numeric type T per entry, stored contiguously.

    A row reads as a read-only numpy array of shape (n,); write it with ``m[i] = row`` or one element with
    ``m[i, k] = v``.
    """

    __slots__ = ("dtype", "length")

    def __init__(self, dtype: Any, length: int) -> None:
        try:
            n = operator.index(length)  # numpy ints too, as numpy takes them
        except TypeError:
            n = 0
        if isinstance(length, (bool, np.bool_)) or n < 1:
            raise TypeError(f"Array length must be an int >= 1, got {length!r}")
        if n > 65536:
            raise TypeError(f"Array length {n} is beyond the largest array member (65536 elements)")
        self.dtype = _scalar_name(dtype)
        self.length = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Array) and (other.dtype, other.length) == (self.dtype, self.length)

    def __hash__(self) -> int:
        return hash(("Array", self.dtype, self.length))

    def __repr__(self) -> str:
        return f"Array({self.dtype}, {self.length})"

    def __or__(self, other: Any) -> Any:
        """``cs.Array(T, n) | None`` is ``cs.Optional(cs.Array(T, n))``."""
        return Optional(self) if other is None else NotImplemented

    __ror__ = __or__


class Member:
    """`Member(T, default=..., read_only=False)`: a member type with options.

    A ``read_only`` member is written only when its entry is created (``add``, ``s[name] = v`` on the newest
    entry, or a keyed store's ``pool[k] = mapping``); writes through a container or an entry raise
    ``TypeError``.
    """

    __slots__ = ("type", "default", "read_only")

    _NO_DEFAULT: Any = object()

    def __init__(self, type: Any, default: Any = _NO_DEFAULT, read_only: bool = False) -> None:
        if isinstance(type, Member):
            raise TypeError("Member(Member(...)) is not a member type")
        _parse(type)
        self.type = type
        self.default = default
        self.read_only = bool(read_only)

    def __repr__(self) -> str:
        return f"Member({self.type!r}, default={self.default!r}, read_only={self.read_only})"


def _scalar_name(t: Any) -> str:
    """The short dtype name of a numeric scalar type (`cs.i64`, `np.int16`, `int`, `float`, `bool`)."""
    if isinstance(t, type) and t in _BUILTINS:
        return _BUILTINS[t]
    if isinstance(t, type) and issubclass(t, np.generic):
        name = np.dtype(t).name
        if name in _NUMPY_NAMES:
            return _NUMPY_NAMES[name]
    raise TypeError(
        f"unsupported member type {t!r}: use a cs. numeric type, int, float, bool, str, bytes, cs.Array, "
        "cs.Interned or cs.Optional"
    )


def _optional_union(t: Any) -> Any:
    """`T | None`, `typing.Optional[T]` and `typing.Union[T, None]` as `Optional(T)`; any other union is a
    `TypeError`; anything else is returned as it is."""
    if typing.get_origin(t) is typing.Union or isinstance(t, types.UnionType):
        args = typing.get_args(t)
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return Optional(rest[0])
        raise TypeError(f"unsupported member type {t!r}: the only union a member type can be is `T | None`")
    return t


def _parse(t: Any) -> tuple[str, int]:
    """`(type spec, length)` of a member type, as the native Schema takes it: a dtype name (`"i64"`),
    `"str"`, `"bytes"`, `"interned[str]"`, `"interned[bytes]"` or `"optional[<spec>]"`; length is the
    element count of an Array (0 for anything else). `T | None` (also spelled `typing.Optional[T]`) is
    `Optional(T)`."""
    t = _optional_union(t)
    if isinstance(t, Array):
        return t.dtype, t.length
    if t in (str, Str):
        return "str", 0
    if t in (bytes, Bytes):
        return "bytes", 0
    if isinstance(t, Interned):
        return f"interned[{'str' if t.type is Str else 'bytes'}]", 0
    if t is Object:  # opt-in: the builtin `object` is not an annotation for it
        return "object", 0
    if isinstance(t, Optional):
        spec, length = _parse(t.type)
        return f"optional[{spec}]", length
    return _scalar_name(t), 0


def _member_type_from_parts(parts: tuple[Any, ...]) -> Any:
    """The Python spelling of a member type (what `m.dtype` shows for non-numeric members) from the nested
    tuples the native module describes it with: `("scalar", dtype_name)`, `("array", dtype_name, length)`,
    `("str",)`, `("bytes",)`, `("object",)`, `("interned", <inner>)`, `("optional", <inner>)`."""
    kind = parts[0]
    if kind == "optional":
        return Optional(_member_type_from_parts(parts[1]))
    if kind == "interned":
        return Interned(_member_type_from_parts(parts[1]))
    if kind in ("scalar", "array"):
        scalar = np.dtype({v: k for k, v in _NUMPY_NAMES.items()}[parts[1]]).type
        return Array(scalar, parts[2]) if kind == "array" else scalar
    return {"str": Str, "bytes": Bytes, "object": Object}[kind]


def _member_tuple(name: str, spec: Any, default: Any = Member._NO_DEFAULT) -> tuple[str, str, int, Any, bool]:
    read_only = False
    if isinstance(spec, Member):
        if spec.default is not Member._NO_DEFAULT:
            default = spec.default
        read_only = spec.read_only
        spec = spec.type
    elif isinstance(spec, Mapping):
        # egp-utils' field-definition dicts: {"type": np.int64, "length": 1, "default": 0, "read_only": ...}
        # (a "default" of None there means none, as in egp-utils).
        length = spec.get("length", 1)
        t = spec["type"] if length == 1 else Array(spec["type"], length)
        given = spec.get("default")
        return _member_tuple(
            name, Member(t, Member._NO_DEFAULT if given is None else given, bool(spec.get("read_only", False)))
        )
    dtype, length = _parse(spec)
    if default is None and not dtype.startswith("optional[") and dtype != "object":
        tname = getattr(spec, "__name__", repr(spec))
        raise TypeError(f"member {name!r}: None is not a value of {tname} (use cs.Optional({tname}))")
    if dtype == "object" and default is not None and default is not Member._NO_DEFAULT:
        raise TypeError(
            f"member {name!r}: a cs.Object member's default is None (one default object would be shared by "
            "every entry)"
        )
    return (name, dtype, length, None if default is Member._NO_DEFAULT else default, read_only)


def _is_classvar(spec: Any) -> bool:
    return spec is typing.ClassVar or typing.get_origin(spec) is typing.ClassVar


def _annotations(cls: type) -> dict[str, Any]:
    """The member annotations a class body defines, in order. String annotations (``from __future__ import
    annotations``) are evaluated in the class's module and namespace; ``ClassVar`` annotations are not
    members."""
    out = {}
    namespaces: tuple[dict[str, Any], dict[str, Any]] | None = None
    for name, spec in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(spec, str):
            if namespaces is None:
                module = sys.modules.get(cls.__module__)
                namespaces = (dict(vars(module)) if module else {}, dict(vars(cls)))
            try:
                spec = eval(spec, *namespaces)  # noqa: S307
            except Exception as e:
                raise TypeError(
                    f"{cls.__name__}.{name}: cannot evaluate the annotation {spec!r} ({e}); names it uses must "
                    "be module globals (or define the type with make_store)"
                ) from e
        if not _is_classvar(spec):
            out[name] = spec
    return out


class _Files:
    """Saving and pickling, shared by every store class (see ``docs/reference/files.md``)."""

    __slots__ = ()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the whole store to ``path`` atomically: entries, free slots and their indices,
        ``last_index``, keys and modified marks, interned dictionaries (the file format is in
        ``docs/design/file-format.md``).

        The store is written to a temporary file in the same directory, synced, and renamed over ``path``
        (then the directory is synced): a crash at any moment leaves the old file or the new one, and
        processes that mapped the old file keep reading it. A store with ``cs.Object`` members raises
        ``TypeError`` naming the member (nothing is written); ``FileNotFoundError``/``PermissionError`` as
        Python's."""
        _native._save(self, os.fspath(path))

    @property
    def filename(self) -> str | None:
        """The file a store loaded with ``mmap_mode`` maps (an absolute path), else ``None``."""
        f = _native._file_info(self)[0]
        return None if f is None else os.fspath(f)

    @property
    def mmap_mode(self) -> str | None:
        """``"r"``, ``"r+"`` or ``"c"`` for a store loaded with that ``mmap_mode``, else ``None``."""
        return _native._file_info(self)[1]

    def share(self, writable: bool = False, dir: str | os.PathLike[str] | None = None) -> Any:
        """Save the store into shared memory and return it mapped, for worker processes to map too.

        The file goes in ``/dev/shm`` (or the folder ``dir``); the store returned is mapped ``"r"``, or
        ``"r+"`` with ``writable=True`` (then this process may write fixed-width members in place and every
        worker sees the new values). It pickles as a read-only reference to the file, so workers of every
        ``multiprocessing`` start method map the same pages instead of receiving a copy. The file is
        removed by ``unlink()``, at the end of a ``with s.share() as shared:`` block, or when this process
        exits; never by a worker. A ``cs.Object`` member raises ``TypeError`` (nothing is written)."""
        return _share.share(self, load, _record_type(self), writable, dir)

    def unlink(self) -> None:
        """Remove the file of a store made by ``share()`` (in the process that shared it; a second call
        does nothing). Processes that have the store mapped keep reading it; unpickling a reference to it
        afterwards raises ``FileNotFoundError``. ``ValueError`` for a store that is not mapped from a file,
        ``RuntimeError`` in another process than the one that shared it."""
        _share.unlink(self)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        """The end of a ``with`` block: a store this process shared is unlinked; any other is left as is."""
        if _share.is_creator(self.filename):
            _share.unlink(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickle support: a store mapped ``"r"``/``"r+"`` pickles as a reference to its file (path, mode
        and what identifies the file's content: loading it refuses with ``ValueError`` once the file was
        replaced); any other store by value, as its file image in one buffer (with protocol 5 a
        ``pickle.PickleBuffer``, which travels out of band with a ``buffer_callback``). A store with
        ``cs.Object`` members carries them in its image without their objects, which are pickled in band
        beside it (by slot; any picklable object); it is unpickled writable."""
        base = _base_class(self)
        store_type = _record_type(self)
        if not _by_reference(store_type):
            # A type made at run time (``cs.load`` or ``cs.from_arrow`` without a store type, or one not
            # reachable by its name): the file image carries the members, and the type is made from them.
            store_type = None
        if not _by_reference(base):
            base = None  # a static store's own class (its record type), or a class made at run time
        options: dict[str, Any] = {}
        if getattr(self, "ignore_unknown", False):
            options["ignore_unknown"] = True
        key_name = getattr(self, "key_name", "key")
        if key_name != "key":
            options["key_name"] = key_name
        ref = _native._file_ref(self)
        if ref is not None and ref[1] in ("r", "r+"):
            path, mode, file_id, stat = ref
            if mode == "r+" and _share.was_shared(os.fspath(path)):
                mode = "r"  # a shared store reaches workers read-only: its creator is its one writer
            return (_restore_ref, (base, store_type, path, mode, file_id, stat, options))
        names = _object_members(_record_type(self))
        data = _native._to_bytes(self, objects=True) if names else _native._to_bytes(self)
        payload = pickle.PickleBuffer(data) if isinstance(protocol, int) and protocol >= 5 else bytes(data)
        restore = _restore_buffer if isinstance(payload, pickle.PickleBuffer) else _restore_bytes
        if names:
            # The image carries the object members' types, not their objects: those go in band, pickled
            # by pickle itself (anything picklable; one object referenced twice stays one).
            return (restore, (base, store_type, payload, options, _object_values(self, names)))
        return (restore, (base, store_type, payload, options))


class StaticStore(_Files, _NativeStaticStore, _ArrowMethods):
    """A store of a fixed number of slots (`Genes(size=65536)`), each member in its own typed column.

    Derive a class with annotated members; annotations define members in declaration order, a class
    attribute gives a member's default. A bad annotation raises ``TypeError`` at class creation.

    A store type can be extended as a dataclass can: a subclass has its parent's members, in their order,
    then its own. A class attribute named like an inherited member gives it a new default; annotating an
    inherited member again redefines it in its place (its type, default and options then all come from
    the subclass).
    """

    __slots__ = ()
    # CPython's own attribute lookup: members are reached through the MemberAttr descriptors
    # `__init_subclass__` puts on the class, and method calls keep CPython's fast path (the native base's
    # lookup, which also finds members, would make a bound method per call).
    __getattribute__ = object.__getattribute__
    _cs_schema: ClassVar[Schema]
    _cs_members: ClassVar[list[tuple[str, str, int, Any, bool]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = _annotations(cls)
        for name in own:
            _check_member_name(name)
        # As a dataclass does: the parent's members first, in their order, then the subclass's own. A class
        # attribute named like an inherited member gives it a new default; annotating an inherited member
        # again redefines it (type, default and options all from the subclass) in its place.
        members = []
        for name, dtype, length, default, read_only in getattr(cls, "_cs_members", ()):
            if name in own:
                members.append(_member_tuple(name, own.pop(name), cls.__dict__.get(name, Member._NO_DEFAULT)))
            else:
                members.append(
                    (name, dtype, length, cls.__dict__[name] if name in cls.__dict__ else default, read_only)
                )
        for name, spec in own.items():
            members.append(_member_tuple(name, spec, cls.__dict__.get(name, Member._NO_DEFAULT)))
        schema = Schema(members)
        for name in schema.names():
            if name in cls.__dict__:
                delattr(cls, name)  # the default moved into the schema; `s.name` is the container
        _member_descriptors(cls, schema)
        cls._cs_members = members
        cls._cs_schema = schema


def _check_member_name(name: str) -> None:
    """Refuse the member names that belong to Python or to this package: dunder names (``__module__``,
    ``__doc__``, ``__dict__``, ``__slots__``, ...) and names starting with ``_cs_`` (the package's class
    attributes)."""
    if (len(name) > 4 and name.startswith("__") and name.endswith("__")) or name.startswith("_cs_"):
        raise TypeError(
            f"member name {name!r} is reserved: names of the form __name__ belong to Python and names "
            "starting with _cs_ to compactstore"
        )


def _member_descriptors(cls: type, schema: Schema) -> None:
    """Put a `MemberAttr` on `cls` for each member that no class in its MRO already names (a method or
    property of the same name comes first: that member is reached with s[name])."""
    for m, name in enumerate(schema.names()):
        if not any(name in k.__dict__ for k in cls.__mro__):
            setattr(cls, name, MemberAttr(name, m))


class DynamicStore(_Files, _NativeDynamicStore, _ArrowMethods):
    """A store that grows by appending static stores (chunks) of ``2**log2size`` slots; existing data never
    moves. ``DynamicStore(Genes, log2size=11)``.

    Each store type gets its own subclass (made once, named like the class it derives from) that carries
    the type's members as class descriptors, so ``d.fitness`` is a descriptor lookup and method calls keep
    CPython's fast attribute path; ``isinstance(d, cs.DynamicStore)`` holds. A user subclass of
    ``DynamicStore`` gets the same, derived from it.
    """

    __slots__ = ()
    __getattribute__ = object.__getattribute__
    #: A weak reference to the store type whose members this class carries (per-type subclasses only;
    #: weak, so the class never keeps its store type alive).
    _cs_for: ClassVar[Any] = None

    def __new__(cls, store_type: Any, *args: Any, **kwargs: Any) -> DynamicStore:
        # The arguments after the store type are `__init__`'s (a subclass's own `__init__` may take other
        # ones): the native constructor takes only the store type.
        if cls._cs_for is None or cls._cs_for() is not store_type:
            cls = _dynamic_class(cls, store_type)
        return typing.cast(DynamicStore, super().__new__(cls, store_type))

    # `inspect.signature(cs.DynamicStore)` and help() show the public signature, not `*args, **kwargs`.
    __new__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("store_type", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            inspect.Parameter("log2size", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
        ]
    )


def _dynamic_class(base: type[DynamicStore], store_type: Any) -> type[DynamicStore]:
    """The subclass of `base` for `store_type`, with its member descriptors (made once per pair)."""
    if not (isinstance(store_type, type) and issubclass(store_type, StaticStore)) or not hasattr(
        store_type, "_cs_schema"
    ):
        return base  # the native constructor explains what it takes
    # A per-type class asked for another store type: derive from the class it was made from (a user's
    # subclass of a per-type class is kept: it is not itself a per-type class).
    while base.__dict__.get("_cs_for") is not None:
        base = base.__bases__[0]
    # The per-type classes of `base`, kept on `base` itself: weak on the store type; a per-type class
    # refers to `base` (its base class) and `base` to it, a cycle the garbage collector frees with `base`.
    made = base.__dict__.get("_cs_per_type")
    if made is None:
        made = weakref.WeakKeyDictionary()
        setattr(base, "_cs_per_type", made)
    sub = made.get(store_type)
    if sub is None:
        ns = {
            "__slots__": (),
            "__module__": base.__module__,
            "__qualname__": base.__qualname__,
            "__doc__": base.__doc__,
            "_cs_for": weakref.ref(store_type),
        }
        sub = type(base.__name__, (base,), ns)
        _member_descriptors(sub, store_type._cs_schema)
        made[store_type] = sub
    return sub


def make_store(name: str, members: Mapping[str, Any], *, module: str | None = None) -> type[StaticStore]:
    """Define a store type from ``{member: type}`` (a type, ``cs.Array``, ``cs.Member`` or egp-utils'
    field-definition dict ``{"type": np.int64, "length": 1, "default": 0, "read_only": False}``).

    As ``collections.namedtuple`` does, the type's ``__module__`` is the calling module's (or ``module``),
    so a type assigned to a module-level name of the same name pickles by reference and reaches spawned
    worker processes.
    """
    if not isinstance(members, Mapping):
        raise TypeError("make_store takes a mapping of member names to types")
    if module is None:
        try:
            module = sys._getframe(1).f_globals.get("__name__", "__main__")
        except (AttributeError, ValueError):  # an interpreter without frames, or no caller
            module = __name__
    annotations = {str(k): v for k, v in members.items()}
    ns = {"__slots__": (), "__annotations__": annotations, "__module__": module, "__qualname__": name}
    cls: type[StaticStore] = type(name, (StaticStore,), ns)
    return cls


# An entry is a mapping of member names to values (a live view): isinstance(e, Mapping) holds.
collections.abc.Mapping.register(Entry)


class KeyedStore(_Files, _NativeKeyedStore, MutableMapping[Any, Any], _ArrowMethods):
    """A dict of entries: key → live `Entry`, backed by a dynamic store and a Rust hash index.

    ``KeyedStore(Genes, key=cs.i64, log2size=16, ignore_unknown=False)``; key is ``cs.i64``, ``cs.u64``,
    ``cs.Str`` or ``cs.Bytes``. ``pool[k] = mapping`` replaces the entry (members not given get their
    defaults); ``pool[k]`` is a live `Entry`; ``pool[k, name]`` reads or writes one member without making
    an `Entry`. ``pop``/``popitem`` return plain dict snapshots. Iteration is in slot order.
    """

    __slots__ = ()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``pool[key]`` if present, else store ``default`` (a mapping of member values) and return the new
        entry: the stored value is a live `Entry`, so ``pool.setdefault(k, {})["fitness"] += 1`` works."""
        try:
            return self[key]
        except KeyError:
            self[key] = default
            return self[key]

    @classmethod
    def from_columns(
        cls,
        store_type: type[StaticStore],
        keys: Any,
        columns: Mapping[str, Any],
        key: Any = None,
        log2size: int | None = None,
        ignore_unknown: bool = False,
    ) -> "KeyedStore":
        """Bulk-load a keyed store from a key array and ``{member: array}`` columns, at memory speed.

        Each column is converted to the member's dtype (an int column out of the member's range raises
        ``OverflowError``, a float column for an int member ``TypeError``; an empty column, as ``[]`` with no
        keys, takes any dtype); an Array member takes shape (len(keys), n), another shape raises
        ``ValueError`` naming both. Str, bytes, interned, optional and object members take any sequence of values
        (converted one by one, as writes are). Duplicate keys raise ``ValueError``; members not given get
        their defaults. No key is marked modified. The store is made without running the `__init__` of a
        subclass `cls` (an alternative constructor; its arguments are unknown here).
        """
        if not (isinstance(store_type, type) and issubclass(store_type, StaticStore)) or not hasattr(
            store_type, "_cs_schema"
        ):
            raise TypeError(f"from_columns takes a store type (a StaticStore subclass with members), not {store_type!r}")
        schema = store_type._cs_schema
        kind = key if key is not None else i64
        if kind in (Str, str):
            keys_arg: Any = [str(k) if isinstance(k, np.str_) else k for k in keys]
        elif kind in (Bytes, bytes):
            keys_arg = list(keys)
        else:
            keys_arr = np.asarray(keys)
            if keys_arr.size == 0:
                keys_arr = keys_arr.astype(np.dtype(kind))  # no keys: `[]` is float64 to numpy
            keys_arg = _convert_column(keys_arr, np.dtype(kind), "keys")
            if keys_arg.ndim != 1:
                raise ValueError("keys must be 1-d")
        n = len(keys_arg)
        cols = []
        vals = []
        probe = _NativeStaticStore.__new__(store_type)  # no slots, and no __init__ of a subclass run
        for name, values in columns.items():
            if name not in schema.names():
                if ignore_unknown:
                    continue
                raise KeyError(name)
            dtype = probe[name].dtype
            if not isinstance(dtype, np.dtype):
                # str, bytes, interned, optional and object members: a sequence of values, each converted
                # as a write converts it (a str or bytes is one value, not a column of its characters)
                if isinstance(values, (str, bytes, bytearray, memoryview)):
                    raise TypeError(
                        f"column {name!r}: a column is a sequence of values, not a single {type(values).__name__}"
                    )
                items = values.tolist() if isinstance(values, np.ndarray) and dtype is not Object else list(values)
                if len(items) != n:
                    raise ValueError(f"column {name!r} has {len(items)} rows for {n} keys")
                vals.append((name, items))
                continue
            want = (n, *np.asarray(probe[name]).shape[1:])  # (n,) or an Array member's (n, length)
            arr = np.asarray(values)
            if arr.size == 0 and n == 0:
                # No rows: `[]` is float64 to numpy, and has no columns; nothing to convert.
                arr = np.zeros(want, dtype)
            arr = _convert_column(arr, dtype, name)
            if arr.ndim == 0 or arr.shape[0] != n:
                rows = arr.shape[0] if arr.ndim else "no"
                raise ValueError(f"column {name!r} has {rows} rows for {n} keys")
            if arr.shape != want:
                raise ValueError(f"column {name!r} has shape {arr.shape}, the member takes shape {want}")
            cols.append((name, np.ascontiguousarray(arr).reshape(-1).view(np.uint8)))
        pool: KeyedStore = cls._cs_from_columns(store_type, kind, log2size, ignore_unknown, keys_arg, cols, vals)
        return pool


def _convert_column(arr: Any, dtype: Any, name: str) -> Any:
    """`arr` as `dtype`, refusing lossy conversions: float → int is a TypeError, an int beyond the
    target's range an OverflowError."""
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    if dtype.kind == "b" and arr.dtype.kind != "b":
        raise TypeError(f"column {name!r}: a bool member takes a bool array, not {arr.dtype}")
    if dtype.kind in "iu":
        if arr.dtype.kind not in "iub":
            raise TypeError(f"column {name!r}: an int member takes an int array, not {arr.dtype}")
        if arr.size and not np.can_cast(arr.dtype, dtype, "safe"):
            info = np.iinfo(dtype)
            if int(arr.min()) < info.min or int(arr.max()) > info.max:
                raise OverflowError(f"column {name!r}: values out of range for {dtype}")
    elif dtype.kind == "f":
        if arr.dtype.kind not in "iufb":
            raise TypeError(f"column {name!r}: a float member takes a numeric array, not {arr.dtype}")
        if dtype.itemsize == 4 and arr.dtype.kind == "f" and arr.size:
            finite = arr[np.isfinite(arr)]
            if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
                raise OverflowError(f"column {name!r}: values out of range for float32")
    return np.ascontiguousarray(arr.astype(dtype))


# ------------------------------------------------------------------------------------------ files, pickle


def _record_type(self: Any) -> Any:
    return type(self) if isinstance(self, StaticStore) else self.store_type


def _by_reference(cls: Any) -> bool:
    """Whether pickle can find the class ``cls`` by its module and qualified name."""
    obj: Any = sys.modules.get(getattr(cls, "__module__", None) or "")
    for part in getattr(cls, "__qualname__", "").split("."):
        obj = getattr(obj, part, None)
    return obj is cls


def _rebuild(loaded: Any, base: Any, store_type: Any, options: Any) -> Any:
    """Build an unpickled store; a ``store_type`` of ``None`` is made from the file's members."""
    if store_type is None:
        store_type = _type_from_file(loaded)
    return loaded.build(_class_for(loaded.kind, store_type, base), store_type, **(options or {}))


def _class_for(kind: str, store_type: Any, base: Any = None) -> Any:
    """The class a loaded store of `kind` with entries of `store_type` is made as."""
    if kind == "static":
        return store_type
    if kind == "dynamic":
        return _dynamic_class(base if base is not None else DynamicStore, store_type)
    return base if base is not None else KeyedStore


def _base_class(self: Any) -> Any:
    """The class to rebuild a pickled store as: its own, or for a per-type DynamicStore class the class
    it was made from."""
    cls = type(self)
    while cls.__dict__.get("_cs_for") is not None:
        cls = cls.__bases__[0]
    return cls


def _object_members(store_type: Any) -> list[str]:
    """The names of a record type's ``cs.Object`` members."""
    return [m[0] for m in getattr(store_type, "_cs_members", ()) if m[1] == "object"]


def _object_values(store: Any, names: list[str]) -> dict[str, list[tuple[int, Any]]]:
    """Each object member's values that are not None, as (slot index, object) pairs: every slot of a
    static or dynamic store (a free slot may hold a value written to it, as other members' do), a keyed
    store's occupied slots."""
    if isinstance(store, KeyedStore):
        containers = store.members
        slots: Any = [store.index_of(k) for k in store]
    else:
        containers = {name: store[name] for name in names}
        slots = range(store.size)
    out: dict[str, list[tuple[int, Any]]] = {}
    for name in names:
        c = containers[name]
        out[name] = [(i, v) for i in slots if (v := c[i]) is not None]
    return out


def _put_objects(store: Any, objects: Any) -> Any:
    """Put a pickled store's objects back (its image loaded them as None), as ``copy()`` gives a copy its
    references: read-only members too, and a keyed store's modified marks stay those of the image."""
    for name, pairs in (objects or {}).items():
        _native._put_objects(store, name, pairs)
    return store


def _restore_bytes(base: Any, store_type: Any, data: Any, options: Any = None, objects: Any = None) -> Any:
    """Unpickle a store carried in band (an ordinary, writable store); `objects` are its object members'
    values (`_object_values`), if it has any."""
    loaded = _native._from_buffer(bytearray(data), objects=objects is not None)
    store = _rebuild(loaded, base, store_type, options)
    return _put_objects(store, objects)


def _restore_buffer(base: Any, store_type: Any, data: Any, options: Any = None, objects: Any = None) -> Any:
    """Unpickle a store from its buffer: a writable buffer gives an ordinary store over it, a read-only
    one a read-only store (as ``mmap_mode="r"``) until ``copy()``; `objects` as `_restore_bytes`'s (a
    store with object members is always writable: its objects are put back, so a read-only buffer is
    copied first)."""
    if objects is not None and memoryview(data).readonly:
        data = bytearray(data)
    loaded = _native._from_buffer(data, objects=objects is not None)
    store = _rebuild(loaded, base, store_type, options)
    return _put_objects(store, objects)


def _restore_ref(
    base: Any, store_type: Any, path: Any, mode: str, file_id: bytes, stat: Any, options: Any = None
) -> Any:
    """Unpickle a store mapped from a file: map the same file again, refusing (``ValueError``) if it
    was replaced since."""
    loaded = _native._load_ref(path, mode, file_id, stat)
    return _rebuild(loaded, base, store_type, options)


def _type_from_file(loaded: Any) -> Any:
    members = {}
    for name, parts, default, read_only in loaded.members():
        members[name] = Member(_member_type_from_parts(parts), default, read_only)
    return make_store("Loaded", members, module=__name__)


def load(path: str | os.PathLike[str], store_type: Any = None, mmap_mode: str | None = None) -> Any:
    """Load the store saved at ``path`` (by ``s.save(path)``).

    ``store_type`` is the record type (the ``StaticStore`` subclass) for every store kind; a file whose
    members differ raises ``TypeError``. Without it, a store type is made from the file's members.
    ``mmap_mode`` is as numpy.load's: ``None`` reads the file into memory (an ordinary store); ``"r"`` maps
    it read-only (every write, allocation, ``del`` or reset raises ``TypeError``); ``"c"`` maps it
    copy-on-write (an ordinary store; the file never changes); ``"r+"`` maps it shared (in-place writes
    of fixed-width members reach the file; allocation, ``del``, reset and str/bytes/interned writes raise
    ``TypeError``). Opening a mapped file checks its header, not its data: it costs the same for any
    number of entries (a keyed store's index is rebuilt, see the docs); ``validate()`` checks the rest.

    A file that is not a store, is truncated or fails its checks raises ``cs.FormatError`` (a
    ``ValueError``); ``FileNotFoundError``/``PermissionError`` as Python's.
    """
    if store_type is not None and not (
        isinstance(store_type, type) and issubclass(store_type, StaticStore) and hasattr(store_type, "_cs_schema")
    ):
        raise TypeError(f"store_type must be a StaticStore subclass with members, not {store_type!r}")
    loaded = _native._load(os.fspath(path), mmap_mode)
    if store_type is None:
        store_type = _type_from_file(loaded)
    return loaded.build(_class_for(loaded.kind, store_type), store_type)
