"""Recurrent layers: RNN, LSTM, GRU and their one-step cells, with PyTorch's names.

Parameter names, shapes, gate order (LSTM ``i, f, g, o``; GRU ``r, z, n``) and
the default initialization (every weight and bias uniform in
``(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``) follow PyTorch, so state
dicts load either way.

The sequence is unrolled in Python with ember ops, so autograd needs nothing
special. Each layer projects its whole input sequence with one matrix multiply
(``X @ W_ih^T`` over all T*B rows) and then slices one step at a time; the
engine sums the slices' gradients sparsely, so that costs O(T) in backward
(``python -m benchmarks.bench_rnn_attention --ablation`` compares it with a
projection per step). Layer outputs stay a list of steps between layers and are
stacked once at the end.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from ember._src.core.creation import empty, zeros
from ember._src.core.tensor import Tensor
from ember._src.nn import functional as F
from ember._src.nn import init
from ember._src.nn.module import Module, Parameter
from ember._src.ops import elementwise as E
from ember._src.ops import shape as S

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}

# A step: (input projection x W_ih^T + b_ih, state, W_hh^T, b_hh, W_hr^T) -> new state.
# The state is h, or (h, c) for the LSTM.


def _tanh_step(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    pre = gi + h @ w_hh_t
    return E.tanh(pre if b_hh is None else pre + b_hh)


def _relu_step(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    pre = gi + h @ w_hh_t
    return E.relu(pre if b_hh is None else pre + b_hh)


def _lstm_step(
    gi: Tensor,
    state: tuple[Tensor, Tensor],
    w_hh_t: Tensor,
    b_hh: Tensor | None,
    w_hr_t: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    h, c = state
    gates = gi + h @ w_hh_t
    if b_hh is not None:
        gates = gates + b_hh
    # One sigmoid over all four gates (g's quarter unused) saves three ops per step.
    n = c.shape[-1]
    act = E.sigmoid(gates)
    i, f, o = act[:, :n], act[:, n : 2 * n], act[:, 3 * n :]
    c = f * c + i * E.tanh(gates[:, 2 * n : 3 * n])
    h = o * E.tanh(c)
    if w_hr_t is not None:
        h = h @ w_hr_t
    return h, c


def _gru_step(gi: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None) -> Tensor:
    gh = h @ w_hh_t
    if b_hh is not None:
        gh = gh + b_hh
    k = h.shape[-1]
    rz = E.sigmoid(gi[:, : 2 * k] + gh[:, : 2 * k])
    r, z = rz[:, :k], rz[:, k:]
    n = E.tanh(gi[:, 2 * k :] + r * gh[:, 2 * k :])
    return n + z * (h - n)  # (1 - z) * n + z * h


_STEPS = {"RNN_TANH": _tanh_step, "RNN_RELU": _relu_step, "GRU": _gru_step}


def _reset_uniform(module: Module, hidden_size: int) -> None:
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (use those)."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"unknown RNN mode {mode!r}; expected one of {sorted(_GATES)}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1]")
        if not 0 <= dropout <= 1:
            raise ValueError(f"dropout should be a number in range [0, 1], got {dropout}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=3,
            )
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        for layer in range(num_layers):
            for direction in range(directions):
                in_size = input_size if layer == 0 else real_hidden * directions
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes: list[tuple[str, tuple[int, ...]]] = [
                    ("weight_ih", (gate_size, in_size)),
                    ("weight_hh", (gate_size, real_hidden)),
                ]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size > 0:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                for name, shape in shapes:
                    self.register_parameter(
                        name + sfx, Parameter(empty(*shape, dtype=dtype, device=device))
                    )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in ``(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        _reset_uniform(self, self.hidden_size)

    def flatten_parameters(self) -> None:
        """A no-op kept for PyTorch compatibility (there is no cuDNN weight buffer here)."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters of each layer and direction, in PyTorch's order."""
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        if self.proj_size > 0:
            names.append("weight_hr")
        out = []
        for layer in range(self.num_layers):
            for direction in range(2 if self.bidirectional else 1):
                sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                out.append([getattr(self, n + sfx) for n in names])
        return out

    def _layer_params(self, layer: int, direction: int) -> tuple[Any, ...]:
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        p = self._parameters
        w_hr = p.get("weight_hr" + sfx)
        return (
            p["weight_ih" + sfx],
            p["weight_hh" + sfx],
            p.get("bias_ih" + sfx),
            p.get("bias_hh" + sfx),
            w_hr,
        )

    def _check_input(self, input: Tensor) -> bool:
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__} expects a Tensor input, got {type(input)}")
        if input.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: expected input to be 2-D (unbatched) or 3-D (batched), "
                f"got {input.ndim}-D with shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.shape[-1]}"
            )
        return input.ndim == 3

    def _check_hidden(self, hx: Tensor, expected: tuple[int, ...], what: str) -> None:
        if not isinstance(hx, Tensor):
            raise TypeError(f"{type(self).__name__}: {what} must be a Tensor, got {type(hx)}")
        if tuple(hx.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {tuple(hx.shape)}")

    def _initial_states(self, input: Tensor, hx: Any, batched: bool, batch: int) -> list[Any]:
        directions = 2 if self.bidirectional else 1
        n = self.num_layers * directions
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        h_shape = (n, batch, real_hidden) if batched else (n, real_hidden)
        c_shape = (n, batch, self.hidden_size) if batched else (n, self.hidden_size)
        lstm = self.mode == "LSTM"
        if hx is None:
            h0 = zeros(*h_shape, dtype=input.dtype, device=input.device)
            if not lstm:
                return list(_split_layers(h0, batched))
            c0 = zeros(*c_shape, dtype=input.dtype, device=input.device)
            return list(zip(_split_layers(h0, batched), _split_layers(c0, batched)))
        if lstm:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError("LSTM expects hx to be a tuple (h_0, c_0) of Tensors")
            self._check_hidden(hx[0], h_shape, "hidden[0]")
            self._check_hidden(hx[1], c_shape, "hidden[1]")
            return list(zip(_split_layers(hx[0], batched), _split_layers(hx[1], batched)))
        self._check_hidden(hx, h_shape, "hidden")
        return list(_split_layers(hx, batched))

    def forward(self, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:
        batched = self._check_input(input)
        if not batched:
            input = S.unsqueeze(input, 1)
        elif self.batch_first:
            input = S.transpose(input, 0, 1)
        batch = input.shape[1]
        states = self._initial_states(input, hx, batched, batch)
        directions = 2 if self.bidirectional else 1
        xs = list(S.unbind(input, 0))
        finals: list[Any] = []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(directions):
                ys, final = self._run(layer, direction, xs, states[layer * directions + direction])
                outs.append(ys)
                finals.append(final)
            xs = outs[0] if directions == 1 else [S.cat(pair, -1) for pair in zip(*outs)]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                xs = [F.dropout(x, self.dropout) for x in xs]
        output = S.stack(xs, 0)
        if not batched:
            output = S.squeeze(output, 1)
        elif self.batch_first:
            output = S.transpose(output, 0, 1)
        if self.mode == "LSTM":
            h_n = S.stack([f[0] for f in finals], 0)
            c_n = S.stack([f[1] for f in finals], 0)
            if not batched:
                h_n, c_n = S.squeeze(h_n, 1), S.squeeze(c_n, 1)
            return output, (h_n, c_n)
        h_n = S.stack(finals, 0)
        if not batched:
            h_n = S.squeeze(h_n, 1)
        return output, h_n

    def _run(
        self, layer: int, direction: int, xs: list[Tensor], state: Any
    ) -> tuple[list[Tensor], Any]:
        """One layer in one direction over the steps ``xs``: (outputs in time order, final)."""
        w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_params(layer, direction)
        w_ih_t, w_hh_t = S.t(w_ih), S.t(w_hh)
        w_hr_t = S.t(w_hr) if w_hr is not None else None
        # Outside the GRU the two biases only ever appear summed: add them once.
        if self.mode != "GRU" and b_ih is not None and b_hh is not None:
            b_ih, b_hh = b_ih + b_hh, None
        steps = range(len(xs) - 1, -1, -1) if direction == 1 else range(len(xs))
        ys: list[Tensor] = [None] * len(xs)  # type: ignore[list-item]
        projected = S.stack(xs, 0) @ w_ih_t  # every step's input projection in one GEMM
        gis = S.unbind(projected if b_ih is None else projected + b_ih, 0)
        if self.mode == "LSTM":
            for t in steps:
                state = _lstm_step(gis[t], state, w_hh_t, b_hh, w_hr_t)
                ys[t] = state[0]
            return ys, state
        step = _STEPS[self.mode]
        for t in steps:
            state = ys[t] = step(gis[t], state, w_hh_t, b_hh)
        return ys, state

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


def _split_layers(h: Tensor, batched: bool) -> tuple[Tensor, ...]:
    """Per layer-and-direction states, each (batch, hidden)."""
    parts = S.unbind(h, 0)
    return parts if batched else tuple(S.unsqueeze(p, 0) for p in parts)


class RNN(RNNBase):
    """Elman RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, act tanh or relu.

    Args:
        input_size: features of the input ``x``.
        hidden_size: features of the hidden state ``h``.
        num_layers: stacked recurrent layers.
        nonlinearity: ``'tanh'`` or ``'relu'``.
        bias: use ``b_ih`` and ``b_hh``.
        batch_first: input and output are ``(batch, seq, feature)`` instead of
            ``(seq, batch, feature)`` (the hidden state is never batch first).
        dropout: dropout on the outputs of every layer but the last, in training.
        bidirectional: run a second, reversed direction; outputs are concatenated.

    Returns:
        ``(output, h_n)``: output ``(seq, batch, D * hidden_size)``, h_n
        ``(D * num_layers, batch, hidden_size)`` (batch dims absent for 2-D input).

    Example:
        >>> import ember
        >>> rnn = ember.nn.RNN(4, 8, num_layers=2)
        >>> out, h = rnn(ember.randn(5, 3, 4))
        >>> out.shape, h.shape
        ((5, 3, 8), (2, 3, 8))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, device=device, dtype=dtype,
        )  # fmt: skip

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's gates ``i, f, g, o`` in that order.

    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)`` (times ``W_hr^T``
    when ``proj_size > 0``), with ``i, f, o`` sigmoid and ``g`` tanh of
    ``x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh``. Arguments as :class:`RNN`,
    plus ``proj_size``.

    Returns:
        ``(output, (h_n, c_n))``.

    Example:
        >>> import ember
        >>> lstm = ember.nn.LSTM(4, 8, batch_first=True, bidirectional=True)
        >>> out, (h, c) = lstm(ember.randn(3, 5, 4))
        >>> out.shape, h.shape, c.shape
        ((3, 5, 16), (2, 3, 8), (2, 3, 8))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, proj_size, device=device, dtype=dtype,
        )  # fmt: skip


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's gates ``r, z, n`` in that order.

    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.
    Arguments and returns as :class:`RNN`.

    Example:
        >>> import ember
        >>> gru = ember.nn.GRU(4, 8)
        >>> out, h = gru(ember.randn(5, 4))  # unbatched
        >>> out.shape, h.shape
        ((5, 8), (1, 8))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, device=device, dtype=dtype,
        )  # fmt: skip


# ----------------------------------------------------------------- cells
class RNNCellBase(Module):
    """The shared parameters of the one-step cells (use RNNCell, LSTMCell, GRUCell)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        g = num_chunks * hidden_size
        self.weight_ih = Parameter(empty(g, input_size, dtype=dtype, device=device))
        self.weight_hh = Parameter(empty(g, hidden_size, dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty(g, dtype=dtype, device=device))
            self.bias_hh = Parameter(empty(g, dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias uniform in ``(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        _reset_uniform(self, self.hidden_size)

    def _prepare(self, input: Tensor, hx: Any, n_states: int) -> tuple[Tensor, Any, bool]:
        if not isinstance(input, Tensor):
            raise TypeError(f"{type(self).__name__} expects a Tensor input, got {type(input)}")
        if input.ndim not in (1, 2):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.ndim}D instead"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.shape[-1]} "
                f"expected {self.input_size}"
            )
        batched = input.ndim == 2
        if not batched:
            input = S.unsqueeze(input, 0)
        shape = (input.shape[0], self.hidden_size)
        if hx is None:
            z = zeros(*shape, dtype=input.dtype, device=input.device)
            return input, (z if n_states == 1 else (z, z)), batched
        states = (hx,) if n_states == 1 else tuple(hx)
        if len(states) != n_states:
            raise TypeError(f"{type(self).__name__} expects hx to be a tuple (h_0, c_0)")
        fixed = []
        for s in states:
            if not isinstance(s, Tensor):
                raise TypeError(f"{type(self).__name__}: hx must hold Tensors, got {type(s)}")
            if s.ndim != input.ndim - (0 if batched else 1):
                raise RuntimeError(
                    f"{type(self).__name__}: Expected hidden to be "
                    f"{'2D' if batched else '1D'}, got {s.ndim}D instead"
                )
            s = s if batched else S.unsqueeze(s, 0)
            if tuple(s.shape) != shape:
                raise RuntimeError(f"Expected hidden size {shape}, got {tuple(s.shape)}")
            fixed.append(s)
        return input, (fixed[0] if n_states == 1 else tuple(fixed)), batched

    def _gi(self, input: Tensor) -> Tensor:
        gi = input @ S.t(self.weight_ih)
        return gi if self.bias_ih is None else gi + self.bias_ih

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = getattr(self, "nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl!r}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    Example:
        >>> import ember
        >>> cell = ember.nn.RNNCell(4, 8)
        >>> cell(ember.randn(3, 4)).shape
        (3, 8)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity: {nonlinearity!r}. Select from 'tanh' or 'relu'."
            )
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, h, batched = self._prepare(input, hx, 1)
        step = _tanh_step if self.nonlinearity == "tanh" else _relu_step
        out = step(self._gi(x), h, S.t(self.weight_hh), self.bias_hh)
        return out if batched else S.squeeze(out, 0)


class LSTMCell(RNNCellBase):
    """One LSTM step; returns ``(h', c')``.

    Example:
        >>> import ember
        >>> cell = ember.nn.LSTMCell(4, 8)
        >>> h, c = cell(ember.randn(3, 4))
        >>> h.shape, c.shape
        ((3, 8), (3, 8))
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        x, state, batched = self._prepare(input, hx, 2)
        h, c = _lstm_step(self._gi(x), state, S.t(self.weight_hh), self.bias_hh)
        return (h, c) if batched else (S.squeeze(h, 0), S.squeeze(c, 0))


class GRUCell(RNNCellBase):
    """One GRU step: ``h' = (1 - z) * n + z * h``.

    Example:
        >>> import ember
        >>> cell = ember.nn.GRUCell(4, 8)
        >>> cell(ember.randn(4)).shape
        (8,)
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, h, batched = self._prepare(input, hx, 1)
        out = _gru_step(self._gi(x), h, S.t(self.weight_hh), self.bias_hh)
        return out if batched else S.squeeze(out, 0)
