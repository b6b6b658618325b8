"""``Module`` and ``Parameter``: PyTorch's public shape for models.

Parameters, buffers and submodules register themselves on attribute
assignment, in order (dicts keep insertion order), so ``state_dict`` keys and
optimizer state follow definition order and match PyTorch's key names.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from ember._src.core import autograd
from ember._src.core.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as a learnable weight (requires grad by default).

    Example:
        >>> import ember
        >>> p = ember.nn.Parameter(ember.zeros(2))
        >>> p.requires_grad, p.is_leaf
        (True, True)
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        if data is None:
            from ember._src.core.creation import empty

            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter expects a Tensor, got {type(data).__name__}")
        p = cls._wrap(data._data, None, False, data._backend)
        p._version = data._version
        if requires_grad:
            p.requires_grad_(True)
        return p  # type: ignore[return-value]

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class RemovableHook:
    def __init__(self, store: dict[int, Any], key: int) -> None:
        self._store, self._key = store, key

    def remove(self) -> None:
        self._store.pop(self._key, None)


_hook_ids = iter(range(1 << 62))


class Module:
    """Base class for all layers and models.

    Subclasses set parameters and submodules as attributes in ``__init__`` and
    define ``forward``; calling the module runs hooks around ``forward``.

    Example:
        >>> import ember
        >>> class Scale(ember.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.w = ember.nn.Parameter(ember.ones(3))
        ...     def forward(self, x):
        ...         return x * self.w
        >>> list(Scale().state_dict())
        ['w']
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent: set[str]
    _modules: dict[str, Module | None]
    _forward_hooks: dict[int, Callable[..., Any]]
    _forward_pre_hooks: dict[int, Callable[..., Any]]

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "_forward_pre_hooks", {})

    # ----------------------------------------------------------------- registration
    def _check_init(self) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign to {type(self).__name__} before Module.__init__() has run; "
                "call super().__init__() first in your __init__"
            )

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init()
            self._forget(name)
            d["_parameters"][name] = value
        elif isinstance(value, Module):
            self._check_init()
            self._forget(name)
            d["_modules"][name] = value
        elif "_parameters" in d and name in d["_parameters"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(ember.nn.Parameter or None expected)"
                )
            d["_parameters"][name] = None
        elif "_modules" in d and name in d["_modules"]:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module {name!r} "
                    "(ember.nn.Module or None expected)"
                )
            d["_modules"][name] = None
        elif "_buffers" in d and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer {name!r} "
                    "(Tensor or None expected)"
                )
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        for store in ("_parameters", "_modules", "_buffers"):
            self.__dict__[store].pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, {}):
                del self.__dict__[store][name]
                self.__dict__["_non_persistent"].discard(name)
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or a None placeholder) under ``name``."""
        self._check_init()
        _check_name(self, name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign {type(param).__name__} as parameter {name!r}; wrap it: "
                "ember.nn.Parameter(tensor)"
            )
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is not trained (running stats); in ``state_dict`` if
        ``persistent``."""
        self._check_init()
        _check_name(self, name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}"
            )
        self._forget(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name``."""
        self._check_init()
        _check_name(self, name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        mod: Module = self
        for part in target.split(".") if target else []:
            child = mod._modules.get(part)
            if child is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} ({target})")
            mod = child
        return mod

    def get_parameter(self, target: str) -> Parameter:
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        p = mod._parameters.get(name)
        if p is None:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r}")
        return p

    # ----------------------------------------------------------------- iteration
    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(
                    memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
                )

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(
        self, store: str, prefix: str, recurse: bool, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mprefix, m in mods:
            for name, v in getattr(m, store).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mprefix}.{name}" if mprefix else name), v

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(name, parameter) pairs in definition order; shared parameters once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ----------------------------------------------------------------- state
    def state_dict(
        self,
        destination: dict[str, Tensor] | None = None,
        prefix: str = "",
        keep_vars: bool = False,
    ) -> dict[str, Tensor]:
        """Parameters and persistent buffers by dotted name (PyTorch's keys)."""
        out: dict[str, Tensor] = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True) -> Any:
        """Copy values into parameters and buffers in place.

        Everything is checked (keys with ``strict``, shapes always) before any
        value is copied, so a failed load leaves the module unchanged. Returns
        ``(missing_keys, unexpected_keys)``.
        """
        from ember._src.core.creation import as_tensor

        own: dict[str, Tensor] = {}
        for mprefix, m in self.named_modules(remove_duplicate=False):
            base = mprefix + "." if mprefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    own[base + name] = p
            for name, b in m._buffers.items():
                if b is not None and name not in m._non_persistent:
                    own[base + name] = b
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and (missing or unexpected):
            if missing:
                problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        values: dict[str, Tensor] = {}
        for k, target in own.items():
            if k not in state_dict:
                continue
            v = state_dict[k]
            v = v if isinstance(v, Tensor) else as_tensor(v)
            if v.shape != target.shape:
                problems.append(
                    f"size mismatch for {k!r}: the checkpoint has shape {tuple(v.shape)}, the "
                    f"model has {tuple(target.shape)}"
                )
            values[k] = v
        if problems:
            raise KeyError(
                f"error(s) in loading state_dict for {type(self).__name__}:\n  "
                + "\n  ".join(problems)
                + "\n(pass strict=False to ignore missing/unexpected keys)"
            )
        with autograd.no_grad():
            for k, v in values.items():
                target = own[k]
                target._data[...] = v.to(target.dtype, target.device)._data
                target._version[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # ----------------------------------------------------------------- modes and utilities
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm updates stats) recursively."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be a bool")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None  # unconditionally: ember.compile sees a write, not a read
            elif p.grad is not None:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and on self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Move parameters and buffers to a device and/or cast the floating ones, in place.

        Accepts what ``Tensor.to`` does: ``m.to(ember.float64)``, ``m.to("cuda")``,
        ``m.to(device=..., dtype=...)``; integer buffers keep their dtype.
        """
        dtype, device = _parse_to(args, kwargs)
        with autograd.no_grad():
            for m in self.modules():
                for store in (m._parameters, m._buffers):
                    for t in store.values():
                        if t is not None:
                            _move(t, dtype, device)
                            if t.grad is not None:
                                _move(t.grad, dtype, device)
        return self

    def float(self) -> Module:
        from ember._src.core import dtype as dt

        return self.to(dt.float32)

    def double(self) -> Module:
        from ember._src.core import dtype as dt

        return self.to(dt.float64)

    def half(self) -> Module:
        from ember._src.core import dtype as dt

        return self.to(dt.float16)

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: Any = "cuda") -> Module:
        return self.to(device)

    # ----------------------------------------------------------------- calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} has no forward(); define forward(self, ...) in the subclass"
        )

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHook:
        """``hook(module, args)`` runs before forward; it may return replacement args."""
        key = next(_hook_ids)
        self._forward_pre_hooks[key] = hook
        return RemovableHook(self._forward_pre_hooks, key)

    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHook:
        """``hook(module, args, output)`` runs after forward; it may return a new output."""
        key = next(_hook_ids)
        self._forward_hooks[key] = hook
        return RemovableHook(self._forward_hooks, key)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            res = hook(self, args)
            if res is not None:
                args = res if isinstance(res, tuple) else (res,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            res = hook(self, args, out)
            if res is not None:
                out = res
        return out

    # ----------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """Extra text inside this module's repr line (``in_features=3, …``)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            text = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {text}")
        body = type(self).__name__ + "("
        if not lines:
            return body + ")"
        if len(lines) == 1 and not self._modules:
            return body + lines[0] + ")"
        return body + "\n  " + "\n  ".join(lines) + "\n)"

    def __dir__(self) -> list[str]:
        keys = list(super().__dir__())
        keys += list(self._parameters) + list(self._buffers) + list(self._modules)
        return sorted(set(keys))


