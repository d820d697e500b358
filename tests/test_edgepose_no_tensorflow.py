"""The device side runs without TensorFlow: `edgepose predict` and `edgepose bench`.

Method (chosen for speed, ~3 s): each command runs in a fresh subprocess whose
``sys.meta_path`` starts with a finder that raises ImportError for
``tensorflow``, ``keras``, ``tf_keras`` and ``tflite_runtime``, exactly as if they
were not installed; afterwards the subprocess checks none of them got into
``sys.modules``. A real fresh venv (``pip install --no-deps -e .`` plus
ai-edge-litert, numpy, pillow, click, rich) needs the registry and takes
longer than the budget of this suite, so it is left to manual checks.
The tiny models are built (with TensorFlow) in this process, before.
"""

import json
import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = ("tensorflow", "keras", "tf_keras", "tflite_runtime")

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: the device side must not import it")
            return None

    sys.meta_path.insert(0, Block())
    from edgepose.cli import main
    try:
        main(sys.argv[1:], prog_name="edgepose")
    except SystemExit as exc:
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        if leaked:
            print("LEAKED", leaked, file=sys.stderr)
            raise SystemExit(99)
        raise
""")


def _run_blocked(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER, *args], capture_output=True,
                          text=True, timeout=120)


def test_predict_runs_with_tensorflow_import_blocked(tiny_run):
    done = _run_blocked("predict", str(tiny_run.int8), str(tiny_run.data / "one" / "000.png"),
                        "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["runtime"].startswith("ai_edge_litert")
    assert len(result["predictions"][0]["top"]) == 3


def test_bench_runs_with_tensorflow_import_blocked(tiny_run, tmp_path):
    out = tmp_path / "bench.json"
    done = _run_blocked("bench", str(tiny_run.fp32), str(tiny_run.int8), "--split", "test",
                        "--runs", "3", "--warmup", "1", "--json", str(out))
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [r["mode"] for r in rows] == ["fp32", "int8"]
    assert all(r["accuracy"] is not None and r["drift"] for r in rows)


def test_the_blocker_really_blocks_tensorflow():
    done = subprocess.run([sys.executable, "-c", BLOCKER.replace(
        "from edgepose.cli import main", "import tensorflow"), "--help"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "tensorflow is blocked" in done.stderr
