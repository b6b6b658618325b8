"""Turn a validated config into objects: the model, the data, the loss, optimizer and scheduler.

Everything here checks the meaning of values the schema can't (layer and loss
names, constructor arguments, files, columns, shapes) and reports a
:class:`~ember._src.cli.config.ConfigError` at the key at fault. Names resolve
only to registered classes and fixed tables: a config never names code to import.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

import ember
from ember._src.cli.config import Config, ConfigError, Path, did_you_mean
from ember._src.models import losses as losses_mod
from ember._src.models.functional import Input
from ember._src.models.model import _OPTIMIZERS, Sequential
from ember._src.models.serialization import _CLASSES
from ember._src.nn.module import Module

# Loss names besides compile()'s: PyTorch-style names for the ember.nn loss modules.
_NN_LOSSES = {
    "cross_entropy": "CrossEntropyLoss",
    "nll": "NLLLoss",
    "bce_with_logits": "BCEWithLogitsLoss",
    "huber": "HuberLoss",
    "smooth_l1": "SmoothL1Loss",
    "l1": "L1Loss",
}
_REGRESSION = {
    "mse", "mean_squared_error", "mae", "mean_absolute_error",
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss",
}  # fmt: skip
_FLOAT_TARGETS = {"binary_crossentropy", "bce", "BCELoss", "BCEWithLogitsLoss"}
_SCHEDULERS = (
    "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "ReduceLROnPlateau",
)  # fmt: skip


# ================================================================= names and arguments
def layer_names() -> list[str]:
    """Every layer name a config may use: registered classes, with and without prefix."""
    short = {n.split(".", 1)[1] for n in _CLASSES if n.startswith(("nn.", "models."))}
    return sorted(short | set(_CLASSES))


def resolve_layer_class(name: str) -> type[Module] | None:
    for key in (name, f"models.{name}", f"nn.{name}"):
        if key in _CLASSES:
            return _CLASSES[key]
    return None


def _split_typed(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, str):
        return value, {}
    kwargs = dict(value)
    return kwargs.pop("type"), kwargs


def bind_kwargs(cfg: Config, path: Path, cls: Any, kwargs: dict[str, Any], skip: int = 0) -> None:
    """Check that ``cls(**kwargs)`` binds (after ``skip`` leading positional parameters)."""
    sig = inspect.signature(cls)
    params = list(sig.parameters.values())[skip:]
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    title = getattr(cls, "__name__", str(cls))
    for key in kwargs:
        if key not in names and not takes_any:
            raise cfg.error(
                (*path, key),
                f"{title} has no argument {key!r}{did_you_mean(key, names)}",
                ", ".join(names) or "no arguments",
            )
    missing = [
        p.name
        for p in params
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in kwargs
    ]
    if missing:
        raise cfg.error(
            path,
            f"{title} needs the argument{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(m) for m in missing),
            ", ".join(names),
        )


def _construct(cfg: Config, path: Path, cls: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return cls(*args, **kwargs)
    except (TypeError, ValueError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        raise cfg.error(path, f"{getattr(cls, '__name__', cls)}: {msg}") from None


# ================================================================= data
@dataclass
class Split:
    x: np.ndarray
    y: np.ndarray


@dataclass
class Data:
    """The arrays of every split, and what they look like."""

    train: Split
    validation: Split | None
    test: Split | None
    classification: bool
    feature_names: list[str] | None = None
    standardize: dict[str, list[float]] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])


def _builtin(name: str) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    try:
        from sklearn import datasets
    except ImportError:
        raise ConfigError(
            f"the built-in dataset {name!r} ships with scikit-learn, which is not installed: "
            "pip install scikit-learn (or pip install 'ember[data]')"
        ) from None
    if name == "digits":
        d = datasets.load_digits()
        return (d.images.astype(np.float32) / 16.0)[:, None], d.target, None
    loader = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
    }[name]
    d = loader()
    return d.data.astype(np.float32), d.target, list(d.feature_names)


def _read_file(
    cfg: Config, path: Path, spec: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    file = spec["path"]
    full = file if os.path.isabs(file) else os.path.join(cfg.folder, file)
    if not os.path.isfile(full):
        raise cfg.error(
            (*path, "path"), f"no such file {full!r}", "a path relative to the config file's folder"
        )
    if full.endswith(".npz"):
        if "delimiter" in spec and spec["delimiter"] != ",":
            raise cfg.error((*path, "delimiter"), "an .npz file has no delimiter")
        fkey, tkey = spec.get("features", "x"), spec.get("target", "y")
        if not isinstance(fkey, str):
            raise cfg.error(
                (*path, "features"), "an .npz file's features are one array", "the array's key"
            )
        try:
            with np.load(full, allow_pickle=False) as z:
                keys = list(z.keys())
                for k, key in (("features", fkey), ("target", tkey)):
                    if key not in keys:
                        raise cfg.error(
                            (*path, k),
                            f"{os.path.basename(full)} has no array {key!r}",
                            ", ".join(keys),
                        )
                return np.asarray(z[fkey]), np.asarray(z[tkey]), None
        except (OSError, ValueError) as e:
            raise cfg.error((*path, "path"), f"can't read {full!r} as .npz: {e}") from None
    if not full.endswith(".csv"):
        raise cfg.error((*path, "path"), f"{file!r}: unknown file type", ".csv or .npz files")
    from ember._src.data.csv_dataset import CSVDataset

    try:
        ds = CSVDataset(
            full, target_columns=None, delimiter=spec.get("delimiter", ","), dtype=ember.float64
        )
    except (ValueError, OSError) as e:
        raise cfg.error((*path, "path"), str(e)) from None
    values = ds.features.numpy()
    columns = ds.columns or [str(i) for i in range(values.shape[1])]

    def index(key: Path, c: Any) -> int:
        if isinstance(c, int) and -len(columns) <= c < len(columns):
            return c % len(columns)
        if isinstance(c, str) and c in columns:
            return columns.index(c)
        raise cfg.error(
            key,
            f"{os.path.basename(full)} has no column {c!r}{did_you_mean(c, columns)}",
            ", ".join(columns),
        )

    t = index((*path, "target"), spec.get("target", -1))
    feats = spec.get("features")
    if feats is None:
        f_idx = [j for j in range(len(columns)) if j != t]
    else:
        feats = feats if isinstance(feats, list) else [feats]
        f_idx = [index((*path, "features", i), c) for i, c in enumerate(feats)]
    return values[:, f_idx].astype(np.float32), values[:, t], [columns[j] for j in f_idx]


def loss_name(solver: dict[str, Any]) -> str:
    return _split_typed(solver["loss"])[0]


def load_data(cfg: Config, values: dict[str, Any]) -> Data:
    """Read the splits the config's ``data`` names, with targets shaped for the loss."""
    d = values["data"]
    has_builtin, has_train = "dataset" in d, "train" in d
    validation: Split | None
    test: Split | None
    if has_builtin == has_train:
        raise cfg.error(
            ("data",),
            "give either a built-in 'dataset' or a 'train' file"
            + (", not both" if has_builtin else ""),
            "dataset: digits|iris|wine|breast_cancer|diabetes, or train: {path: ...}",
        )
    if has_builtin:
        for key in ("validation", "test"):
            if key in d:
                raise cfg.error(
                    ("data", key), "a built-in dataset has its own splits; remove this key"
                )
        x, y, names = _builtin(d["dataset"])
        test_mask = np.arange(len(y)) % 5 == 0
        train, test = Split(x[~test_mask], y[~test_mask]), Split(x[test_mask], y[test_mask])
        validation = None
    else:
        names = None
        parts: dict[str, Split | None] = {}
        for key in ("train", "validation", "test"):
            if key in d:
                fx, fy, fnames = _read_file(cfg, ("data", key), d[key])
                if len(fx) != len(fy):
                    raise cfg.error(("data", key), f"{len(fx)} feature rows but {len(fy)} targets")
                parts[key] = Split(fx, fy)
                names = names or fnames
            else:
                parts[key] = None
        first, validation, test = parts["train"], parts["validation"], parts["test"]
        assert first is not None
        train = first
    split = d["validation_split"]
    if validation is None and split > 0:
        at = int(len(train.x) * (1.0 - split))
        if at == 0 or at == len(train.x):
            raise cfg.error(
                ("data", "validation_split"),
                f"{split} of {len(train.x)} samples leaves an empty split",
            )
        train, validation = Split(train.x[:at], train.y[:at]), Split(train.x[at:], train.y[at:])
    name = loss_name(values["solver"])
    name = _NN_LOSSES.get(name, name)
    classification = name not in _REGRESSION
    float_targets = not classification or name in _FLOAT_TARGETS
    splits = [s for s in (train, validation, test) if s is not None]
    for s in splits:
        s.x = np.ascontiguousarray(s.x, dtype=np.float32)
        if float_targets:
            s.y = (
                s.y.astype(np.float32).reshape(len(s.y), -1)
                if s.y.ndim == 1
                else s.y.astype(np.float32)
            )
        else:
            if not np.all(s.y == np.round(s.y)):
                raise cfg.error(
                    ("solver", "loss"),
                    f"{name} is a classification loss but the targets are not whole numbers",
                    "a regression loss (mse, mae, huber) for real-valued targets",
                )
            s.y = s.y.astype(np.int64)
    data = Data(train, validation, test, classification, names)
    if d["standardize"]:
        axes = (0,) if train.x.ndim == 2 else tuple(range(train.x.ndim))
        mean = train.x.mean(axis=axes, keepdims=True)
        std = train.x.std(axis=axes, keepdims=True)
        std[std == 0] = 1.0
        data.standardize = {"mean": mean.ravel().tolist(), "std": std.ravel().tolist()}
        for s in splits:
            s.x = ((s.x - mean) / std).astype(np.float32)
    return data


