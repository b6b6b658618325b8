"""The safetensors format, read and written with NumPy alone; ``ember.save`` / ``ember.load``.

A safetensors file is an 8-byte little-endian length ``N``, ``N`` bytes of JSON
header (``{name: {"dtype", "shape", "data_offsets"}}`` plus an optional
``"__metadata__"`` of strings), then every tensor's bytes in C order,
little-endian, back to back. Nothing in it is code, so loading one can't run
any. ember reads and writes the format itself (no dependency beyond NumPy, and
``ml_dtypes`` for bfloat16) so that every error can name the file and what is
wrong with it; the tests check the files against the reference ``safetensors``
package both ways.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from typing import IO, Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.core.backend import device as Device
from ember._src.core.tensor import Tensor
from ember._src.io.atomic import atomic_write

FORMAT_VERSION = 1
"""The version of ember's metadata conventions (``ember_format_version`` in the header)."""

# ember's dtypes by safetensors code.
_EMBER: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "U8": np.dtype(np.uint8),
    "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16),
    "I32": np.dtype(np.int32),
    "I64": np.dtype(np.int64),
    "F16": np.dtype(np.float16),
    "F32": np.dtype(np.float32),
    "F64": np.dtype(np.float64),
}
if dt.bfloat16 is not None:
    _EMBER["BF16"] = dt.bfloat16.np
# Codes NumPy can hold but ember has no dtype for (the converter rewrites them).
_UNSIGNED: dict[str, np.dtype[Any]] = {
    "U16": np.dtype(np.uint16),
    "U32": np.dtype(np.uint32),
    "U64": np.dtype(np.uint64),
}
# Codes the format defines that neither ember nor NumPy holds.
_FOREIGN = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64", "BF16")
_CODE_OF = {v: k for k, v in {**_EMBER, **_UNSIGNED}.items()}
_MAX_HEADER = 100_000_000  # the reference implementation's limit


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file, or holds what ember can't load."""


# ================================================================= the format
def read_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The tensor entries ``{name: (code, shape, begin, end)}`` and the metadata of a file."""
    with _open(path) as f:
        entries, metadata, _ = _parse_header(f, os.fspath(path))
    return entries, metadata


def read_file(
    path: str | os.PathLike[str], codes: Mapping[str, np.dtype[Any]] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read every tensor of a safetensors file as a NumPy array (own, aligned memory).

    Args:
        path: the file.
        codes: the dtype codes accepted (default: ember's); any other raises before
            a byte of tensor data is read.

    Returns:
        ``(arrays, metadata)``, the arrays in the header's order.
    """
    codes = _EMBER if codes is None else codes
    with _open(path) as f:
        name = os.fspath(path)
        entries, metadata, start = _parse_header(f, name)
        for key, (code, _, _, _) in entries.items():
            if code not in codes:
                raise SafetensorsError(_dtype_message(name, key, code))
        arrays: dict[str, np.ndarray] = {}
        for key, (code, shape, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][2]):
            a = np.empty(shape, codes[code])
            f.seek(start + begin)
            got = f.readinto(a.reshape(-1).view(np.uint8))  # type: ignore[attr-defined]
            if got != end - begin:
                raise SafetensorsError(
                    f"{name} is truncated: tensor {key!r} should have {end - begin} bytes of "
                    f"data but the file ends after {got}"
                )
            if code == "BOOL" and a.size and a.view(np.uint8).max() > 1:
                raise SafetensorsError(
                    f"{name}: bool tensor {key!r} holds bytes other than 0 and 1; the file is "
                    "corrupt"
                )
            arrays[key] = a
    return {k: arrays[k] for k in entries}, metadata