class _IncompatibleKeys(tuple):
    """``(missing_keys, unexpected_keys)`` with names, as PyTorch returns."""

    def __new__(cls, missing: list[str], unexpected: list[str]) -> _IncompatibleKeys:
        return super().__new__(cls, (missing, unexpected))

    @property
    def missing_keys(self) -> list[str]:
        return self[0]

    @property
    def unexpected_keys(self) -> list[str]:
        return self[1]

    def __repr__(self) -> str:
        if not self[0] and not self[1]:
            return "<All keys matched successfully>"
        return f"_IncompatibleKeys(missing_keys={self[0]}, unexpected_keys={self[1]})"


def _check_name(module: Module, name: str) -> None:
    if not isinstance(name, str):
        raise TypeError(f"attribute name should be a string, got {type(name).__name__}")
    if not name or "." in name:
        raise KeyError(f"attribute name {name!r} can't be empty or contain '.'")
    if hasattr(type(module), name):
        raise KeyError(f"attribute {name!r} already exists on {type(module).__name__}")


def _parse_to(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from ember._src.core import dtype as dt

    dtype, device = kwargs.get("dtype"), kwargs.get("device")
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (dt.dtype, type)) or (isinstance(a, str) and a in dt._BY_NAME):
            dtype = a
        else:
            device = a
    return (dt.to_dtype(dtype) if dtype is not None else None), device


def _move(t: Tensor, dtype: Any, device: Any) -> None:
    """Rebind ``t``'s storage to the converted array, keeping the same Tensor object."""
    new = t
    if device is not None:
        new = new.to(device)
    if dtype is not None and t.dtype.is_floating_point:
        new = new.to(dtype)
    if new is not t:
        t._data, t._backend = new._data, new._backend
        t._version[0] += 1
