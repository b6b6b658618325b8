"""SummaryWriter: PyTorch's ``torch.utils.tensorboard`` API over tensorboardX's event writer.

tensorboardX writes the event files and builds the summaries; this module turns ember Tensors,
NumPy arrays and Python numbers into what it expects, and checks arguments first so that a
mistake raises an error naming it instead of an ``assert`` deep inside tensorboardX or a
silently wrong record.
"""

from __future__ import annotations

import itertools
import math
import os
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ember._src.core.tensor import Tensor
from ember._src.tensorboard.convert import to_array, to_layout, to_number, to_uint8

#: Numbers every event file this process opens (see ``SummaryWriter._suffix``).
_FILE_IDS = itertools.count()

#: The largest sprite (pixels a side) TensorBoard's projector will load.
MAX_SPRITE_SIDE = 8192


def _tensorboardx() -> Any:
    try:
        import tensorboardX
    except ImportError:
        raise ImportError(
            "ember.tensorboard needs the tensorboardX package: pip install 'ember[tensorboard]'"
        ) from None
    return tensorboardX


def _tag(tag: Any, what: str = "tag") -> str:
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"{what} must be a non-empty str, got {tag!r}")
    return tag


def _step(global_step: Any) -> int | None:
    return None if global_step is None else int(global_step)


def _hparam(name: str, value: Any) -> bool | int | float | str | None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        array = to_array(value, f"hparam {name!r}")
        if array.size == 1:
            return array.reshape(()).item()
    raise ValueError(
        f"hparam {name!r} must be a bool, int, float, str or one-element tensor, "
        f"got {type(value).__name__}; log other values with str(value)"
    )


