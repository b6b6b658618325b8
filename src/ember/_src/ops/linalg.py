"""Linear algebra: matmul (batched, broadcasting) and einsum; mm, bmm, dot, outer on top."""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from ember._src.core.aval import AVal
from ember._src.core.creation import eye
from ember._src.core.tensor import Tensor
from ember._src.ops import elementwise as E
from ember._src.ops.registry import DTypeError, ShapeError, apply, defop, op_error


def _matmul_infer(a: Any, b: Any) -> AVal:
    if a.dtype is not b.dtype:
        raise op_error(
            "matmul",
            (a, b),
            "expected both operands to have the same dtype; convert one with .to(dtype)",
            DTypeError,
        )
    sa, sb = tuple(a.shape), tuple(b.shape)
    if not sa or not sb:
        raise op_error("matmul", (a, b), "both arguments to matmul need to be at least 1D")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise op_error(
            "matmul",
            (a, b),
            f"inner dimensions differ: {ka} (last of the first operand) vs "
            f"{kb} ({'first' if len(sb) == 1 else 'second-to-last'} of the second)",
        )
    batch_a, batch_b = sa[:-2], sb[:-2]
    try:
        batch = tuple(np.broadcast_shapes(batch_a, batch_b))
    except ValueError:
        raise op_error(
            "matmul", (a, b), f"batch dimensions {batch_a} and {batch_b} do not broadcast"
        ) from None
    out = batch + (sa[-2:-1] if len(sa) > 1 else ()) + (sb[-1:] if len(sb) > 1 else ())
    return AVal(out, a.dtype)


def _g2(g: Tensor, a_ndim: int, b_ndim: int) -> Tensor:
    """The output gradient with the dimensions a 1-D operand dropped put back."""
    if b_ndim == 1:
        g = g.unsqueeze(-1)
    if a_ndim == 1:
        g = g.unsqueeze(-2)
    return g


def _grad_a(g: Tensor, o: Any, a: Any, b: Tensor) -> Tensor:
    # `a` may be an AVal here: only its shape is needed.
    if b.ndim == 2 and a.ndim >= 2:
        return matmul(g, b.mT)  # one GEMM over flattened rows (see _matmul_forward)
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    a2_shape = (1, *a.shape) if a.ndim == 1 else tuple(a.shape)
    return E.sum_to(matmul(_g2(g, a.ndim, b.ndim), b2.mT), a2_shape).reshape(a.shape)


def _grad_b(g: Tensor, o: Any, a: Tensor, b: Any) -> Tensor:
    # `b` may be an AVal here: only its shape is needed.
    if a.ndim == 2 and b.ndim == 2:
        return matmul(a.mT, g)
    if b.ndim == 2 and a.ndim > 2:  # sum over every row at once: one GEMM, no batch reduction
        k, n = b.shape
        return matmul(a.reshape(-1, k).mT, g.reshape(-1, n))
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2_shape = (*b.shape, 1) if b.ndim == 1 else tuple(b.shape)
    return E.sum_to(matmul(a2.mT, _g2(g, a.ndim, b.ndim)), b2_shape).reshape(b.shape)


