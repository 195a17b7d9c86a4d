"""Writing outputs safely: atomic replacement (a reader sees the old file or the new one, never half of one),
and a lock on an output folder so that two live runs never write into the same one.

Atomic: each write goes to a temporary name in the same folder, then :func:`os.replace` (atomic on POSIX).
Lock: ``OUT/.slfm.lock`` holds the owner's pid and host; a lock whose pid no longer runs on this host is
stale and taken over.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from slfm.errors import SlfmError

LOCK_NAME = ".slfm.lock"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to (a file, or a folder for e.g. ``.mlpackage``); on
    success it replaces ``path`` atomically, on an exception it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()  # the writer creates it (some writers refuse an existing file)
    try:
        yield tmp
        if not tmp.exists():
            raise SlfmError(f"nothing was written for {path}")
        if tmp.is_dir() and path.is_dir():  # os.replace cannot replace a non-empty folder: swap via a side name
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _holder(lock: Path) -> tuple[int, str] | None:
    """(pid, host) written in a lock file, or None if it is unreadable (being written, or garbage)."""
    try:
        pid, _, host = lock.read_text().strip().partition(" ")
        return int(pid), host
    except (OSError, ValueError):
        return None


def _age(path: Path) -> float:
    import time

    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "slfm") -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process. Another live process holding it: SlfmError
    naming its pid. A lock left by a process that no longer runs (killed) is taken over."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    me = f"{os.getpid()} {socket.gethostname()}\n"
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder is None and _age(lock) < 5:  # just created by another process, pid not written yet
                raise SlfmError(
                    f"{folder} is in use by another {what} run (lock {lock}): choose another --out"
                ) from None
            if holder is not None and holder[0] == os.getpid():
                yield folder  # re-entrant within one process
                return
            if holder is not None and (holder[1] != socket.gethostname() or _pid_alive(holder[0])):
                where = "" if holder[1] == socket.gethostname() else f" on {holder[1]}"
                raise SlfmError(
                    f"{folder} is in use by another {what} run (pid {holder[0]}{where}, lock {lock}): "
                    "wait for it or choose another --out"
                ) from None
            lock.unlink(missing_ok=True)  # stale (its process is gone) or unreadable: take it over
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        break
    else:
        raise SlfmError(f"cannot take the lock {lock}: another process keeps recreating it")
    try:
        yield folder
    finally:
        if _holder(lock) == (os.getpid(), socket.gethostname()):
            lock.unlink(missing_ok=True)


def shown_path(path: str | Path) -> str:
    """A path as a report shows it: relative to the working folder where it lies under it (a committed report
    then names ``slfm/models/x.pt``, not the folder of the machine that wrote it), else as given."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
