"""Graph passes on small hand-built graphs: each does what it claims (counted on the nodes)
and the graph still computes what NumPy computes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ember
from ember._src.compile.codegen import generate
from ember._src.compile.graph import Const, Graph, Var
from ember._src.compile.passes import cse, dce, fold, merge_scatters, optimize, simplify
from ember._src.core.aval import AVal
from ember._src.core.backend import CPU
from ember._src.core.dtype import from_numpy_dtype
from ember._src.ops.registry import REGISTRY, Op

F64 = np.dtype(np.float64)
OP = REGISTRY


def run(graph: Graph, *arrays: Any) -> tuple[Any, ...]:
    """The graph's outputs on ``arrays`` (inputs, then captures), through plain compute() code."""
    return generate(graph, CPU)[1](*arrays)


def node(g: Graph, op: str, *args: Var | Const | float, **attrs: Any) -> Var:
    """Append ``op(*args)`` with its shape and dtype from the op's own rule."""
    operands = [a if isinstance(a, (Var, Const)) else Const(a) for a in args]
    avals = [_aval(a) if isinstance(a, Var) else _aval(a.value) for a in operands]
    aval = OP[op].infer(*avals, **{k: _probe(v) for k, v in attrs.items()})
    return g.add(OP[op], operands, attrs, tuple(aval.shape), aval.dtype.np)


def _probe(v: Any) -> Any:
    """An attribute as the shape rule reads it: a Var as zeros of its shape."""
    if isinstance(v, Var):
        return np.zeros(v.shape, v.dtype)
    return tuple(_probe(x) for x in v) if isinstance(v, tuple) else v


def _aval(a: Any) -> Any:
    """What a shape rule takes for an operand: an AVal for an array or Var, else the value."""
    if isinstance(a, (Var, np.ndarray)):
        return AVal(a.shape, from_numpy_dtype(a.dtype))
    return a


def graph(*shapes: tuple[int, ...], dtype: Any = F64, captures: int = 0) -> tuple[Graph, list[Var]]:
    g = Graph("g")
    vs = [g.add_input(s, np.dtype(dtype), captured=i >= len(shapes) - captures)
          for i, s in enumerate(shapes)]  # fmt: skip
    return g, vs


def ops(g: Graph) -> list[str]:
    return [n.op.name for n in g.nodes]


rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _optimized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBER_COMPILE_OPTIMIZE", raising=False)  # these tests are about it


