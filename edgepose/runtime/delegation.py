"""Which ops of a model the XNNPACK delegate runs, and which stay on the builtin kernels.

How it is computed (exactly, from the interpreter's own node list):

``interpreter._get_ops_details()`` lists *every* node of the primary subgraph,
``0 .. NumNodes-1``: first the ``N`` nodes of the original graph, in model
order, then one ``DELEGATE`` node per partition that a delegate claimed
(``ModifyGraphWithDelegate`` appends those and rewrites the execution plan,
but leaves the replaced nodes in the node list). A ``DELEGATE`` node's
``inputs`` are every tensor entering its partition (activations *and*
constant weights) and its ``outputs`` are the tensors leaving it. So the
original nodes a partition replaced are found by walking the graph backwards
from the partition's outputs through their producing nodes, stopping at the
partition's inputs. An original node that no partition reached stays
outside: it runs on the builtin kernels.

The count of original nodes is cross-checked: it must equal the number of
nodes of the same model loaded with
``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES`` (see
:func:`inspect_model`), and each partition must claim at least one node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgepose.errors import ModelError

DELEGATE_OP = "DELEGATE"


@dataclass
class DelegationReport:
    """How a model's graph is split between delegate partitions and builtin kernels."""

    partitions: int  # number of DELEGATE nodes in the execution plan
    delegated_nodes: int  # original graph nodes replaced by a partition
    total_nodes: int  # nodes of the original graph
    ops_outside: dict[str, int]  # op name -> count of original nodes on builtin kernels
    xnnpack: bool  # whether a delegate was asked for (use_xnnpack)
    partition_sizes: list[int] = field(default_factory=list)  # nodes per partition, plan order
    # (op name, first output tensor name) of each node on builtin kernels, model order:
    # what a converter needs to keep exactly those ops float (edgepose.converters.target)
    outside_nodes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fully_delegated(self) -> bool:
        return self.total_nodes > 0 and self.delegated_nodes == self.total_nodes

    def summary(self) -> str:
        """One line for reports: ``'3 partitions, 88/108 nodes; outside: HARD_SWISH x18'``."""
        if self.partitions == 0:
            return f"no delegate ({self.total_nodes} nodes on builtin kernels)"
        outside = ", ".join(f"{name} x{n}" for name, n in sorted(self.ops_outside.items()))
        plural = "s" if self.partitions != 1 else ""
        text = (f"{self.partitions} partition{plural}, "
                f"{self.delegated_nodes}/{self.total_nodes} nodes")
        return text + (f"; outside: {outside}" if outside else "")


def delegation_report(interpreter, xnnpack: bool = True) -> DelegationReport:
    """Delegation of an interpreter whose tensors are allocated (see the module docstring).

    Raises:
        ModelError: the interpreter's node list cannot be traced (a delegate node that overlaps
            another partition or replaced no traceable node, or an unexpected node order).
    """
    ops = interpreter._get_ops_details()
    first_delegate = next((i for i, op in enumerate(ops) if op["op_name"] == DELEGATE_OP),
                          len(ops))
    original = ops[:first_delegate]
    delegates = ops[first_delegate:]
    if any(op["op_name"] != DELEGATE_OP for op in delegates):
        # Delegate nodes are only ever appended after the original nodes.
        raise ModelError("unexpected node order in the interpreter's node list")

    producer: dict[int, int] = {}
    for op in original:
        for tensor in op["outputs"]:
            producer[int(tensor)] = int(op["index"])

    claimed: set[int] = set()
    sizes: list[int] = []
    for node in delegates:
        boundary = {int(t) for t in node["inputs"] if t >= 0}
        members: set[int] = set()
        stack = [int(t) for t in node["outputs"] if t >= 0]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer:
                continue
            index = producer[tensor]
            if index in members:
                continue
            members.add(index)
            stack.extend(int(t) for t in original[index]["inputs"] if t >= 0)
        if not members:
            raise ModelError(f"delegate node {node['index']} replaced no node it could be "
                             "traced to")
        if members & claimed:
            raise ModelError(f"delegate node {node['index']} overlaps another partition")
        sizes.append(len(members))
        claimed |= members

    outside = Counter(op["op_name"] for op in original if int(op["index"]) not in claimed)
    names = {int(t["index"]): t["name"] for t in interpreter.get_tensor_details()}
    nodes = [(op["op_name"], names.get(int(op["outputs"][0]), "")) for op in original
             if int(op["index"]) not in claimed and len(op["outputs"])]
    return DelegationReport(partitions=len(delegates), delegated_nodes=len(claimed),
                            total_nodes=len(original), ops_outside=dict(sorted(outside.items())),
                            xnnpack=xnnpack, partition_sizes=sizes, outside_nodes=nodes)


def inspect_model(model_path: str | Path, num_threads: int = 1,
                  use_xnnpack: bool = True) -> DelegationReport:
    """Load ``model_path`` and report its delegation, cross-checked against an undelegated load.

    Raises:
        ModelError: the model cannot load, or the delegation trace does not account for every node
            of the undelegated model.
    """
    from edgepose.runtime.interpreter import load_interpreter

    interpreter, _ = load_interpreter(model_path, num_threads, use_xnnpack)
    report = delegation_report(interpreter, xnnpack=use_xnnpack)
    if use_xnnpack:
        plain, _ = load_interpreter(model_path, num_threads, use_xnnpack=False)
        expected = len(plain._get_ops_details())
        if expected != report.total_nodes:
            raise ModelError(f"delegation trace found {report.total_nodes} original nodes, "
                             f"the undelegated model has {expected}", model_path)
    return report
