"""Atomic file writes: a temp file in the target's directory, fsync, ``os.replace``.

A reader sees the old file or the complete new one, never a half-written file,
and an error (or Ctrl-C) during the write leaves the old file as it was and no
temp file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Open a binary temp file that replaces ``path`` once the ``with`` block succeeds.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from ember._src.io.atomic import atomic_write
        >>> target = Path(tempfile.mkdtemp()) / "a.bin"
        >>> with atomic_write(target) as f:
        ...     _ = f.write(b"ok")
        >>> target.read_bytes()
        b'ok'
    """
    target = os.path.abspath(os.fspath(path))
    directory, base = os.path.split(target)
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot write {target}: it is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {target}: the directory {directory} does not exist")
    fd, tmp = _create_temp(directory, base)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _create_temp(directory: str, base: str) -> tuple[int, str]:
    # O_EXCL with mode 0o666: the new file gets the user's umask like any other file
    # (tempfile.mkstemp would make it 0o600).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
