"""The memory plan: which node writes into which reusable buffer.

Liveness over the straight-line code: a value's buffer is live from the node
that makes it to the last node that reads it or any view of it (an op not
known to return a new array may return a view of its operands, so its result
keeps their buffers alive). A node with a direct NumPy form
(:mod:`.kernels`) writes into a buffer whose value is dead, if one of its
shape and dtype is free, through ``out=``; an elementwise node may write over
its own operand when that operand dies there, so a chain of elementwise nodes
runs through one buffer in place (this is the CPU's elementwise fusion).

Never reused: inputs and captured tensors (only the plan's buffers are ever
written), and every buffer that a graph output is or may be a view of (the
caller keeps outputs, and the runner may write them back into parameters).

The buffers are allocated once per compiled signature and kept between calls,
so a steady-state call allocates only the outputs and the nodes without a
direct form.
"""

from __future__ import annotations

import math

from .graph import Graph, Var
from .kernels import fresh, kernel_for
from .passes import uses

_VIEWS = frozenset({"reshape", "permute", "broadcast_to", "getitem", "contiguous"})


def nbytes(v: Var) -> int:
    """Bytes of a Var's array."""
    return math.prod(v.shape) * v.dtype.itemsize


class Plan:
    """Buffers and who writes into them, with the byte counts of :meth:`Compiled.memory_plan`.

    Attributes:
        buffers: the size in bytes of each reused buffer (raw bytes: a node writes
            into a view of the buffer's start with its own shape and dtype).
        slot: ``Var name -> buffer index`` for the nodes that write into one.
        naive_bytes: bytes one call allocates without the plan (every node its own array).
        naive_peak: peak bytes live during a call without the plan (each array freed
            after its last use).
        call_bytes: bytes one call still allocates with the plan.
        held_bytes: bytes of the plan's buffers, kept between calls.
        planned_peak: peak bytes live during a call with the plan, buffers included.
    """

    def __init__(self, graph: Graph) -> None:
        self.name = graph.name
        self.nodes = len(graph.nodes)
        self.buffers: list[int] = []
        self.slot: dict[str, int] = {}
        self.naive_bytes = self.naive_peak = 0
        self.call_bytes = self.held_bytes = self.planned_peak = 0

    def __str__(self) -> str:
        users: dict[int, list[str]] = {}
        for name, k in self.slot.items():
            users.setdefault(k, []).append(name)
        lines = [
            f"memory plan of {self.name}: {self.nodes} nodes, {len(self.slot)} write into "
            f"{len(self.buffers)} reused buffers",
            f"  allocated per call: {_size(self.naive_bytes)} without the plan, "
            f"{_size(self.call_bytes)} with it (+ {_size(self.held_bytes)} of buffers kept "
            "between calls)",
            f"  peak live: {_size(self.naive_peak)} without the plan, "
            f"{_size(self.planned_peak)} with it",
        ]
        for k, size in enumerate(self.buffers):
            lines.append(f"  b{k} ({_size(size)}): {' '.join(users[k])}")
        return "\n".join(lines)

    __repr__ = __str__


def _size(n: float) -> str:
    if n < 1000:
        return f"{int(n)} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            break
    return f"{n:.1f} {unit}"


def plan(graph: Graph, enabled: bool = True) -> Plan:
    """Assign the direct-form nodes of ``graph`` to reusable buffers (see the module doc).

    A node takes the smallest free buffer that fits, else the largest free one
    (which grows: sizes are fixed once the whole graph is planned), else a new
    one. ``enabled=False`` reuses nothing: the report then shows the unplanned
    figures twice.
    """
    result = Plan(graph)
    end = len(graph.nodes)
    last: dict[int, int] = {}  # id(Var) -> index of the last node reading it
    for i, node in enumerate(graph.nodes):
        for v in uses(node):
            last[id(v)] = i
    for v in graph.outputs:
        last[id(v)] = end
    # roots: the buffers a value may be (a view of); a buffer lives until its last root user.
    roots: dict[int, set[int]] = {}
    until: dict[int, int] = {}
    for i, node in enumerate(graph.nodes):
        own = {id(node.out)}
        if not fresh(node):
            for v in uses(node):
                own |= roots.get(id(v), set())
        roots[id(node.out)] = own
        stop = last.get(id(node.out), i)
        for r in own:
            until[r] = max(until.get(r, i), stop)
    pinned = set().union(*(roots.get(id(v), set()) for v in graph.outputs))

    sizes: list[int] = []
    free: list[int] = []
    busy: list[tuple[int, int, Var]] = []  # (until, buffer, the value in it)
    live_naive: list[tuple[int, int]] = []  # (until, bytes) of per-call arrays
    live_planned: list[tuple[int, int]] = []

    for i, node in enumerate(graph.nodes):
        out = node.out
        size = 0 if node.op.name in _VIEWS else nbytes(out)
        stop = until[id(out)]
        result.naive_bytes += size
        live_naive.append((stop, size))
        kernel = kernel_for(node) if enabled else None
        if kernel is not None and id(out) not in pinned and size > 0:
            # A buffer whose value dies here may be written over by an elementwise node when
            # the value has the result's shape and dtype (each element read, then written).
            keep = []
            for item in busy:
                u, k, held = item
                over = kernel.inplace and held.shape == out.shape and held.dtype == out.dtype
                if u < i or (u == i and over):
                    free.append(k)
                else:
                    keep.append(item)
            busy = keep
            fits = [k for k in free if sizes[k] >= size]
            if fits:
                k = min(fits, key=lambda j: sizes[j])
            elif free:
                k = max(free, key=lambda j: sizes[j])
                sizes[k] = size
            else:
                k = len(sizes)
                sizes.append(size)
                free.append(k)
            free.remove(k)
            result.slot[out.name] = k
            busy.append((stop, k, out))
        else:
            result.call_bytes += size
            live_planned.append((stop, size))
        result.naive_peak = max(result.naive_peak, sum(b for u, b in live_naive if u >= i))
        per_call = sum(b for u, b in live_planned if u >= i)
        result.planned_peak = max(result.planned_peak, per_call)
        live_naive = [x for x in live_naive if x[0] > i]
        live_planned = [x for x in live_planned if x[0] > i]
    result.buffers = sizes
    result.held_bytes = sum(sizes)
    result.planned_peak += result.held_bytes
    return result
