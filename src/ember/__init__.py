"""ember: a deep learning framework with one set of ops behind every face.

Example:
    >>> import ember
    >>> x = ember.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4., 6.])
"""

import builtins

from ember._src.core.autograd import (
    GradError,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from ember._src.core.backend import device, get_backend
from ember._src.core.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from ember._src.core.dtype import bfloat16 as _bfloat16
from ember._src.core.dtype import (
    bool_,
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    set_default_dtype,
    uint8,
)
from ember._src.core.random import (
    Generator,
    default_generator,
    get_rng_state,
    initial_seed,
    manual_seed,
    set_rng_state,
)
from ember._src.core.tensor import Tensor, grad
from ember._src.core.threads import get_num_threads, set_num_threads
from ember._src.ops import methods as _methods
from ember._src.ops.activation import gelu, log_softmax, silu, softmax, softplus
from ember._src.ops.elementwise import (
    abs,
    add,
    atan2,
    ceil,
    clamp,
    cos,
    div,
    eq,
    erf,
    exp,
    expm1,
    floor,
    floor_divide,
    ge,
    gt,
    isfinite,
    isinf,
    isnan,
    le,
    log,
    log1p,
    logical_and,
    logical_not,
    logical_or,
    logical_xor,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    reciprocal,
    relu,
    remainder,
    round,
    rsqrt,
    sigmoid,
    sign,
    sin,
    sqrt,
    square,
    sub,
    tan,
    tanh,
    trunc,
    where,
)
from ember._src.ops.linalg import bmm, dot, einsum, matmul, mm, outer
from ember._src.ops.methods import to as _to
from ember._src.ops.reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    cumprod,
    cumsum,
    logsumexp,
    max,
    mean,
    min,
    norm,
    prod,
    std,
    sum,
    var,
)
from ember._src.ops.registry import REGISTRY as _REGISTRY
from ember._src.ops.registry import DTypeError, ShapeError
from ember._src.ops.shape import (
    argsort,
    broadcast_to,
    cat,
    chunk,
    clone,
    concat,
    expand_as,
    flatten,
    flip,
    gather,
    index_select,
    masked_fill,
    masked_select,
    movedim,
    narrow,
    one_hot,
    pad,
    permute,
    repeat,
    reshape,
    roll,
    scatter,
    scatter_add,
    sort,
    split,
    squeeze,
    stack,
    t,
    take_along_dim,
    tile,
    topk,
    transpose,
    tril,
    triu,
    unbind,
    unflatten,
    unsqueeze,
)

__version__ = "0.1.0"


def is_tensor(obj: object) -> builtins.bool:
    """Whether ``obj`` is an ember Tensor."""
    return isinstance(obj, Tensor)


def typename(obj: object) -> str:
    return type(obj).__name__


# PyTorch's aliases (bound last: they shadow builtins in this namespace).
half, float, double = float16, float32, float64
short, int, long = int16, int32, int64
bool = bool_
clip = clamp
true_divide = div
concatenate = concat
if _bfloat16 is not None:
    bfloat16 = _bfloat16

# Subpackages last: they build on the names above.
from ember import nn  # noqa: E402, I001
from ember import optim  # noqa: E402
from ember import data  # noqa: E402
from ember import metrics  # noqa: E402
from ember import models  # noqa: E402

# Saving, loading and exchanging tensors (safetensors, DLPack); attaches Tensor.__dlpack__.
from ember._src.io.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from ember._src.io.dlpack import from_dlpack  # noqa: E402
from ember._src.io.safetensors_io import load, load_metadata, save  # noqa: E402
from ember import tensorboard  # noqa: E402
from ember import onnx  # noqa: E402

# The graph compiler: trace once per signature, run generated code.
from ember._src.compile.compiled import compile  # noqa: E402
from ember._src.ops.registry import TracerError  # noqa: E402
from ember._src.compile.symbolic import function, placeholder  # noqa: E402
from ember._src.compile.control import cond, scan  # noqa: E402
