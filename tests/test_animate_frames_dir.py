"""`animate --frames-dir` into a folder that holds an earlier animation: the folder ends
with this animation's frames alone (a longer earlier one's extra frames are removed), and
nothing but files named like frames is touched."""

from __future__ import annotations

from PIL import Image


def test_a_shorter_animation_leaves_no_frames_of_the_longer_one(run_cli, tmp_path):
    frames = tmp_path / "frames"
    first = run_cli(["animate", "-i", "5", "--kernel-size", "3", "--frames-dir", frames])
    assert first.exit_code == 0, first
    assert len(list(frames.glob("frame-*.png"))) == 9  # 3x3 output cells
    keep = [frames / "frame-notes.txt", frames / "frame-12.png", frames / "cover.png"]
    for path in keep:
        path.write_bytes(b"mine")

    second = run_cli(["animate", "-i", "4", "--kernel-size", "3", "--frames-dir", frames])
    assert second.exit_code == 0, second
    assert "removed 5 frame(s) of an earlier, longer animation" in second.stderr
    names = sorted(p.name for p in frames.iterdir())
    assert names == sorted([f"frame-{i:04d}.png" for i in range(1, 5)] + [p.name for p in keep])
    sizes = {Image.open(frames / f"frame-{i:04d}.png").size for i in range(1, 5)}
    assert len(sizes) == 1  # all four from the second, 4x4 -> 2x2 animation
    assert all(p.read_bytes() == b"mine" for p in keep)
