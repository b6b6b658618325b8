"""``ember convert torch-weights``: make a PyTorch safetensors file an ember weight file.

ember's modules use PyTorch's parameter names and layouts (``Linear.weight`` is
``(out, in)``, ``Conv2d.weight`` is ``(out, in, kh, kw)``, LSTM gates are
``i, f, g, o``), so a PyTorch ``state_dict`` saved with
``safetensors.torch.save_file`` already loads with ``ember.load``. What the
converter adds:

* validation: the file is read and checked completely (header, offsets, sizes);
* names: the wrapper prefixes PyTorch adds (``module.`` from DataParallel and
  DistributedDataParallel, ``_orig_mod.`` from ``torch.compile``) are stripped
  when every key has them, and any prefix given with ``--strip-prefix``;
* dtypes: unsigned integers wider than 8 bits (which ember lacks) become signed
  ones (``U16 -> int32``, ``U32``/``U64 -> int64``, refusing values that don't
  fit); ``--dtype`` casts every floating tensor; dtypes ember has no counterpart
  for (float8, complex) are refused with the tensor's name;
* metadata: ember's (``ember_version``, ``ember_format_version``) is written,
  with ``converted_from`` and the source's own non-reserved entries.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from ember._src.core import dtype as dt
from ember._src.io import safetensors_io as st

WRAPPER_PREFIXES = ("module.", "_orig_mod.")
_WIDENED: dict[str, np.dtype[Any]] = {
    "U16": np.dtype(np.int32),
    "U32": np.dtype(np.int64),
    "U64": np.dtype(np.int64),
}


def convert_torch_weights(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    dtype: Any = None,
    strip_prefixes: list[str] | None = None,
) -> list[str]:
    """Convert a PyTorch safetensors weight file into an ember one (see the module doc).

    Args:
        src: the PyTorch file (``safetensors.torch.save_file(model.state_dict(), src)``).
        dst: the file to write (atomically; may equal ``src``).
        dtype: cast floating tensors to this floating dtype (e.g. ``"float32"``).
        strip_prefixes: key prefixes to remove; default: PyTorch's wrapper prefixes,
            removed only when every key carries them.

    Returns:
        One line per change made (empty when the file only needed validating).
    """
    arrays, metadata = st.read_file(src, {**st._EMBER, **st._UNSIGNED})
    name = os.fspath(src)
    changes: list[str] = []
    target = None
    if dtype is not None:
        target = dt.to_dtype(dtype)
        if not target.is_floating_point:
            raise ValueError(f"--dtype must be a floating dtype, got {target.name}")
    out: dict[str, np.ndarray] = {}
    for key, a in arrays.items():
        code = st._CODE_OF[a.dtype]
        if code in _WIDENED:
            wide = _WIDENED[code]
            if a.size and int(a.max()) > np.iinfo(wide).max:
                raise ValueError(
                    f"{name}: tensor {key!r} ({code}) holds {int(a.max())}, more than "
                    f"{wide.name} can represent; ember can't load it"
                )
            changes.append(f"{key}: {code} -> {wide.name}")
            a = a.astype(wide)
        elif target is not None and _is_float(a) and a.dtype != target.np:
            changes.append(f"{key}: {dt.from_numpy_dtype(a.dtype).name} -> {target.name}")
            a = a.astype(target.np)
        out[key] = a
    renamed = _strip(list(out), strip_prefixes)
    if len(set(renamed.values())) != len(renamed):
        raise ValueError(f"{name}: stripping the prefixes would give two tensors the same name")
    for old, new in renamed.items():
        if old != new:
            changes.append(f"{old} -> {new}")
    out = {renamed[k]: v for k, v in out.items()}
    reserved = st.header_metadata().keys() | {"converted_from"}
    kept = {k: v for k, v in metadata.items() if k not in reserved}
    st.write_file(dst, out, st.header_metadata(kept, converted_from="torch"))
    return changes


def _is_float(a: np.ndarray) -> bool:
    return dt.from_numpy_dtype(a.dtype).is_floating_point


def _strip(keys: list[str], prefixes: list[str] | None) -> dict[str, str]:
    out = {k: k for k in keys}
    if prefixes is None:  # only the wrappers, only when every key has them
        again = True
        while again and keys:
            again = False
            for p in WRAPPER_PREFIXES:
                if all(v.startswith(p) for v in out.values()):
                    out = {k: v[len(p) :] for k, v in out.items()}
                    again = True
        return out
    for p in prefixes:
        out = {k: v[len(p) :] if v.startswith(p) else v for k, v in out.items()}
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``ember convert`` subcommands."""
    sub = parser.add_subparsers(dest="format", metavar="FORMAT")
    sub.required = True
    p = sub.add_parser(
        "torch-weights",
        help="a PyTorch state_dict saved as safetensors -> an ember weight file",
        description="Validate a PyTorch safetensors state_dict and rewrite it as an ember "
        "weight file: wrapper prefixes stripped, unsigned integers made signed, ember "
        "metadata written. ember uses PyTorch's layouts, so no tensor is transposed.",
    )
    p.add_argument("src", help="input .safetensors file (from safetensors.torch.save_file)")
    p.add_argument("dst", help="output .safetensors file (written atomically)")
    p.add_argument("--dtype", help="cast floating tensors to this dtype (e.g. float32)")
    p.add_argument(
        "--strip-prefix",
        action="append",
        metavar="PREFIX",
        help="remove PREFIX from tensor names (repeatable; default: strip 'module.' and "
        "'_orig_mod.' when every name has them)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        changes = convert_torch_weights(args.src, args.dst, args.dtype, args.strip_prefix)
    except (OSError, ValueError, TypeError) as e:
        print(f"ember convert: error: {e}", file=sys.stderr)
        return 1
    for line in changes:
        print(line)
    print(f"wrote {args.dst} ({len(changes)} change(s))")
    return 0
