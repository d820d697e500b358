"""Multiply-accumulates per inference, counted from a ``.tflite`` graph (no TensorFlow).

The count covers the ops that do nearly all the arithmetic of a vision or MLP
classifier: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL,
TRANSPOSE_CONV and CONV_3D, each from the shapes the converter stored:

- conv: ``out_h * out_w * out_c * k_h * k_w * in_c / groups`` (the filter's last
  dimension already is ``in_c / groups``), times the batch;
- depthwise conv: ``out_h * out_w * out_c * k_h * k_w``;
- fully connected / matmul: output elements times the reduced dimension;
- transpose conv: every input pixel is scattered over the kernel,
  ``in_h * in_w * in_c * k_h * k_w * out_c``.

Elementwise ops, pooling and softmax are left out (a few percent at most for
these networks), so MAC/s against a CPU's peak is a slightly low estimate of
the work done. Only the main subgraph (index 0) is counted. The flatbuffer is
read with the schema module ai-edge-litert ships (its ``flatbuffers``
dependency is installed with it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgepose.errors import ModelError, RuntimeNotAvailable

_COUNTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL",
            "TRANSPOSE_CONV", "CONV_3D")


@dataclass
class MacCount:
    """Multiply-accumulates of one inference (batch as stored in the model, usually 1)."""

    path: str
    total: int
    by_op: dict[str, int] = field(default_factory=dict)  # op name -> MACs
    op_counts: dict[str, int] = field(default_factory=dict)  # op name -> how many counted

    def per_second(self, latency_ms: float) -> float:
        """Achieved MAC/s at a per-inference latency in milliseconds."""
        return self.total / (latency_ms / 1000.0) if latency_ms > 0 else float("nan")


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:
        try:
            import tflite as schema  # the `tflite` package: same generated classes
        except ImportError:
            raise RuntimeNotAvailable("counting MACs needs ai-edge-litert (or the `tflite` "
                                      "package) to read the model flatbuffer") from None
    return schema


def _op_names(schema) -> dict[int, str]:
    ops = schema.BuiltinOperator
    return {getattr(ops, name): name for name in dir(ops) if name.isupper()}


def _shape(tensor) -> tuple[int, ...]:
    shape = tensor.ShapeAsNumpy()
    if isinstance(shape, int):  # the generated code returns 0 for an absent vector
        return ()
    return tuple(max(int(d), 1) for d in shape)


def op_macs(op: str, inputs: list[tuple[int, ...]], outputs: list[tuple[int, ...]],
            adj_x: bool = False) -> int:
    """MACs of one op from its input and output shapes (0 for ops that are not counted)."""
    out = outputs[0] if outputs else ()
    if op == "CONV_2D":  # filter [out_c, k_h, k_w, in_c / groups]
        _, k_h, k_w, in_per_group = inputs[1]
        return int(np.prod(out)) * k_h * k_w * in_per_group
    if op == "DEPTHWISE_CONV_2D":  # filter [1, k_h, k_w, out_c]
        _, k_h, k_w, _ = inputs[1]
        return int(np.prod(out)) * k_h * k_w
    if op == "FULLY_CONNECTED":  # weights [units, in]
        return int(np.prod(out)) * inputs[1][-1]
    if op == "BATCH_MATMUL":
        a = inputs[0]
        reduced = a[-2] if adj_x else a[-1]
        return int(np.prod(out)) * reduced
    if op == "TRANSPOSE_CONV":  # inputs: output_shape, weights [out_c, k_h, k_w, in_c], input
        out_c, k_h, k_w, _ = inputs[1]
        return int(np.prod(inputs[2])) * k_h * k_w * out_c
    if op == "CONV_3D":  # filter [k_d, k_h, k_w, in_c, out_c]
        k_d, k_h, k_w, in_c, _ = inputs[1]
        return int(np.prod(out)) * k_d * k_h * k_w * in_c
    return 0


def count_macs(model: str | Path | bytes) -> MacCount:
    """Count the multiply-accumulates of one inference of a ``.tflite`` model (or its bytes).

    Raises:
        ModelError: the file cannot be read, or it is not a TFLite flatbuffer.
    """
    schema = _schema()
    path = "<bytes>" if isinstance(model, bytes) else str(model)
    if isinstance(model, bytes):
        data = model
    else:
        try:
            data = Path(model).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the model ({exc.strerror})", model) from None
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError("not a TFLite flatbuffer (no TFL3 identifier)", path)
    try:
        root = schema.Model.GetRootAs(data, 0)
        names = _op_names(schema)
        codes = []
        for i in range(root.OperatorCodesLength()):
            code = root.OperatorCodes(i)
            # builtin codes above 127 only live in BuiltinCode; older files only fill the
            # deprecated int8 field, so the larger of the two is the real one
            codes.append(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))
        graph = root.Subgraphs(0)
        by_op: Counter[str] = Counter()
        counted: Counter[str] = Counter()
        for i in range(graph.OperatorsLength()):
            operator = graph.Operators(i)
            name = names.get(codes[operator.OpcodeIndex()], "?")
            if name not in _COUNTED:
                continue
            inputs = [_shape(graph.Tensors(t)) if t >= 0 else ()
                      for t in operator.InputsAsNumpy()]
            outputs = [_shape(graph.Tensors(t)) for t in operator.OutputsAsNumpy()]
            by_op[name] += op_macs(name, inputs, outputs, _adj_x(schema, operator, name))
            counted[name] += 1
    except (IndexError, ValueError, TypeError, AttributeError) as exc:
        raise ModelError(f"cannot read the model graph ({exc})", path) from None
    return MacCount(path=path, total=int(sum(by_op.values())), by_op=dict(by_op),
                    op_counts=dict(counted))


def _adj_x(schema, operator, name: str) -> bool:
    if name != "BATCH_MATMUL" or operator.BuiltinOptionsType() != \
            schema.BuiltinOptions.BatchMatMulOptions:
        return False
    options = schema.BatchMatMulOptions()
    table = operator.BuiltinOptions()
    options.Init(table.Bytes, table.Pos)
    return bool(options.AdjX())