def data(*shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


_RANDOM = Op("test_random", lambda xp, a: a + 1, shape=lambda a: tuple(a.shape), kind="same",
             effectful=True)  # fmt: skip


# ----------------------------------------------------------------- dead code
def test_dce_drops_unused_nodes_and_keeps_the_rest() -> None:
    g, (x, y) = graph((3,), (3,))
    dead = node(g, "exp", x)
    node(g, "mul", dead, y)  # dead too: only used by nothing
    a = node(g, "add", x, y)
    out = node(g, "tanh", a)
    g.outputs = [out]
    d = dce(g)
    assert ops(d) == ["add", "tanh"]
    assert ops(g) == ["exp", "mul", "add", "tanh"]  # the argument is left as it was
    xv, yv = data(3), data(3)
    np.testing.assert_allclose(run(d, xv, yv)[0], np.tanh(xv + yv), rtol=1e-15)


def test_dce_counts_vars_in_attributes_and_keeps_effectful_nodes() -> None:
    g, (x, i) = graph((5,), (2,))
    idx = node(g, "cast", i, dtype=ember.int64)  # only used inside getitem's index attribute
    picked = node(g, "getitem", x, index=(idx,))
    rnd = g.add(_RANDOM, [x], {}, (5,), F64)  # unused, but it has an effect
    g.outputs = [picked]
    d = dce(g)
    assert ops(d) == ["cast", "getitem", "test_random"]
    assert d.nodes[-1].out is rnd
    xv = data(5)
    np.testing.assert_array_equal(run(d, xv, np.array([4.0, 1.0]))[0], xv[[4, 1]])


# ----------------------------------------------------------------- common subexpressions
def test_cse_merges_equal_nodes() -> None:
    g, (x, y) = graph((4,), (4,))
    a = node(g, "mul", x, y)
    b = node(g, "mul", x, y)
    g.outputs = [node(g, "add", a, b)]
    c = cse(g)
    assert ops(c) == ["mul", "add"]
    assert c.nodes[1].args == (a, a)
    xv, yv = data(4), data(4)
    np.testing.assert_allclose(run(c, xv, yv)[0], 2 * xv * yv, rtol=1e-15)


def test_cse_keeps_nodes_that_differ_in_constants_attributes_or_effects() -> None:
    g, (x,) = graph((3, 2))
    outs = [
        node(g, "mul", x, 2),
        node(g, "mul", x, 2.0),  # same value, but an int and a float are different operands
        node(g, "add", x, 0.0),
        node(g, "add", x, -0.0),
        node(g, "sum", x, dim=(0,), keepdim=False),
        node(g, "sum", x, dim=(1,), keepdim=False),
        g.add(_RANDOM, [x], {}, (3, 2), F64),
        g.add(_RANDOM, [x], {}, (3, 2), F64),
    ]
    g.outputs = outs
    assert ops(cse(g)) == ops(g)


def test_cse_compares_array_attributes_by_identity() -> None:
    g, (x,) = graph((5,))
    index = np.array([0, 2])
    a = node(g, "getitem", x, index=(index,))
    b = node(g, "getitem", x, index=(index,))  # the same array object: merged
    c = node(g, "getitem", x, index=(np.array([0, 2]),))  # an equal but other array: kept
    g.outputs = [node(g, "add", a, b), c]
    merged = cse(g)
    assert ops(merged) == ["getitem", "getitem", "add"]
    xv = data(5)
    s, t = run(merged, xv)
    np.testing.assert_array_equal(s, 2 * xv[[0, 2]])
    np.testing.assert_array_equal(t, xv[[0, 2]])


def test_cse_keeps_every_output_as_its_own_array() -> None:
    g, (x,) = graph((3,))
    a = node(g, "exp", x)
    b = node(g, "exp", x)
    g.outputs = [a, b]
    c = cse(g)
    assert c.outputs == [a, b]  # the same Vars, in order
    assert ops(c) == ["exp", "clone"]
    xv = data(3)
    u, v = run(c, xv)
    assert u is not v and not np.shares_memory(u, v)
    np.testing.assert_array_equal(u, np.exp(xv))
    np.testing.assert_array_equal(v, np.exp(xv))


# ----------------------------------------------------------------- constants
def test_fold_computes_constant_nodes_once() -> None:
    g, (x,) = graph((3,))
    k = node(g, "mul", Const(np.arange(3.0)), 2.0)  # every operand a constant
    k2 = node(g, "exp", k)
    g.outputs = [node(g, "add", x, k2)]
    f = dce(fold(g))
    assert ops(f) == ["add"]
    folded = f.nodes[0].args[1]
    assert isinstance(folded, Const)
    np.testing.assert_allclose(folded.value, np.exp(2 * np.arange(3.0)), rtol=1e-15)
    xv = data(3)
    np.testing.assert_allclose(run(f, xv)[0], xv + np.exp(2 * np.arange(3.0)), rtol=1e-15)


def test_fold_leaves_captures_effects_and_outputs() -> None:
    g, (x, w) = graph((3,), (3,), captures=1)
    from_capture = node(g, "mul", w, 2.0)  # a captured tensor is read afresh every call
    rnd = g.add(_RANDOM, [Const(np.zeros(3))], {}, (3,), F64)
    out_const = node(g, "exp", Const(np.ones(3)))  # an output: a fresh array on every call
    g.outputs = [node(g, "add", x, from_capture), rnd, out_const]
    f = fold(g)
    assert ops(f) == ops(g)
    xv, wv = data(3), data(3)
    s, r, o = run(f, xv, wv)
    np.testing.assert_allclose(s, xv + 2 * wv, rtol=1e-15)
    np.testing.assert_array_equal(r, np.ones(3))
    np.testing.assert_allclose(o, np.full(3, np.e), rtol=1e-15)
    wv2 = data(3)  # the capture changed: the graph sees it
    np.testing.assert_allclose(run(f, xv, wv2)[0], xv + 2 * wv2, rtol=1e-15)


# ----------------------------------------------------------------- algebraic identities
@pytest.mark.parametrize(
    "op, args",
    [("mul", ("x", 1)), ("mul", (1.0, "x")), ("add", ("x", 0)), ("add", (0.0, "x")),
     ("sub", ("x", 0)), ("div", ("x", 1)), ("pow", ("x", 1))],
)  # fmt: skip
def test_simplify_removes_identities(op: str, args: tuple[Any, ...]) -> None:
    g, (x,) = graph((2, 3))
    y = node(g, op, *(x if isinstance(a, str) else a for a in args))
    g.outputs = [node(g, "tanh", y)]
    s = dce(simplify(g))
    assert ops(s) == ["tanh"]
    assert s.nodes[0].args == (x,)
    xv = data(2, 3)
    np.testing.assert_allclose(run(s, xv)[0], np.tanh(xv), rtol=1e-15)


def test_simplify_keeps_identities_that_change_dtype_or_shape() -> None:
    g, (i, x) = graph((3,), (1,), dtype=np.int64)
    as_float = node(g, "mul", i, 1.0)  # int64 * 1.0 is float: not the identity
    wider = node(g, "add", x, Const(np.zeros(3, np.int64)))  # broadcasts (1,) to (3,)
    g.outputs = [node(g, "add", as_float, wider)]
    s = dce(simplify(g))
    assert ops(s) == ["mul", "add", "add"]
    iv, xv = np.array([1, 2, 3]), np.array([5])
    np.testing.assert_array_equal(run(s, iv, xv)[0], np.array([6.0, 7.0, 8.0]))


def test_simplify_merges_permutes_reshapes_and_drops_same_dtype_casts() -> None:
    g, (x,) = graph((2, 3, 4))
    p1 = node(g, "permute", x, dims=(2, 0, 1))
    p2 = node(g, "permute", p1, dims=(0, 2, 1))  # net: x.transpose(2, 1, 0)
    back = node(g, "permute", node(g, "permute", x, dims=(1, 0, 2)), dims=(1, 0, 2))  # x
    r = node(g, "reshape", node(g, "reshape", x, shape=(6, 4)), shape=(4, 6))
    same = node(g, "cast", x, dtype=ember.float64)
    g.outputs = [node(g, "exp", p2), node(g, "exp", back), node(g, "exp", r),
                 node(g, "exp", same)]  # fmt: skip
    s = dce(simplify(g))
    assert ops(s) == ["permute", "reshape", "exp", "exp", "exp", "exp"]
    assert s.nodes[0].attrs["dims"] == (2, 1, 0) and s.nodes[0].args == (x,)
    assert s.nodes[1].args == (x,) and s.nodes[1].attrs["shape"] == (4, 6)
    assert s.nodes[3].args == (x,) and s.nodes[5].args == (x,)
    xv = data(2, 3, 4)
    got = run(s, xv)
    want = [np.exp(xv.transpose(2, 1, 0)), np.exp(xv), np.exp(xv.reshape(4, 6)), np.exp(xv)]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-15)


