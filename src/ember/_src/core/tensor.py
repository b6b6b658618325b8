"""``ember.Tensor``: an n-dimensional array on a device, with a place on the tape.

The class here holds the data model (array, dtype, device, autograd state) and
the methods that are not ops. Op methods (``x.sum()``, ``x + y``, ``x.add_()``)
are attached by ``ember._src.ops.methods`` so that every op stays one record in
the op layer and this layer imports nothing above it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ember._src.core import autograd
from ember._src.core import dtype as dt
from ember._src.core.backend import CPU, Backend, backend_of_array, device


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list[Any], hook: Any) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class Tensor:
    """An n-dimensional array with dtype, device and autograd state.

    Example:
        >>> import ember
        >>> x = ember.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> y = (x * x).sum()
        >>> y.backward()
        >>> x.grad
        tensor([[2., 4.],
                [6., 8.]])
    """

    __slots__ = (
        "__weakref__",
        "_backend",
        "_data",
        "_grad",
        "_hooks",
        "_node",
        "_requires_grad",
        "_version",
    )

    _data: Any
    _node: autograd.Node | None
    _requires_grad: bool
    _version: list[int]
    _hooks: list[Callable[[Tensor], Tensor | None]] | None
    _backend: Backend
    _grad: Tensor | None

    if TYPE_CHECKING:
        # Op methods and operators are attached by ember._src.ops.methods.
        def __getattr__(self, name: str) -> Any: ...
        def __eq__(self, other: Any) -> Tensor: ...  # type: ignore[override]
        def __ne__(self, other: Any) -> Tensor: ...  # type: ignore[override]
        def __le__(self, other: Any) -> Tensor: ...
        def __ge__(self, other: Any) -> Tensor: ...
        def __pow__(self, other: Any) -> Tensor: ...
        def __rpow__(self, other: Any) -> Tensor: ...
        def __radd__(self, other: Any) -> Tensor: ...
        def __rsub__(self, other: Any) -> Tensor: ...
        def __rmul__(self, other: Any) -> Tensor: ...
        def __rtruediv__(self, other: Any) -> Tensor: ...
        def __and__(self, other: Any) -> Tensor: ...
        def __or__(self, other: Any) -> Tensor: ...
        def __add__(self, other: Any) -> Tensor: ...
        def __mul__(self, other: Any) -> Tensor: ...
        def __sub__(self, other: Any) -> Tensor: ...
        def __truediv__(self, other: Any) -> Tensor: ...
        def __neg__(self) -> Tensor: ...
        def __matmul__(self, other: Any) -> Tensor: ...
        def __lt__(self, other: Any) -> Tensor: ...
        def __gt__(self, other: Any) -> Tensor: ...
        def __getitem__(self, index: Any) -> Tensor: ...
        def __setitem__(self, index: Any, value: Any) -> None: ...

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "create tensors with ember.tensor(data), ember.zeros(shape), ember.from_numpy(a), …"
        )

    @classmethod
    def _wrap(
        cls,
        data: Any,
        node: autograd.Node | None = None,
        requires_grad: bool = False,
        backend: Backend | None = None,
    ) -> Tensor:
        """Wrap a backend array without copying (internal constructor)."""
        t = _new(cls)
        t._data = data
        t._node = node
        t._requires_grad = requires_grad
        t._version = [0, 0]  # [version, 1 once a view shares this memory]
        t._hooks = None
        if backend is None:
            backend = CPU if type(data) is np.ndarray else backend_of_array(data)
        t._backend = backend
        t._grad = None
        return t

    # ----------------------------------------------------------------- metadata
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    def size(self, dim: int | None = None) -> Any:
        """The shape, or one dimension of it."""
        if dim is None:
            return self._data.shape
        return self._data.shape[_dim(dim, self.ndim, "size")]

    @property
    def dtype(self) -> dt.dtype:
        return dt.from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> device:
        return self._backend.device

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return int(self._data.itemsize)

    @property
    def is_cuda(self) -> bool:
        return self._backend.name == "cuda"

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def stride(self, dim: int | None = None) -> Any:
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_dim(dim, self.ndim, "stride")]

    def data_ptr(self) -> int:
        if isinstance(self._data, np.ndarray):
            return int(self._data.__array_interface__["data"][0])
        return int(self._data.data.ptr)

    # ----------------------------------------------------------------- autograd
    @property
    def grad(self) -> Tensor | None:
        """The gradient accumulated by ``backward()``; None until then."""
        if _grad_watch is not None:
            _grad_watch(self, True)
        return self._grad

    @grad.setter
    def grad(self, value: Tensor | None) -> None:
        if _grad_watch is not None:
            _grad_watch(self, False)
        self._grad = value

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set whether autograd records ops on this leaf; returns self."""
        if self._node is not None:
            if not requires_grad:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables; use "
                    "detach() to get a tensor that does not require grad"
                )
            return self
        if requires_grad and self.dtype.category != dt.FLOAT:
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients, got {self.dtype}; "
                "convert first, e.g. x.float().requires_grad_()"
            )
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad_fn(self) -> autograd.Node | None:
        return self._node

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def _version_number(self) -> int:
        return self._version[0]

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            gradient: the gradient of some scalar with respect to self; needed
                unless self has one element.
            retain_graph: keep the saved values so backward can run again
                (defaults to ``create_graph``).
            create_graph: record the backward pass so it can be differentiated.
        """
        if not self._requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "call requires_grad_() on the leaves (or build this tensor with grad enabled)"
            )
        grad = _root_gradient(self, gradient, "backward")
        keep = create_graph if retain_graph is None else retain_graph
        autograd.run_backward([self], [grad], keep, create_graph)

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when the gradient for this tensor is computed.

        The hook may return a replacement gradient.
        """
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            if self._node.hooks is None:
                self._node.hooks = []
            hooks = self._node.hooks
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that has requires_grad=False")
        if self._node is not None:
            self._node.retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self._node is not None and self._node.retained is not None

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the tape."""
        t = Tensor._wrap(self._data)
        t._version = self._version
        return t

    def detach_(self) -> Tensor:
        self._node = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> Tensor:
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(value).__name__}")
        self._data = value._data
        self._backend = value._backend

    # ----------------------------------------------------------------- conversion
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The data as a NumPy array (shared memory on CPU)."""
        if self._requires_grad and not force:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()"
            )
        return self._backend.to_numpy(self._data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self._backend.to_numpy(self._data)
        return a if dtype is None else a.astype(dtype, copy=False)

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(
                f"a Tensor with {self._data.size} elements cannot be converted to a Python "
                "scalar; index it first or use tolist()"
            )
        return self._backend.to_numpy(self._data).reshape(()).item()

    def tolist(self) -> Any:
        return self._backend.to_numpy(self._data).tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.category != dt.INT or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return int(self._data.shape[0])

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    __hash__ = object.__hash__
    # NumPy defers to our reflected operators (np.int64(3) + t calls t.__radd__).
    __array_ufunc__ = None

    def __repr__(self) -> str:
        describe = getattr(type(self._data), "describe_tensor", None)
        if describe is not None:  # a symbolic value (ember.placeholder): no values to show
            return str(describe(self._data))
        return _format(self)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(
            "ember tensors are not picklable (ember never uses pickle); save weights with "
            "ember.save(state_dict, path) (safetensors) or convert with .numpy()"
        )


_new = object.__new__

# Set by ember.compile while it traces: called with (tensor, reading) on every read and
# write of ``.grad``, so gradients written inside a compiled function can be written back.
_grad_watch: Callable[[Tensor, bool], None] | None = None


def _dim(d: int, ndim: int, what: str) -> int:
    if not -max(ndim, 1) <= d < max(ndim, 1):
        raise IndexError(
            f"{what}: dimension out of range (expected to be in range of "
            f"[{-max(ndim, 1)}, {max(ndim, 1) - 1}], but got {d})"
        )
    return d % max(ndim, 1)


def _root_gradient(t: Tensor, gradient: Any, what: str) -> Tensor:
    if gradient is None:
        if t._data.size != 1:
            raise RuntimeError(
                f"grad can be implicitly created only for scalar outputs; {what} of a tensor "
                f"of shape {tuple(t.shape)} needs gradient= of the same shape"
            )
        return Tensor._wrap(t._backend.xp.ones(t._data.shape, dtype=t._data.dtype))
    if not isinstance(gradient, Tensor):
        raise TypeError(f"gradient must be a Tensor, got {type(gradient).__name__}")
    if gradient.shape != t.shape:
        raise RuntimeError(
            f"mismatch in shape: gradient has shape {tuple(gradient.shape)} but the output "
            f"has shape {tuple(t.shape)}"
        )
    return gradient


def grad(
    outputs: Tensor | list[Tensor] | tuple[Tensor, ...],
    inputs: Tensor | list[Tensor] | tuple[Tensor, ...],
    grad_outputs: Tensor | list[Tensor | None] | tuple[Tensor | None, ...] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    Example:
        >>> import ember
        >>> x = ember.tensor(3.0, requires_grad=True)
        >>> (dx,) = ember.grad(x**3, x, create_graph=True)
        >>> (ddx,) = ember.grad(dx, x)
        >>> dx.item(), ddx.item()
        (27.0, 18.0)
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        gouts: list[Any] = [None] * len(outs)
    elif isinstance(grad_outputs, Tensor):
        gouts = [grad_outputs]
    else:
        gouts = list(grad_outputs)
    if len(gouts) != len(outs):
        raise ValueError(f"got {len(gouts)} grad_outputs for {len(outs)} outputs")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(f"input {i} of ember.grad does not require grad")
    roots, grads = [], []
    for o, g in zip(outs, gouts):
        if not o._requires_grad:
            raise RuntimeError("an output of ember.grad does not require grad and has no grad_fn")
        roots.append(o)
        grads.append(_root_gradient(o, g, "grad"))
    keep = create_graph if retain_graph is None else retain_graph
    res = autograd.run_backward(roots, grads, keep, create_graph, ins, allow_unused)
    assert res is not None
    if not create_graph:
        res = [None if r is None else r.detach() for r in res]
    return tuple(res)


def _float_formatter(a: np.ndarray) -> Any:
    finite = a[np.isfinite(a)].astype(np.float64)
    if finite.size == 0 or bool(np.all(finite == np.round(finite))):
        if finite.size and np.abs(finite).max() >= 1e8:
            return lambda v: f"{v:.4e}"
        return lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)
    mag = np.abs(finite[finite != 0])
    if mag.size and (mag.max() >= 1e8 or mag.min() < 1e-4 or mag.max() / mag.min() > 1e3):
        return lambda v: f"{v:.4e}"
    return lambda v: f"{v:.4f}" if np.isfinite(v) else str(v)


def _format(t: Tensor) -> str:
    """PyTorch's repr: columns padded to one width, dtype shown when not a default."""
    a = t._backend.to_numpy(t._data)
    d = t.dtype
    prefix = "tensor("
    if a.dtype.kind == "f" or a.dtype.kind == "V":
        a = a.astype(np.float64)
        fmt = _float_formatter(a)
    elif a.dtype.kind == "b":
        fmt = lambda v: "True" if v else "False"
    else:
        fmt = str
    summarize = a.size > 1000
    shown = a if not summarize else _edges(a)
    width = max((len(fmt(v)) for v in shown.reshape(-1)), default=0)
    body = np.array2string(
        a,
        separator=", ",
        prefix=prefix,
        formatter={"all": lambda v: fmt(v).rjust(width)},
        threshold=1000,
        edgeitems=3,
        max_line_width=81,
    )
    extras = []
    if a.size == 0 and a.shape != (0,):
        extras.append(f"size={tuple(a.shape)}")
    if t._backend.name != "cpu":
        extras.append(f"device='{t.device}'")
    if d not in (dt.get_default_dtype(), dt.int64, dt.bool_) or (
        a.size == 0 and d is not dt.float32
    ):
        extras.append(f"dtype={d!r}")
    if t._node is not None:
        extras.append(f"grad_fn=<{t._node.name()}>")
    elif t._requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"


def _edges(a: np.ndarray) -> np.ndarray:
    """The first and last three entries along every axis (what a summarized repr shows)."""
    for ax in range(a.ndim):
        if a.shape[ax] > 6:
            a = np.concatenate([a.take(range(3), ax), a.take(range(-3, 0), ax)], ax)
    return a