def apply_standardize(x: np.ndarray, stats: dict[str, list[float]] | None) -> np.ndarray:
    """Scale ``x`` with the training set's statistics saved in a run."""
    if not stats:
        return x
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    shape = (1, -1) if x.ndim == 2 or mean.size > 1 else (1,) * x.ndim
    return ((x - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


# ================================================================= the model
def _architecture(
    cfg: Config, name: str, args: dict[str, Any], classes: int | None, shape: tuple[int, ...]
) -> list[Any]:
    path: Path = ("model", "args")
    if name == "mlp":

        def mlp(
            hidden: list[int] = [128],  # noqa: B006 (a signature to check arguments against)
            outputs: int | None = None,
            activation: str = "relu",
            dropout: float = 0.0,
        ) -> None:
            """hidden sizes, outputs (default: the number of classes), activation, dropout"""

        bind_kwargs(cfg, path, mlp, args)
        out = args.get("outputs", classes)
        if out is None:
            raise cfg.error(path, "mlp needs 'outputs' for a regression", "outputs: <int>")
        specs: list[Any] = [{"type": "Flatten"}]
        for h in args.get("hidden", [128]):
            specs.append(
                {"type": "Dense", "units": h, "activation": args.get("activation", "relu")}
            )
            if args.get("dropout", 0.0):
                specs.append({"type": "Dropout", "p": args["dropout"]})
        specs.append({"type": "Dense", "units": out})
        return specs

    def cnn(
        channels: list[int] = [16, 32],  # noqa: B006 (a signature to check arguments against)
        kernel_size: int = 3,
        outputs: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        """channels per conv block, kernel size, outputs (default: the number of classes)"""

    bind_kwargs(cfg, path, cnn, args)
    out = args.get("outputs", classes)
    if out is None:
        raise cfg.error(path, "cnn needs 'outputs' for a regression", "outputs: <int>")
    if len(shape) != 3:
        raise cfg.error(
            ("model", "architecture"),
            f"cnn takes images (channels, height, width), the data's samples have shape {shape}",
            "mlp, or a list of layers",
        )
    specs = []
    k, in_channels = args.get("kernel_size", 3), shape[0]
    for c in args.get("channels", [16, 32]):
        specs += [
            {
                "type": "Conv2d",
                "in_channels": in_channels,
                "out_channels": c,
                "kernel_size": k,
                "padding": k // 2,
            },
            "ReLU",
            {"type": "MaxPool2d", "kernel_size": 2},
        ]
        in_channels = c
    specs.append("Flatten")
    if args.get("dropout", 0.0):
        specs.append({"type": "Dropout", "p": args["dropout"]})
    specs.append({"type": "Dense", "units": out})
    return specs


def build_model(cfg: Config, values: dict[str, Any], data: Data) -> Sequential:
    """The config's model, built for the data's input shape (shape errors name the layer)."""
    m = values["model"]
    classes = (
        int(data.train.y.max()) + 1 if data.classification and data.train.y.ndim == 1 else None
    )
    if "architecture" in m:
        specs = _architecture(cfg, m["architecture"], m["args"], classes, data.input_shape)
        paths: list[Path] = [("model", "architecture")] * len(specs)
    else:
        specs = m["layers"]
        paths = [("model", "layers", i) for i in range(len(specs))]
    layers = []
    x = ember.zeros(1, *data.input_shape)
    for spec, path in zip(specs, paths):
        name, kwargs = _split_typed(spec)
        type_path = (
            (*path, "type") if isinstance(spec, dict) and path[-1] != "architecture" else path
        )
        cls = resolve_layer_class(name)
        if cls is None:
            raise cfg.error(
                type_path,
                f"unknown layer {name!r}{did_you_mean(name, layer_names())}",
                "the classes of ember.nn and ember.models.layers, e.g. Linear, Dense, Conv2d, "
                "LazyConv2d, ReLU, MaxPool2d, Flatten, Dropout, BatchNorm1d (see docs/cli.md)",
            )
        bind_kwargs(cfg, path, cls, kwargs)
        layer = _construct(cfg, path, cls, **kwargs)
        try:
            with ember.no_grad():
                layer.eval()
                x = layer(x)
                layer.train()
        except Exception as e:
            raise cfg.error(
                path,
                f"{name} can't take the output of the layers before it (shape {tuple(x.shape)}, "
                f"batch first): {e}",
            ) from None
        layers.append(layer)
    if data.classification and classes is not None:
        out = tuple(x.shape[1:])
        if out != (classes,) and not (classes == 2 and out == (1,)):
            raise cfg.error(
                paths[-1],
                f"the model's output has shape {out} per sample, but the data has {classes} "
                "classes",
                f"a last layer with {classes} outputs",
            )
    return Sequential([Input(data.input_shape), *layers], name="model")


# ================================================================= training pieces
def build_loss(cfg: Config, values: dict[str, Any]) -> Any:
    path: Path = ("solver", "loss")
    name, kwargs = _split_typed(values["solver"]["loss"])
    cls_name = _NN_LOSSES.get(name, name)
    cls = _CLASSES.get(f"nn.{cls_name}")
    if cls is not None and cls_name.endswith("Loss"):
        bind_kwargs(cfg, path, cls, kwargs)
        # Wrapped: compile() keeps what it is given as an attribute, and a bare nn loss
        # module would become a sub-module (a layer) of the Sequential.
        return losses_mod.get(_construct(cfg, path, cls, **kwargs))
    if name.lower() in losses_mod._NAMES:
        if kwargs:
            raise cfg.error(path, f"the loss {name!r} takes no arguments here")
        return name.lower()
    known = (
        sorted(_NN_LOSSES)
        + sorted(losses_mod._NAMES)
        + sorted(n.split(".", 1)[1] for n in _CLASSES if n.startswith("nn.") and n.endswith("Loss"))
    )
    raise cfg.error(
        path if isinstance(values["solver"]["loss"], str) else (*path, "type"),
        f"unknown loss {name!r}{did_you_mean(name, known)}",
        ", ".join(known),
    )


def build_optimizer(cfg: Config, values: dict[str, Any], model: Module) -> Any:
    path: Path = ("solver", "optimizer")
    name, kwargs = _split_typed(values["solver"]["optimizer"])
    cls_name, defaults = _OPTIMIZERS[name]
    cls = getattr(ember.optim, cls_name)
    bind_kwargs(cfg, path, cls, kwargs, skip=1)
    return _construct(cfg, path, cls, model.parameters(), **{**defaults, **kwargs})


def build_scheduler(cfg: Config, values: dict[str, Any], optimizer: Any) -> Any:
    spec = values["solver"]["lr_schedule"]
    if spec is None:
        return None
    path: Path = ("solver", "lr_schedule")
    name, kwargs = _split_typed(spec)
    cls = getattr(ember.optim.lr_scheduler, name)
    kwargs.pop("last_epoch", None)
    bind_kwargs(cfg, path, cls, kwargs, skip=1)
    return _construct(cfg, path, cls, optimizer, **kwargs)


def check_metrics(cfg: Config, values: dict[str, Any], loss: Any) -> list[str]:
    from ember._src.metrics.registry import get

    names = values["metrics"]
    for i, name in enumerate(names):
        try:
            get(name, loss=loss)
        except (ValueError, KeyError, TypeError) as e:
            raise cfg.error(("metrics", i), str(e.args[0] if e.args else e)) from None
    return names
