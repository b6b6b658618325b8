"""Layers for ``ember.models``: lazily built ``Dense``/``LazyLinear`` and graph helpers.

Every layer here is an ``ember.nn.Module`` that can also be called on the symbolic
tensors of ``ember.models.Input`` (it then records a node of the functional graph).
Any other ``ember.nn`` module joins a functional graph through ``Lambda(module)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ember
from ember._src.core.tensor import Tensor
from ember._src.models.functional import is_symbolic, symbolic_call
from ember._src.nn import functional as F
from ember._src.nn import init
from ember._src.nn.module import Module, Parameter

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "gelu": F.gelu,
    "silu": F.silu,
    "softplus": F.softplus,
    "softmax": lambda x: F.softmax(x, dim=-1),
    "linear": lambda x: x,
}


def get_activation(identifier: str | Callable[[Tensor], Tensor] | None) -> Callable[..., Any]:
    """Resolve a Keras activation name (``"relu"``, ``"softmax"``, ...) or callable."""
    if identifier is None:
        return _ACTIVATIONS["linear"]
    if callable(identifier):
        return identifier
    fn = _ACTIVATIONS.get(identifier)
    if fn is None:
        raise ValueError(
            f"unknown activation {identifier!r}; choose one of {', '.join(sorted(_ACTIVATIONS))} "
            "or pass a callable"
        )
    return fn


class Layer(Module):
    """Base for layers that can be called on real tensors and on symbolic placeholders."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if is_symbolic(args):
            return symbolic_call(self, args, lambda *a: super(Layer, self).__call__(*a, **kwargs))
        return super().__call__(*args, **kwargs)


class LazyLinear(Layer):
    """``Linear`` whose ``in_features`` is read from its first input.

    Until the first call the layer has no parameters (``weight`` and ``bias`` are
    None), so build it (call it once, or put it in a model that is called) before
    handing ``parameters()`` to an optimizer. Initialized as ``nn.Linear``.

    Args:
        out_features: size of each output sample's last dimension.
        bias: whether to learn an additive bias.

    Example:
        >>> import ember
        >>> from ember.models.layers import LazyLinear
        >>> layer = LazyLinear(2)
        >>> layer(ember.ones(5, 3)).shape
        (5, 2)
        >>> layer
        LazyLinear(in_features=3, out_features=2, bias=True)
    """

    def __init__(self, out_features: int, bias: bool = True, dtype: Any = None) -> None:
        super().__init__()
        if out_features <= 0:
            raise ValueError(f"out_features must be positive, got {out_features}")
        self.in_features: int | None = None
        self.out_features = out_features
        self._use_bias = bias
        self._dtype = dtype
        self.register_parameter("weight", None)
        self.register_parameter("bias", None)

    @property
    def built(self) -> bool:
        return self.in_features is not None

    def build(self, input: Tensor) -> None:
        """Create the parameters for inputs whose last dimension is ``input.shape[-1]``."""
        self.in_features = int(input.shape[-1])
        dtype = self._dtype or (input.dtype if input.is_floating_point() else None)
        device = input.device
        self.weight = Parameter(
            ember.empty(self.out_features, self.in_features, dtype=dtype, device=device)
        )
        if self._use_bias:
            self.bias = Parameter(ember.empty(self.out_features, dtype=dtype, device=device))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the parameters as ``nn.Linear`` does (after the layer is built)."""
        if self.weight is None:
            return
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if self.weight is None:
            self.build(input)
        elif input.shape[-1] != self.in_features:
            raise ValueError(
                f"{type(self).__name__} was built for inputs with {self.in_features} features "
                f"but got shape {tuple(input.shape)}"
            )
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self._use_bias}"
        )


class Dense(LazyLinear):
    """Keras's ``Dense(units, activation=None, use_bias=True)``: a lazy Linear then an activation.

    Args:
        units: the number of outputs.
        activation: None, a name (``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"softmax"``,
            ``"gelu"``, ``"silu"``, ``"softplus"``, ``"linear"``) or a callable.
        use_bias: whether to learn an additive bias.
        input_dim: optional: the input size, to build the layer at once.

    Example:
        >>> import ember
        >>> from ember.models.layers import Dense
        >>> Dense(4, activation="relu", input_dim=3)
        Dense(units=4, activation='relu', in_features=3)
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable[[Tensor], Tensor] | None = None,
        use_bias: bool = True,
        input_dim: int | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(units, bias=use_bias, dtype=dtype)
        self.units = units
        self.activation = activation
        self._activation = get_activation(activation)
        if input_dim is not None:
            self.build(ember.zeros(1, input_dim, dtype=dtype))

    def forward(self, input: Tensor) -> Tensor:
        return self._activation(super().forward(input))

    def extra_repr(self) -> str:
        act = self.activation if isinstance(self.activation, (str, type(None))) else "<fn>"
        return f"units={self.units}, activation={act!r}, in_features={self.in_features}"


class Lambda(Layer):
    """Wrap any ``ember.nn`` module or function so it can be called on symbolic tensors.

    Example:
        >>> import ember
        >>> from ember.models import Input, layers
        >>> x = Input(shape=(1, 8, 8))
        >>> y = layers.Lambda(ember.nn.Conv2d(1, 4, 3))(x)
        >>> y.shape
        (None, 4, 6, 6)
    """

    def __init__(self, function: Callable[..., Any]) -> None:
        super().__init__()
        if isinstance(function, Module):
            self.module = function
        else:
            self.function = function

    def forward(self, *args: Any) -> Any:
        fn = self.module if "module" in self._modules else self.function
        return fn(*args)


class Concatenate(Layer):
    """Concatenate a list of inputs along ``dim`` (default: the last).

    Example:
        >>> import ember
        >>> Concatenate()([ember.ones(2, 3), ember.zeros(2, 1)]).shape
        (2, 4)
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, inputs: list[Tensor]) -> Tensor:
        return ember.cat(list(inputs), dim=self.dim)


class Add(Layer):
    """The element-wise sum of a list of inputs.

    Example:
        >>> import ember
        >>> Add()([ember.ones(2), ember.ones(2)])
        tensor([2., 2.])
    """

    def forward(self, inputs: list[Tensor]) -> Tensor:
        out = inputs[0]
        for x in inputs[1:]:
            out = out + x
        return out


class Flatten(Layer):
    """Flatten every dimension but the batch dimension.

    Example:
        >>> import ember
        >>> Flatten()(ember.ones(2, 3, 4)).shape
        (2, 12)
    """

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(1)


class Activation(Layer):
    """Apply an activation by name or callable (see :class:`Dense`).

    Example:
        >>> import ember
        >>> Activation("relu")(ember.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    def __init__(self, activation: str | Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.activation = activation
        self._fn = get_activation(activation)

    def forward(self, input: Tensor) -> Tensor:
        return self._fn(input)
