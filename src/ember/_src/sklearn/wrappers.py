"""EmberClassifier and EmberRegressor: scikit-learn estimators around ember models."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

import ember
from ember import nn
from ember._src.models import losses
from ember._src.models.model import _OPTIMIZERS, Model
from ember._src.nn.transformer import _clone

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(est: Any, *args: Any, **kwargs: Any) -> Any:
        return est._validate_data(*args, **kwargs)


# Arguments the estimator fills in from the data; never estimator parameters.
_META = ("n_features_in", "n_outputs")


def mlp(n_features_in: int, n_outputs: int, hidden: int = 32) -> nn.Module:
    """The default model: ``Linear -> ReLU -> Linear``, returning logits or values.

    Args:
        n_features_in: input features (given by the estimator).
        n_outputs: output units (given by the estimator).
        hidden: hidden units.

    Returns:
        An ``ember.nn.Sequential``.

    Example:
        >>> mlp(4, 3, hidden=8)[0].weight.shape
        (8, 4)
    """
    return nn.Sequential(nn.Linear(n_features_in, hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))


def _build_signature(build: Any) -> inspect.Signature | None:
    """build's signature; None for a module instance or anything not callable (fit says so)."""
    if isinstance(build, nn.Module) or not callable(build):
        return None
    return inspect.signature(build)


def _build_defaults(build: Any) -> dict[str, Any]:
    """The keyword parameters of ``build`` with defaults: they become estimator parameters."""
    sig = _build_signature(mlp if build is None else build)
    if sig is None:
        return {}
    out = {}
    for name, p in sig.parameters.items():
        if name in _META or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            raise TypeError(
                f"build's parameter {name!r} has no default; give it one (it becomes an "
                f"estimator parameter), or name it one of {_META} to get it from the data"
            )
        out[name] = p.default
    return out


def _sample_weight(sample_weight: Any, x: np.ndarray) -> np.ndarray | None:
    if sample_weight is None:
        return None
    sw = _check_sample_weight(sample_weight, x, dtype=np.float64)
    if not sw.any():
        raise ValueError("sample_weight is zero for every sample; nothing to fit")
    return sw


