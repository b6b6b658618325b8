"""ember.sklearn: scikit-learn estimators wrapping ember models.

Importing this module imports scikit-learn (``import ember`` does not).

Example:
    >>> from ember.sklearn import EmberClassifier
    >>> sorted(EmberClassifier(hidden=16).get_params())[:3]
    ['batch_size', 'build', 'epochs']
"""

from ember._src.sklearn.wrappers import EmberClassifier, EmberRegressor, mlp

__all__ = ["EmberClassifier", "EmberRegressor", "mlp"]
