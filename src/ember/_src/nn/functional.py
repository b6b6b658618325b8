"""``ember.nn.functional``: layers, activations and losses as functions (PyTorch's names).

Everything here is a composite of ember ops, so gradients (and double
gradients) come from the ops' rules; nothing here writes a backward.
Sections: linear, activations, dropout, sparse, padding, distances,
attention, losses, then convolution/pooling and normalization.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.creation import arange, ones, rand, zeros
from ember._src.core.tensor import Tensor
from ember._src.ops import activation as A
from ember._src.ops import elementwise as E
from ember._src.ops import linalg as L
from ember._src.ops import reduce as R
from ember._src.ops import shape as S
from ember._src.ops.registry import DTypeError, is_tracing, op_error


def _inplace(name: str, input: Tensor, fn: Callable[[Tensor], Tensor], inplace: bool) -> Tensor:
    """``fn(input)``, written into ``input``'s memory when ``inplace``."""
    if not inplace:
        return fn(input)
    if input.requires_grad and autograd.is_grad_enabled():
        if input.is_leaf:
            raise RuntimeError(
                f"{name}(inplace=True) on a leaf tensor that requires grad; use inplace=False "
                "or wrap the call in `with ember.no_grad():`"
            )
        # fn must not save `input` itself: the copy below bumps its version.
        return input.copy_(fn(S.clone(input)))
    return input.copy_(fn(input))


# ================================================================= linear
def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``: the affine map of :class:`~ember.nn.Linear`.

    Args:
        input: ``(*, in_features)``.
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None.

    Returns:
        ``(*, out_features)``.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.linear(ember.ones(2, 3), ember.ones(4, 3), ember.zeros(4)).shape
        (2, 4)
    """
    if weight.ndim not in (1, 2) or input.ndim == 0 or input.shape[-1] != weight.shape[-1]:
        raise op_error(
            "linear",
            (input, weight),
            "input's last dimension must equal weight's in_features (weight is "
            "(out_features, in_features))",
        )
    out = L.matmul(input, S.t(weight) if weight.ndim == 2 else weight)
    return out if bias is None else out + bias


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y[..., o] = x1[..., i] * weight[o, i, j] * x2[..., j] + bias[o]``.

    Args:
        input1: ``(*, in1_features)``.
        input2: ``(*, in2_features)`` with the same leading dimensions.
        weight: ``(out_features, in1_features, in2_features)``.
        bias: ``(out_features,)`` or None.

    Returns:
        ``(*, out_features)``.
    """
    if (
        weight.ndim != 3
        or input1.shape[:-1] != input2.shape[:-1]
        or input1.ndim == 0
        or input1.shape[-1] != weight.shape[1]
        or input2.shape[-1] != weight.shape[2]
    ):
        raise op_error(
            "bilinear",
            (input1, input2, weight),
            "need input1 (*, in1), input2 (*, in2) with equal leading dims and weight "
            "(out, in1, in2)",
        )
    out_f, in1, in2 = weight.shape
    lead = input1.shape[:-1]
    x1 = input1.reshape(-1, in1)
    # (x1 @ W viewed as (in1, out*in2)) contracts i with one GEMM, then j elementwise.
    t = L.matmul(x1, weight.permute(1, 0, 2).reshape(in1, out_f * in2)).reshape(-1, out_f, in2)
    out = R.sum(t * input2.reshape(-1, 1, in2), -1).reshape(*lead, out_f)
    return out if bias is None else out + bias


# ================================================================= activations
def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) (gradient 0 at 0, as PyTorch)."""
    return _inplace("relu", input, E.relu, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, ``negative_slope * x`` otherwise."""
    return _inplace("leaky_relu", input, lambda x: E.where(x > 0, x, x * negative_slope), inplace)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""
    # expm1 of min(x, 0): the unused branch never overflows (no inf * 0 in backward).
    return _inplace(
        "elu", input, lambda x: E.where(x > 0, x, E.expm1(E.clamp(x, max=0)) * alpha), inplace
    )


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit, exact (erf) or ``approximate='tanh'``."""
    return A.gelu(input, approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return _inplace("silu", input, A.silu, inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where ``beta * x > threshold``."""
    return A.softplus(input, beta, threshold)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + exp(-x))."""
    return E.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent."""
    return E.tanh(input)


