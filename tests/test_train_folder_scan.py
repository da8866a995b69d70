"""The scan of ``convkit train DATA`` on its two paths (the calling thread alone, and the
executor's threads, which the scan picks by timing its first files): the same images as
OpenCV's own decoder gives, the unreadable files named in file order, every file counted
once; and the images of :func:`read_folder` are the files' pixels (checked with NumPy)."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import folder_fixtures as ff
import numpy as np
import pytest

from convkit.training import folders
from convkit.training.config import TrainConfig
from convkit.training.folder_data import FolderReading, read_folder
from convkit.training.folders import find_layout, scan_folder


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> Path:
    return ff.make_flat(tmp_path_factory.mktemp("scan") / "shapes", per_class=6)


@pytest.fixture(params=["one thread", "threads"])
def threads(request, monkeypatch) -> bool:
    """Small probe and chunks, so that a small folder takes the chunked path; ``threads``:
    whether the probe decides on threads."""
    on = request.param == "threads"
    monkeypatch.setattr(folders, "_PROBE", 4)
    monkeypatch.setattr(folders, "_CHUNK", 3)
    monkeypatch.setattr(folders, "_THREADS_FROM_CPU", 0.0 if on else float("inf"))
    monkeypatch.setattr(folders, "_THREADS_FROM_WALL", 0.0 if on else float("inf"))
    return on


def _opencv(path: str) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


def test_scan_reads_what_opencv_reads(flat, threads):
    layout = find_layout(flat)
    names: list[str] = []
    scan = scan_folder(
        layout,
        jobs=2,
        keep_bytes=10**8,
        on_done=lambda: names.append(threading.current_thread().name),
    )
    assert len(names) == len(layout.files)  # each file once
    assert any(n.startswith("convkit") for n in names) == threads
    corrupt = str(flat / "disk" / ff.CORRUPT)
    assert [file for file, _ in scan.bad] == [corrupt]
    for file, image in zip(layout.files, scan.images, strict=True):
        if file.path == corrupt:
            assert image is None
            continue
        expected = _opencv(file.path)
        assert (image.height, image.width) == expected.shape[:2]
        assert image.bits == expected.dtype.itemsize * 8
        np.testing.assert_array_equal(image.pixels, expected)


def test_unreadable_files_are_named_in_file_order(tmp_path, threads):
    root = ff.make_flat(tmp_path / "d", per_class=5, odd=False, formats=(".png",))
    broken = []
    for name in ff.CLASS_NAMES:
        for stem in ("a_broken", "z_broken"):
            path = root / name / f"{stem}.png"
            path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
            broken.append(str(path))
    scan = scan_folder(find_layout(root), jobs=2)
    assert [file for file, _ in scan.bad] == sorted(broken)
    assert all("PNG" in reason for _, reason in scan.bad)
    assert scan.counts() == {"images": [5, 5, 5]}


def test_a_folder_named_dot(flat, monkeypatch):
    monkeypatch.chdir(flat)
    here, there = find_layout("."), find_layout(flat)
    assert [f.path for f in here.files][:2] == ["cross/cross_0000.png", "cross/cross_0001.jpg"]
    assert [f.source.rel for f in here.files] == [f.source.rel for f in there.files]
    assert there.files[0].source.rel == Path("cross/cross_0000.png")
    assert there.files[0].source.path == flat / "cross" / "cross_0000.png"
    assert scan_folder(here).bad == [("disk/" + ff.CORRUPT, scan_folder(there).bad[0][1])]


@pytest.mark.parametrize("given", [True, False], ids=["size given", "size from the scan"])
def test_read_folder_images_are_the_files_pixels(tmp_path, threads, given):
    root = ff.make_flat(tmp_path / "d", per_class=7, odd=False, sizes=((16, 12),))
    size, color = ([16, 12], "rgb") if given else (None, None)
    config = TrainConfig(dataset="folder", image_size=size, color=color, seed=0, test_split=0.3)
    data, config = read_folder(find_layout(root), config, seed=0, reading=FolderReading(jobs=2))
    assert config.image_size == [16, 12] and config.color == "rgb"
    parts = [data.x_train, data.x_test] + ([] if data.x_val is None else [data.x_val])
    rows = np.concatenate(parts)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    expected = np.stack([_opencv(str(p))[:, :, ::-1] for p in files])  # BGR to RGB
    assert rows.shape == expected.shape == (21, 16, 12, 3)

    def as_set(images):
        return sorted(image.tobytes() for image in images)

    assert as_set(rows) == as_set(expected)


def test_when_threads_are_worth_it():
    def probe(cpu: float, wall: float) -> list[tuple[float, float]]:
        return [(cpu, wall)] * 5

    assert not folders._worth_threads([])
    assert not folders._worth_threads(probe(40e-6, 45e-6))  # small PNGs
    assert folders._worth_threads(probe(400e-6, 450e-6))  # larger images
    assert folders._worth_threads(probe(20e-6, 5e-3))  # a slow disk


def test_slow_files_go_on_threads_after_three(flat, monkeypatch):
    monkeypatch.setattr(folders, "_PROBE_SECONDS", 0.0)  # every file "slow"
    monkeypatch.setattr(folders, "_THREADS_FROM_WALL", 0.0)
    names: list[str] = []
    scan_folder(
        find_layout(flat), jobs=2, on_done=lambda: names.append(threading.current_thread().name)
    )
    on_threads = [n.startswith("convkit") for n in names]
    assert on_threads[:3] == [False] * 3 and all(on_threads[3:])
