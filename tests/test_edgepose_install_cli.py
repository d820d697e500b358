"""A device-only install as the CLI sees it: host-only commands, printed commands.

Method (fast, no wheelhouse needed): each command runs in a subprocess of this
venv where the train extra's packages are made unimportable
(``sys.modules[name] = None``, which makes ``import name`` raise
ModuleNotFoundError exactly as when the package is absent). The real fresh-venv
install is tested in ``test_edgepose_install_wheel.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edgepose.cli import HOST_ONLY, LazyGroup
from edgepose.extras import train_extra_hint
from tests.reference_model import MODEL, write_digit_samples

ROOT = Path(__file__).resolve().parents[1]
TRAIN_MODULES = ("tensorflow", "keras", "sklearn", "matplotlib", "imagehash", "tensorboard")

BLOCKED = textwrap.dedent(f"""
    import sys
    for name in {TRAIN_MODULES!r}:
        sys.modules[name] = None
    from edgepose.cli import main
    main(sys.argv[1:], prog_name="edgepose")
""")


def _run(*args: str, blocked: bool = True, columns: int = 200, cwd: Path = ROOT
         ) -> subprocess.CompletedProcess:
    code = BLOCKED if blocked else "from edgepose.cli import main; main(prog_name='edgepose')"
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": str(columns), "TF_CPP_MIN_LOG_LEVEL": "2",
           "HOME": str(cwd), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


@pytest.mark.parametrize("command", sorted(HOST_ONLY))
def test_every_host_only_command_gives_one_line_hint_and_exit_2(command, tmp_path):
    (tmp_path / "data").mkdir()
    done = _run(*command, str(tmp_path / "data"), cwd=tmp_path)
    hint = train_extra_hint("edgepose " + " ".join(command), HOST_ONLY[command])
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"error: {hint}\n")


def test_the_hint_names_only_the_missing_packages(tmp_path):
    code = ("import sys; sys.modules['sklearn'] = None; from edgepose.cli import main; "
            "main(sys.argv[1:], prog_name='edgepose')")
    done = subprocess.run([sys.executable, "-c", code, "eval", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    hint = train_extra_hint("edgepose eval", ["sklearn"])
    assert (done.returncode, done.stderr) == (2, f"error: {hint}\n")
    assert hint == ("edgepose eval runs on the workstation and needs scikit-learn: install "
                    "edgepose[train] (in the edgepose checkout: pip install '.[train]')")


@pytest.mark.parametrize("command", [("train", "image"), ("convert",), ("data", "digits")])
def test_help_of_a_host_only_command_works_without_the_extra(command):
    done = _run(*command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Usage: edgepose " + " ".join(command))


def test_device_commands_run_with_the_train_extra_blocked(tmp_path):
    images = write_digit_samples(tmp_path, per_class=1)
    done = _run("predict", str(MODEL), *map(str, images), "--json")
    assert done.returncode == 0, done.stderr
    top = [p["top"][0]["label"] for p in json.loads(done.stdout)["predictions"]]
    assert top == [path.parent.name for path in images]


@pytest.mark.parametrize("module_text", [
    "import click\nimport sklearn  # noqa\n\n@click.command()\ndef run():\n    pass\n",
    "import click\n\n@click.command()\ndef run():\n    import sklearn  # noqa\n",
], ids=["at-import", "when-run"])
def test_a_train_module_imported_on_an_unlisted_path_gives_the_same_hint(
        module_text, tmp_path, monkeypatch):
    # A subcommand that imports scikit-learn (at import or when run), with scikit-learn absent.
    module = f"needs_sklearn_{len(module_text)}"  # one module name per case
    (tmp_path / f"{module}.py").write_text(module_text)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "sklearn", None)

    @click.group(cls=LazyGroup, lazy_commands={"run": f"{module}:run"})
    def tool() -> None:
        pass

    result = CliRunner().invoke(tool, ["run"], prog_name="edgepose")
    assert result.exit_code == 2
    assert result.stderr == f"error: {train_extra_hint('edgepose run', ['sklearn'])}\n"


def test_keypoints_models_prints_the_same_lines_on_a_30_column_console():
    narrow, wide = _run("keypoints", "models", columns=30), _run("keypoints", "models", columns=300)
    assert narrow.returncode == wide.returncode == 0, narrow.stderr
    assert narrow.stdout == wide.stdout
    commands = [line for line in narrow.stdout.splitlines() if "pip download" in line]
    assert commands and all(len(line) > 30 for line in commands)


def test_service_install_prints_whole_commands_on_a_30_column_console(tmp_path):
    def install(columns: int) -> list[str]:
        # --force: tmp_path (and maybe the checkout) lies under /tmp, which the unit's
        # PrivateTmp hides; the refusal itself is tested in test_service_unit.py.
        done = _run("service", "install", "--model", str(MODEL), "--source", "test", "--user",
                    "--force", "--output-dir", str(tmp_path / "out"), "--unit-dir",
                    str(tmp_path / f"units{columns}"), columns=columns, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout.replace(f"units{columns}", "units").splitlines()

    lines = install(30)
    assert lines == install(300)
    # With --unit-dir the next step is one long copy instruction, on one line.
    [step] = [line for line in lines if "is not where systemd looks" in line]
    assert step.startswith(f"  {tmp_path / 'units'}/edgepose.service is not where systemd looks")
    assert step.endswith("systemd/user/edgepose.service (or rerun without --unit-dir)")


def test_the_shared_console_does_not_wrap_a_long_command():
    from rich.console import Console

    from edgepose.cli.common import console

    command = "pip download --no-deps --only-binary=:all: mediapipe==0.10.18 -d wheels/"
    narrow = Console(width=20, soft_wrap=console.soft_wrap, record=True, file=open(
        "/dev/null", "w"))  # noqa: SIM115
    narrow.print(command)
    assert narrow.export_text() == command + "\n"
