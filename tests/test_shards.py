"""Static shards, the scope of a run and its bookkeeping, as library calls.

* ``--shard`` forms: ``K/N`` and ``auto`` from Slurm job arrays, Kubernetes Indexed Jobs and
  GitLab ``parallel:``; every missing, partial, non-numeric or inconsistent environment is an
  error naming what is wrong, never a silent "process everything";
* the assignment: SHA-256 of the path relative to the folder or glob, the same in every
  process (Python's ``hash()`` is not), wherever the folder is mounted, and adding a file
  moves no other;
* stale temporary files: recognised by name, removed only when their writer is gone;
* the manifest: one whole line per ``write``.

The command line over all of this is in ``test_shards_cli.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convkit.engine.manifest import Manifest
from convkit.engine.shards import Shard, parse_shard, shard_of
from convkit.errors import UsageError
from convkit.files import atomic_path, remove_stale_temp_files, stale_temp_files
from convkit.image.sources import collect_sources

SLURM = {"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "10"}


# --------------------------------------------------------------------------- K/N


@pytest.mark.parametrize(
    "text, expected", [("1/1", (1, 1)), ("2/4", (2, 4)), (" 4 / 4 ", (4, 4)), ("10/12", (10, 12))]
)
def test_k_of_n(text, expected):
    shard = parse_shard(text, {})
    assert (shard.index, shard.count) == expected
    assert str(shard) == f"{expected[0]}/{expected[1]}"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("0/4", r"1 <= K <= N, got 0/4"),
        ("5/4", r"1 <= K <= N, got 5/4"),
        ("1/0", r"got 1/0"),
        ("2", r"must be K/N .*got '2'"),
        ("-1/4", r"got '-1/4'"),
        ("a/b", r"got 'a/b'"),
        ("", r"got ''"),
    ],
)
def test_bad_k_of_n_names_the_parameter(text, reason):
    with pytest.raises(UsageError, match=reason) as err:
        parse_shard(text, {})
    assert err.value.message.startswith("`shard`")


def test_no_shard_is_none():
    assert parse_shard(None) is None
    assert parse_shard(Shard(2, 3)) == Shard(2, 3)


# --------------------------------------------------------------------------- auto


@pytest.mark.parametrize(
    "environ, expected",
    [
        (SLURM, (3, 4)),  # task 12 of the array 10..13
        ({**SLURM, "SLURM_ARRAY_TASK_MAX": "13"}, (3, 4)),
        (
            {  # --array=0-12:4: tasks 0, 4, 8, 12
                "SLURM_ARRAY_TASK_ID": "8",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "12",
                "SLURM_ARRAY_TASK_STEP": "4",
                "SLURM_ARRAY_TASK_COUNT": "4",
            },
            (3, 4),
        ),
        ({"JOB_COMPLETION_INDEX": "0", "CONVKIT_SHARDS": "3"}, (1, 3)),
        ({"JOB_COMPLETION_INDEX": "2", "CONVKIT_SHARDS": "3"}, (3, 3)),
        ({"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "5"}, (1, 5)),
        ({"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "5"}, (5, 5)),
        ({"CI_NODE_TOTAL": "1"}, (1, 1)),  # a GitLab job without parallel: it is the only one
        # Two schedulers that agree (an array submitted from a parallel GitLab job).
        ({**SLURM, "CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "4"}, (3, 4)),
        # GitLab's CI_NODE_TOTAL=1 of every job, inherited by a Slurm array, is not a shard.
        ({**SLURM, "CI_NODE_TOTAL": "1"}, (3, 4)),
    ],
)
def test_auto_reads_the_scheduler(environ, expected):
    shard = parse_shard("auto", environ)
    assert (shard.index, shard.count) == expected
    assert parse_shard("AUTO", environ) == shard


@pytest.mark.parametrize(
    "environ, reason",
    [
        (
            {},
            r"found no scheduler's variables.*SLURM_ARRAY_TASK_ID.*JOB_COMPLETION_INDEX.*"
            r"CONVKIT_SHARDS.*CI_NODE_INDEX.*give K/N",
        ),
        ({"GITHUB_ACTIONS": "true"}, r"GitHub Actions sets none.*matrix"),
        ({"SLURM_ARRAY_TASK_ID": "3"}, r"Slurm job array without SLURM_ARRAY_TASK_COUNT"),
        ({**SLURM, "SLURM_ARRAY_TASK_COUNT": "four"}, r"SLURM_ARRAY_TASK_COUNT must be a whole"),
        ({**SLURM, "SLURM_ARRAY_TASK_ID": "9"}, r"shard 0 of 4, out of range"),
        ({**SLURM, "SLURM_ARRAY_TASK_ID": "14"}, r"shard 5 of 4, out of range"),
        # --array=0,3,7: three tasks that are not 1..3
        (
            {
                **SLURM,
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "7",
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            r"array 0-7 \(step 1\) has 3 tasks",
        ),
        (
            {**SLURM, "SLURM_ARRAY_TASK_STEP": "4", "SLURM_ARRAY_TASK_ID": "11"},
            r"task 11 is not on the array's steps of 4 from 10",
        ),
        ({"JOB_COMPLETION_INDEX": "1"}, r"JOB_COMPLETION_INDEX is set, but not CONVKIT_SHARDS"),
        ({"CONVKIT_SHARDS": "3"}, r"CONVKIT_SHARDS is set but JOB_COMPLETION_INDEX is not"),
        ({"JOB_COMPLETION_INDEX": "3", "CONVKIT_SHARDS": "3"}, r"shard 4 of 3, out of range"),
        ({"JOB_COMPLETION_INDEX": "0", "CONVKIT_SHARDS": "0"}, r"there are 0 shards"),
        ({"CI_NODE_INDEX": "0", "CI_NODE_TOTAL": "2"}, r"shard 0 of 2, out of range"),
        ({"CI_NODE_INDEX": "1"}, r"GitLab parallel without CI_NODE_TOTAL"),
        (
            {**SLURM, "JOB_COMPLETION_INDEX": "0", "CONVKIT_SHARDS": "4"},
            r"two different shards, 3/4 \(Slurm job array\) and 1/4 \(Kubernetes Indexed Job\)",
        ),
    ],
)
def test_auto_refuses_what_it_cannot_trust(environ, reason):
    with pytest.raises(UsageError, match=reason) as err:
        parse_shard("auto", environ)
    assert err.value.message.startswith("`shard` auto")
    assert "--" not in err.value.message  # a core message names parameters, not flags


# --------------------------------------------------------------------------- the assignment


def test_assignment_is_sha256_of_the_key():
    # The reference: the first 8 bytes of SHA-256, big-endian, modulo N, counted from 1.
    for key in ["cat.png", "sub/dir/dog.jpg", "café.png", "-", "x" * 300]:
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        for n in (1, 2, 3, 7, 64):
            assert shard_of(key, n) == int.from_bytes(digest[:8], "big") % n + 1


def test_assignment_is_the_same_in_every_process():
    keys = [f"img_{i:04d}.png" for i in range(200)]
    here = [shard_of(k, 5) for k in keys]
    code = (
        "import json, sys; from convkit.engine.shards import shard_of; "
        "print(json.dumps([shard_of(k, 5) for k in json.load(sys.stdin)]))"
    )
    for seed in ("1", "2"):  # a salted hash() would differ between these
        out = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(keys),
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        ).stdout
        assert json.loads(out) == here


def test_shards_split_every_input_once_and_evenly():
    keys = [f"photos/{i:05d}.png" for i in range(4000)]
    shards = [Shard(k, 4) for k in range(1, 5)]
    chosen = [set(s.select(keys)) for s in shards]
    assert sorted(i for c in chosen for i in c) == list(range(len(keys)))  # once each
    for part in chosen:
        assert 850 < len(part) < 1150  # 1000 expected, about 4 standard deviations


def _tree(root: Path, names) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not read")


def test_keys_are_relative_to_the_folder_or_glob(tmp_path, monkeypatch):
    _tree(tmp_path / "a" / "photos", ["x.png", "sub/y.png", "sub/deeper/z.png"])
    os.symlink(tmp_path / "a" / "photos", tmp_path / "mounted")
    monkeypatch.chdir(tmp_path)

    def keys(*paths, recursive=True):
        return sorted(
            s.shard_key for s in collect_sources(list(paths), recursive=recursive).sources
        )

    expected = ["sub/deeper/z.png", "sub/y.png", "x.png"]
    # The same folder, however it is reached: every shard agrees wherever it runs.
    assert keys("a/photos") == keys("mounted") == keys(str(tmp_path / "a" / "photos")) == expected
    assert keys("a/photos/**/*.png") == keys(f"{tmp_path}/mounted/**/*.png") == expected
    assert keys("a/*/sub/y.png") == ["photos/sub/y.png"]  # from the glob's fixed part, a/
    assert keys("mounted/sub/y.png") == ["y.png"]  # a file named alone: its name
    assert keys("missing.png") == ["missing.png"]  # not found: as written


def test_adding_a_file_moves_no_other(tmp_path):
    names = [f"{i:03d}.png" for i in range(60)]
    _tree(tmp_path / "p", names)
    shard = Shard(2, 3)

    def mine():
        sources = collect_sources([str(tmp_path / "p")]).sources
        return {sources[i].shard_key for i in shard.select(s.shard_key for s in sources)}

    before = mine()
    _tree(tmp_path / "p", ["new-one.png"])
    after = mine()
    assert after - {"new-one.png"} == before
    (tmp_path / "p" / names[0]).unlink()
    assert mine() == after - {names[0]}


# --------------------------------------------------------------------------- temporary files


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_files_are_named_by_their_writer(tmp_path):
    with atomic_path(tmp_path / "cat_gray.png") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(f".cat_gray.png.convkit-{os.getpid()}-")
        assert tmp.name.endswith(".part")
        assert stale_temp_files([tmp_path / "cat_gray.png"]) == []  # ours, and we run
        tmp.write_bytes(b"done")
    assert (tmp_path / "cat_gray.png").read_bytes() == b"done"


def test_only_stale_temporary_files_are_removed(tmp_path):
    target = tmp_path / "cat_gray.png"
    with atomic_path(target) as tmp:
        host = tmp.name.split("-")[-2]  # .cat_gray.png.convkit-PID-HOST-XXXXXXXX.part
    dead, alive = _dead_pid(), os.getppid()
    killed = tmp_path / f".cat_gray.png.convkit-{dead}-{host}-abcd1234.part"
    running = tmp_path / f".cat_gray.png.convkit-{alive}-{host}-efgh5678.part"
    elsewhere_old = tmp_path / ".cat_gray.png.convkit-4242-otherhost-ijkl9012.part"
    elsewhere_new = tmp_path / ".cat_gray.png.convkit-4243-otherhost-mnop3456.part"
    other_target = tmp_path / f".dog_gray.png.convkit-{dead}-{host}-qrst7890.part"
    not_ours = tmp_path / ".cat_gray.png.abcd1234.part"  # the old naming, or someone else's
    for path in (killed, running, elsewhere_old, elsewhere_new, other_target, not_ours):
        path.write_bytes(b"partial")
    hour_ago = time.time() - 3700
    os.utime(elsewhere_old, (hour_ago, hour_ago))
    assert sorted(stale_temp_files([target])) == sorted([killed, elsewhere_old])
    assert remove_stale_temp_files([target, tmp_path / "missing" / "x.png"]) == 2
    left = {p.name for p in tmp_path.iterdir()}
    kept = (running, elsewhere_new, other_target, not_ours, target)
    assert left == {p.name for p in kept}


# --------------------------------------------------------------------------- the manifest


def test_manifest_lines_are_appended_whole(tmp_path, monkeypatch):
    path = tmp_path / "m.jsonl"
    path.write_text('{"earlier": true}\n')
    writes = []
    real_write = os.write

    def counting_write(fd, data):
        writes.append(data)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    with Manifest(path, shard="2/4") as manifest:
        manifest.add("a.png", "ok", ["out/a_gray.png"])
        manifest.add("b\udcff.png", "failed", [], "not an image")
        manifest.add("ç.png", "skipped", ["out/ç_gray.png"])
    assert len(writes) == 3 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert lines[0] == {"earlier": True}
    assert lines[1] == {
        "path": "a.png",
        "shard": "2/4",
        "status": "ok",
        "outputs": ["out/a_gray.png"],
        "error": None,
    }
    assert lines[2]["path"] == "b\udcff.png" and lines[2]["error"] == "not an image"
    assert lines[3]["status"] == "skipped" and lines[3]["path"] == "ç.png"


def test_manifest_folder_is_created_and_a_folder_is_refused(tmp_path):
    with Manifest(tmp_path / "new" / "m.jsonl") as manifest:
        manifest.add("a.png", "ok", [])
    assert json.loads((tmp_path / "new" / "m.jsonl").read_text())["path"] == "a.png"
    with pytest.raises(UsageError, match=r"`manifest` .* is a folder"):
        Manifest(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match=r"`manifest` .*file/m.jsonl: cannot open it"):
        Manifest(tmp_path / "file" / "m.jsonl").__enter__()
