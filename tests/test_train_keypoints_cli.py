"""`edgepose train keypoints` on a folder that holds no keypoint data: one line, exit 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("layout", ["images", "empty", "flat json"])
def test_a_folder_without_keypoint_data_is_a_one_line_error_not_an_empty_success(tmp_path,
                                                                                  layout):
    import json

    from click.testing import CliRunner

    from edgepose.cli import main

    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    if layout == "images":
        (root / "a" / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    elif layout == "flat json":  # JSON files with no class folder above them
        (root / "x.json").write_text(json.dumps({"keypoints": [0.5] * 28}))
        (root / "a").rmdir()
    result = CliRunner().invoke(main, ["train", "keypoints", str(root), "--epochs", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {root}: no keypoint data: expected ROOT/<class>/*.json, "
        "ROOT/<category>/<class>/*.json or a CSV table")
