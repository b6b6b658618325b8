"""Where datasets live on disk and how their files are fetched and verified."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

# Seconds to wait for a mirror to answer before trying the next.
_TIMEOUT_S = 60


def data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder datasets are stored under.

    ``root`` if given, else ``$EMBER_DATA``, else ``$XDG_CACHE_HOME/ember/datasets``
    (``~/.cache/ember/datasets`` when XDG_CACHE_HOME is unset).
    """
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("EMBER_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "ember" / "datasets"


def md5sum(path: str | os.PathLike[str]) -> str:
    """The hex MD5 digest of a file (the checksum dataset publishers give)."""
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(url: str, out: IO[bytes]) -> None:
    """Copy the body at ``url`` into ``out`` (tests replace this; they never download)."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        shutil.copyfileobj(response, out)


def download(urls: Sequence[str], dest: Path, md5: str) -> Path:
    """Download the first mirror in ``urls`` whose file has checksum ``md5`` to ``dest``.

    The file is written beside ``dest`` and renamed into place only once its
    checksum matches, so an interrupted or corrupt download leaves nothing
    behind.

    Raises:
        RuntimeError: no mirror gave a file with the right checksum; the
            message lists every mirror and what went wrong there.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out)
                out.flush()
                os.fsync(out.fileno())
            got = md5sum(tmp)
            if got != md5:
                errors.append(f"{url}: checksum mismatch (md5 {got}, expected {md5})")
                continue
            os.replace(tmp, dest)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise RuntimeError(
        f"could not download {dest.name}:\n  " + "\n  ".join(errors) + "\nCheck the network, or "
        f"download the file yourself and put it at {dest}"
    )
