"""ember.models: Keras's high-level API on ember's Modules.

``Sequential``, the functional ``Model(inputs, outputs)`` with ``Input``, wrapped and
subclassed models, ``compile``/``fit``/``evaluate``/``predict``, callbacks and losses.

Example:
    >>> import ember
    >>> from ember.models import Sequential, layers
    >>> _ = ember.manual_seed(0)
    >>> model = Sequential([layers.Dense(16, activation="relu"), layers.Dense(1)])
    >>> model.compile(optimizer="adam", loss="mse")
    >>> x = ember.randn(64, 3)
    >>> history = model.fit(x, x.sum(dim=1, keepdim=True), epochs=3, verbose=0)
    >>> len(history.history["loss"])
    3
"""

from ember._src.models.functional import Input, SymbolicTensor
from ember._src.models.model import Model, Sequential
from ember._src.models.serialization import (
    ModelFormatError,
    load_model,
    register_serializable,
    registered_class,
    save_model,
)
from ember.models import callbacks, layers, losses

__all__ = [
    "Input",
    "Model",
    "ModelFormatError",
    "Sequential",
    "SymbolicTensor",
    "callbacks",
    "layers",
    "load_model",
    "losses",
    "register_serializable",
    "registered_class",
    "save_model",
]