def _matmul_forward(xp: Any, a: Any, b: Any) -> Any:
    if a.dtype != b.dtype:
        raise TypeError("matmul operands differ in dtype")  # infer() words the user's error
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        # (..., k) @ (k, n) is one GEMM over the flattened rows, not one per batch item.
        return xp.matmul(a.reshape(-1, a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[-1])
    return xp.matmul(a, b)


matmul_op = defop(
    "matmul",
    _matmul_forward,
    vjp=(_grad_a, _grad_b),
    infer=_matmul_infer,
    kind="custom",
    needs=((1,), (0,)),
)


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch semantics: 1-D operands, batching, broadcasting.

    Example:
        >>> import ember
        >>> (ember.ones(2, 3) @ ember.ones(3)).tolist()
        [3.0, 3.0]
    """
    return apply(matmul_op, input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices (2-D only)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise op_error("mm", (input, mat2), "mm expects two 2-D tensors; use matmul")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of two 3-D tensors with equal batch sizes."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise op_error("bmm", (input, mat2), "bmm expects (b, n, m) and (b, m, p) tensors")
    return matmul(input, mat2)


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors."""
    if input.ndim != 1 or other.ndim != 1:
        raise op_error("dot", (input, other), "dot expects two 1-D tensors")
    return matmul(input, other)


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product of two 1-D tensors."""
    if input.ndim != 1 or vec2.ndim != 1:
        raise op_error("outer", (input, vec2), "outer expects two 1-D tensors")
    return E.mul(input.unsqueeze(1), vec2.unsqueeze(0))


# ----------------------------------------------------------------- einsum
def _parse(equation: str, ndims: list[int]) -> tuple[list[str], str]:
    """Expand '...' into letters and make the output explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: equation has {len(terms)} operands, got {len(ndims)} tensors")
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in string.ascii_uppercase + string.ascii_lowercase if c not in used]
    n_ell = max((n - (len(t) - 3) for t, n in zip(terms, ndims) if "..." in t), default=0)
    ell = "".join(spare[:n_ell])
    out_terms = []
    for t, n in zip(terms, ndims):
        if "..." in t:
            k = n - (len(t) - 3)
            t = t.replace("...", ell[n_ell - k :] if k else "")
        if len(t) != n:
            raise ValueError(f"einsum: subscripts {t!r} do not match an operand with {n} dims")
        out_terms.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = {c: "".join(out_terms).count(c) for c in set("".join(out_terms))}
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    return out_terms, out


def _einsum_infer(*xs: Any, equation: str) -> AVal:
    terms, out = _parse(equation, [len(x.shape) for x in xs])
    sizes: dict[str, int] = {}
    for t, x in zip(terms, xs):
        for c, s in zip(t, x.shape):
            if sizes.setdefault(c, s) != s and s != 1 and sizes[c] != 1:
                raise op_error("einsum", xs, f"subscript {c!r} has sizes {sizes[c]} and {s}")
            sizes[c] = max(sizes[c], s)
    d = xs[0].dtype
    for x in xs[1:]:
        if x.dtype is not d:
            raise op_error("einsum", xs, "operands must have the same dtype", DTypeError)
    return AVal(tuple(sizes[c] for c in out), d)


def _einsum_rule(i: int, g: Tensor, o: Any, *xs: Tensor, equation: str) -> Tensor:
    terms, out = _parse(equation, [x.ndim for x in xs])
    others = [terms[j] for j in range(len(xs)) if j != i]
    operands = [g] + [xs[j] for j in range(len(xs)) if j != i]
    # A subscript repeated in operand i ('ii': a diagonal) gets a fresh letter for each
    # repeat, tied to the first by an identity matrix, so the gradient lands on the diagonal.
    fresh = iter(c for c in string.ascii_letters if c not in equation + "".join(terms))
    target = ""
    for k, c in enumerate(terms[i]):
        if c in terms[i][:k]:
            d = next(fresh)
            others.append(c + d)
            operands.append(eye(xs[i].shape[k], dtype=g.dtype, device=g.device))
            c = d
        target += c
    present = set(out).union(*others)
    kept = "".join(c for c in target if c in present)
    gi = einsum(",".join([out, *others]) + "->" + kept, *operands)
    if kept != target:  # letters summed away only inside operand i: broadcast back
        shape = tuple(xs[i].shape[target.index(c)] if c in kept else 1 for c in target)
        gi = gi.reshape(shape).expand(*xs[i].shape)
    return gi


einsum_op = defop(
    "einsum",
    lambda xp, *xs, equation: xp.einsum(equation, *xs, optimize=len(xs) > 2),
    vjp=(_einsum_rule,),
    infer=_einsum_infer,
    kind="custom",
    variadic=True,
)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, e.g. ``einsum('bij,bjk->bik', a, b)``.

    Example:
        >>> import ember
        >>> ember.einsum("ij->j", ember.ones(2, 3)).tolist()
        [2.0, 2.0, 2.0]
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise ValueError("einsum needs at least one operand")
    try:
        _parse(equation, [x.ndim for x in operands])
    except ValueError as e:
        raise ShapeError(f"{e}") from None
    return apply(einsum_op, *operands, equation=equation)