def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=stacklevel,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim`` (PyTorch's legacy dim choice, with a warning,
    when ``dim`` is None).

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.softmax(ember.tensor([[0.0, 0.0]]), dim=1)
        tensor([[0.5000, 0.5000]])
    """
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim, _stacklevel)
    return A.softmax(input, dim, dtype)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None
) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim, _stacklevel)
    return A.log_softmax(input, dim, dtype)


# ================================================================= dropout
def _check_p(p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(input: Tensor, shape: tuple[int, ...], p: float) -> Tensor:
    if p == 1.0:
        return zeros(shape, dtype=input.dtype, device=input.device)
    keep = rand(shape, device=input.device) >= p
    return keep.to(input.dtype) * (1.0 / (1.0 - p))


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    The identity when ``training`` is False. Draws come from ember's default
    generator, so ``ember.manual_seed`` makes the mask reproducible.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> y = F.dropout(ember.ones(1000), p=0.5)
        >>> sorted(set(y.tolist()))
        [0.0, 2.0]
    """
    _check_p(p)
    if not training or p == 0.0:
        return input
    mask = _dropout_mask(input, input.shape, p)
    return _inplace("dropout", input, lambda x: x * mask, inplace)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zero whole channels of ``(N, C, H, W)`` or ``(C, H, W)`` input with probability ``p``.

    Kept channels are scaled by ``1 / (1 - p)``; the identity when not training.
    """
    _check_p(p)
    if input.ndim not in (3, 4):
        raise op_error(
            "dropout2d",
            (input,),
            "expects (N, C, H, W) or (C, H, W) input (a 3-D input is one unbatched image)",
        )
    if not training or p == 0.0:
        return input
    mask = _dropout_mask(input, (*input.shape[:-2], 1, 1), p)
    return _inplace("dropout2d", input, lambda x: x * mask, inplace)


# ================================================================= sparse
def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer indices ``input``: shape ``(*input.shape, D)``.

    Args:
        input: integer indices into the rows of ``weight``.
        weight: ``(num_embeddings, embedding_dim)``.
        padding_idx: the row at this index gets no gradient.
        max_norm: rows that ``input`` picks and whose ``norm_type``-norm exceeds
            this are rescaled in place (under no_grad) to norm ``max_norm``.
        norm_type: the p of the norm for ``max_norm``.
        scale_grad_by_freq: divide each row's gradient by how often its index
            occurs in ``input``.
        sparse: sparse gradients are not supported (must be False).

    Returns:
        The embedding vectors.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> w = ember.arange(6.0).reshape(3, 2)
        >>> F.embedding(ember.tensor([2, 0]), w)
        tensor([[4., 5.],
                [0., 1.]])
    """
    if input.dtype.category != dt.INT:
        raise op_error(
            "embedding", (input, weight), "indices must be an integer tensor", DTypeError
        )
    if weight.ndim != 2:
        raise op_error("embedding", (input, weight), "weight must be 2-D (num_embeddings, dim)")
    if sparse:
        raise ValueError("embedding: sparse gradients are not supported; use sparse=False")
    n = weight.shape[0]
    idx = input._data
    # Under ember.compile the indices have no values yet: the check runs on eager calls only.
    if idx.size and not is_tracing() and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(
            f"embedding: index out of range: indices must be in [0, {n}) for a weight with "
            f"{n} rows (got min {int(idx.min())}, max {int(idx.max())})"
        )
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx {padding_idx} must be within [-{n}, {n})")
        padding_idx %= n
    flat = input.reshape(-1)
    if max_norm is not None:
        _renorm_rows(weight, flat, max_norm, norm_type)
    rows = S.index_select(weight, 0, flat)
    scale = None
    if scale_grad_by_freq:
        counts = S.scatter_add(
            zeros(n, dtype=weight.dtype, device=weight.device),
            0,
            flat,
            ones(flat.shape, dtype=weight.dtype, device=weight.device),
        )
        scale = (1.0 / S.index_select(counts, 0, flat)).unsqueeze(-1)
    if padding_idx is not None:
        keep = (flat != padding_idx).to(weight.dtype).unsqueeze(-1)
        scale = keep if scale is None else scale * keep
    if scale is not None:
        # Same values, gradient scaled per row: d/dw (r.detach() + (r - r.detach()) * s) = s.
        frozen = rows.detach()
        rows = frozen + (rows - frozen) * scale
    return rows.reshape(*input.shape, weight.shape[1])


