"""`s.share()`: a store saved into shared memory and mapped, for worker processes to map in turn.

A shared store is an ordinary saved store (see ``s.save``) in a file under ``/dev/shm`` (or ``dir=``),
mapped ``"r"`` (``"r+"`` when writable) by the creator. It pickles as a read-only reference to that file,
so a worker of any start method maps the same pages instead of receiving a copy.

The file belongs to the process that called ``share()``: it is removed by ``shared.unlink()``, at the
end of a ``with s.share() as shared:`` block, or when that process exits (normally or by an exception;
not after ``kill -9`` or a fatal signal, which leave it in ``/dev/shm`` until removed by hand or at
reboot). It is never removed by a worker: the registry of files to remove is keyed by the creating
process's id, so a forked child that inherits it removes nothing. ``multiprocessing.shared_memory`` is
not used: before Python 3.13 its resource tracker removes segments that a child merely opened.
"""

from __future__ import annotations

import atexit
import errno
import os
import secrets
import tempfile
import threading
from typing import Any

#: Files this interpreter shared: path -> id of the process that shared it. Inherited by forked
#: children, which are not the creator (their pid differs) and so remove nothing.
_CREATED: dict[str, int] = {}
#: Paths shared and then removed by `unlink()` (a second `unlink()` is a no-op).
_REMOVED: set[str] = set()
_LOCK = threading.Lock()
_ATEXIT = False


def default_dir() -> str:
    """Where shared stores go: ``/dev/shm`` (memory, not disk) where it exists, else the temp folder."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def share(store: Any, load: Any, store_type: Any, writable: bool, dir: Any) -> Any:
    """Save `store` into a new file in `dir` and return it mapped (see the module's docstring)."""
    folder = os.path.abspath(os.fspath(default_dir() if dir is None else dir))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "no such directory", folder)
    path = os.path.join(folder, f"compactstore-{os.getpid()}-{secrets.token_hex(8)}.store")
    store.save(path)  # refuses a cs.Object member (TypeError) before writing anything
    _register(path)
    try:
        shared = load(path, store_type=store_type, mmap_mode="r+" if writable else "r")
    except BaseException:
        unlink_path(path)
        raise
    if shared.filename != path:  # the name the mapping reports (a resolved path) is the one to remove
        with _LOCK:
            _CREATED[shared.filename] = _CREATED.pop(path)
    return shared


def _register(path: str) -> None:
    global _ATEXIT
    with _LOCK:
        _CREATED[path] = os.getpid()
        _REMOVED.discard(path)
        if not _ATEXIT:
            atexit.register(_remove_all)
            _ATEXIT = True


def is_creator(path: str | None) -> bool:
    """Whether this process shared the store at `path` (and has not removed it yet)."""
    return path is not None and _CREATED.get(path) == os.getpid()


def was_shared(path: str) -> bool:
    """Whether the file at `path` was made by ``share()`` in this process or the one it forked from."""
    return path in _CREATED or path in _REMOVED


def unlink_path(path: str) -> None:
    with _LOCK:
        _CREATED.pop(path, None)
        _REMOVED.add(path)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def unlink(store: Any) -> None:
    """Remove a shared store's file (the creating process only; a second call does nothing)."""
    path = store.filename
    if path in _REMOVED:
        return
    if path is None:
        raise ValueError("not a shared store: only a store returned by share() has a file to unlink")
    if _CREATED.get(path) != os.getpid():
        raise RuntimeError(
            f"{path}: only the process that created a shared store (with share()) removes its file; "
            "this process did not create it"
        )
    unlink_path(path)


def _remove_all() -> None:
    """At the creator's exit: remove the files it shared and did not remove."""
    me = os.getpid()
    for path, pid in list(_CREATED.items()):
        if pid == me:
            unlink_path(path)
