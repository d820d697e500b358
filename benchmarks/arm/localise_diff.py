"""Find the first op whose int8 output differs between the emulated Pi and x86.

    python benchmarks/arm/localise_diff.py [--model M_int8.tflite] [--pi 5] [--kernels both]

Without ``--model`` it builds EfficientNetB0 at 224 px (benchmarks/arm/arm_models.py,
the model of the recorded 2-step difference) in ``--workdir``. The model is
rewritten so that every op's output is also a subgraph output
(``tensorflow.lite.tools.flatbuffer_utils``): TFLite keeps them all, and XNNPACK,
whose delegated partition otherwise hides intermediates (preserve_all_tensors does
not reach inside it), must write each one out. The rewritten model runs on the same
quantized inputs (``photo_crops(size, 3, seed=7)``, the inputs of
benchmarks/arm/instructions.py) on x86 and in the emulator (``edgepose.arm.tensors``);
ops are compared in execution order.

Sanity check written to the result: on x86, the rewritten model's final output equals
the unmodified model's (exposing tensors changes no arithmetic), and so does the
delegation (XNNPACK nodes).

Writes benchmarks/results/<machine>/localise_diff.json and .md.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark_utils

from benchmark_utils import results_dir, write_results  # noqa: E402

from edgepose.arm.cpus import pi_cpu  # noqa: E402
from edgepose.arm.emulated import qemu_version, run_guest  # noqa: E402
from edgepose.arm.tensors import dump_outputs  # noqa: E402
from edgepose.bench.device import machine_slug  # noqa: E402


def expose_all(model: Path, out: Path) -> list[dict]:
    """Write ``model`` with every op output as a subgraph output; return the ops in order.

    Each op: index, type (builtin name), output tensor index and name. Outputs already
    listed keep their place (the real output stays output 0).
    """
    from tensorflow.lite.tools import flatbuffer_utils

    m = flatbuffer_utils.read_model(str(model))
    graph = m.subgraphs[0]
    ops = []
    outputs = list(graph.outputs)
    for i, op in enumerate(graph.operators):
        name = flatbuffer_utils.opcode_to_name(m, op.opcodeIndex)
        for t in op.outputs:
            ops.append({"op_index": i, "op": name, "tensor": int(t),
                        "name": graph.tensors[t].name.decode(),
                        "effective_scales": _effective_scales(graph, op, name)})
            if t not in outputs:
                outputs.append(int(t))
    graph.outputs = np.array(outputs, dtype=np.int32)
    flatbuffer_utils.write_model(m, str(out))
    return ops


def _effective_scales(graph, op, name: str) -> list[float] | None:
    """Per output channel: input scale x weight scale / output scale of a conv or dense op.

    The requantization multiplier the kernels apply to the int32 accumulator (TFLite
    splits it into a 31-bit fixed-point multiplier and a power-of-two exponent,
    QuantizeMultiplier in kernels/internal/quantization_util.cc); None for other ops.
    """
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return None
    scale = [graph.tensors[t].quantization for t in (op.inputs[0], op.inputs[1], op.outputs[0])]
    if any(q is None or q.scale is None for q in scale):
        return None
    s_in, s_w, s_out = (np.asarray(q.scale, dtype=np.float64) for q in scale)
    return [float(v) for v in s_in[0] * s_w / s_out[0]]


def channel_breakdown(op: dict, arm: dict, x86: dict, samples: int) -> dict | None:
    """Which output channels of a conv/dense op differ, against their effective scale.

    TFLite's QuantizeMultiplier writes an effective scale >= 0.5 with a non-negative
    exponent (no right shift); the breakdown says whether the differing channels are
    exactly those.
    """
    scales = op.get("effective_scales")
    if not scales:
        return None
    differs = np.zeros(len(scales), dtype=bool)
    for s in range(samples):
        key = f"s{s}_t{op['tensor']}"
        d = arm[key].astype(np.int64) != x86[key].astype(np.int64)
        differs |= d.reshape(-1, d.shape[-1]).any(axis=0)
    large = np.asarray(scales) >= 0.5
    return {"channels": len(scales), "differing_channels": int(differs.sum()),
            "channels_scale_ge_half": int(large.sum()),
            "differing_with_scale_ge_half": int((differs & large).sum()),
            "differing_scales": sorted(float(v) for v in np.asarray(scales)[differs])[:8]}


def _quantize_multiplier(scale: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier (kernels/internal/quantization_util.cc).

    Returns (M, shift) with scale = M * 2^(shift - 31), M a 31-bit fixed-point number.
    """
    if scale == 0:
        return 0, 0
    q, shift = math.frexp(scale)
    fixed = round(q * (1 << 31))
    if fixed == 1 << 31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return fixed, shift