def _copy_module(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with its own parameters, without pickle.

    Children are copied before their parents so that a container's recorded
    constructor arguments (``Sequential``'s modules) map to the copies.
    """
    memo: dict[int, Any] = {}
    for m in reversed(list(module.modules())):
        _clone(m, memo)
    return memo[id(module)]


class _EmberEstimator(BaseEstimator):
    """Shared parameters, ``get_params`` over build's keywords, and training."""

    def __init__(
        self,
        build: Any = None,
        *,
        epochs: int = 10,
        batch_size: int = 32,
        optimizer: Any = "adam",
        lr: float | None = None,
        loss: Any = None,
        random_state: Any = None,
        verbose: int = 0,
        **build_params: Any,
    ) -> None:
        self.build = build
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.loss = loss
        self.random_state = random_state
        self.verbose = verbose
        known = _build_defaults(build)
        unknown = sorted(set(build_params) - set(known))
        if unknown:
            raise TypeError(
                f"{type(self).__name__} got unknown parameters {unknown}; build's keyword "
                f"parameters are {sorted(known)}"
            )
        for name, default in known.items():
            setattr(self, name, build_params.get(name, default))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The estimator's parameters, build's keyword parameters included.

        Args:
            deep: also return the parameters of nested estimators (none here).

        Returns:
            A dict of parameter names to values.
        """
        params = super().get_params(deep)
        for name, default in _build_defaults(self.build).items():
            params[name] = getattr(self, name, default)
        return params

    def __sklearn_clone__(self) -> _EmberEstimator:
        # A module instance can't be deep-copied (ember tensors refuse pickle's protocol).
        params: dict[str, Any] = {
            k: _copy_module(v) if isinstance(v, nn.Module) else clone(v, safe=False)
            for k, v in self.get_params(deep=False).items()
        }
        return type(self)(**params)

    def _make_model(self, n_features: int, n_outputs: int) -> Model:
        build = mlp if self.build is None else self.build
        if not callable(build) and not isinstance(build, nn.Module):
            raise TypeError(
                f"build must be a function returning an ember.nn.Module, an nn.Module class or "
                f"an nn.Module instance, got {build!r}"
            )
        if isinstance(build, nn.Module):
            module = _copy_module(build)  # refits start from the same weights
        else:
            names = _build_signature(build).parameters  # type: ignore[union-attr]
            kwargs = {k: getattr(self, k) for k in _build_defaults(build)}
            meta = {"n_features_in": n_features, "n_outputs": n_outputs}
            kwargs.update({k: v for k, v in meta.items() if k in names})
            module = build(**kwargs)
        if not isinstance(module, nn.Module):
            raise TypeError(f"build returned {type(module).__name__}, not an ember.nn.Module")
        return module if isinstance(module, Model) else Model(module)

    def _optimizer_factory(self) -> Any:
        opt = self.optimizer
        extra = {} if self.lr is None else {"lr": self.lr}
        if isinstance(opt, str):
            if opt.lower() not in _OPTIMIZERS:
                raise ValueError(
                    f"unknown optimizer {opt!r}; choose one of {', '.join(_OPTIMIZERS)}"
                )
            cls_name, kwargs = _OPTIMIZERS[opt.lower()]
            return functools.partial(getattr(ember.optim, cls_name), **{**kwargs, **extra})
        if callable(opt):
            return functools.partial(opt, **extra)
        raise TypeError(f"optimizer must be a name or an ember.optim class, got {opt!r}")

    def _train(
        self, x: np.ndarray, y: np.ndarray, n_outputs: int, loss: Any, sample_weight: Any
    ) -> None:
        state = ember.get_rng_state()
        if self.random_state is not None:
            seed = check_random_state(self.random_state).randint(2**31 - 1)
            ember.manual_seed(int(seed))
        try:
            model = self._make_model(x.shape[1], n_outputs)
            model.compile(optimizer=self._optimizer_factory(), loss=loss)
            self.history_ = model.fit(
                x,
                y,
                epochs=self.epochs,
                batch_size=self.batch_size,
                sample_weight=sample_weight,
                verbose=self.verbose,
            ).history
        finally:
            if self.random_state is not None:
                ember.set_rng_state(state)  # a seeded fit leaves the global generator alone
        self.model_ = model

    def _outputs(self, x: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        x = _validate_data(self, x, reset=False, dtype=np.float64)
        out = self.model_.predict(x, batch_size=self.batch_size)
        return np.asarray(out.numpy(), dtype=np.float64)


class EmberClassifier(ClassifierMixin, _EmberEstimator):
    """A scikit-learn classifier training an ember model built by ``build``.

    ``build`` is a function (or an ``nn.Module`` class) returning a module that maps
    ``(n, n_features)`` inputs to logits: one per class, or one for two classes. Its
    arguments ``n_features_in`` and ``n_outputs``, where it has them, come from the
    data; its other keyword arguments are estimator parameters. An ``nn.Module``
    instance is copied at every fit. ``None`` builds :func:`mlp` (``hidden=32``).

    Args:
        build: the model-building function, module class or module.
        epochs: passes over the data.
        batch_size: samples per step.
        optimizer: an optimizer name (``"adam"``, ``"sgd"``, ...) or ``ember.optim`` class.
        lr: the learning rate; None keeps the optimizer's default.
        loss: None for cross-entropy on logits, or anything ``Model.compile`` accepts.
        random_state: an int (or RandomState) makes fitting deterministic.
        verbose: ``Model.fit``'s verbosity.
        **build_params: values for build's keyword arguments.

    Example:
        >>> import numpy as np
        >>> from ember.sklearn import EmberClassifier
        >>> x = np.random.default_rng(0).normal(size=(60, 2))
        >>> y = np.where(x[:, 0] > 0, "pos", "neg")
        >>> clf = EmberClassifier(hidden=8, epochs=30, lr=0.05, random_state=0).fit(x, y)
        >>> clf.classes_.tolist(), clf.score(x, y) > 0.9
        (['neg', 'pos'], True)
    """

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EmberClassifier:
        """Train a fresh model on ``X`` and labels ``y``.

        Args:
            X: ``(n_samples, n_features)`` array-like.
            y: ``(n_samples,)`` labels of any type.
            sample_weight: one weight per sample, or None.

        Returns:
            ``self``.
        """
        X, y = _validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        n = len(self.classes_)
        if n < 2:
            raise ValueError(f"EmberClassifier needs samples of at least 2 classes; got {n} class")
        sw = _sample_weight(sample_weight, X)
        if n == 2:
            loss = losses.BinaryCrossentropy(from_logits=True) if self.loss is None else self.loss
            self._train(X, encoded.reshape(-1, 1).astype(np.float64), 1, loss, sw)
        else:
            loss = losses.SparseCategoricalCrossentropy(from_logits=True)
            self._train(
                X, encoded.astype(np.int64), n, loss if self.loss is None else self.loss, sw
            )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: softmax of the logits (sigmoid for two classes).

        Args:
            X: ``(n_samples, n_features)`` array-like.

        Returns:
            ``(n_samples, n_classes)`` probabilities, columns in ``classes_`` order.
        """
        z = self._outputs(X)
        if len(self.classes_) == 2:
            p = 1.0 / (1.0 + np.exp(-z[:, :1]))
            return np.hstack([1.0 - p, p])
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample, as a label from ``classes_``.

        Args:
            X: ``(n_samples, n_features)`` array-like.

        Returns:
            ``(n_samples,)`` labels.
        """
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


class EmberRegressor(RegressorMixin, _EmberEstimator):
    """A scikit-learn regressor training an ember model built by ``build``.

    Like :class:`EmberClassifier`, with ``n_outputs`` the number of targets and a
    mean-squared-error loss by default.

    Args:
        build: the model-building function, module class or module.
        epochs: passes over the data.
        batch_size: samples per step.
        optimizer: an optimizer name or ``ember.optim`` class.
        lr: the learning rate; None keeps the optimizer's default.
        loss: None for ``"mse"``, or anything ``Model.compile`` accepts.
        random_state: an int (or RandomState) makes fitting deterministic.
        verbose: ``Model.fit``'s verbosity.
        **build_params: values for build's keyword arguments.

    Example:
        >>> import numpy as np
        >>> from ember.sklearn import EmberRegressor
        >>> x = np.random.default_rng(0).normal(size=(80, 3))
        >>> reg = EmberRegressor(epochs=40, lr=0.02, random_state=0).fit(x, x.sum(axis=1))
        >>> reg.predict(x).shape, reg.score(x, x.sum(axis=1)) > 0.9
        ((80,), True)
    """

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> EmberRegressor:
        """Train a fresh model on ``X`` and targets ``y`` (``(n,)`` or ``(n, k)``).

        Args:
            X: ``(n_samples, n_features)`` array-like.
            y: targets.
            sample_weight: one weight per sample, or None.

        Returns:
            ``self``.
        """
        X, y = _validate_data(self, X, y, dtype=np.float64, y_numeric=True, multi_output=True)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        sw = _sample_weight(sample_weight, X)
        self._train(X, y2, y2.shape[1], "mse" if self.loss is None else self.loss, sw)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The model's outputs, ``(n_samples,)`` when fitted on one-dimensional targets.

        Args:
            X: ``(n_samples, n_features)`` array-like.

        Returns:
            The predictions.
        """
        out = self._outputs(X)
        return out[:, 0] if self._y_1d else out
