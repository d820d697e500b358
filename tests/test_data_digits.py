"""`edgepose data digits OUT`: scikit-learn's real handwritten digits as an image folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sklearn.datasets import load_digits

from edgepose.cli import main
from edgepose.data.dedupe import find_leaks
from edgepose.data.digits import build_digits, write_digits
from edgepose.data.images import build_image_splits
from edgepose.errors import ConfigError


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "digits"
    result = CliRunner().invoke(main, ["data", "digits", str(out)])
    return out, result


def test_digits_command_writes_1797_pngs_in_10_folders(written):
    out, result = written
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [str(d) for d in range(10)]
    assert len(list(out.glob("*/*.png"))) == 1797
    assert "1797" in result.output and "class" in result.output


def test_each_png_is_the_upscaled_real_digit(written):
    out, _ = written
    digits = load_digits()
    for row in (0, 1000, 1796):
        path = out / str(digits.target[row]) / f"{row:04d}.png"
        with Image.open(path) as image:
            assert image.size == (64, 64) and image.mode == "L"
            small = np.asarray(image.resize((8, 8), Image.BOX), dtype=float)
        correlation = np.corrcoef(small.ravel(), digits.images[row].ravel())[0, 1]
        assert correlation > 0.95


def test_second_run_reuses_the_folder(written):
    out, _ = written
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*.png")}
    result = CliRunner().invoke(main, ["data", "digits", str(out), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["reused"] is True and record["total"] == 1797
    assert sum(record["counts"].values()) == 1797
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.png")} == before


def test_digits_folder_is_a_valid_image_dataset(written):
    out, _ = written
    report = build_image_splits(out, check_leaks=False)
    assert report.splits.classes == [str(d) for d in range(10)]
    assert len(report.splits.items) == 1797
    assert not report.problems and not report.ignored


def test_existing_file_as_out_is_a_one_line_error(tmp_path):
    target = tmp_path / "taken.txt"
    target.write_text("not a folder\n")
    result = CliRunner().invoke(main, ["data", "digits", str(target)])
    assert result.exit_code != 0
    assert result.stderr.strip().splitlines() == [
        f"error: {target}: exists and is not a folder; give a folder for the digits dataset"]
    assert "Traceback" not in result.output
    assert target.read_text() == "not a folder\n"


def test_folder_of_other_files_is_refused(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"\xff\xd8")
    result = CliRunner().invoke(main, ["data", "digits", str(tmp_path)])
    assert result.exit_code != 0
    assert "not empty (holiday.jpg)" in result.stderr
    assert not (tmp_path / "0").exists()


def test_bad_size_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["data", "digits", str(tmp_path / "d"), "--size", "4"])
    assert result.exit_code != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "size must be 8..1024" in result.stderr


def test_write_digits_returns_the_folder(tmp_path):
    out = write_digits(tmp_path / "small", size=8)
    assert out == tmp_path / "small"
    assert len(list(out.glob("*/*.png"))) == 1797
    with Image.open(next(out.glob("3/*.png"))) as image:
        assert image.size == (8, 8)


def test_parent_that_is_a_file_is_a_data_error(tmp_path):
    blocker: Path = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["data", "digits", str(blocker / "sub")])
    assert result.exit_code != 0
    assert result.stderr.startswith(f"error: {blocker / 'sub'}: cannot write")
    assert "Traceback" not in result.output


def test_missing_scikit_learn_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # as on a Pi
    with pytest.raises(ConfigError, match=r"scikit-learn.*edgepose\[train\]"):
        build_digits(tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_dedupe_on_digits_leaves_no_near_twin_across_splits(written):
    out, _ = written
    report = build_image_splits(out, dedupe=True)
    assert report.leaks is not None
    assert len(report.leaks.removed) == report.leaks.leaking
    assert find_leaks(report.splits).pairs == []
    assert all(n > 0 for n in report.splits.counts()["test"].values())