def write_file(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write NumPy arrays as a safetensors file, atomically (see :func:`atomic_write`).

    Tensors are laid out widest dtype first, so each starts at a multiple of its
    item size (as the reference writer does); the header lists them in the given order.
    """
    _check_byteorder()
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    layout = sorted(arrays, key=lambda k: -arrays[k].dtype.itemsize)
    offsets, cursor = {}, 0
    for key in layout:
        a = arrays[key]
        offsets[key] = [cursor, cursor + a.size * a.dtype.itemsize]
        cursor = offsets[key][1]
    for key, a in arrays.items():
        header[key] = {
            "dtype": _CODE_OF[a.dtype],
            "shape": list(a.shape),
            "data_offsets": offsets[key],
        }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # pad with spaces so the data starts 8-byte aligned
    with atomic_write(path) as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for key in layout:
            _write_array(f, arrays[key])


def _write_array(f: IO[bytes], a: np.ndarray) -> None:
    # One contiguous copy at a time for strided arrays; contiguous ones are written as is.
    f.write(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)


def _open(path: str | os.PathLike[str]) -> IO[bytes]:
    _check_byteorder()
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"expected a file path (str or os.PathLike), got {type(path).__name__}")
    return open(path, "rb")


def _parse_header(
    f: IO[bytes], name: str
) -> tuple[dict[str, tuple[str, tuple[int, ...], int, int]], dict[str, str], int]:
    size = os.fstat(f.fileno()).st_size
    head = f.read(8)
    if len(head) < 8:
        raise SafetensorsError(
            f"{name} is not a safetensors file: it is {size} bytes long, too short for the "
            "8-byte header length a safetensors file starts with"
        )
    pickled = _sniff_pickle(head)
    if pickled:
        raise SafetensorsError(
            f"{name} is {pickled}, not a safetensors file. ember never loads pickle, because "
            "loading a pickle can run arbitrary code. Convert it once, in PyTorch, from a "
            "source you trust: safetensors.torch.save_file(torch.load(path, "
            "weights_only=True), 'model.safetensors')"
        )
    n = int.from_bytes(head, "little")
    if n > min(_MAX_HEADER, size - 8):
        raise SafetensorsError(
            f"{name} is truncated or not a safetensors file: its first 8 bytes say a "
            f"{n}-byte header follows, but the file has only {size - 8} more bytes"
        )
    raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(
            f"{name} is not a safetensors file: its header is not valid JSON ({e})"
        ) from None
    if not isinstance(header, dict):
        raise SafetensorsError(
            f"{name} has a bad header: expected a JSON object, got {type(header).__name__}"
        )
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise SafetensorsError(f"{name} has a bad header: __metadata__ must map strings to strings")
    entries = {key: _parse_entry(name, key, value) for key, value in header.items()}
    cursor = 0
    for key, (_, _, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][2]):
        if begin != cursor:
            what = "overlaps the previous tensor" if begin < cursor else "leaves a gap before it"
            raise SafetensorsError(
                f"{name} has a bad header: tensor {key!r} starts at data byte {begin}, which "
                f"{what} (expected {cursor})"
            )
        cursor = end
    available = size - 8 - n
    if cursor != available:
        problem = "is truncated" if cursor > available else "has trailing bytes"
        raise SafetensorsError(
            f"{name} {problem}: its header describes {cursor} bytes of tensor data but "
            f"{available} bytes follow the header"
        )
    return entries, metadata, 8 + n


def _parse_entry(name: str, key: str, value: Any) -> tuple[str, tuple[int, ...], int, int]:
    where = f"{name} has a bad header: tensor {key!r}"
    if not isinstance(value, dict) or not {"dtype", "shape", "data_offsets"} <= value.keys():
        raise SafetensorsError(f"{where} needs 'dtype', 'shape' and 'data_offsets', got {value!r}")
    code, shape, offsets = value["dtype"], value["shape"], value["data_offsets"]
    if not isinstance(code, str):
        raise SafetensorsError(f"{where} has a dtype that is not a string: {code!r}")
    if code not in _EMBER and code not in _UNSIGNED and code not in _FOREIGN:
        raise SafetensorsError(_dtype_message(name, key, code))
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise SafetensorsError(f"{where} has a bad shape {shape!r} (a list of sizes >= 0)")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_count(o) for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise SafetensorsError(f"{where} has bad data_offsets {offsets!r} (want [begin, end])")
    begin, end = offsets
    itemsize = (_EMBER.get(code) or _UNSIGNED.get(code) or np.dtype(np.uint8)).itemsize
    if code in _EMBER or code in _UNSIGNED:
        expected = math.prod(shape) * itemsize
        if end - begin != expected:
            raise SafetensorsError(
                f"{where}: shape {shape} of {code} needs {expected} bytes, but its "
                f"data_offsets span {end - begin}"
            )
    return code, tuple(shape), begin, end


def _dtype_message(name: str, key: str, code: str) -> str:
    known = ", ".join(sorted(_EMBER))
    if code in _UNSIGNED:
        hint = (
            "ember has no unsigned integer dtype wider than uint8; `ember convert "
            "torch-weights IN OUT` rewrites them as signed integers"
        )
    elif code == "BF16":
        hint = "bfloat16 needs the ml_dtypes package (pip install 'ember[bf16]')"
    elif code in _FOREIGN:
        hint = f"ember has no {code} dtype"
    else:
        hint = f"{code!r} is not a dtype ember knows"
    return f"{name}: tensor {key!r} has dtype {code}: {hint} (ember loads {known})"


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"the key {k!r} appears twice")
        out[k] = v
    return out


def _sniff_pickle(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return "a zip archive (what torch.save writes: a pickle inside a zip)"
    if head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    return None


def _check_byteorder() -> None:
    if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
        raise NotImplementedError("ember's safetensors I/O needs a little-endian machine")


# ================================================================= ember's API
def save(
    state_dict: Mapping[str, Any],
    path: str | os.PathLike[str],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Save a dict of tensors (a ``state_dict``) to ``path`` in safetensors format.

    The write is atomic: the file is written next to ``path`` under a temporary
    name, flushed to disk and renamed over ``path``, so a crash leaves the old
    file or the new one, never half of one. Strided tensors are written in C order;
    tensors that share memory (tied weights, views) are each written in full.

    Args:
        state_dict: string keys to ember Tensors (or NumPy arrays of ember dtypes).
        path: the file to write.
        metadata: extra string key/value pairs for the header (ember adds
            ``format``, ``ember_version`` and ``ember_format_version``).

    Example:
        >>> import ember, ember.nn as nn, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
        >>> model = nn.Linear(3, 2)
        >>> ember.save(model.state_dict(), path, metadata={"note": "demo"})
        >>> weights = ember.load(path)
        >>> sorted(weights), weights["weight"].shape
        (['bias', 'weight'], (2, 3))
        >>> ember.load_metadata(path)["note"]
        'demo'
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"ember.save expects a dict of tensors (e.g. model.state_dict()), got "
            f"{type(state_dict).__name__}; use ember.save_checkpoint for training state"
        )
    arrays = {}
    for key, value in state_dict.items():
        if not isinstance(key, str) or key == "__metadata__":
            raise ValueError(
                f"ember.save: key {key!r} can't name a tensor (keys are strings other than "
                "'__metadata__')"
            )
        arrays[key] = host_array(value, f"the value for key {key!r}")
    write_file(path, arrays, header_metadata(metadata))


def load(path: str | os.PathLike[str], device: str | Device = "cpu") -> dict[str, Tensor]:
    """Load the tensors of a safetensors file (ember's, PyTorch's, anyone's).

    Loading reads JSON and raw bytes only; it never runs code from the file.

    Args:
        path: the file.
        device: where to put the tensors.

    Returns:
        A dict from name to Tensor, in the file's order; pass it to
        ``model.load_state_dict``.

    Raises:
        SafetensorsError (a ValueError): the file is not safetensors, is truncated, has
            a bad header, or holds a dtype ember lacks; the message says which.
    """
    arrays, metadata = read_file(path)
    check_version(os.fspath(path), metadata)
    out = {k: Tensor._wrap(a) for k, a in arrays.items()}
    if Device(device).type != "cpu":
        out = {k: t.to(device=device) for k, t in out.items()}
    return out


def load_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The string metadata in a safetensors file's header (reads the header only).

    Example:
        >>> import ember, os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "x.safetensors")
        >>> ember.save({"x": ember.zeros(2)}, path)
        >>> ember.load_metadata(path)["ember_format_version"]
        '1'
    """
    return read_header(path)[1]


def host_array(value: Any, what: str) -> np.ndarray:
    """The host NumPy array of a Tensor or array of an ember dtype (no copy on CPU)."""
    if isinstance(value, Tensor):
        return value._backend.to_numpy(value._data)
    if isinstance(value, np.ndarray):
        dt.to_dtype(value.dtype)  # a clear TypeError for dtypes ember lacks
        return value
    raise TypeError(
        f"{what} is a {type(value).__name__}, not a Tensor; safetensors files hold tensors "
        "only (ember.save_checkpoint's extra= takes other values)"
    )


def header_metadata(user: Mapping[str, str] | None = None, **ours: str) -> dict[str, str]:
    """ember's header metadata plus the user's (string keys and values)."""
    from ember import __version__

    # "format": "pt" says the tensors follow PyTorch's layouts (ember's do), which is
    # what PyTorch-side loaders (e.g. transformers) check.
    meta = {
        "format": "pt",
        "ember_version": __version__,
        "ember_format_version": str(FORMAT_VERSION),
        **ours,
    }
    for k, v in (user or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(
                f"metadata must map strings to strings, got {k!r}: {type(v).__name__}; "
                "encode other values yourself (e.g. json.dumps) or pass them as tensors"
            )
        if k in meta:
            raise ValueError(f"metadata key {k!r} is reserved by ember; choose another name")
        meta[k] = v
    return meta


def check_version(name: str, metadata: Mapping[str, str]) -> None:
    """Refuse files written by a newer ember's conventions."""
    version = metadata.get("ember_format_version")
    if version is None:
        return
    if not version.isdigit():
        raise SafetensorsError(f"{name}: ember_format_version {version!r} is not a number")
    if int(version) > FORMAT_VERSION:
        raise SafetensorsError(
            f"{name} was written by a newer ember (format version {version}; this ember reads "
            f"up to {FORMAT_VERSION}); upgrade ember to load it"
        )