class SummaryWriter:
    """Writes TensorBoard event files under ``log_dir``, with PyTorch's method names.

    Args:
        log_dir: The run directory. Default: ``runs/<date>_<time>_<hostname><comment>``.
        comment: Appended to the default ``log_dir``; ignored when ``log_dir`` is given.
        purge_step: Hide events at and after this step left by an earlier, crashed run in
            the same ``log_dir`` (resume from a checkpoint at ``purge_step``).
        max_queue: Pending events held before an ``add_*`` call forces a write.
        flush_secs: Seconds between writes of pending events to disk.
        filename_suffix: Appended to every event file's name.

    Values may be ember Tensors, NumPy arrays or Python numbers. Steps are ints.

    Example:
        >>> import os, tempfile
        >>> import ember
        >>> from ember.tensorboard import SummaryWriter
        >>> with tempfile.TemporaryDirectory() as run:
        ...     with SummaryWriter(run) as writer:
        ...         for step in range(3):
        ...             writer.add_scalar("loss", 1.0 / (step + 1), step)
        ...         writer.add_histogram("weights", ember.randn(100), global_step=2)
        ...     any(name.startswith("events.out.tfevents") for name in os.listdir(run))
        True
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
    ) -> None:
        self._tbx = _tensorboardx()
        if log_dir is None:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = os.fspath(log_dir)
        self.purge_step = _step(purge_step)
        # Only the first event file hides a crashed run's events; files reopened after
        # flush()/close() must not hide the ones this writer wrote itself.
        self._purge_pending = self.purge_step
        self._queue = {"max_queue": max_queue, "flush_secs": flush_secs}
        self._filename_suffix = filename_suffix
        self._main: Any = None  # tensorboardX's SummaryWriter, opened on first use
        self._writers: dict[str, Any] = {}  # the sub-runs' FileWriters, by directory
        self._writer()

    def _suffix(self) -> str:
        # tensorboardX names event files by the second, so two files opened in one
        # directory within a second (close then reopen, a resumed run, two writers) would
        # overwrite each other. Adding the process id and a counter, as PyTorch does,
        # keeps every file; zero-padding the counter keeps a process's files of one
        # second in order (readers sort by name, and purge_step depends on the order).
        return f".{os.getpid()}.{next(_FILE_IDS):06d}{self._filename_suffix}"

    def _writer(self) -> Any:
        """tensorboardX's SummaryWriter for ``log_dir``, reopened after :meth:`close`."""
        if self._main is None:
            self._main = self._tbx.SummaryWriter(
                logdir=self.log_dir,
                purge_step=self._purge_pending,
                filename_suffix=self._suffix(),
                **self._queue,
            )
            self._purge_pending = None
        return self._main

    def _subrun(self, name: str) -> Any:
        """A FileWriter for the run ``<log_dir>/<name>``."""
        run = os.path.join(self.log_dir, name)
        if run not in self._writers:
            self._writers[run] = self._tbx.FileWriter(
                run, filename_suffix=self._suffix(), **self._queue
            )
        return self._writers[run]

    def get_logdir(self) -> str:
        """The directory this writer writes to."""
        return self.log_dir

    # ----------------------------------------------------------------- scalars
    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log one number (a Python number, or a one-element Tensor or array) at a step."""
        value = to_number(scalar_value, f"add_scalar({tag!r}) scalar_value")
        self._writer().add_scalar(_tag(tag), value, _step(global_step), walltime)

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log several numbers on one chart: each key becomes the run ``<main_tag>_<key>``.

        As in PyTorch, each key's values go to their own run directory,
        ``<log_dir>/<main_tag with / as _>_<key>``, so TensorBoard draws them as separate
        lines under the tag ``main_tag``.
        """
        _tag(main_tag, "main_tag")
        if not isinstance(tag_scalar_dict, Mapping):
            raise TypeError(
                f"add_scalars({main_tag!r}) needs a dict of name -> number, "
                f"got {type(tag_scalar_dict).__name__}"
            )
        values = {
            _tag(key, "a tag_scalar_dict key"): to_number(v, f"add_scalars({main_tag!r})[{key!r}]")
            for key, v in tag_scalar_dict.items()
        }
        for key, value in values.items():
            summary = self._tbx.summary.scalar(main_tag, value)
            run = self._subrun(f"{main_tag.replace('/', '_')}_{key}")
            run.add_summary(summary, _step(global_step), walltime)

    # ----------------------------------------------------------------- distributions
    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: int | None = None,
        bins: str | int | Any = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        """Log the distribution of ``values`` (any shape), e.g. a layer's weights.

        Args:
            bins: ``"tensorflow"`` (TensorBoard's exponential buckets, the default), any
                ``np.histogram`` rule name (``"auto"``, ``"fd"``, ...), a bin count, or the
                bin edges.
        """
        what = f"add_histogram({tag!r})"
        array = to_array(values, f"{what} values").astype(np.float64).reshape(-1)
        if array.size == 0:
            raise ValueError(f"{what}: values are empty; a histogram needs at least one value")
        if not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise ValueError(f"{what}: {bad} of {array.size} values are NaN or infinite")
        if not isinstance(bins, (str, int)):
            bins = to_array(bins, f"{what} bins")
        self._writer().add_histogram(
            _tag(tag), array, _step(global_step), bins, walltime, max_bins=max_bins
        )

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """Log a precision-recall curve from binary ``labels`` and ``predictions`` in [0, 1].

        Args:
            num_thresholds: Points on the curve, 2 to 127 (TensorBoard's limit; more is
                capped at 127, as in PyTorch).
            weights: Optional per-example weights, the shape of ``labels``.
        """
        what = f"add_pr_curve({tag!r})"
        y = to_array(labels, f"{what} labels")
        p = to_array(predictions, f"{what} predictions").astype(np.float64)
        if y.shape != p.shape:
            raise ValueError(f"{what}: labels {y.shape} and predictions {p.shape} differ in shape")
        if not np.isin(y, (0, 1)).all():
            raise ValueError(f"{what}: labels must be 0/1 (or bool)")
        if p.size and not ((p >= 0) & (p <= 1)).all():
            raise ValueError(
                f"{what}: predictions must be probabilities in [0, 1], got values in "
                f"[{p.min()}, {p.max()}]; apply sigmoid/softmax first"
            )
        if isinstance(num_thresholds, bool) or not isinstance(num_thresholds, int):
            raise TypeError(f"{what}: num_thresholds must be an int, got {num_thresholds!r}")
        if num_thresholds < 2:
            raise ValueError(f"{what}: num_thresholds must be at least 2, got {num_thresholds}")
        w = None
        if weights is not None:
            w = to_array(weights, f"{what} weights").astype(np.float64)
            if w.shape != y.shape:
                raise ValueError(f"{what}: weights {w.shape} must match labels {y.shape}")
        self._writer().add_pr_curve(
            _tag(tag), y, p, _step(global_step), min(num_thresholds, 127), w, walltime
        )

    # ----------------------------------------------------------------- images and text
    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """Log one image: uint8 in [0, 255], or floats in [0, 1] (clipped).

        Args:
            dataformats: The layout of ``img_tensor``: ``"CHW"`` (default), ``"HWC"``,
                ``"HW"`` (grayscale) or another order of those letters. C is 1, 3 or 4.
        """
        what = f"add_image({tag!r})"
        chw = to_layout(to_array(img_tensor, f"{what} img_tensor"), dataformats, "CHW", what)
        self._writer().add_image(
            _tag(tag), to_uint8(chw), _step(global_step), walltime, dataformats="CHW"
        )

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Log a batch of images as one grid (8 a row); pixels as in :meth:`add_image`.

        Args:
            dataformats: ``"NCHW"`` (default), ``"NHWC"``, ``"NHW"`` or another order.
        """
        what = f"add_images({tag!r})"
        nchw = to_layout(to_array(img_tensor, f"{what} img_tensor"), dataformats, "NCHW", what)
        if nchw.shape[0] == 0:
            raise ValueError(f"{what}: the batch is empty")
        self._writer().add_images(
            _tag(tag), to_uint8(nchw), _step(global_step), walltime, dataformats="NCHW"
        )

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Log a string (TensorBoard renders it as Markdown)."""
        if not isinstance(text_string, str):
            raise TypeError(
                f"add_text({tag!r}) needs a str, got {type(text_string).__name__}; "
                "format values with str() or an f-string first"
            )
        self._writer().add_text(_tag(tag), text_string, _step(global_step), walltime)

    # ----------------------------------------------------------------- runs
    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, Any],
        *,
        run_name: str | None = None,
        global_step: int | None = None,
    ) -> None:
        """Log one run's hyperparameters and final metrics for TensorBoard's HPARAMS tab.

        As in PyTorch, they go to a sub-run ``<log_dir>/<run_name>`` (default: the current
        time), and each metric is also logged there as a scalar. Use metric names that are
        not already scalar tags of this writer.

        Args:
            hparam_dict: Name -> bool, int, float, str or one-element tensor (None is skipped).
            metric_dict: Name -> number.
        """
        if not isinstance(hparam_dict, Mapping) or not isinstance(metric_dict, Mapping):
            raise TypeError("add_hparams needs two dicts: hparam_dict and metric_dict")
        hparams = {_tag(k, "an hparam name"): _hparam(k, v) for k, v in hparam_dict.items()}
        metrics = {
            _tag(k, "a metric name"): to_number(v, f"add_hparams metric {k!r}")
            for k, v in metric_dict.items()
        }
        run = self._subrun(str(time.time()) if run_name is None else _tag(run_name, "run_name"))
        for summary in self._tbx.summary.hparams(hparams, metrics):
            run.add_summary(summary)
        for name, value in metrics.items():
            run.add_summary(self._tbx.summary.scalar(name, value), _step(global_step))
        run.flush()

    def add_embedding(
        self,
        mat: Any,
        metadata: Sequence[Any] | None = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: Sequence[str] | None = None,
    ) -> None:
        """Save N points of dimension D for TensorBoard's PROJECTOR tab.

        Args:
            mat: The (N, D) points.
            metadata: N labels, or N rows of columns named by ``metadata_header``.
            label_img: (N, C, H, W) thumbnails, square (H == W), C of 1 or 3; uint8 or
                floats in [0, 1].
            global_step: Saved under ``<log_dir>/<global_step:05d>/<tag>`` (default 0).
        """
        what = f"add_embedding({tag!r})"
        points = to_array(mat, f"{what} mat")
        if points.ndim != 2:
            raise ValueError(f"{what}: mat must be (N, D), got shape {points.shape}")
        n = points.shape[0]
        if metadata is not None:
            rows = list(metadata)
            if len(rows) != n:
                raise ValueError(f"{what}: {len(rows)} metadata rows for {n} points")
            if metadata_header is not None:
                header = list(metadata_header)
                if any(len(row) != len(header) for row in rows):
                    raise ValueError(
                        f"{what}: every metadata row needs {len(header)} columns, "
                        "one per metadata_header name"
                    )
                metadata_header = header
            metadata = rows
        images = None
        if label_img is not None:
            images = to_array(label_img, f"{what} label_img")
            if images.ndim != 4 or images.shape[0] != n or images.shape[2] != images.shape[3]:
                raise ValueError(
                    f"{what}: label_img must be (N={n}, C, H, W) with H == W, "
                    f"got shape {images.shape}"
                )
            if images.shape[1] not in (1, 3):
                raise ValueError(f"{what}: label_img needs 1 or 3 channels, got {images.shape}")
            side = math.ceil(math.sqrt(n * images.shape[2] ** 2) / images.shape[3])
            if side * images.shape[3] > MAX_SPRITE_SIDE:
                raise ValueError(
                    f"{what}: {n} thumbnails of {images.shape[3]} pixels make a sprite wider "
                    f"than TensorBoard's {MAX_SPRITE_SIDE}; use smaller or fewer label_img"
                )
            images = to_uint8(images).astype(np.float32) / 255.0
        self._writer().add_embedding(
            points,
            metadata=metadata,
            label_img=images,
            global_step=_step(global_step),
            tag=_tag(tag),
            metadata_header=metadata_header,
        )

    def add_graph(
        self,
        model: Any,
        input_to_model: Any = None,
        verbose: bool = False,
        use_strict_trace: bool = True,
    ) -> None:
        """Draw ``model``'s graph in TensorBoard's GRAPHS tab, traced on ``input_to_model``.

        ``model`` runs once on symbolic tensors of the example input's shapes and dtypes
        (ember's tracer, the one ``ember.compile`` uses), in eval mode and without gradients;
        its training flags are restored after. Each op is a node named by the module that
        applied it (``Sequential/Linear[0]/matmul``), so TensorBoard draws one box per module;
        parameters and buffers are named by their module path, and every edge is labelled
        with its tensor's shape.

        Args:
            model: An ``ember.nn.Module`` (or any function of tensors).
            input_to_model: An example input (a Tensor or NumPy array), or a tuple of them,
                one per positional argument of ``forward``.
            verbose: Also print the traced graph (ember's text form).
            use_strict_trace: Accepted for PyTorch compatibility; ember's tracer has one mode.

        Raises:
            TracerError: ``forward`` reads tensor values (``if`` on a tensor, ``.item()``),
                which tracing cannot follow; the message names the line.

        Example:
            >>> import tempfile
            >>> import ember
            >>> from ember.tensorboard import SummaryWriter
            >>> model = ember.nn.Sequential(ember.nn.Linear(4, 8), ember.nn.ReLU())
            >>> with tempfile.TemporaryDirectory() as run:
            ...     with SummaryWriter(run) as writer:
            ...         writer.add_graph(model, ember.randn(2, 4))
        """
        from tensorboardX.proto.event_pb2 import Event

        from ember._src.tensorboard.graph import graph_def, trace_model

        traced = trace_model(model, input_to_model)
        if verbose:
            print(traced.graph)
        event = Event(graph_def=graph_def(traced).SerializeToString())
        self._writer()._get_file_writer().add_event(event)

    # ----------------------------------------------------------------- lifetime
    def flush(self) -> None:
        """Write all pending events to disk, so readers see them now.

        tensorboardX's own flush does not wait for events still queued for its writer
        thread, so this closes the event files (which does); the next ``add_*`` call opens
        new ones in the same directory, and readers merge them in order.
        """
        self.close()

    def close(self) -> None:
        """Flush and close the event files; a later ``add_*`` call opens new ones."""
        for writer in [self._main, *self._writers.values()]:
            if writer is not None:
                writer.close()
        self._main = None
        self._writers.clear()

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SummaryWriter(log_dir={self.log_dir!r})"