def _renorm_rows(weight: Tensor, idx: Tensor, max_norm: float, norm_type: float) -> None:
    with autograd.no_grad():
        rows = S.index_select(weight, 0, idx)
        norms = R.norm(rows, norm_type, dim=1, keepdim=True)
        scale = E.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        weight[idx] = rows * scale


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding of class indices along a new last dimension."""
    return S.one_hot(tensor, num_classes)


# ================================================================= padding
def pad(input: Tensor, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last dimensions: ``pad=(left, right, top, bottom, ...)``.

    ``mode`` is 'constant' (with ``value``, 0 by default), 'reflect',
    'replicate' or 'circular'.
    """
    return S.pad(input, pad, mode, 0.0 if value is None else value)


# ================================================================= distances
def _safe_norm(input: Tensor, p: float, dim: int) -> Tensor:
    """p-norm over ``dim`` (kept) whose gradient at a zero vector is 0, not NaN."""
    if p == math.inf:
        return R.amax(E.abs(input), dim, keepdim=True)
    a = E.abs(input) if p != 2 else input * input
    s = R.sum(a if p in (1, 2) else a**p, dim, keepdim=True)
    if p == 1:
        return s
    nonzero = s > 0
    root = E.where(nonzero, s, 1.0) ** (1.0 / p)
    return E.where(nonzero, root, 0.0)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.normalize(ember.tensor([[3.0, 4.0]]))
        tensor([[0.6000, 0.8000]])
    """
    return input / E.clamp(_safe_norm(input, p, dim), min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """Cosine of the angle between ``x1`` and ``x2`` along ``dim`` (broadcasting).

    Each norm is clamped below at ``eps``.
    """
    shape = E.broadcast_shapes(x1, x2, name="cosine_similarity")
    x1, x2 = S.broadcast_to(x1, shape), S.broadcast_to(x2, shape)
    n1 = E.clamp(_safe_norm(x1, 2, dim), min=eps)
    n2 = E.clamp(_safe_norm(x2, 2, dim), min=eps)
    return R.sum((x1 / n1) * (x2 / n2), dim)


# ================================================================= attention
def _safe_softmax(x: Tensor, dim: int) -> Tensor:
    """Softmax whose fully masked (all -inf) rows are zeros instead of NaN."""
    m = R.amax(x.detach(), dim, keepdim=True)
    e = E.exp(x - E.where(E.isfinite(m), m, 0.0))
    s = R.sum(e, dim, keepdim=True)
    return e / E.where(s > 0, s, 1.0)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(Q K^T * scale + mask) V`` over the last two dimensions.

    Args:
        query: ``(*, L, E)``.
        key: ``(*, S, E)``.
        value: ``(*, S, Ev)``.
        attn_mask: broadcastable to ``(*, L, S)``; a bool mask keeps the
            positions where it is True, a float mask is added to the scores.
        dropout_p: dropout probability on the attention weights (always
            applied when > 0, as in PyTorch; pass 0.0 in eval mode).
        is_causal: mask out future positions (a lower-triangular mask aligned at
            the top left); exclusive with ``attn_mask``.
        scale: the score scale, ``1 / sqrt(E)`` by default.
        enable_gqa: let key/value have fewer heads (dim -3) than query, each
            shared by a group of query heads.

    Returns:
        ``(*, L, Ev)``. A query row that may attend to nothing gives zeros.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> q = k = v = ember.ones(2, 3, 4)
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
        (2, 3, 4)
    """
    args = (query, key, value)
    if (
        min(query.ndim, key.ndim, value.ndim) < 2
        or query.shape[-1] != key.shape[-1]
        or key.shape[-2] != value.shape[-2]
    ):
        raise op_error(
            "scaled_dot_product_attention",
            args,
            "need query (*, L, E), key (*, S, E) and value (*, S, Ev)",
        )
    if enable_gqa and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk:
            raise op_error(
                "scaled_dot_product_attention",
                args,
                f"query heads ({hq}) must be a multiple of key/value heads ({hk})",
            )
        key, value = _repeat_heads(key, hq // hk), _repeat_heads(value, hq // hk)
    n_l, n_s = query.shape[-2], key.shape[-2]
    s = 1.0 / math.sqrt(query.shape[-1]) if scale is None else scale
    scores = L.matmul(query, S.transpose(key, -2, -1)) * s
    if is_causal:
        if attn_mask is not None:
            raise ValueError(
                "scaled_dot_product_attention: pass either attn_mask or is_causal=True, not both"
            )
        rows = arange(n_l, device=query.device).unsqueeze(-1)
        attn_mask = rows >= arange(n_s, device=query.device)
    if attn_mask is not None:
        if attn_mask.dtype is dt.bool_:
            scores = E.where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
    weights = _safe_softmax(scores, -1)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return L.matmul(weights, value)


def _repeat_heads(x: Tensor, n: int) -> Tensor:
    shape = x.shape
    x = S.unsqueeze(x, -3)
    x = S.broadcast_to(x, (*shape[:-2], n, *shape[-2:]))
    return x.reshape(*shape[:-3], shape[-3] * n, *shape[-2:])


# ================================================================= losses
REDUCTIONS = ("none", "mean", "sum")


def check_reduction(
    name: str,
    reduction: str,
    size_average: bool | None = None,
    reduce: bool | None = None,
    allowed: tuple[str, ...] = REDUCTIONS,
) -> str:
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use "
            f"reduction='{reduction}' instead.",
            stacklevel=3,
        )
    if reduction not in allowed:
        raise ValueError(
            f"{name}: reduction must be one of {', '.join(repr(r) for r in allowed)}; "
            f"got {reduction!r}"
        )
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return R.mean(loss)
    if reduction == "sum":
        return R.sum(loss)
    return loss


