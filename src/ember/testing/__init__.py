"""Testing utilities: numerical gradient checks for ember functions.

Example:
    >>> import ember
    >>> from ember.testing import gradcheck
    >>> gradcheck(ember.exp, ember.tensor([0.1, 0.2], requires_grad=True))
    True
"""

from ember._src.testing import GradcheckError as GradcheckError
from ember._src.testing import gradcheck as gradcheck
from ember._src.testing import gradgradcheck as gradgradcheck

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]
