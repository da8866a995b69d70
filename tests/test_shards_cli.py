"""``--shard``, ``--skip-existing`` and ``--manifest`` from the command line.

The reference for every sharded run is a plain run of the same command: N shards, each in a
folder of its own, together write exactly its files, byte for byte, none twice, each input
once; a shard's failure is its own input's; a re-run with ``--skip-existing`` finishes an
interrupted run (and removes the temporary file a killed process left) without touching what
was done; the manifest has one line per input with the right status.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convkit.files import atomic_path

SCHEDULER_VARIABLES = (
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_MAX",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
    "CONVKIT_SHARDS",
    "CI_NODE_INDEX",
    "CI_NODE_TOTAL",
    "GITHUB_ACTIONS",
)
NO_SCHEDULER = dict.fromkeys(SCHEDULER_VARIABLES)  # None: removed from the environment
COUNT = 12


@pytest.fixture
def photos(tmp_path, images):
    """12 small images, a third of them in a sub-folder."""
    root = tmp_path / "photos"
    for i in range(COUNT):
        path = root / ("sub" if i % 3 == 0 else "") / f"img{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(images.encode(images.smooth((16, 20, 3), seed=i)))
    return root


def files_under(folder: Path) -> dict[str, bytes]:
    """Every visible file under ``folder``: ``{relative path: bytes}``."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def expected_shard(key: str, count: int) -> int:
    """The reference assignment, written out: SHA-256, first 8 bytes, modulo N, from 1."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count + 1


def manifest_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


COMMANDS = {
    "grayscale": lambda out: ["grayscale", "--resize", "50%", "-d", out],
    "filter": lambda out: [
        "filter",
        "-k",
        "sobel-x",
        "-k",
        "sharpen",
        "-d",
        out,
        "--raw",
        out / "raw",
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_n_shards_write_exactly_what_one_run_writes(command, photos, tmp_path, run_main):
    args = COMMANDS[command]
    plain = run_main([*args(tmp_path / "plain"), photos, "-r", "-j", "2"])
    assert plain.exit_code == 0, plain
    reference = files_under(tmp_path / "plain")
    assert len(reference) == COUNT * (1 if command == "grayscale" else 4)
    for n in (1, 2, 3, 4):
        union: dict[str, bytes] = {}
        listed: list[str] = []
        for k in range(1, n + 1):
            out = tmp_path / f"{n}-{k}"
            manifest = tmp_path / f"{n}-{k}.jsonl"
            result = run_main(
                [*args(out), photos, "-r", "-j", "2", "--shard", f"{k}/{n}", "--manifest", manifest]
            )
            assert result.exit_code == 0, result
            assert f"convkit: shard {k}/{n}: " in result.stderr
            assert f" of {COUNT}" in result.stderr
            mine = files_under(out) if out.exists() else {}
            assert not set(mine) & set(union), f"shards overlap at {n} shards"
            union.update(mine)
            lines = manifest_lines(manifest)
            assert {line["shard"] for line in lines} <= {f"{k}/{n}"}
            assert all(line["status"] == "ok" for line in lines)
            listed += [line["path"] for line in lines]
            # Each shard took the inputs the reference assignment gives it.
            keys = [Path(p).relative_to(photos).as_posix() for p in (x["path"] for x in lines)]
            assert all(expected_shard(key, n) == k for key in keys)
        assert union == reference, f"{n} shards"
        assert sorted(listed) == sorted(str(p) for p in photos.rglob("*.png")), "each input once"


def test_a_failing_input_fails_only_its_shard(photos, tmp_path, run_main, cli_error):
    broken = photos / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    plain = run_main(["grayscale", photos, "-r", "-d", tmp_path / "plain"])
    assert plain.exit_code == 1
    owner = expected_shard("broken.png", 3)
    union: dict[str, bytes] = {}
    for k in (1, 2, 3):
        out = tmp_path / f"s{k}"
        result = run_main(["grayscale", photos, "-r", "-d", out, "--shard", f"{k}/3", "-q"])
        if k == owner:
            cli_error(result, 1, r"not a (valid )?PNG|truncated|corrupt|cannot", path=str(broken))
        else:
            assert result.exit_code == 0 and result.stderr == "", result
        union.update(files_under(out) if out.exists() else {})
    assert union == files_under(tmp_path / "plain")


def test_collisions_are_checked_over_every_shard(photos, tmp_path, run_main, cli_error):
    # Every image would be written to gray.png: each shard refuses, even one with a single
    # input of its own (or none), before reading anything.
    for k in range(1, COUNT + 1):
        result = run_main(
            ["grayscale", photos, "-r", "-d", tmp_path / "out", "--name", "{what}.{ext}",
             "--shard", f"{k}/{COUNT}"]
        )  # fmt: skip
        cli_error(result, 2, r"two results would be written to .*gray\.png")
    assert not (tmp_path / "out").exists()


def test_dry_run_shows_the_shards_plan(photos, tmp_path, run_main):
    everything = run_main(["grayscale", photos, "-r", "-d", tmp_path / "o", "--dry-run"])
    lines = everything.text.splitlines()
    assert len(lines) == COUNT
    parts = []
    for k in (1, 2, 3):
        result = run_main(
            ["grayscale", photos, "-r", "-d", tmp_path / "o", "--dry-run", "--shard", f"{k}/3"]
        )
        assert result.exit_code == 0, result
        mine = result.text.splitlines() if result.text.strip() else []
        assert f"convkit: note: shard {k}/3: {len(mine)} input" in result.stderr
        assert f"of {COUNT}" in result.stderr
        parts += mine
    assert sorted(parts) == sorted(lines)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- auto


def _slurm(task: int, count: int) -> dict:
    return {
        **NO_SCHEDULER,
        "SLURM_ARRAY_TASK_ID": str(task + 100),
        "SLURM_ARRAY_TASK_MIN": "100",
        "SLURM_ARRAY_TASK_MAX": str(count + 99),
        "SLURM_ARRAY_TASK_COUNT": str(count),
    }


@pytest.mark.parametrize(
    "environment",
    [
        _slurm,
        lambda k, n: {**NO_SCHEDULER, "JOB_COMPLETION_INDEX": str(k), "CONVKIT_SHARDS": str(n)},
        lambda k, n: {**NO_SCHEDULER, "CI_NODE_INDEX": str(k + 1), "CI_NODE_TOTAL": str(n)},
    ],
    ids=["slurm", "kubernetes", "gitlab"],
)
def test_auto_takes_the_shard_the_scheduler_gives(environment, photos, tmp_path, run_main):
    for k in range(3):  # the scheduler's index, from 0 (Slurm from its MIN, GitLab from 1)
        args = ["grayscale", photos, "-r", "-d", tmp_path / "o", "--dry-run"]
        auto = run_main([*args, "--shard", "auto"], env=environment(k, 3))
        explicit = run_main([*args, "--shard", f"{k + 1}/3"], env=NO_SCHEDULER)
        assert auto.exit_code == 0, auto
        assert auto.text == explicit.text
        assert f"shard {k + 1}/3" in auto.stderr


@pytest.mark.parametrize(
    "environment, reason",
    [
        ({}, r"--shard auto found no scheduler's variables"),
        ({"SLURM_ARRAY_TASK_ID": "3"}, r"auto: Slurm job array without SLURM_ARRAY_TASK_COUNT"),
        ({"JOB_COMPLETION_INDEX": "0"}, r"auto: JOB_COMPLETION_INDEX is set, but not CONVKIT"),
        (
            {"JOB_COMPLETION_INDEX": "0", "CONVKIT_SHARDS": "2"}
            | {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2"},
            r"two different shards, 1/2 .* and 2/2",
        ),
    ],
)  # fmt: skip
def test_auto_without_a_usable_scheduler_is_an_error(
    environment, reason, photos, tmp_path, run_main, cli_error
):
    result = run_main(
        ["grayscale", photos, "-d", tmp_path / "o", "--shard", "auto"],
        env={**NO_SCHEDULER, **environment},
    )
    cli_error(result, 2, reason)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["0/2", "3/2", "half", "1/2/3"])
def test_bad_shard_is_a_usage_error(value, photos, tmp_path, run_main, cli_error):
    result = run_main(["grayscale", photos, "-d", tmp_path / "o", "--shard", value])
    cli_error(result, 2, r"--shard must be K/N")


# --------------------------------------------------------------------------- skip existing


def _temp_name(target: Path, pid: int, scratch: Path) -> Path:
    """The name :func:`convkit.files.atomic_path` gives a temporary file of ``target`` in
    process ``pid`` on this host."""
    with atomic_path(scratch / "probe") as tmp:
        host = tmp.name.rsplit("-", 2)[-2]
    return target.parent / f".{target.name}.convkit-{pid}-{host}-x1y2z3w4.part"


def test_skip_existing_finishes_an_interrupted_run(photos, tmp_path, run_main):
    args = ["filter", photos, "-r", "-k", "sobel-x", "-k", "sharpen", "-j", "2"]
    plain = run_main([*args, "-d", tmp_path / "plain"])
    assert plain.exit_code == 0
    out = tmp_path / "out"
    assert run_main([*args, "-d", out]).exit_code == 0
    # The run "was killed": three images lost a file each, one of them left a temporary
    # file of a process that is gone; another process (this one) is still writing one.
    lost = [out / "img01_sharpen.png", out / "img02_sobel-x.png", out / "sub" / "img03_sharpen.png"]
    for path in lost:
        path.unlink()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = _temp_name(out / "img01_sharpen.png", gone.pid, tmp_path)
    stale.write_bytes(b"half a PNG")
    live = _temp_name(out / "img04_sharpen.png", os.getpid(), tmp_path)
    live.write_bytes(b"being written")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    manifest = tmp_path / "m.jsonl"
    result = run_main([*args, "-d", out, "--skip-existing", "--manifest", manifest])
    assert result.exit_code == 0, result
    assert "convkit: 12 images, 6 files written, 9 skipped (their files exist)" in result.stderr
    assert files_under(out) == files_under(tmp_path / "plain")
    assert not stale.exists() and live.exists()
    # The images that were complete were not written again.
    untouched = [p for p in before if not p.name.startswith(("img01", "img02", "img03"))]
    assert all(p.stat().st_mtime_ns == before[p] for p in untouched)
    lines = manifest_lines(manifest)
    assert sorted(line["path"] for line in lines) == sorted(str(p) for p in photos.rglob("*.png"))
    done = {Path(line["path"]).name for line in lines if line["status"] == "ok"}
    assert done == {"img01.png", "img02.png", "img03.png"}
    assert sum(line["status"] == "skipped" for line in lines) == 9
    redone = next(line for line in lines if line["path"].endswith("img03.png"))
    assert redone["outputs"] == [
        str(out / "sub" / "img03_sobel-x.png"),
        str(out / "sub" / "img03_sharpen.png"),
    ]
    # Once complete, a re-run has nothing to do.
    again = run_main([*args, "-d", out, "--skip-existing", "--dry-run"])
    assert again.text.strip() == ""
    assert "12 inputs, 12 to skip (their files exist), 0 to do" in again.stderr


def test_skip_existing_never_skips_standard_output(make_image, tmp_path, run_main):
    path, _ = make_image("one.png")
    result = run_main(["grayscale", path, "-o", "-", "--skip-existing"])
    assert result.exit_code == 0 and result.stdout.startswith(b"\x89PNG")


# --------------------------------------------------------------------------- manifest


def test_manifest_has_every_input_once_with_its_status(photos, tmp_path, run_main):
    (photos / "broken.png").write_bytes(b"not an image at all")
    big = photos / "sub" / "big.png"
    big.write_bytes((photos / "img01.png").read_bytes())
    missing = tmp_path / "missing.png"
    manifest = tmp_path / "m.jsonl"
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "img02_gray.png").write_bytes(b"done before")  # skipped: not rewritten
    args = ["grayscale", photos, missing, "-r", "-d", out, "--manifest", manifest]
    result = run_main([*args, "--skip-existing", "--max-pixels", "319"])  # 16x20 = 320
    assert result.exit_code == 1
    lines = manifest_lines(manifest)
    by_name = {Path(line["path"]).name: line for line in lines}
    assert len(lines) == len(by_name) == COUNT + 3
    assert all(set(line) == {"path", "shard", "status", "outputs", "error"} for line in lines)
    assert by_name["img02.png"]["status"] == "skipped"
    assert by_name["img02.png"]["outputs"] == [str(out / "img02_gray.png")]
    assert (out / "img02_gray.png").read_bytes() == b"done before"
    failed = {name for name, line in by_name.items() if line["status"] == "failed"}
    assert failed == {name for name in by_name if name != "img02.png"}  # all too big, or bad
    errors = [line for line in result.stderr_lines if line.startswith("convkit: error: ")]
    for line in lines:
        if line["status"] == "failed":
            assert line["outputs"] == []
            # The same words as the error line, the parameter shown as its flag.
            assert f"convkit: error: {line['path']}: {line['error']}" in errors
    assert "--max-pixels" in by_name["img01.png"]["error"]
    # A second run appends; the last line of an input is its latest state.
    again = run_main(["grayscale", photos / "img01.png", "-d", out, "--manifest", manifest])
    assert again.exit_code == 0
    last = manifest_lines(manifest)[-1]
    assert last == {
        "path": str(photos / "img01.png"),
        "shard": None,
        "status": "ok",
        "outputs": [str(out / "img01_gray.png")],
        "error": None,
    }


def test_manifest_where_it_cannot_be(photos, tmp_path, run_main, cli_error):
    out = tmp_path / "out"
    result = run_main(["grayscale", photos, "-d", out, "--manifest", out / "img01_gray.png"])
    cli_error(result, 2, r"--manifest .*img01_gray\.png is also an output of this run")
    result = run_main(["grayscale", photos, "-d", out, "--manifest", tmp_path])
    cli_error(result, 2, r"--manifest .* is a folder")
    assert not out.exists()
    # Beside the outputs, in a folder the run creates: as -d creates its own.
    result = run_main(["grayscale", photos, "-r", "-d", out, "--manifest", out / "m.jsonl"])
    assert result.exit_code == 0
    assert len(manifest_lines(out / "m.jsonl")) == COUNT


def test_info_shard_json_lists_the_shards_inputs(photos, run_main):
    for flag in ("--json", "--jsonl"):
        seen = []
        for k in (1, 2):
            result = run_main(["info", photos, "-r", flag, "--shard", f"{k}/2"])
            assert result.exit_code == 0, result
            if flag == "--json":
                records = json.loads(result.text)
            else:
                records = [json.loads(line) for line in result.text.splitlines()]
            for record in records:
                key = Path(record["path"]).relative_to(photos).as_posix()
                assert expected_shard(key, 2) == k
                assert record["shape"] == [16, 20, 3]
            seen += [r["path"] for r in records]
        assert sorted(seen) == sorted(str(p) for p in photos.rglob("*.png"))


# --------------------------------------------------------------------------- Keras


@pytest.mark.keras
def test_conv_shards_write_what_one_run_writes(photos, tmp_path, run_main, cli_error):
    # Random filters: every shard must draw the same ones, so a seed is required.
    result = run_main(["conv", photos, "-d", tmp_path / "o", "--shard", "1/2", "--dry-run"])
    cli_error(result, 2, r"--shard: the filters of conv are random.*give --seed")
    args = ["conv", photos, "-r", "--filters", "2", "--seed", "7", "--activation", "relu"]
    assert run_main([*args, "-d", tmp_path / "plain"]).exit_code == 0
    union: dict[str, bytes] = {}
    for k in (1, 2):
        manifest = tmp_path / f"{k}.jsonl"
        result = run_main(
            [*args, "-d", tmp_path / str(k), "--shard", f"{k}/2", "--manifest", manifest]
        )
        assert result.exit_code == 0, result
        mine = files_under(tmp_path / str(k))
        assert not set(mine) & set(union)
        union.update(mine)
        for line in manifest_lines(manifest):
            assert line["status"] == "ok" and line["shard"] == f"{k}/2"
            assert all(Path(p).is_file() for p in line["outputs"]) and len(line["outputs"]) == 6
    assert union == files_under(tmp_path / "plain")


@pytest.mark.keras
def test_predict_shards_classify_what_one_run_classifies(
    tiny_classifier, photos, tmp_path, run_main
):
    plain = run_main(["predict", tiny_classifier, photos, "-r", "--json"])
    assert plain.exit_code == 0, plain
    reference = {r["path"]: r for r in json.loads(plain.text)}
    union = {}
    for k in (1, 2, 3):
        manifest = tmp_path / f"{k}.jsonl"
        result = run_main(
            [
                "predict",
                tiny_classifier,
                photos,
                "-r",
                "--json",
                "--shard",
                f"{k}/3",
                "--manifest",
                manifest,
            ]
        )
        assert result.exit_code == 0, result
        records = {r["path"]: r for r in json.loads(result.text)}
        assert not set(records) & set(union)
        union.update(records)
        lines = manifest_lines(manifest)
        assert sorted(line["path"] for line in lines) == sorted(records)
        assert all(line["status"] == "ok" and line["outputs"] == [] for line in lines)
        dry = run_main(["predict", tiny_classifier, photos, "-r", "--dry-run", "--shard", f"{k}/3"])
        assert sorted(dry.text.split()) == sorted(records)
    assert union == reference


@pytest.fixture(scope="module")
def tiny_conv_classifier(tmp_path_factory):
    """An 8x8x3 classifier with a convolution for Grad-CAM to look at (random weights)."""
    import warnings

    from convkit.heavy import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(2, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    path = tmp_path_factory.mktemp("conv-model") / "model.keras"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        keras.Model(inputs, outputs).save(path)
    return path


@pytest.mark.keras
def test_explain_shards_and_skip_existing(tiny_conv_classifier, photos, tmp_path, run_main):
    args = ["explain", tiny_conv_classifier, photos, "-r", "-q"]
    assert run_main([*args, "-d", tmp_path / "plain"]).exit_code == 0
    reference = files_under(tmp_path / "plain")
    assert len(reference) == COUNT
    out = tmp_path / "out"
    for k in (1, 2):  # both shards into one folder, as an array job would
        result = run_main([*args, "-d", out, "--shard", f"{k}/2", "--manifest", tmp_path / "m"])
        assert result.exit_code == 0, result
    assert files_under(out) == reference
    assert len(manifest_lines(tmp_path / "m")) == COUNT
    (out / "img05_gradcam.png").unlink()
    again = run_main([*args[:-1], "-d", out, "--skip-existing", "--json"])
    assert again.exit_code == 0, again
    assert [r["path"] for r in json.loads(again.text)] == [str(photos / "img05.png")]
    assert "12 images, 1 file written, 11 skipped (their files exist)" in again.stderr
    assert files_under(out) == reference


def test_skip_existing_refuses_results_written_over_their_inputs(photos, run_main, cli_error):
    # In place, every output is its own input and always exists: nothing would be redone.
    before = files_under(photos)
    one = photos / "img01.png"
    result = run_main(["grayscale", one, "-o", one, "--in-place", "--skip-existing"])
    cli_error(result, 2, r"--skip-existing cannot be used with --in-place: .*img01\.png")
    folder = run_main(
        ["grayscale", photos, "-r", "-d", photos, "--name", "{stem}.{ext}", "--in-place",
         "--skip-existing"]
    )  # fmt: skip
    cli_error(folder, 2, r"--skip-existing cannot be used with --in-place")
    assert files_under(photos) == before  # nothing read, nothing written