def _same_shape(name: str, input: Tensor, target: Tensor) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise op_error(
            name,
            (input, target),
            f"target shape {tuple(target.shape)} does not match input shape "
            f"{tuple(input.shape)}; they must be equal (ember does not broadcast loss targets)",
        )


def _check_weight(name: str, input: Tensor, weight: Tensor) -> None:
    if tuple(weight.shape) != tuple(input.shape):
        raise op_error(
            name,
            (input, weight),
            f"weight shape {tuple(weight.shape)} must equal input shape {tuple(input.shape)}",
        )


def _weighted(loss: Tensor, weight: Tensor | None, reduction: str, mean_by_weight: bool) -> Tensor:
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return R.sum(loss) / R.sum(weight)
    return _reduce(loss, reduction)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Squared error ``(input - target)**2``, reduced.

    With ``weight`` (input's shape), 'mean' is ``sum(w * err) / sum(w)``.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.mse_loss(ember.tensor([1.0, 2.0]), ember.tensor([1.0, 4.0]))
        tensor(2.)
    """
    reduction = check_reduction("mse_loss", reduction, size_average, reduce)
    _same_shape("mse_loss", input, target)
    if weight is not None:
        _check_weight("mse_loss", input, weight)
    return _weighted(E.square(input - target), weight, reduction, True)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Absolute error ``|input - target|``, reduced (weighted mean as :func:`mse_loss`)."""
    reduction = check_reduction("l1_loss", reduction, size_average, reduce)
    _same_shape("l1_loss", input, target)
    if weight is not None:
        _check_weight("l1_loss", input, weight)
    return _weighted(E.abs(input - target), weight, reduction, True)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (L1 when beta=0)."""
    reduction = check_reduction("smooth_l1_loss", reduction, size_average, reduce)
    _same_shape("smooth_l1_loss", input, target)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    d = E.abs(input - target)
    if beta == 0:
        return _reduce(d, reduction)
    return _reduce(E.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``0.5 d**2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``.

    With ``weight``, 'mean' is the plain mean of the weighted losses (as PyTorch).
    """
    reduction = check_reduction("huber_loss", reduction)
    _same_shape("huber_loss", input, target)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    if weight is not None:
        _check_weight("huber_loss", input, weight)
    d = E.abs(input - target)
    loss = E.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, False)


