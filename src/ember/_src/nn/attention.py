"""Multi-head attention, with PyTorch's names, masks and parameter layout.

``MultiheadAttention`` keeps PyTorch's parameters (``in_proj_weight`` packing
the query, key and value projections, or ``q/k/v_proj_weight`` when the key
and value widths differ; ``in_proj_bias``; ``out_proj``; optional ``bias_k`` and
``bias_v``), so its state dict loads PyTorch's. Masks follow PyTorch: a bool
mask marks the positions that may *not* be attended (True = masked), a float
mask is added to the scores.
"""

from __future__ import annotations

import math
from typing import Any

from ember._src.core import dtype as dt
from ember._src.core.creation import full, ones, zeros
from ember._src.core.tensor import Tensor
from ember._src.nn import functional as F
from ember._src.nn import init
from ember._src.nn.linear import Linear
from ember._src.nn.module import Module, Parameter
from ember._src.ops import activation as A
from ember._src.ops import elementwise as E
from ember._src.ops import reduce as R
from ember._src.ops import shape as S


def _additive_mask(mask: Tensor | None, name: str, dtype: dt.dtype) -> Tensor | None:
    """A bool mask (True = may not attend) as 0 / -inf, a float mask as is."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype is dt.bool_:
        return E.where(mask, full((), -math.inf, dtype=dtype, device=mask.device), 0.0).to(dtype)
    if not mask.dtype.is_floating_point:
        raise TypeError(f"only bool and floating types of {name} are supported, got {mask.dtype}")
    return mask.to(dtype)


def causal_mask(size: int, dtype: Any = None, device: Any = None) -> Tensor:
    """A ``(size, size)`` float mask: 0 on and below the diagonal, ``-inf`` above.

    Example:
        >>> from ember._src.nn.attention import causal_mask
        >>> causal_mask(3)
        tensor([[  0., -inf, -inf],
                [  0.,   0., -inf],
                [  0.,   0.,   0.]])
    """
    upper = S.triu(ones(size, size, dtype=dt.bool_, device=device), 1)
    return E.where(upper, full((), -math.inf, dtype=dtype, device=device), 0.0).to(
        dtype if dtype is not None else dt.get_default_dtype()
    )


def _attention_with_weights(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, dropout_p: float
) -> tuple[Tensor, Tensor]:
    """softmax(q k^T / sqrt(d) + mask) v, also returning the weights.

    ``F.scaled_dot_product_attention`` computes the same thing when the weights
    are not needed. As PyTorch does on this path, the query is scaled before
    the product and a fully masked row gives NaN.
    """
    scores = (q * (1.0 / math.sqrt(q.shape[-1]))) @ S.transpose(k, -2, -1)
    if mask is not None:
        scores = scores + mask
    weights = A.softmax(scores, -1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p)
    return weights @ v, weights


class MultiheadAttention(Module):
    """Attention from a query sequence to a key/value sequence with ``num_heads`` heads.

    Args:
        embed_dim: model width ``E`` (of the query and the output).
        num_heads: parallel heads; ``embed_dim`` must divide evenly among them.
        dropout: dropout on the attention weights, in training.
        bias: biases on the input and output projections.
        add_bias_kv: append a learned ``bias_k`` / ``bias_v`` to the key and value sequences.
        add_zero_attn: append a zero key and value (after the projections).
        kdim, vdim: widths of the key and value inputs (default ``embed_dim``).
        batch_first: inputs and outputs are ``(batch, seq, feature)``.

    Call ``mha(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)``:
    ``key_padding_mask`` is ``(N, S)``, ``attn_mask`` ``(L, S)`` or
    ``(N * num_heads, L, S)``; a bool mask's True entries may not be attended,
    a float mask is added to the scores. ``is_causal`` is a hint that
    ``attn_mask`` is the causal mask (it still has to be given), as in PyTorch.

    Returns:
        ``(attn_output, attn_weights)``: output ``(L, N, E)`` (``(N, L, E)`` if
        batch_first), weights ``(N, L, S)`` averaged over heads, ``(N,
        num_heads, L, S)`` if not ``average_attn_weights``, None if not
        ``need_weights``. Unbatched 2-D inputs give unbatched results.

    Example:
        >>> import ember
        >>> mha = ember.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> x = ember.randn(3, 5, 8)
        >>> out, w = mha(x, x, x)
        >>> out.shape, w.shape
        ((3, 5, 8), (3, 5, 5))
    """

    bias_k: Parameter | None
    bias_v: Parameter | None

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} "
                f"and num_heads={num_heads} instead"
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"dropout should be a number in range [0, 1], got {dropout}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn

        def param(*shape: int) -> Parameter:
            return Parameter(zeros(*shape, dtype=dtype, device=device))

        if self._qkv_same_embed_dim:
            self.in_proj_weight = param(3 * embed_dim, embed_dim)
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = param(embed_dim, embed_dim)
            self.k_proj_weight = param(embed_dim, self.kdim)
            self.v_proj_weight = param(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = param(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias, device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = param(1, 1, embed_dim)
            self.bias_v = param(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for w in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight,
                  self.v_proj_weight):  # fmt: skip
            if w is not None:
                init.xavier_uniform_(w)
        for b in (self.in_proj_bias, self.out_proj.bias):
            if b is not None:
                init.zeros_(b)
        for p in (self.bias_k, self.bias_v):
            if p is not None:
                init.xavier_normal_(p)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        if not batched:
            query, key, value = (S.unsqueeze(t, 0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = S.unsqueeze(key_padding_mask, 0)
        elif not self.batch_first:
            query, key, value = (S.transpose(t, 0, 1) for t in (query, key, value))
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use "
                "ember.nn.Transformer.generate_square_subsequent_mask to create this mask."
            )
        out, weights = self._attend(
            query, key, value, key_padding_mask, need_weights, attn_mask, is_causal
        )
        if not batched:
            out = S.squeeze(out, 0)
        elif not self.batch_first:
            out = S.transpose(out, 0, 1)
        if weights is not None:
            if average_attn_weights:
                weights = R.mean(weights, 1)
            if not batched:
                weights = S.squeeze(weights, 0)
        return out, weights

    def _check_shapes(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
    ) -> bool:
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"MultiheadAttention: {name} must be a Tensor, got {type(t)}")
        if query.ndim not in (2, 3):
            raise ValueError(
                "query should be unbatched 2D or batched 3D tensor but received "
                f"{query.ndim}-D query tensor"
            )
        batched = query.ndim == 3
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(
                f"for a {query.ndim}-D query, expected key and value to be {query.ndim}-D but "
                f"found {key.ndim}-D and {value.ndim}-D tensors respectively"
            )
        if query.shape[-1] != self.embed_dim:
            raise ValueError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {query.shape[-1]}"
            )
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(
                f"expected key and value widths {self.kdim} and {self.vdim}, got "
                f"{key.shape[-1]} and {value.shape[-1]}"
            )
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(
                f"key's sequence and batch dims {tuple(key.shape[:-1])} do not match value's "
                f"{tuple(value.shape[:-1])}"
            )
        if batched and query.shape[1 - self.batch_first] != key.shape[1 - self.batch_first]:
            raise ValueError(
                f"query and key have different batch sizes: {tuple(query.shape)} and "
                f"{tuple(key.shape)} (batch_first={self.batch_first})"
            )
        if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
            raise ValueError(
                f"for a {query.ndim}-D query, expected key_padding_mask to be None or "
                f"{query.ndim - 1}-D but found a {key_padding_mask.ndim}-D tensor"
            )
        if attn_mask is not None and attn_mask.ndim not in (2, 3):
            raise ValueError(
                f"expected attn_mask to be None, 2-D or 3-D but found {attn_mask.ndim}-D"
            )
        return batched

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, ...]:
        e, b = self.embed_dim, self.in_proj_bias
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            assert w is not None
            if query is key and key is value:  # self-attention: one matmul
                qkv = query @ S.t(w)
                if b is not None:
                    qkv = qkv + b
                return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
            ws = (w[:e], w[e : 2 * e], w[2 * e :])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        bs = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        out = []
        for x, w_, b_ in zip((query, key, value), ws, bs):
            y = x @ S.t(w_)
            out.append(y if b_ is None else y + b_)
        return tuple(out)

    def _attend(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None,
        need_weights: bool,
        attn_mask: Tensor | None,
        is_causal: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention on batch-first ``(N, L, E)`` inputs."""
        n, tgt_len, _ = query.shape
        src_len = key.shape[1]
        heads, hd = self.num_heads, self.head_dim
        dtype = query.dtype
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (n, src_len):
            raise ValueError(
                f"expected key_padding_mask of shape {(n, src_len)}, got "
                f"{tuple(key_padding_mask.shape)}"
            )
        kpm = _additive_mask(key_padding_mask, "key_padding_mask", dtype)
        mask: Tensor | None
        if is_causal and kpm is None and not need_weights:
            # PyTorch treats the hint as authoritative here and uses the causal mask.
            mask = causal_mask(tgt_len, dtype, query.device)
            if src_len != tgt_len:
                raise ValueError("is_causal needs equal query and key lengths")
        else:
            mask = _additive_mask(attn_mask, "attn_mask", dtype)
        if mask is not None:
            expected = [(tgt_len, src_len), (n * heads, tgt_len, src_len)]
            if tuple(mask.shape) not in expected:
                raise ValueError(
                    f"the shape of attn_mask is {tuple(mask.shape)}, but should be "
                    f"{expected[0]} or {expected[1]}"
                )
            if mask.ndim == 3:
                mask = mask.reshape(n, heads, tgt_len, src_len)

        q, k, v = self._project(query, key, value)
        if self.bias_k is not None and self.bias_v is not None:
            k = S.cat([k, self.bias_k.expand(n, 1, self.embed_dim)], 1)
            v = S.cat([v, self.bias_v.expand(n, 1, self.embed_dim)], 1)
            mask = None if mask is None else S.pad(mask, (0, 1))
            kpm = None if kpm is None else S.pad(kpm, (0, 1))
        q = S.permute(q.reshape(n, tgt_len, heads, hd), 0, 2, 1, 3)
        k = S.permute(k.reshape(n, k.shape[1], heads, hd), 0, 2, 1, 3)
        v = S.permute(v.reshape(n, v.shape[1], heads, hd), 0, 2, 1, 3)
        if self.add_zero_attn:
            z = zeros(n, heads, 1, hd, dtype=dtype, device=q.device)
            k, v = S.cat([k, z], 2), S.cat([v, z], 2)
            mask = None if mask is None else S.pad(mask, (0, 1))
            kpm = None if kpm is None else S.pad(kpm, (0, 1))
        if kpm is not None:
            kpm = kpm.reshape(n, 1, 1, kpm.shape[-1])
            mask = kpm if mask is None else mask + kpm
        p = self.dropout if self.training else 0.0
        weights: Tensor | None = None
        if need_weights:
            out, weights = _attention_with_weights(q, k, v, mask, p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = S.permute(out, 0, 2, 1, 3).reshape(n, tgt_len, self.embed_dim)
        return self.out_proj(out), weights
