"""End-to-end latency of one 12-megapixel JPEG (file -> probabilities) against the invoke alone.

Issue 14, goal 5: file -> probabilities for a 12 MP JPEG must take at most 3x
the invoke time of MobileNetV2-224 int8. Model: MobileNetV2 224x224
(``weights=None``, 5-class softmax head), full-integer int8 with int8 I/O,
calibrated on real photographs from scikit-image; built here with TensorFlow
(host side, in a child process), measured with ai-edge-litert only.

Loops on the SAME classifier, interleaved in blocks so that other load on the
machine hits them alike (the figure that matters is the RATIO):

- ``invoke``:  set_tensor(prequantized input) + invoke + get_tensor;
- ``file``:    ``Classifier.classify(path)``: the JPEG decoded reduced at load
  (Pillow ``draft``, libjpeg DCT scaling to the smallest scale >= 224x224), one
  resize, quantize, invoke, top-k: what ``edgepose predict`` does per file;
- ``file, full decode``: the same without ``draft`` (decode all 12 MP, then
  resize), the cost this change removes.

And the Pi camera path, with a stand-in for picamera2 (the frames are
prepared up front, so the figure is the CPU edgepose spends per frame, as
``time.thread_time``): the ``lores`` YUV420 stream at the model's size
(the ISP scaled it) converted to RGB and classified, against the ``main``
stream at 2028x1520 (XBGR8888) resized on the CPU and classified.

Writes ``<out>/decode_latency.json`` and ``.md`` (default
``benchmarks/results/<machine>/``); record only from a quiet machine.

    .venv/bin/python benchmarks/decode_latency.py [--blocks 10] [--runs 100] [--out DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np  # noqa: E402
from benchmark_utils import ROOT, results_dir, write_results  # noqa: E402  (the one path set-up)
from PIL import Image  # noqa: E402

from edgepose.bench.device import conditions, device_info, machine_slug  # noqa: E402
from edgepose.bench.stats import latency_stats  # noqa: E402
from edgepose.runtime.classifier import Classifier  # noqa: E402

SIZE = 224
TARGET_RATIO = 3.0
PHOTO_SIZE = (4000, 3000)  # 12 megapixels, 4:3 like the Pi HQ camera and phones
CAMERA_MAIN = (2028, 1520)  # the Pi HQ camera's 2x2-binned full field of view

BUILD = r'''
import sys
from pathlib import Path
import numpy as np
from edgepose.keras_quiet import keras
from edgepose.keras_quiet import tf
from skimage import data
from edgepose.runtime.preprocess import ImagePreprocessing, image_to_array

out = Path(sys.argv[1])
keras.utils.set_random_seed(0)
backbone = keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None,
                                          include_top=False, pooling="avg")
inputs = keras.Input((224, 224, 3), batch_size=1)
model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(backbone(inputs)))
model.export(str(out.parent / "saved"), verbose=False)
spec = ImagePreprocessing(224, 224, "bilinear", "center")
photos = [np.asarray(getattr(data, n)())[..., :3] for n in ("astronaut", "coffee", "chelsea",
                                                            "rocket")]
calibration = [image_to_array(p, spec).astype(np.float32)[None] for p in photos for _ in (0, 1)]
converter = tf.lite.TFLiteConverter.from_saved_model(str(out.parent / "saved"))
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = lambda: ([x] for x in calibration)
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
out.write_bytes(converter.convert())
'''


@dataclass
class DecodeResult:
    machine: str
    model: str
    threads: int
    blocks: int
    runs_per_loop: int
    photo: str
    invoke_ms_p50: float
    file_ms_p50: float
    file_full_decode_ms_p50: float
    ratio_file_to_invoke: float  # the goal: <= 3
    ratio_full_decode_to_invoke: float
    camera_lores_cpu_ms_per_frame: float
    camera_main_cpu_ms_per_frame: float
    target_ratio: float
    passed: bool
    device: object


def build_model(work: Path) -> Path:
    out = work / "mobilenetv2_224_int8.tflite"
    subprocess.run([sys.executable, "-c", BUILD, str(out)], check=True, cwd=ROOT,
                   capture_output=True)
    return out


def write_photo(path: Path) -> Path:
    """A 12 MP JPEG of a real photograph (skimage's astronaut, upscaled), quality 90."""
    from skimage import data

    Image.fromarray(data.astronaut()).resize(PHOTO_SIZE, Image.Resampling.BICUBIC).save(
        path, quality=90)
    return path


def rgb_to_i420(rgb: np.ndarray) -> np.ndarray:
    """Full-range BT.601 YUV420 laid out as picamera2 returns it (no row padding)."""
    f = rgb.astype(np.float32)
    y = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    u = (f[..., 2] - y) / 1.772 + 128
    v = (f[..., 0] - y) / 1.402 + 128
    h, w = y.shape
    sub = (slice(None, None, 2), slice(None, None, 2))
    planes = [y.reshape(-1), u[sub].reshape(-1), v[sub].reshape(-1)]
    return np.clip(np.concatenate(planes), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def stand_in_picamera2(frames: dict[str, np.ndarray]) -> None:
    """Install modules named picamera2 and libcamera that serve prepared frames."""

    class Camera:
        def __init__(self, camera_num=0):
            self.config = None

        def create_preview_configuration(self, main=None, lores=None, **kwargs):
            return {"main": dict(main), "lores": dict(lores)}

        def configure(self, config):
            self.config = config

        def stream_configuration(self, name="main"):
            return self.config[name]

        def start(self):
            pass

        def capture_array(self, name="main", wait=None):
            return name

        def wait(self, job, timeout=None):
            return frames[job]

        def stop(self):
            pass

        def close(self):
            pass

    picamera2 = types.ModuleType("picamera2")
    picamera2.Picamera2 = Camera
    libcamera = types.ModuleType("libcamera")
    libcamera.Transform = lambda hflip=0, vflip=0: (hflip, vflip)
    sys.modules["picamera2"], sys.modules["libcamera"] = picamera2, libcamera


def camera_cpu_ms(classifier: Classifier, frames: int = 50) -> tuple[float, float]:
    """CPU ms per frame: lores at the model's size vs main resized on the CPU."""
    from skimage import data

    from edgepose.service.sources import Picamera2Source

    scene = Image.fromarray(data.astronaut())
    lores = rgb_to_i420(np.asarray(scene.resize((SIZE, SIZE), Image.Resampling.BILINEAR)))
    main_rgb = np.asarray(scene.resize(CAMERA_MAIN, Image.Resampling.BILINEAR))
    main = np.concatenate([main_rgb, np.zeros_like(main_rgb[..., :1])], axis=-1)  # XBGR8888
    stand_in_picamera2({"lores": lores, "main": main})
    results = []
    for stream in ("lores", "main"):
        source = Picamera2Source(size=(SIZE, SIZE), main_size=CAMERA_MAIN, stream=stream)
        for _ in range(5):
            classifier.classify(source.read(), 3)
        start = time.thread_time_ns()
        for _ in range(frames):
            classifier.classify(source.read(), 3)
        results.append((time.thread_time_ns() - start) / frames / 1e6)
        source.close()
    return results[0], results[1]


def measure(model: Path, photo: Path, threads: int, runs: int, blocks: int) -> DecodeResult:
    classifier = Classifier.from_file(model, num_threads=threads)
    interpreter = classifier.interpreter
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    classifier.set_input(classifier.prepare_image(photo))
    prepared = interpreter.get_tensor(inp["index"]).copy()
    spec = classifier.preprocessing

    def invoke() -> None:
        interpreter.set_tensor(inp["index"], prepared)
        interpreter.invoke()
        interpreter.get_tensor(out["index"])

    def from_file() -> None:
        classifier.classify(photo, 3)

    def full_decode() -> None:
        with Image.open(photo) as img:
            rgb = img.convert("RGB")
        box = None
        if spec.crop == "center":
            from edgepose.runtime.preprocess import _center_crop_box

            box = _center_crop_box(rgb.size, spec.height, spec.width)
        small = rgb.resize((spec.width, spec.height), Image.Resampling.BILINEAR, box=box)
        classifier.classify(np.asarray(small), 3)

    loops = {"invoke": invoke, "file": from_file, "full": full_decode}
    for fn in loops.values():
        for _ in range(3):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in loops}
    before = conditions()
    per_block = max(1, runs // blocks)
    for _ in range(blocks):
        for name, fn in loops.items():
            for _ in range(per_block):
                start = time.perf_counter_ns()
                fn()
                samples[name].append(time.perf_counter_ns() - start)
    after = conditions()
    stats = {name: latency_stats(values) for name, values in samples.items()}
    lores_ms, main_ms = camera_cpu_ms(classifier)
    ratio = stats["file"].p50_ms / stats["invoke"].p50_ms
    return DecodeResult(
        machine=machine_slug(), model=model.name, threads=threads, blocks=blocks,
        runs_per_loop=per_block * blocks,
        photo=f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG q90, {photo.stat().st_size // 1024} KB",
        invoke_ms_p50=round(stats["invoke"].p50_ms, 3),
        file_ms_p50=round(stats["file"].p50_ms, 3),
        file_full_decode_ms_p50=round(stats["full"].p50_ms, 3),
        ratio_file_to_invoke=round(ratio, 3),
        ratio_full_decode_to_invoke=round(stats["full"].p50_ms / stats["invoke"].p50_ms, 3),
        camera_lores_cpu_ms_per_frame=round(lores_ms, 3),
        camera_main_cpu_ms_per_frame=round(main_ms, 3), target_ratio=TARGET_RATIO,
        passed=ratio <= TARGET_RATIO,
        device=device_info(str(classifier.backend), before, after))


def markdown(r: DecodeResult) -> str:
    return "\n".join([
        f"# 12 MP JPEG, file -> probabilities, on {r.machine}", "",
        f"Model `{r.model}` (MobileNetV2 224 int8, int8 I/O), {r.threads} thread(s); "
        f"{r.runs_per_loop} runs per loop in {r.blocks} interleaved blocks; photo {r.photo}.", "",
        "| loop | p50 (ms) | / invoke |", "| --- | --- | --- |",
        f"| invoke (set_tensor + invoke + get_tensor) | {r.invoke_ms_p50} | 1.00 |",
        f"| file -> probabilities (reduced decode, one resize) | {r.file_ms_p50} | "
        f"**{r.ratio_file_to_invoke:.2f}** |",
        f"| file -> probabilities, full 12 MP decode | {r.file_full_decode_ms_p50} | "
        f"{r.ratio_full_decode_to_invoke:.2f} |", "",
        f"Target: file <= {r.target_ratio:g}x invoke: {'PASS' if r.passed else 'FAIL'}.", "",
        "Pi camera path with a stand-in picamera2 (CPU time per classified frame):", "",
        f"- `lores` YUV420 at {SIZE}x{SIZE} (the ISP scales): "
        f"{r.camera_lores_cpu_ms_per_frame} ms",
        f"- `main` XBGR8888 at {CAMERA_MAIN[0]}x{CAMERA_MAIN[1]}, resized on the CPU: "
        f"{r.camera_main_cpu_ms_per_frame} ms", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a MobileNetV2-224 int8 .tflite (default: "
                        "built here)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=100, help="timed runs per loop")
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--out", type=Path, help="results folder (default: per machine)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="decode-") as tmp:
        work = Path(tmp)
        model = args.model or build_model(work)
        result = measure(model, write_photo(work / "photo_12mp.jpg"), args.threads, args.runs,
                         args.blocks)
    out = results_dir(args.out, result.machine)
    write_results(out, "decode_latency", asdict(result), markdown(result))
    print(markdown(result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