def _class_dim(name: str, input: Tensor, target: Tensor) -> int:
    if input.ndim == 0:
        raise op_error(
            name, (input, target), "input needs a class dimension: (C), (N, C) or (N, C, d1, ...)"
        )
    return 1 if input.ndim >= 2 else 0


def _class_weight(name: str, weight: Tensor | None, n_classes: int) -> None:
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise op_error(
            name, (weight,), f"weight must be 1-D with one entry per class ({n_classes},)"
        )


def _nll(
    name: str,
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
) -> tuple[Tensor, Tensor | float, Tensor | None]:
    """For ``logp`` (N, C, ...) and ``target`` (N, ...): the per-element losses
    ``-w[t] * logp[t]`` (0 where ignored), the 'mean' denominator (the summed
    weights of the targets not ignored) and the not-ignored mask (None when no
    target is ignored)."""
    if target.dtype.category != dt.INT:
        raise op_error(
            name,
            (logp, target),
            f"class-index targets must be integers (int64), got {target.dtype}; class "
            "probabilities must have the input's shape",
            DTypeError,
        )
    expected = (logp.shape[0], *logp.shape[2:])
    if tuple(target.shape) != expected:
        raise op_error(
            name,
            (logp, target),
            f"target shape {tuple(target.shape)} does not match input shape "
            f"{tuple(logp.shape)}: class-index targets need shape {expected} (the input's "
            "shape without the class dim 1)",
        )
    n_classes = logp.shape[1]
    _class_weight(name, weight, n_classes)
    t = target._data
    # ember.compile, or a placeholder (a value that only describes itself): no values to
    # check; always take the masked path
    if is_tracing() or hasattr(type(t), "describe_tensor"):
        valid: Tensor | None = E.ne(target, ignore_index)
    else:
        # Validation only, on the backend's arrays: one host sync instead of a chain of ops.
        ignored = t == ignore_index
        bad = ~ignored & ((t < 0) | (t >= n_classes))
        if bool(bad.any()):
            raise IndexError(
                f"{name}: target {int(t[bad][0])} is out of bounds for {n_classes} classes"
            )
        valid = Tensor._wrap(~ignored) if bool(ignored.any()) else None
    safe = target if valid is None else E.where(valid, target, 0)
    loss = -S.gather(logp, 1, safe.unsqueeze(1)).squeeze(1)
    if weight is not None:
        w = S.index_select(weight, 0, safe.reshape(-1)).reshape(safe.shape)
        loss = loss * w
        if valid is not None:
            w = E.where(valid, w, 0.0)
        denom: Tensor | float = R.sum(w)
    else:
        denom = float(t.size) if valid is None else R.sum(valid.to(logp.dtype))
    if valid is not None:
        loss = E.where(valid, loss, 0.0)
    return loss, denom, valid


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices, from log-probabilities.

    Args:
        input: log-probabilities ``(C)``, ``(N, C)`` or ``(N, C, d1, ...)``.
        target: int64 class indices ``()``, ``(N)`` or ``(N, d1, ...)``.
        weight: per-class weights ``(C,)``.
        ignore_index: targets equal to this contribute nothing (not even to the
            mean's denominator).
        reduction: 'none', 'mean' (divided by the total weight of the targets
            that are not ignored) or 'sum'.

    Returns:
        The loss.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> logp = ember.tensor([[-0.5, -1.0], [-2.0, -0.1]])
        >>> F.nll_loss(logp, ember.tensor([0, 1]))
        tensor(0.3000)
    """
    reduction = check_reduction("nll_loss", reduction, size_average, reduce)
    cdim = _class_dim("nll_loss", input, target)
    if cdim == 0:
        input, target = input.unsqueeze(0), target.unsqueeze(0)
    loss, denom, _ = _nll("nll_loss", input, target, weight, ignore_index)
    if reduction == "none":
        return loss.squeeze(0) if cdim == 0 else loss
    if reduction == "sum":
        return R.sum(loss)
    return R.sum(loss) / denom


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy between logits and class indices or class probabilities.

    Args:
        input: unnormalized logits ``(C)``, ``(N, C)`` or ``(N, C, d1, ...)``.
        target: int64 class indices (input's shape without the class dim), or
            float class probabilities of the input's shape.
        weight: per-class weights ``(C,)``.
        ignore_index: class-index targets equal to this contribute nothing.
        reduction: 'none', 'mean' or 'sum'. With class indices, 'mean' divides
            by the total weight of the non-ignored targets; with probabilities,
            by the number of elements over the class dim (as PyTorch).
        label_smoothing: in [0, 1]; mixes the target with the uniform
            distribution: ``(1 - s) * target + s / C``.

    Returns:
        The loss.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> logits = ember.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
        >>> round(F.cross_entropy(logits, ember.tensor([0, 2])).item(), 4)
        0.6691
    """
    reduction = check_reduction("cross_entropy", reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    cdim = _class_dim("cross_entropy", input, target)
    n_classes = input.shape[cdim]
    logp = A.log_softmax(input, cdim)
    if target.is_floating_point():
        return _cross_entropy_probs(
            logp, target, weight, ignore_index, reduction, label_smoothing, cdim
        )
    if cdim == 0:
        logp, target = logp.unsqueeze(0), target.unsqueeze(0)
    nll, denom, valid = _nll("cross_entropy", logp, target, weight, ignore_index)
    if reduction == "none":
        loss = nll
    elif reduction == "sum":
        loss = R.sum(nll)
    else:
        loss = R.sum(nll) / denom
    if label_smoothing > 0.0:
        wl = logp if weight is None else logp * weight.reshape(-1, *(1,) * (logp.ndim - 2))
        smooth = -R.sum(wl, 1)
        if valid is not None:
            smooth = E.where(valid, smooth, 0.0)
        if reduction == "none":
            smooth_r = smooth
        elif reduction == "sum":
            smooth_r = R.sum(smooth)
        else:
            smooth_r = R.sum(smooth) / denom
        loss = loss * (1.0 - label_smoothing) + smooth_r * (label_smoothing / n_classes)
    if reduction == "none" and cdim == 0:
        loss = loss.squeeze(0)
    return loss


def _cross_entropy_probs(
    logp: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    cdim: int,
) -> Tensor:
    if tuple(target.shape) != tuple(logp.shape):
        raise op_error(
            "cross_entropy",
            (logp, target),
            f"target shape {tuple(target.shape)} does not match input shape "
            f"{tuple(logp.shape)}: class-probability targets need the input's shape (or pass "
            "int64 class indices)",
        )
    if ignore_index != -100:
        raise ValueError("cross_entropy: ignore_index is not supported with probability targets")
    n_classes = logp.shape[cdim]
    _class_weight("cross_entropy", weight, n_classes)
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = logp * target
    if weight is not None:
        prod = prod * weight.reshape(-1, *(1,) * (logp.ndim - cdim - 1))
    if reduction == "none":
        return -R.sum(prod, cdim)
    total = -R.sum(prod)
    if reduction == "sum":
        return total
    return total / (logp.numel() // n_classes) if logp.numel() else total * math.nan


def _clamped_log(x: Tensor) -> Tensor:
    """max(log(x), -100) as PyTorch's BCE, without ever evaluating log(0)."""
    pos = x > 0
    return E.where(pos, E.clamp(E.log(E.where(pos, x, 1.0)), min=-100.0), -100.0)


def _broadcast_weight(name: str, weight: Tensor, target: Tensor, what: str = "weight") -> None:
    try:
        shape = E.broadcast_shapes(weight, target)
    except ValueError:
        shape = None
    if shape != tuple(target.shape):
        raise op_error(
            name,
            (target, weight),
            f"{what} of shape {tuple(weight.shape)} must broadcast to the target's shape "
            f"{tuple(target.shape)}",
        )


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``-w (t log(x) + (1 - t) log(1 - x))`` for probabilities ``x``; each log is clamped
    to >= -100 as in PyTorch.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.binary_cross_entropy(ember.tensor([0.5, 0.5]), ember.tensor([1.0, 0.0]))
        tensor(0.6931)
    """
    reduction = check_reduction("binary_cross_entropy", reduction, size_average, reduce)
    _same_shape("binary_cross_entropy", input, target)
    x = input._data
    if not is_tracing() and bool(((x < 0) | (x > 1)).any()):  # traced: no values to check
        raise ValueError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 (for "
            "logits, use binary_cross_entropy_with_logits)"
        )
    loss = -(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input))
    if weight is not None:
        _broadcast_weight("binary_cross_entropy", weight, target)
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid + binary cross entropy in one numerically stable expression.

    ``loss = (1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x))``, times ``weight``.

    Args:
        input: logits.
        target: targets in [0, 1], the input's shape.
        weight: rescales each element's loss (broadcast to the target).
        reduction: 'none', 'mean' or 'sum'.
        pos_weight: weight of the positive term, broadcast to the target
            (one per class along the last dim).

    Returns:
        The loss.

    Example:
        >>> import ember
        >>> import ember.nn.functional as F
        >>> F.binary_cross_entropy_with_logits(ember.tensor([0.0]), ember.tensor([1.0]))
        tensor(0.6931)
    """
    name = "binary_cross_entropy_with_logits"
    reduction = check_reduction(name, reduction, size_average, reduce)
    _same_shape(name, input, target)
    # log(1 + exp(-x)) = m + log(exp(-m) + exp(-x - m)) with m = max(-x, 0); the
    # shift m is a constant for the gradient (it cancels), so it is detached.
    m = E.clamp(-input, min=0.0).detach()
    log_sig = m + E.log(E.exp(-m) + E.exp(-input - m))
    if pos_weight is not None:
        _broadcast_weight(name, pos_weight, target, "pos_weight")
        log_sig = log_sig * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input + log_sig
    if weight is not None:
        _broadcast_weight(name, weight, target)
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """KL divergence ``target * (log(target) - input)`` with ``input`` given as log-probabilities.

    Args:
        input: log-probabilities.
        target: probabilities (log-probabilities when ``log_target``), input's shape.
        reduction: 'none', 'mean' (over all elements), 'batchmean' (sum divided
            by the batch size: the mathematical KL divergence) or 'sum'.
        log_target: whether ``target`` holds log-probabilities.

    Returns:
        The loss.
    """
    reduction = check_reduction(
        "kl_div", reduction, size_average, reduce, ("none", "mean", "batchmean", "sum")
    )
    _same_shape("kl_div", input, target)
    if log_target:
        loss = E.exp(target) * (target - input)
    else:
        pos = target > 0
        xlogx = E.where(pos, target * E.log(E.where(pos, target, 1.0)), 0.0)
        loss = xlogx - target * input
    if reduction == "batchmean":
        total = R.sum(loss)
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` where target is 1, ``max(0, cos(x1, x2) - margin)`` where it is -1.

    Args:
        input1: ``(N, D)`` or ``(D)``.
        input2: same shape as ``input1``.
        target: ``(N)`` or ``()`` of 1 / -1.
        margin: in [-1, 1]; 0 to 0.5 is typical.
        reduction: 'none', 'mean' or 'sum'.

    Returns:
        The loss.
    """
    name = "cosine_embedding_loss"
    reduction = check_reduction(name, reduction, size_average, reduce)
    args = (input1, input2, target)
    if target.ndim not in (0, 1):
        raise op_error(name, args, "target must be 0-D or 1-D (one label per pair)")
    want = 2 if target.ndim == 1 else 1
    if (
        input1.ndim != want
        or tuple(input1.shape) != tuple(input2.shape)
        or (want == 2 and input1.shape[0] != target.shape[0])
    ):
        raise op_error(
            name,
            args,
            f"a {target.ndim}-D target needs two {want}-D inputs of equal shape "
            f"{'(N, D) with N = len(target)' if want == 2 else '(D)'}",
        )
    dim = target.ndim
    eps = 1e-12  # PyTorch's EPSILON on the squared magnitudes
    prod = R.sum(input1 * input2, dim)
    mag = E.sqrt((R.sum(input1 * input1, dim) + eps) * (R.sum(input2 * input2, dim) + eps))
    cos = prod / mag
    pos = E.where(target == 1, 1 - cos, 0.0)
    neg = E.where(target == -1, E.clamp(cos - margin, min=0.0), 0.0)
    return _reduce(pos + neg, reduction)


# ================================================================= convolution and pooling
# (conv1d, conv2d, conv_transpose2d, max_pool*, avg_pool*, adaptive_*_pool2d)


# ================================================================= normalization
# (batch_norm, layer_norm, group_norm)
