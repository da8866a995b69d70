"""The harness of the hostile-input suites (tests/test_hostile_*.py).

Each hostile case runs the real command line in a subprocess, under a memory cap
(``RLIMIT_AS``, set in ``preexec_fn``) and a timeout, in a folder of its own, and
:func:`assert_refused` checks every promise of a wall at once:

* the exit code;
* exactly one ``convkit: error:`` line on stderr, and no Python traceback;
* no file written outside the target folder, and the inputs unchanged (compared by
  content hash before and after);
* no temporary ``.part`` file left anywhere in the folder;
* no payload marker: a hostile file that would run code if it were loaded unsafely
  creates a marker file; it must never exist.
"""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

GIB = 1024**3

# TensorFlow reserves a few GiB of address space when it loads; the commands that import it
# get a higher cap on *virtual* memory, which still stops a run that would allocate tens.
LIGHT_CAP = 2 * GIB
KERAS_CAP = 12 * GIB


@dataclass
class Run:
    args: list[str]
    exit_code: int
    stdout: bytes
    stderr: str
    timed_out: bool

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("convkit: error:")]

    def __repr__(self) -> str:
        return (
            f"Run(args={self.args!r}, exit_code={self.exit_code}, timed_out={self.timed_out},\n"
            f"stderr=\n{self.stderr[-3000:]})"
        )


def _limit(cap: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_capped(
    args: list[object],
    cwd: Path,
    *,
    cap: int = LIGHT_CAP,
    timeout: float = 60,
    env: dict | None = None,
    stdin: bytes | None = None,
) -> Run:
    """``convkit ARGS`` in ``cwd`` under a memory cap and a timeout."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVKIT_")}
    base.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "TMPDIR": str(cwd / "tmp")})
    (cwd / "tmp").mkdir(exist_ok=True)
    base.update(env or {})
    argv = [sys.executable, "-m", "convkit", *map(str, args)]
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            env=base,
            timeout=timeout,
            preexec_fn=_limit(cap),
        )
    except subprocess.TimeoutExpired as exc:
        return Run(argv[3:], -1, exc.stdout or b"", (exc.stderr or b"").decode(), True)
    return Run(
        argv[3:],
        proc.returncode,
        proc.stdout,
        proc.stderr.decode(errors="backslashreplace"),
        False,
    )


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (the scratch TMPDIR aside)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] == "tmp":
            continue
        if path.is_file() and not path.is_symlink():
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def assert_refused(
    run: Run,
    before: dict[str, str],
    root: Path,
    *,
    exit_code: int,
    reason: str,
    target: str | None = None,
    marker: Path | None = None,
) -> None:
    """Check every promise of a wall (see the module docstring). ``reason`` must appear in
    the one error line; ``target`` is the only folder (relative to ``root``) where new
    files may appear."""
    assert not run.timed_out, run
    assert run.exit_code == exit_code, run
    assert "Traceback" not in run.stderr, run
    assert len(run.error_lines) == 1, run
    assert reason in run.error_lines[0], run
    after = snapshot(root)
    for path, digest in before.items():
        assert after.get(path) == digest, f"input {path} changed or vanished: {run!r}"
    new = [p for p in after if p not in before]
    allowed = [p for p in new if target is not None and Path(p).parts[0] == target]
    assert sorted(new) == sorted(allowed), f"files written outside the target: {new}"
    leftovers = [str(p) for p in root.rglob("*.part")]
    assert not leftovers, f"temporary files left: {leftovers}"
    scratch = root / "tmp"
    if scratch.is_dir():
        assert not any(scratch.iterdir()), f"left in TMPDIR: {list(scratch.iterdir())}"
    if marker is not None:
        assert not marker.exists(), f"the payload ran: {marker} exists"