def test_simplified_output_is_a_copy_not_the_input() -> None:
    g, (x,) = graph((3,))
    g.outputs = [node(g, "mul", x, 1)]
    s = simplify(g)
    assert ops(s) == ["clone"] and s.outputs == g.outputs
    xv = data(3)
    (out,) = run(s, xv)
    np.testing.assert_array_equal(out, xv)
    assert not np.shares_memory(out, xv)


# ----------------------------------------------------------------- all passes, ember.compile
def test_optimize_reaches_a_fixed_point() -> None:
    g, (x, y) = graph((3,), (3,))
    a = node(g, "add", node(g, "mul", x, 1), y)
    b = node(g, "add", x, y)  # equal to a once x * 1 is x
    g.outputs = [node(g, "mul", a, b)]
    o = optimize(g)
    assert ops(o) == ["add", "mul"]
    xv, yv = data(3), data(3)
    np.testing.assert_allclose(run(o, xv, yv)[0], (xv + yv) ** 2, rtol=1e-15)


def test_compiled_gradients_equal_eager_with_and_without_passes() -> None:
    w1 = ember.from_numpy(data(5, 4)).requires_grad_()
    w2 = ember.from_numpy(data(4, 2)).requires_grad_()

    def step(x: ember.Tensor, y: ember.Tensor) -> Any:
        h = (x @ w1).tanh() * 1.0
        loss = ((h @ w2 - y) ** 2).mean() + 0.0 * (h @ w2).sum()
        return (loss, *ember.grad(loss, [w1, w2]))

    x, y = ember.from_numpy(data(3, 5)), ember.from_numpy(data(3, 2))
    eager = [t.detach().numpy() for t in step(x, y)]
    on, off = ember.compile(step), ember.compile(step, optimize=False)
    for f in (on, off):
        for _ in range(2):  # the second call runs the cached code (and reused buffers)
            for got, want in zip(f(x, y), eager):
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-13, atol=1e-15)
    assert len(on.graph.nodes) < len(off.graph.nodes)
    assert "compute(" in off.source and "np.matmul" in on.source


def test_optimize_can_be_turned_off_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBER_COMPILE_OPTIMIZE", "0")
    f = ember.compile(lambda x: x * 1 + 0)
    f(ember.ones(2))
    assert [n.op.name for n in f.graph.nodes] == ["mul", "add"]


