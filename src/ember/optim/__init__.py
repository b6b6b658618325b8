"""ember.optim: optimizers and learning-rate schedulers, with PyTorch's interface.

Example:
    >>> import ember.optim
    >>> w = ember.tensor([1.0, -2.0], requires_grad=True)
    >>> opt = ember.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     loss = (w * w).sum()
    ...     loss.backward()
    ...     opt.step()
    >>> w.detach().abs().max().item() < 2.0
    True
"""

from ember._src.optim.adadelta import Adadelta
from ember._src.optim.adagrad import Adagrad
from ember._src.optim.adam import Adam, AdamW
from ember._src.optim.optimizer import Optimizer
from ember._src.optim.rmsprop import RMSprop
from ember._src.optim.sgd import SGD
from ember.optim import lr_scheduler

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "lr_scheduler",
]
