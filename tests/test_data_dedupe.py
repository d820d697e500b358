"""Near-duplicate leak check across splits, with real photos from skimage.data."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance
from skimage import data as skdata

from edgepose.data.dedupe import find_leaks, image_hash, near_pairs, remove_leaks
from edgepose.data.images import build_image_splits
from edgepose.errors import ConfigError

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
# Which crops of each photo go where: 5 train, 1 val, 2 test.
LAYOUT = {"train": range(0, 5), "val": range(5, 6), "test": range(6, 8)}
PLANTED = "test/chelsea/copy_of_train.jpg"
TWIN = "train/chelsea/0.png"


def _crop(photo: np.ndarray, index: int) -> Image.Image:
    """Half-size crop ``index`` (of 8, on a 3x3 grid of offsets), 64x64."""
    h, w = photo.shape[:2]
    y, x = (index % 3) * (h // 8), (index // 3) * (w // 8)
    return Image.fromarray(photo[y:y + h // 2, x:x + w // 2]).resize((64, 64), Image.BILINEAR)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    """DATA/{train,val,test}/<photo>/<crop>.png: distinct crops of four real photos."""
    root = tmp_path_factory.mktemp("photos") / "clean"
    for name in PHOTOS:
        photo = getattr(skdata, name)()
        for split, crops in LAYOUT.items():
            (root / split / name).mkdir(parents=True)
            for index in crops:
                _crop(photo, index).save(root / split / name / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def leaky(clean, tmp_path_factory) -> Path:
    """The clean dataset plus a re-encoded, 10% brighter JPEG of a train image in test/."""
    root = tmp_path_factory.mktemp("photos") / "leaky"
    shutil.copytree(clean, root)
    buffer = io.BytesIO()
    with Image.open(root / TWIN) as original:
        ImageEnhance.Brightness(original).enhance(1.1).save(buffer, format="JPEG", quality=80)
    (root / PLANTED).write_bytes(buffer.getvalue())
    return root


def test_distinct_photos_have_no_leaks(clean):
    report = build_image_splits(clean)
    assert report.leaks is not None
    assert report.leaks.test_with_train_twin == 0
    assert report.leaks.pairs == []


def test_planted_near_duplicate_in_test_is_found(leaky):
    leaks = build_image_splits(leaky).leaks
    assert leaks.test_with_train_twin == 1
    assert leaks.val_with_train_twin == 0
    assert leaks.pairs == [(PLANTED, TWIN)]
    assert "1 test and 0 val image(s) have a near-twin in train" in leaks.summary()


def test_planted_copy_is_not_pixel_identical(leaky):
    copy = np.asarray(Image.open(leaky / PLANTED).convert("RGB"), dtype=np.int16)
    original = np.asarray(Image.open(leaky / TWIN).convert("RGB"), dtype=np.int16)
    assert (copy - original).mean() > 5  # brighter, so a byte or pixel hash would miss it


def test_dedupe_moves_the_twin_into_train(leaky):
    report = build_image_splits(leaky, dedupe=True)
    assert report.leaks.removed == [PLANTED]
    moved = next(s for s in report.splits.items if s.path == PLANTED)
    assert moved.split == "train"
    assert report.splits.extra["dedupe"] == {"threshold": 4, "moved": [PLANTED]}
    assert find_leaks(report.splits).pairs == []


def test_dedupe_is_deterministic(leaky):
    first = build_image_splits(leaky, dedupe=True).splits
    second = build_image_splits(leaky, dedupe=True).splits
    assert first.items == second.items


def test_find_leaks_decodes_from_disk_without_cached_hashes(leaky):
    splits = build_image_splits(leaky, check_leaks=False).splits
    leaks = find_leaks(splits)
    assert leaks.pairs == [(PLANTED, TWIN)]
    assert leaks.leaking == 1


def test_near_twins_chain_into_one_group_that_joins_train():
    # Three hashes each 2 bits from the next: a chain of near-identical frames.
    from edgepose.data.splits import Sample, Splits

    base = 0x0123456789ABCDEF
    codes = {"a.png": (base, base), "b.png": (base ^ 0b11, base ^ 0b11),
             "c.png": (base ^ 0b1111, base ^ 0b1111)}
    splits = Splits(task="image", root="/data", classes=["x", "y"], items=[
        Sample("a.png", 0, "test"), Sample("b.png", 0, "val"), Sample("c.png", 0, "train"),
        Sample("d.png", 1, "test")])
    codes["d.png"] = (~base & (2**64 - 1), ~base & (2**64 - 1))
    new, report = remove_leaks(splits, threshold=2, hashes=codes)
    assert [s.split for s in new.items] == ["train", "train", "train", "test"]
    assert report.removed == ["a.png", "b.png"]


def test_hash_survives_resizing_a_real_photo():
    photo = Image.fromarray(skdata.coffee())
    small = photo.resize((150, 100), Image.BILINEAR)
    codes = np.array([image_hash(photo), image_hash(small)], dtype=np.uint64)
    assert near_pairs(codes, 4) == [(0, 1)]


def test_threshold_out_of_range_is_a_config_error(leaky):
    splits = build_image_splits(leaky, check_leaks=False).splits
    with pytest.raises(ConfigError, match="threshold"):
        find_leaks(splits, threshold=40)


def _toy_splits(*entries: tuple[str, str]):
    from edgepose.data.splits import Sample, Splits

    return Splits(task="image", root="/data", classes=["x"],
                  items=[Sample(path, 0, split) for path, split in entries])


def test_a_test_image_with_a_twin_in_val_is_counted_separately():
    base = 0x0F0F0F0F12345678
    far = ~base & (2**64 - 1)
    splits = _toy_splits(("t.png", "test"), ("v.png", "val"), ("r.png", "train"))
    codes = {"t.png": (base, base), "v.png": (base ^ 1, base ^ 1), "r.png": (far, far)}
    report = find_leaks(splits, hashes=codes)
    assert (report.test_with_train_twin, report.val_with_train_twin,
            report.test_with_val_twin) == (0, 0, 1)
    assert report.pairs == [("t.png", "v.png")]
    new, moved = remove_leaks(splits, hashes=codes)
    assert [s.split for s in new.items] == ["val", "val", "train"]
    assert moved.removed == ["t.png"]


def test_leak_check_is_skipped_with_a_note_without_imagehash(clean, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagehash", None)  # as on a Pi: not installed
    report = build_image_splits(clean)
    assert report.leaks is None
    assert any("imagehash is not installed" in note for note in report.notes)


def test_dedupe_without_imagehash_is_a_config_error(clean, monkeypatch):
    monkeypatch.setitem(sys.modules, "imagehash", None)
    with pytest.raises(ConfigError, match="imagehash"):
        build_image_splits(clean, dedupe=True)
