"""`edgepose train keypoints` on a folder that holds no keypoint data: one line, exit 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("layout", ["images", "empty", "flat json"])
def test_a_folder_without_keypoint_data_is_a_one_line_error_not_an_empty_success(tmp_path,
                                                                                  layout):

    from click.testing import CliRunner

    from edgepose.cli import main
    from tests.keypoint_poses import write_folder_without_keypoints

    root = write_folder_without_keypoints(tmp_path / "data", layout)
    result = CliRunner().invoke(main, ["train", "keypoints", str(root), "--epochs", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {root}: no keypoint data: expected ROOT/<class>/*.json, "
        "ROOT/<category>/<class>/*.json or a CSV table")
