"""The manifest of a batch: one JSON line per input, so that a big run can be audited.

Each input that ends adds one line to the manifest file (JSON Lines)::

    {"path": "photos/cat.png", "shard": "2/4", "status": "ok",
     "outputs": ["out/cat_gray.png"], "error": null}

``status`` is ``ok`` (``outputs``: the files it wrote), ``failed`` (``error``: why, as the
error line says it; ``outputs`` empty) or ``skipped`` (its outputs existed already, and are
listed). Inputs that never ran (a ``fail_fast`` stop, an interruption) have no line: a
re-run with ``skip_existing`` finishes them.

Lines are appended, never rewritten: the file is opened with ``O_APPEND`` and each line is
one ``write`` call, so a line is whole even when the process is killed, and the shards of a
run may share one manifest on a local file system (on NFS, where appends from several
machines can interleave, give each shard its own: ``manifest-$SLURM_ARRAY_TASK_ID.jsonl``).
A manifest that already exists is added to, so the lines of a re-run follow the first
run's; the last line of an input is its latest state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from convkit.errors import ImageWriteError, UsageError
from convkit.files import os_error_reason

STATUSES = ("ok", "failed", "skipped")


def check_manifest(path: str | Path) -> Path:
    """``path`` as a manifest can be: a file name, not a folder (checked before a run starts,
    so that a bad name does not wait for the first input to end)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"`manifest` {path} is a folder; give a file name (FILE.jsonl)")
    try:
        start = b""
        if path.is_file():  # not a pipe or a device: reading would wait or never end
            with open(path, "rb") as file:
                start = file.read(64).lstrip()
    except OSError:
        start = b""  # missing (created on opening), or said when it is opened
    if start and not start.startswith(b"{"):
        # Lines are only ever added: an image or another file named by mistake would be
        # damaged, not replaced.
        raise UsageError(
            f"`manifest` {path} exists and is not a manifest (JSON lines); give a new file "
            "name or an earlier run's manifest"
        )
    return path


class Manifest:
    """An open manifest file (a context manager); :meth:`add` appends one input's line."""

    def __init__(self, path: str | Path, *, shard: str | None = None):
        self.path = check_manifest(path)
        self.shard = shard
        self._fd: int | None = None

    def __enter__(self) -> Manifest:
        """Open the file to append to, creating it (and its folder) if need be."""
        try:
            folder = self.path.parent
            if str(folder) and not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as exc:
            reason = os_error_reason(exc)
            if isinstance(exc, (FileExistsError, NotADirectoryError)):
                reason = "a file of that name is in the way of its folder"  # not "File exists"
            raise UsageError(f"`manifest` {self.path}: cannot open it ({reason})") from None
        return self

    def __exit__(self, *exc_info) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def add(self, path: str, status: str, outputs: list[str], error: str | None = None) -> None:
        """Append the line of one input (see the module) with a single ``write``."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        record: dict[str, Any] = {
            "path": path,
            "shard": self.shard,
            "status": status,
            "outputs": outputs,
            "error": error,
        }
        # A file name that is not UTF-8 keeps its odd bytes as JSON escapes (\udcff).
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        if self._fd is None:
            raise RuntimeError("the manifest is not open")
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            raise ImageWriteError(
                f"cannot add to the manifest: {os_error_reason(exc)}", path=str(self.path)
            ) from None
        if written != len(line):
            raise ImageWriteError(
                f"cannot add to the manifest: wrote {written} of {len(line)} bytes of a line",
                path=str(self.path),
            )