def _single_rounding(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(acc * M + 2^(30-shift)) >> (31-shift): one round-half-up (ruy's ApplyMultiplier,
    TFLite's MultiplyByQuantizedMultiplier with TFLITE_SINGLE_ROUNDING)."""
    total = 31 - shift
    return (acc * mult + (np.int64(1) << (total - 1))) >> total


def _double_rounding_half_up(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """A rounding doubling high multiply, then a rounding right shift, both rounding halves up
    (the semantics of SQRDMULH followed by SRSHL; two roundings)."""
    right = np.maximum(-shift, 0)
    high = (acc * (np.int64(1) << np.maximum(shift, 0)) * mult + (np.int64(1) << 30)) >> 31
    return (high + ((np.int64(1) << right) >> 1)) >> right


def _double_rounding(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul then RoundingDivideByPOT: two roundings,
    ties away from zero (TFLite's MultiplyByQuantizedMultiplier without TFLITE_SINGLE_ROUNDING)."""
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    a = acc * (np.int64(1) << left)
    ab = a * mult
    nudge = np.where(ab >= 0, np.int64(1) << 30, 1 - (np.int64(1) << 30))
    total = ab + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C division: toward zero
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def _fp32_requant(acc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """XNNPACK's fp32 requantization: float32(acc) * float32 scale, rounded to nearest even."""
    return np.rint(acc.astype(np.float32) * scale.astype(np.float32)).astype(np.int64)


def _accumulators(model_ops, op_index: int, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """The exact int32 accumulators (bias included) of conv op ``op_index`` on input ``x``."""
    m, graph = model_ops
    from tensorflow.lite.tools import flatbuffer_utils

    op = graph.operators[op_index]
    name = flatbuffer_utils.opcode_to_name(m, op.opcodeIndex)
    t_in, t_w, t_b, t_out = (graph.tensors[i] for i in (*op.inputs[:3], op.outputs[0]))
    w = np.frombuffer(bytes(m.buffers[t_w.buffer].data), np.int8).reshape(t_w.shape)
    bias = np.frombuffer(bytes(m.buffers[t_b.buffer].data), np.int32)
    o = op.builtinOptions
    x = x.astype(np.int64) - int(t_in.quantization.zeroPoint[0])
    kh, kw = (w.shape[1], w.shape[2])
    oh, ow = t_out.shape[1], t_out.shape[2]
    if o.padding == 0:  # SAME: TFLite's ComputePaddingHeightWidth
        ph = max((oh - 1) * o.strideH + (kh - 1) * o.dilationHFactor + 1 - x.shape[1], 0) // 2
        pw = max((ow - 1) * o.strideW + (kw - 1) * o.dilationWFactor + 1 - x.shape[2], 0) // 2
    else:
        ph = pw = 0
    padded = np.pad(x, ((0, 0), (ph, kh * o.dilationHFactor), (pw, kw * o.dilationWFactor),
                        (0, 0)))
    patches = np.stack([padded[:, dy * o.dilationHFactor:, dx * o.dilationWFactor:][
        :, :oh * o.strideH:o.strideH, :ow * o.strideW:o.strideW]
        for dy in range(kh) for dx in range(kw)], axis=3)  # N, oh, ow, kh*kw, Cin
    if name == "DEPTHWISE_CONV_2D":
        acc = np.einsum("nhwkc,kc->nhwc", patches, w.reshape(kh * kw, -1).astype(np.int64))
    else:
        acc = np.einsum("nhwkc,okc->nhwo", patches,
                        w.reshape(w.shape[0], kh * kw, -1).astype(np.int64))
    act = {0: "NONE", 1: "RELU", 3: "RELU6"}.get(o.fusedActivationFunction, "?")
    q_out = t_out.quantization
    return acc + bias, {"zero": int(q_out.zeroPoint[0]), "scale": float(q_out.scale[0]),
                        "activation": act}


def rounding_check(model: Path, op_index: int, inputs: dict, arm: dict, x86: dict,
                   samples: int, effective: list[float]) -> dict:
    """Recompute a conv op's int8 output from its exact accumulators with each candidate
    requantization and count, on ARM and on x86, how many values each one reproduces."""
    from tensorflow.lite.tools import flatbuffer_utils

    m = flatbuffer_utils.read_model(str(model))
    graph = m.subgraphs[0]
    op = graph.operators[op_index]
    fixed = [_quantize_multiplier(v) for v in effective]
    mult = np.array([f[0] for f in fixed], dtype=np.int64)
    shift = np.array([f[1] for f in fixed], dtype=np.int64)
    names = ("single_rounding", "double_rounding_half_up", "double_rounding_away", "fp32")
    counts = {k: {"arm": 0, "x86": 0} for k in names}
    total = 0
    for s in range(samples):
        x = inputs[s][None] if op.inputs[0] == graph.inputs[0] else x86[f"s{s}_t{op.inputs[0]}"]
        acc, out = _accumulators((m, graph), op_index, x)
        lo = -128 if out["activation"] == "NONE" else out["zero"]
        hi = 127 if out["activation"] != "RELU6" else min(
            127, out["zero"] + round(6 / out["scale"]))
        candidates = {"single_rounding": _single_rounding(acc, mult, shift),
                      "double_rounding_half_up": _double_rounding_half_up(acc, mult, shift),
                      "double_rounding_away": _double_rounding(acc, mult, shift),
                      "fp32": _fp32_requant(acc, np.asarray(effective, dtype=np.float32))}
        key = f"s{s}_t{op.outputs[0]}"
        for k, v in candidates.items():
            q = np.clip(v + out["zero"], lo, hi)
            counts[k]["arm"] += int(np.count_nonzero(q == arm[key]))
            counts[k]["x86"] += int(np.count_nonzero(q == x86[key]))
        total += acc.size
    return {"values": total, "reproduced": counts}


def mean_check(model: Path, op_index: int, arm: dict, x86: dict, samples: int) -> dict | None:
    """For an int8 MEAN over the spatial axes: each differing value's exact mean in output
    steps, and how far it lies from the nearest rounding boundary (k + 0.5)."""
    from tensorflow.lite.tools import flatbuffer_utils

    m = flatbuffer_utils.read_model(str(model))
    graph = m.subgraphs[0]
    op = graph.operators[op_index]
    t_in, t_out = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    s_in, z_in = float(t_in.quantization.scale[0]), int(t_in.quantization.zeroPoint[0])
    s_out, z_out = float(t_out.quantization.scale[0]), int(t_out.quantization.zeroPoint[0])
    found = []
    for s in range(samples):
        x = x86[f"s{s}_t{op.inputs[0]}"].astype(np.int64)
        a = arm[f"s{s}_t{op.outputs[0]}"].reshape(-1)
        b = x86[f"s{s}_t{op.outputs[0]}"].reshape(-1)
        exact = ((x - z_in).mean(axis=(1, 2)).reshape(-1) * s_in / s_out) + z_out
        for i in np.nonzero(a != b)[0]:
            boundary = np.floor(exact[i]) + 0.5
            found.append({"sample": s, "channel": int(i), "exact": float(exact[i]),
                          "distance_to_boundary": float(abs(exact[i] - boundary)),
                          "arm": int(a[i]), "x86": int(b[i]),
                          "correctly_rounded": int(np.floor(exact[i] + 0.5))})
    return {"values": found} if found else None


def quantized_inputs(model: Path, size: int) -> np.ndarray:
    """photo_crops(size, 3, seed=7) quantized with the model's input scale and zero point."""
    from arm_models import photo_crops

    from edgepose.runtime.interpreter import load_interpreter

    interpreter, _ = load_interpreter(model, num_threads=1)
    entry = interpreter.get_input_details()[0]
    crops = photo_crops(size, 3, seed=7)
    scale, zero = entry["quantization"]
    if not scale:
        return crops.astype(entry["dtype"])
    info = np.iinfo(entry["dtype"])
    return np.clip(np.round(crops / scale + zero), info.min, info.max).astype(entry["dtype"])


def compare(ops: list[dict], arm: dict, x86: dict, samples: int) -> list[dict]:
    """Per op (execution order): max |ARM - x86| in steps over samples and how many differ."""
    rows = []
    for op in ops:
        steps, differing, total = 0.0, 0, 0
        for s in range(samples):
            key = f"s{s}_t{op['tensor']}"
            a, b = arm[key].astype(np.int64), x86[key].astype(np.int64)
            d = np.abs(a - b)
            steps = max(steps, float(d.max()) if d.size else 0.0)
            differing += int(np.count_nonzero(d))
            total += d.size
        rows.append({**op, "max_steps": steps, "differing": differing, "elements": total})
    return rows


def delegated_nodes(model: Path) -> int:
    from edgepose.runtime.delegation import inspect_model

    return inspect_model(model, num_threads=1, use_xnnpack=True).delegated_nodes


def localise(model: Path, pi: int, kernels: list[str], work: Path, size: int,
             reuse: bool = False) -> dict:
    """Compare every op output of ``model`` on emulated Pi ``pi`` and on x86, per kernel set.

    ``reuse``: take the ARM dumps already in ``work`` (from an earlier run) if present.
    """
    exposed = work / f"{model.stem}_exposed.tflite"
    ops = expose_all(model, exposed)
    inputs = quantized_inputs(model, size)
    samples_file = work / "samples.npy"
    np.save(samples_file, inputs)
    plain = dump_outputs(model, inputs, "xnnpack")
    result = {"model": model.name, "pi": pi, "core": pi_cpu(pi).core, "ops": len(ops),
              "samples": len(inputs), "kernels": {}}
    out_index = ops[-1]["tensor"]
    for kernels_name in kernels:
        started = time.monotonic()
        x86 = dump_outputs(exposed, inputs, kernels_name)
        arm_file = work / f"arm_pi{pi}_{kernels_name}.npz"
        if not (reuse and arm_file.is_file()):
            run_guest(pi, ["-m", "edgepose.arm.tensors", str(exposed), str(samples_file),
                           kernels_name, str(arm_file)])
        arm = dict(np.load(arm_file))
        rows = compare(ops, arm, x86, len(inputs))
        differing = [r for r in rows if r["max_steps"] > 0]
        for r in rows:
            r.pop("effective_scales", None)
        if differing:
            first_op = next(o for o in ops if o["tensor"] == differing[0]["tensor"])
            differing[0]["channels"] = channel_breakdown(first_op, arm, x86, len(inputs))
            if first_op["op"] == "MEAN":
                differing[0]["mean"] = mean_check(model, first_op["op_index"], arm, x86,
                                                  len(inputs))
            if first_op["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D") and \
                    first_op.get("effective_scales"):
                differing[0]["rounding"] = rounding_check(
                    model, first_op["op_index"], inputs, arm, x86, len(inputs),
                    first_op["effective_scales"])
        final = rows[-1]
        entry = {
            "first_differing_op": differing[0] if differing else None,
            "differing_ops": len(differing),
            "differing_by_type": _by_type(differing),
            "final_output_max_steps": final["max_steps"],
            "rows": differing[:40],  # the first differing op outputs, in execution order
            "seconds": round(time.monotonic() - started, 1),
        }
        if kernels_name == "xnnpack":
            same = all(np.array_equal(plain[f"s{s}_t{out_index}"], x86[f"s{s}_t{out_index}"])
                       for s in range(len(inputs)))
            entry["sanity"] = {
                "final_output_same_as_unmodified_on_x86": bool(same),
                "delegated_nodes_unmodified": delegated_nodes(model),
                "delegated_nodes_exposed": delegated_nodes(exposed)}
        result["kernels"][kernels_name] = entry
        first = entry["first_differing_op"]
        print(f"pi{pi} {kernels_name}: {len(differing)} of {len(ops)} op outputs differ; first: "
              f"{first and (first['op_index'], first['op'], first['max_steps'])}", flush=True)
    return result


def _by_type(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["op"]] = counts.get(r["op"], 0) + 1
    return counts


def markdown(results: dict) -> str:
    lines = [f"# Where ARM and x86 int8 outputs part ({results['date']})", "",
             f"Host `{results['machine']}`, {results['qemu']}, {results['backend']}. Every op "
             "output exposed as a subgraph output (XNNPACK must write each one out), same "
             "quantized inputs on x86 and on the emulated CPU, compared op by op in execution "
             "order. Steps = int8 quantization steps. Script: benchmarks/arm/localise_diff.py.",
             ""]
    for run in results["runs"]:
        for kernels, entry in run["kernels"].items():
            first = entry["first_differing_op"]
            lines.append(f"## {run['model']} on Pi {run['pi']} {run['core']}, {kernels}")
            lines.append("")
            if first is None:
                lines.append(f"All {run['ops']} op outputs identical on {run['samples']} "
                             "samples.")
            else:
                lines.append(
                    f"First differing op: **#{first['op_index']} {first['op']}** (tensor "
                    f"`{first['name']}`), up to {first['max_steps']:.0f} step(s) on "
                    f"{first['differing']} of {first['elements']} values. "
                    f"{entry['differing_ops']} of {run['ops']} op outputs differ in all "
                    f"({', '.join(f'{k} x{v}' for k, v in entry['differing_by_type'].items())}); "
                    f"final output up to {entry['final_output_max_steps']:.0f} step(s).")
                ch = first.get("channels")
                if ch:
                    lines.append("")
                    lines.append(
                        f"Channels of that op: {ch['differing_channels']} of {ch['channels']} "
                        f"differ; {ch['channels_scale_ge_half']} channels have an effective "
                        f"requantization scale >= 0.5 (no right shift), "
                        f"{ch['differing_with_scale_ge_half']} of the differing ones among them; "
                        f"smallest differing scales: "
                        f"{', '.join(f'{v:.3g}' for v in ch['differing_scales'])}.")
                for v in (first.get("mean") or {}).get("values", []):
                    lines.append("")
                    lines.append(f"Exact mean of channel {v['channel']} (sample {v['sample']}): "
                                 f"{v['exact']:.6f} steps, {v['distance_to_boundary']:.6f} from "
                                 f"the rounding boundary; ARM {v['arm']}, x86 {v['x86']}, "
                                 f"correctly rounded {v['correctly_rounded']}.")
                rounding = first.get("rounding")
                if rounding:
                    n = rounding["values"]
                    lines.append("")
                    lines.append("Recomputed from the exact int32 accumulators, the share of that "
                                 "op's values each requantization reproduces: " + "; ".join(
                                     f"{k.replace('_', ' ')}: ARM {v['arm'] / n:.4%}, x86 "
                                     f"{v['x86'] / n:.4%}"
                                     for k, v in rounding["reproduced"].items()) + ".")
            if "sanity" in entry:
                s = entry["sanity"]
                lines.append("")
                same = s["final_output_same_as_unmodified_on_x86"]
                lines.append(f"Sanity: final output of the exposed model equals the "
                             f"unmodified one on x86: {same}; "
                             f"XNNPACK nodes {s['delegated_nodes_exposed']} (unmodified "
                             f"{s['delegated_nodes_unmodified']}).")
            lines += ["", "| # | op | tensor | max steps | differing values |",
                      "|---:|---|---|---:|---:|"]
            for r in entry["rows"][:15]:
                lines.append(f"| {r['op_index']} | {r['op']} | `{r['name'][:60]}` | "
                             f"{r['max_steps']:.0f} | {r['differing']} / {r['elements']} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an int8 .tflite (default: build "
                        "EfficientNetB0-224)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--pi", default="5", help="4, 5 or 4,5")
    parser.add_argument("--kernels", default="both", help="xnnpack, reference or both")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse ARM dumps found in --workdir (no emulator run)")
    args = parser.parse_args()
    kernels = ["xnnpack", "reference"] if args.kernels == "both" else [args.kernels]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model
        if model is None:
            from arm_models import build_backbone

            model = build_backbone("efficientnet_b0", args.size, work).int8
        from edgepose.runtime.interpreter import load_interpreter

        _, backend = load_interpreter(model, num_threads=1)
        runs = [localise(model.resolve(), int(p), kernels, work, args.size, args.reuse)
                for p in args.pi.split(",")]
    results = {"machine": machine_slug(), "qemu": qemu_version(),
               "backend": f"{backend.name} {backend.version}",
               "date": time.strftime("%Y-%m-%d"), "runs": runs}
    if args.no_write:
        print(markdown(results))
        return 0
    out = results_dir(machine=results["machine"])
    write_results(out, "localise_diff", results, markdown(results))
    print(f"wrote {out / 'localise_diff.json'} and localise_diff.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
