"""ember.nn: modules, layers, losses and initialization (PyTorch's names)."""

from ember._src.nn.containers import ModuleDict, ModuleList, Sequential
from ember._src.nn.linear import Identity
from ember._src.nn.module import Module, Parameter
