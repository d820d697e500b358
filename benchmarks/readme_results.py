"""Write the README's results section from the recorded files in ``benchmarks/results/``.

Every figure the README quotes comes from a rerunnable benchmark: this script
copies the headline table of each recorded result (``<machine>/<name>.md``) between
the ``<!-- results:begin -->`` and ``<!-- results:end -->`` markers, names the
machine, and links the full file. Run it after ``make bench``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# Which recorded results the README shows, in this order, with a one-line why.
SECTIONS = [
    ("demo", "The main job (`make demo`): per task and mode", 2),
    ("convert_matrix", "Backbones x modes: size, accuracy, drift, latency, conversion time"),
    ("latency_matrix", "Backbones x sizes x modes x threads: latency, MACs and achieved MAC/s"),
    ("tradeoff", "Accuracy vs latency: the choices no other choice beats"),
    ("mobilenetv3_int8", "MobileNetV3: int8 slower than fp32, and the hard-swish rewrite"),
    ("peers", "edgepose against the usual alternatives, same run"),
    ("runtime_overhead", "Runtime overhead over a bare invoke loop"),
    ("keypoints", "Pose extraction and keypoint training"),
    ("service_soak", "Service soak"),
    ("arm_instructions", "Emulated Pi 4 / Pi 5: ARM vs x86 agreement, instructions per invoke"),
    ("demo_spread", "The demo's image training under other CPUs' kernel choices: the spread"),
    ("int8_matrix", "int8 vs fp32 per backbone x size x (scratch, pretrained): instructions "
     "on emulated Pi 4 / Pi 5, x86 time, drift, against the issue-14 targets"),
    ("a72_analysis", "int8 vs fp32 on the Pi 4's Cortex-A72: instruction classes and MAC lanes"),
    ("localise_diff", "Where ARM and x86 int8 outputs part, op by op"),
    ("decode_latency", "A 12 MP JPEG, file -> probabilities vs the invoke, timed on this machine"),
    ("decode_instructions", "A 12 MP JPEG, file -> probabilities vs the invoke, on emulated "
     "Pi cores"),
    ("train_throughput", "Training throughput"),
    ("field_cases", "Field cases of issue 11: each example, rerun against the fixed code"),
    ("scratch_baselines", "Backbones trained from scratch vs scikit-learn baselines "
     "(5-fold cross-validation, paired test)", 2),
    ("keypoints_onnx", "Keypoint MLP: edgepose int8 TFLite vs the ONNX Runtime route"),
    ("service_faults", "Service under injected faults"),
    ("train_vs_fit", "Training: edgepose's loop vs a plain Keras fit on the same arrays"),
    ("machine", "The machine and software versions of the last suite run, and the CPU each "
     "step ran on", 2),
]


def headline(markdown: str, max_rows: int = 16, tables: int = 1) -> str:
    """The text after the title up to the end of table number ``tables`` (each table cut
    at ``max_rows`` rows)."""
    lines = markdown.strip().splitlines()
    body = [line for line in lines[1:]] if lines and lines[0].startswith("#") else lines
    out: list[str] = []
    in_table = False
    rows = 0
    seen = 0
    for line in body:
        if line.startswith("|"):
            in_table = True
            rows += 1
            if rows <= max_rows + 2:  # header and separator do not count
                out.append(line)
            continue
        if in_table:
            in_table = False
            seen += 1
            if rows > max_rows + 2:
                out.append(f"\n({rows - 2 - max_rows} more rows in the full file)")
            rows = 0
            if seen == tables:
                break
        if line.startswith("#"):  # keep the README's own heading levels
            line = f"**{line.lstrip('#').strip()}**"
        out.append(line)
    if in_table and rows > max_rows + 2:
        out.append(f"\n({rows - 2 - max_rows} more rows in the full file)")
    return "\n".join(out).strip()


def section(machine_dir: Path) -> str:
    """The README text for one machine's results."""
    parts = [f"Machine: `{machine_dir.name}` (facts in each file)."]
    for name, title, *tables in SECTIONS:
        path = machine_dir / f"{name}.md"
        if not path.is_file():
            continue
        link = path.relative_to(ROOT).as_posix()
        text = headline(path.read_text(), tables=tables[0] if tables else 1)
        parts.append(f"### {title}\n\n{text}\n\nFull: [{link}]({link})")
    return "\n\n".join(parts)


def update_readme(readme: Path, machine: str | None = None) -> str:
    """Replace the text between the markers; return the new README text."""
    # The machine that recorded the main job (demo.md) first, then the others by name.
    machines = sorted((p for p in RESULTS.iterdir() if p.is_dir()),
                      key=lambda p: (not (p / "demo.md").is_file(), p.name)
                      ) if RESULTS.is_dir() else []
    if machine:
        machines = [RESULTS / machine]
    generated = "\n\n".join(section(m) for m in machines) or "No recorded results yet."
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: markers {BEGIN} / {END} not found")
    return pattern.sub(lambda _: f"{BEGIN}\n{generated}\n{END}", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--machine", help="only this results/<machine> folder")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the README is not up to date (for CI)")
    args = parser.parse_args()
    new = update_readme(args.readme, args.machine)
    if args.check:
        raise SystemExit(0 if new == args.readme.read_text() else 1)
    args.readme.write_text(new)
    print(f"updated {args.readme}")


if __name__ == "__main__":
    main()
