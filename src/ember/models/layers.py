"""Layers for ember.models: lazily built, callable on ``Input`` placeholders."""

from ember._src.models.layers import (
    Activation,
    Add,
    Concatenate,
    Dense,
    Flatten,
    Lambda,
    Layer,
    LazyLinear,
)

__all__ = ["Activation", "Add", "Concatenate", "Dense", "Flatten", "Lambda", "Layer", "LazyLinear"]
