"""ember's dtypes and PyTorch's type-promotion rules.

A dtype wraps a NumPy dtype and knows its category (bool < integer < floating),
which is what promotion is decided by. Promotion follows PyTorch:

* Tensors with dimensions promote among themselves (``int32 + float16 ->
  float16``: a higher category wins outright; within a category the wider type
  wins; ``float16 + bfloat16 -> float32``).
* A zero-dim tensor only counts when its category is higher than every
  dimensioned operand's (``float32[3] + float64[] -> float32``).
* A Python scalar counts only by category: ``int32 tensor + 2.5`` gives the
  default float dtype, ``float16 tensor + 2.5`` stays float16, ``bool + 1`` gives
  int64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # bfloat16 comes from ml_dtypes when it is installed
    import ml_dtypes as _ml_dtypes

    _BF16: Any = np.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - depends on the environment
    _BF16 = None

BOOL, INT, FLOAT = 0, 1, 2


class dtype:
    """An ember dtype: a NumPy dtype plus its promotion category.

    Example:
        >>> import ember
        >>> ember.float32.is_floating_point, ember.int64.itemsize
        (True, 8)
    """

    __slots__ = ("category", "itemsize", "name", "np")

    def __init__(self, name: str, np_dtype: Any, category: int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category
        self.itemsize = self.np.itemsize

    @property
    def is_floating_point(self) -> bool:
        return self.category == FLOAT

    def __repr__(self) -> str:
        return f"ember.{self.name}"

    def __reduce__(self) -> str:
        return self.name


float16 = dtype("float16", np.float16, FLOAT)
float32 = dtype("float32", np.float32, FLOAT)
float64 = dtype("float64", np.float64, FLOAT)
int8 = dtype("int8", np.int8, INT)
int16 = dtype("int16", np.int16, INT)
int32 = dtype("int32", np.int32, INT)
int64 = dtype("int64", np.int64, INT)
uint8 = dtype("uint8", np.uint8, INT)
bool_ = dtype("bool", np.bool_, BOOL)
bfloat16 = dtype("bfloat16", _BF16, FLOAT) if _BF16 is not None else None

ALL: tuple[dtype, ...] = tuple(
    d
    for d in (float16, float32, float64, int8, int16, int32, int64, uint8, bool_, bfloat16)
    if d is not None
)
_BY_NP: dict[Any, dtype] = {d.np: d for d in ALL}
_BY_NAME: dict[str, dtype] = {d.name: d for d in ALL}
_BY_NAME.update({"half": float16, "float": float32, "double": float64, "long": int64})

_default_float = float32


def get_default_dtype() -> dtype:
    """The dtype that Python floats and float factories (``rand``, ``zeros``…) produce."""
    return _default_float


def set_default_dtype(d: dtype) -> None:
    """Set the default floating dtype (float32 unless changed).

    Example:
        >>> import ember
        >>> ember.set_default_dtype(ember.float64); ember.tensor([1.0]).dtype
        ember.float64
        >>> ember.set_default_dtype(ember.float32)
    """
    global _default_float
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype needs a floating dtype, got {d}")
    _default_float = d


def to_dtype(d: Any) -> dtype:
    """Resolve an ember dtype, a NumPy dtype, a name or a Python type to an ember dtype."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default_float
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    try:
        found = _BY_NP.get(np.dtype(d))
    except TypeError:
        found = None
    if found is None:
        names = ", ".join(sorted(_BY_NAME))
        raise TypeError(f"ember does not support dtype {d!r}; supported dtypes are: {names}")
    return found


_BY_NP_ID: dict[int, dtype] = {id(d.np): d for d in ALL}


def from_numpy_dtype(np_dtype: Any) -> dtype:
    """The ember dtype of a NumPy dtype (hot path: keyed by the canonical dtype object)."""
    found = _BY_NP_ID.get(id(np_dtype))
    if found is None:
        found = _BY_NP.get(np_dtype)
        if found is None:
            return to_dtype(np_dtype)
    return found


def promote_types(a: dtype, b: dtype) -> dtype:
    """The dtype two tensor dtypes promote to, as ``torch.promote_types``.

    Example:
        >>> import ember
        >>> ember.promote_types(ember.int32, ember.float16)
        ember.float16
    """
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if bfloat16 is not None and {a, b} == {float16, bfloat16}:
        return float32
    if a is bfloat16 or b is bfloat16:
        other = b if a is bfloat16 else a
        return bfloat16 if other.category != FLOAT else promote_types(float32, other)
    return _BY_NP[np.promote_types(a.np, b.np)]


def scalar_category(x: object) -> int:
    """BOOL, INT or FLOAT for a Python or NumPy scalar."""
    if isinstance(x, (bool, np.bool_)):
        return BOOL
    if isinstance(x, (int, np.integer)):
        return INT
    return FLOAT


def result_type(dims: list[dtype], zero_dims: list[dtype], scalars: list[object]) -> dtype:
    """PyTorch's three-tier promotion: dimensioned tensors, then zero-dim tensors, then scalars."""
    out: dtype | None = None
    for d in dims:
        out = d if out is None else promote_types(out, d)
    zd: dtype | None = None
    for d in zero_dims:
        zd = d if zd is None else promote_types(zd, d)
    if zd is not None and (out is None or zd.category > out.category):
        out = zd
    if scalars:
        cat = max(scalar_category(s) for s in scalars)
        if out is None:
            out = (bool_, int64, _default_float)[cat]
        elif cat > out.category:
            out = int64 if cat == INT else _default_float
    assert out is not None, "result_type needs at least one operand"
    return out
