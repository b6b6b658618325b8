"""ember.metrics: streaming metrics with Keras's interface, checked against scikit-learn.

Example:
    >>> import ember.metrics
    >>> m = ember.metrics.SparseCategoricalAccuracy()
    >>> for y_true, y_pred in [([0, 1], [[0.9, 0.1], [0.8, 0.2]]), ([1], [[0.3, 0.7]])]:
    ...     m.update_state(y_true, y_pred)
    >>> m.result()
    tensor(0.6667)
    >>> m.reset_state()
"""

from ember._src.metrics.accuracy import (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from ember._src.metrics.auc import AUC
from ember._src.metrics.base import Mean, MeanMetricWrapper, Metric, Sum
from ember._src.metrics.confusion import Precision, Recall
from ember._src.metrics.f_score import F1Score, FBetaScore
from ember._src.metrics.registry import deserialize, get, serialize
from ember._src.metrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    R2Score,
    RootMeanSquaredError,
)

__all__ = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "CategoricalAccuracy",
    "F1Score",
    "FBetaScore",
    "Mean",
    "MeanAbsoluteError",
    "MeanMetricWrapper",
    "MeanSquaredError",
    "Metric",
    "Precision",
    "R2Score",
    "Recall",
    "RootMeanSquaredError",
    "SparseCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy",
    "Sum",
    "TopKCategoricalAccuracy",
    "deserialize",
    "get",
    "serialize",
]
