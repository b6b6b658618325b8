"""EmberClassifier/EmberRegressor: parameters, Pipeline, GridSearchCV, check_estimator."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ember import nn
from ember.sklearn import EmberClassifier, EmberRegressor


def build(n_features_in: int, n_outputs: int, hidden: int = 16, depth: int = 1) -> nn.Module:
    layers: list[nn.Module] = []
    width = n_features_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, n_outputs))


class Net(nn.Module):
    def __init__(self, n_features_in: int, n_outputs: int, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features_in, hidden), nn.Tanh())
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x: Any) -> Any:
        return self.head(self.body(x))


def iris() -> tuple[np.ndarray, ...]:
    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return tuple(train_test_split(x, names, test_size=0.3, random_state=0, stratify=y))


def test_build_keywords_are_params() -> None:
    clf = EmberClassifier(build, hidden=32, epochs=5)
    params = clf.get_params()
    assert params["hidden"] == 32 and params["depth"] == 1 and params["epochs"] == 5
    assert "n_features_in" not in params and "n_outputs" not in params
    clf.set_params(depth=2, lr=0.1)
    assert (clf.depth, clf.lr) == (2, 0.1)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin is not clf


def test_unknown_build_keyword_raises() -> None:
    with pytest.raises(TypeError, match="hiden.*'depth', 'hidden'"):
        EmberClassifier(build, hiden=3)
    with pytest.raises(ValueError, match="Invalid parameter"):
        EmberClassifier(build).set_params(hiden=3)


def test_build_without_default_raises() -> None:
    def bad(n_features_in: int, width: int) -> nn.Module:
        return nn.Linear(n_features_in, width)

    with pytest.raises(TypeError, match="'width' has no default"):
        EmberClassifier(bad)


def test_classifier_labels_and_proba() -> None:
    xtr, xte, ytr, yte = iris()
    clf = EmberClassifier(build, hidden=16, epochs=40, lr=0.02, random_state=0)
    pipe = make_pipeline(StandardScaler(), clf).fit(xtr, ytr)
    assert clf.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert clf.n_features_in_ == 4
    proba = pipe.predict_proba(xte)
    assert proba.shape == (len(xte), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(pipe.predict(xte)) <= set(clf.classes_)
    assert pipe.score(xte, yte) >= 0.9


def test_binary_uses_one_logit() -> None:
    x, y = load_iris(return_X_y=True)
    keep = y < 2
    clf = EmberClassifier(build, epochs=20, lr=0.05, random_state=0)
    clf.fit(StandardScaler().fit_transform(x[keep]), y[keep] * 10 - 3)
    assert clf.classes_.tolist() == [-3, 7]
    assert clf.model_.module[-1].out_features == 1
    proba = clf.predict_proba(StandardScaler().fit_transform(x[keep]))
    assert proba.shape == (keep.sum(), 2)
    assert clf.score(StandardScaler().fit_transform(x[keep]), y[keep] * 10 - 3) == 1.0


def test_one_class_raises() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        EmberClassifier(build, epochs=1).fit(np.zeros((4, 2)), np.ones(4))


def test_random_state_is_deterministic_and_leaves_global_rng() -> None:
    import ember

    xtr, xte, ytr, _ = iris()
    ember.manual_seed(123)
    before = ember.randn(3).numpy()
    ember.manual_seed(123)
    a = EmberClassifier(build, epochs=3, random_state=7).fit(xtr, ytr).predict_proba(xte)
    after = ember.randn(3).numpy()
    b = EmberClassifier(build, epochs=3, random_state=7).fit(xtr, ytr).predict_proba(xte)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(before, after)


def test_grid_search_in_pipeline() -> None:
    xtr, xte, ytr, yte = iris()
    pipe = make_pipeline(
        StandardScaler(), EmberClassifier(build, epochs=25, lr=0.02, random_state=0)
    )
    grid = GridSearchCV(pipe, {"emberclassifier__hidden": [2, 16]}, cv=3)
    grid.fit(xtr, ytr)
    assert grid.best_params_ == {"emberclassifier__hidden": 16}
    assert grid.score(xte, yte) >= 0.9


def test_module_class_and_instance() -> None:
    xtr, xte, ytr, yte = iris()
    clf = EmberClassifier(Net, hidden=12, epochs=40, lr=0.02, random_state=0)
    assert clf.get_params()["hidden"] == 12
    assert make_pipeline(StandardScaler(), clf).fit(xtr, ytr).score(xte, yte) >= 0.9
    module = Net(4, 3)
    first = module.head.weight.detach().numpy().copy()
    inst = EmberClassifier(module, epochs=2, random_state=0).fit(xtr, ytr)
    assert inst.model_.module is not module  # fits train a copy
    np.testing.assert_array_equal(module.head.weight.detach().numpy(), first)
    twin = clone(inst)
    assert twin.build is not module and isinstance(twin.build, Net)


def test_regressor() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.1
    reg = EmberRegressor(build, hidden=16, epochs=60, lr=0.01, random_state=0).fit(x, y)
    assert reg.predict(x).shape == (200,)
    assert reg.score(x, y) > 0.95
    two = EmberRegressor(build, epochs=2, random_state=0).fit(x, np.stack([y, -y], axis=1))
    assert two.predict(x).shape == (200, 2)


def test_bad_build_raises_at_fit() -> None:
    with pytest.raises(TypeError, match="build must be a function"):
        EmberRegressor(build=3, epochs=1).fit(np.zeros((4, 2)), np.zeros(4))


def test_import_ember_does_not_import_sklearn() -> None:
    code = "import sys, ember; assert 'sklearn' not in sys.modules, 'sklearn imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# The checks that do not apply, with the reason (docs/sklearn.md lists them too).
EXPECTED_FAILED = {
    "check_no_attributes_set_in_init": (
        "build's keyword arguments are estimator parameters stored by __init__, but they are "
        "not in __init__'s signature (they come from build's)"
    ),
    "check_do_not_raise_errors_in_init_or_set_params": (
        "it passes a parameter named after **build_params; an unknown build keyword raises "
        "TypeError at construction, like any Python call"
    ),
    "check_set_params": (
        "it sets build to a non-callable, after which build's keywords are no parameters"
    ),
    "check_estimators_pickle": "ember tensors refuse pickle; save weights with safetensors",
    "check_sample_weight_equivalence_on_dense_data": (
        "shuffled minibatch training is not equivalent to repeating samples"
    ),
}
REGRESSOR_FAILED = {
    "check_methods_subset_invariance": (
        "float32 matmuls round differently for different batch sizes (about 1e-7)"
    ),
}


def _expected(estimator: Any) -> dict[str, str]:
    if isinstance(estimator, EmberRegressor):
        return {**EXPECTED_FAILED, **REGRESSOR_FAILED}
    return EXPECTED_FAILED


@parametrize_with_checks(
    [
        EmberClassifier(epochs=20, lr=0.01, random_state=0),
        EmberRegressor(epochs=20, lr=0.01, random_state=0),
    ],
    expected_failed_checks=_expected,
)
def test_sklearn_checks(estimator: Any, check: Any) -> None:
    check(estimator)