def test_to_dot_lists_every_node_and_use() -> None:
    f = ember.compile(lambda x, y: ((x * y).exp() + x, x.sum()))
    f(ember.ones(2), ember.ones(2))
    dot = f.to_dot()
    assert dot.startswith('digraph "<lambda>" {') and dot.rstrip().endswith("}")
    g = f.graph
    for v in g.inputs + [n.out for n in g.nodes]:
        assert f"  {v.name} [" in dot
    edges = [line for line in dot.splitlines() if "->" in line]
    assert len(edges) == sum(len([a for a in n.args if isinstance(a, Var)]) for n in g.nodes) + 2
    assert "  x0 -> v2;" in dot and 'label="add\\nv4: float32[2]"' in dot


def test_pass_returns_new_graph_with_same_fields() -> None:
    g, (x,) = graph((3,))
    g.outputs = [node(g, "exp", x)]
    g.extra = "kept"  # type: ignore[attr-defined]  # fields others add to Graph survive
    for p in (dce, cse, fold, simplify, optimize):
        out = p(g)
        assert out is not g and out.extra == "kept"  # type: ignore[attr-defined]
        assert out.outputs == g.outputs and out.outputs is not g.outputs


# ----------------------------------------------------------------- sums of scatters
def test_merge_scatters_turns_a_sum_of_slice_gradients_into_one_node() -> None:
    g, (a, b, c, d, dense, e, i) = graph((4, 2), (4, 2), (4, 2), (3,), (4, 8), (5, 2), (5,))
    index = node(g, "cast", i, dtype=ember.int64)
    parts = [
        node(g, "index_scatter", a, shape=(4, 8), index=(slice(None), slice(0, 2))),
        node(g, "index_scatter", b, shape=(4, 8), index=(slice(None), slice(1, 3))),  # overlaps
        node(g, "index_scatter", c, shape=(4, 8), index=(slice(None), slice(6, 8))),
        node(g, "index_scatter", d, shape=(4, 8), index=(0, slice(5, 8))),
    ]
    total = node(g, "add", node(g, "add", parts[0], parts[1]), node(g, "add", parts[2], dense))
    total = node(g, "add", parts[3], total)
    rows = node(g, "index_scatter", e, shape=(6, 2), index=(index,))  # repeated rows add up
    rows2 = node(g, "index_scatter", e, shape=(6, 2), index=(slice(1, 6),))
    g.outputs = [total, node(g, "add", rows, rows2), node(g, "mul", rows2, 2.0)]
    m = merge_scatters(g)
    # rows2 is read twice (by the add and the mul): it stays, the add takes it as dense base
    assert ops(m) == ["cast", "scatter_sum", "index_scatter", "scatter_sum", "mul"]
    merged = m.nodes[1]
    assert merged.args[0] is dense and merged.attrs["base"] is True and len(merged.args) == 5
    assert m.nodes[3].args == (rows2, e) and m.nodes[3].attrs["indices"] == ((index,),)
    av, bv, cv, dv, densev, ev = data(4, 2), data(4, 2), data(4, 2), data(3), data(4, 8), data(5, 2)
    iv = np.array([0.0, 2.0, 0.0, 5.0, 2.0])
    want = densev.copy()
    want[:, 0:2] += av
    want[:, 1:3] += bv
    want[:, 6:8] += cv
    want[0, 5:8] += dv
    want_rows = np.zeros((6, 2))
    want_rows[1:6] = ev
    np.add.at(want_rows, iv.astype(np.int64), ev)
    for graph_ in (g, m):  # the merged graph computes what the unmerged one does
        got_total, got_rows, _ = run(graph_, av, bv, cv, dv, densev, ev, iv)
        np.testing.assert_allclose(got_total, want, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(got_rows, want_rows, rtol=1e-14, atol=1e-15)
    # and through the planned code's direct kernel (writing into a reused buffer)
    for _ in range(2):
        got_total, got_rows, _ = generate(m, CPU, optimize=True)[1](av, bv, cv, dv, densev, ev, iv)
        np.testing.assert_allclose(got_total, want, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(got_rows, want_rows, rtol=1e-14, atol=1e-15)


def test_an_op_outside_the_registry_is_not_rewritten_by_name() -> None:
    odd_mul = Op("mul", lambda xp, a, b: a + b, shape=lambda a, b: tuple(a.shape), kind="same")
    g, (x,) = graph((3,))
    y = g.add(odd_mul, [x, Const(1)], {}, (3,), F64)  # "x * 1", but it adds
    g.outputs = [node(g, "exp", y)]
    s = optimize(g)
    assert ops(s) == ["mul", "exp"] and s.nodes[0].op is odd_mul
    xv = data(3)
    np.testing.assert_allclose(run(s, xv)[0], np.exp(xv + 1), rtol=1e-15)
