"""Inputs: command-line paths (files, folders, quoted globs, ``-``) turned into sources.

:func:`collect_sources` turns paths into :class:`Source` objects: files, quoted globs
(expanded here, ``**`` included), directories (their images; ``recursive`` descends) and
``-`` (one image from stdin). A path that cannot be found becomes a source with a
``problem``, so a batch reports it and goes on with the rest.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from convkit.engine.scope import Outputs, Scope, batch_scope
from convkit.errors import UsageError

IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jp2",
        ".j2k",
        ".j2c",
        ".jpc",
        ".tif",
        ".tiff",
        ".bmp",
        ".dib",
        ".webp",
        ".gif",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".pxm",
        ".pam",
        ".sr",
        ".ras",
    }
)
"""Suffixes taken as images when scanning a directory; other files there are skipped.

The formats convkit reads (:data:`convkit.image.headers.SUPPORTED_FORMATS`); files it
refuses (AVIF, OpenEXR, Radiance HDR, PFM) are not picked up from a directory.
"""

STDIN = "-"
"""The path that means standard input (and, for ``-o``, standard output)."""


@dataclass(frozen=True)
class Source:
    """One input image.

    ``display`` is how messages name it (the path as the user wrote or found it, ``-`` for
    stdin); ``rel`` is the path used to name outputs, relative to the directory it was found
    in (so ``--recursive`` output mirrors the input tree); ``problem`` is set when the input
    could not even be located, and reading it raises that error. ``key`` is its path
    relative to the glob it matched, when that differs from ``rel`` (see :attr:`shard_key`).
    """

    display: str
    path: Path | None
    rel: Path
    problem: str | None = None
    key: str | None = None

    @property
    def stem(self) -> str:
        return self.rel.stem

    @property
    def shard_key(self) -> str:
        """What decides the input's shard (:mod:`convkit.engine.shards`): its path relative
        to the folder or glob it came from (``sub/cat.png``), the same wherever that folder
        is mounted; a file named alone, its name; stdin or an input not found, as written."""
        if self.key is not None:
            return self.key
        return self.rel.as_posix() if self.path is not None else self.display

    @property
    def is_stdin(self) -> bool:
        return self.path is None and self.problem is None


@dataclass
class Collected:
    sources: list[Source] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def collect_sources(paths: Sequence[str], *, recursive: bool = False) -> Collected:
    """Expand command-line paths into sources, in the order given.

    Explicit files are always taken (a non-image named explicitly fails when read, with
    its own message); inside directories only files with an image suffix are taken, and the
    others are mentioned in a note. Missing paths and globs that match nothing become
    sources with a ``problem``, so a batch reports them and goes on with the rest.
    """
    out = Collected()
    if not paths:
        raise UsageError("no input images given")
    if sum(p == STDIN for p in paths) > 1:
        raise UsageError("'-' (stdin) can be given only once")
    seen: set[str] = set()

    def add(src: Source) -> None:
        try:
            key = str(src.path.resolve()) if src.path is not None else src.display
        except (OSError, RuntimeError):
            key = src.display
        if key not in seen:
            seen.add(key)
            out.sources.append(src)

    for raw in paths:
        if raw == STDIN:
            add(Source(STDIN, None, Path("stdin")))
            continue
        path = Path(raw)
        kind, problem = file_kind(path)
        if kind == "dir":
            _scan_dir(path, recursive, add, out.notes)
        elif kind == "file":
            add(Source(raw, path, Path(path.name)))
        elif kind == "other":
            out.sources.append(Source(raw, None, Path(path.name), problem))
        elif _has_glob(raw):
            matches = sorted(glob.glob(raw, recursive=True))
            files = [Path(m) for m in matches if file_kind(Path(m))[0] == "file"]
            if not files:
                out.sources.append(Source(raw, None, Path(raw), "no files match this pattern"))
            root = _glob_root(raw)
            for match in files:
                key = Path(os.path.relpath(match, root)).as_posix()
                add(Source(str(match), match, Path(match.name), key=key))
        else:
            out.sources.append(Source(raw, None, Path(path.name), problem))
    return out


def _glob_root(pattern: str) -> str:
    """The folder a glob starts from: its leading parts without wildcards (``photos`` of
    ``photos/**/*.png``, ``.`` of ``*.png``)."""
    head: list[str] = []
    for part in pattern.split("/"):
        if _has_glob(part):
            break
        head.append(part)
    else:
        head = head[:-1]
    root = "/".join(head)
    return root or ("/" if pattern.startswith("/") else ".")


def sources_scope(
    sources: Sequence[Source],
    options=None,
    outputs: Outputs | None = None,
    *,
    dry_run: bool = False,
) -> Scope:
    """The part of ``sources`` a batch with ``options`` does: its shard by each source's
    :attr:`~Source.shard_key`, less those whose ``outputs(index)`` all exist
    (:func:`convkit.engine.scope.batch_scope`). An output that is its own input (written
    in place) always exists: skipping on it would redo nothing, so that is refused."""
    if options is not None and options.skip_existing and outputs is not None:
        _refuse_skipping_in_place(sources, outputs)
    return batch_scope(
        options,
        [source.display for source in sources],
        [source.shard_key for source in sources],
        outputs,
        dry_run=dry_run,
    )


def _refuse_skipping_in_place(sources: Sequence[Source], outputs: Outputs) -> None:
    for index, source in enumerate(sources):
        if source.is_stdin or source.problem:
            continue
        for path in outputs(index):
            if path is not None and os.path.abspath(path) == os.path.abspath(source.path):
                raise UsageError(
                    f"`skip_existing` cannot be used with `in_place`: {source.display} is "
                    "its own output, which always exists, so nothing would be done"
                )


def file_kind(path: Path) -> tuple[str, str]:
    """``("file" | "dir" | "other" | "missing", problem)`` without following a path into an
    error: only regular files are inputs (a named pipe or a device would block or never
    end; stdin is ``-``), and an over-long or unreadable path is a problem, not a crash."""
    import errno
    import stat

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing", "no such file or directory"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return "missing", "file name too long"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "other", "permission denied"
        if exc.errno == errno.ENOTDIR:
            return "missing", "no such file or directory"
        return "other", exc.strerror or str(exc)
    except ValueError:  # an embedded null byte
        return "missing", "not a valid file name"
    if stat.S_ISDIR(mode):
        return "dir", ""
    if stat.S_ISREG(mode):
        return "file", ""
    return "other", "not a regular file (a pipe, a device or a socket); give stdin as -"


def _scan_dir(root: Path, recursive: bool, add, notes: list[str]) -> None:
    skipped: list[str] = []
    if recursive:
        walked = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            walked.extend(Path(folder) / f for f in sorted(files))
    else:
        try:
            walked = sorted(root.iterdir())
        except OSError as exc:
            reason = f"cannot list the folder ({exc.strerror or exc})"
            add(Source(str(root), None, Path(root.name), reason))
            return
    walked = [p for p in walked if file_kind(p)[0] == "file"]
    found = 0
    for file in walked:
        if file.name.startswith("."):
            continue  # hidden files, our own temp files among them
        if file.suffix.lower() in IMAGE_SUFFIXES:
            found += 1
            add(Source(str(file), file, file.relative_to(root)))
        else:
            skipped.append(file.name)
    if skipped:
        shown = ", ".join(skipped[:3]) + (
            f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        )
        notes.append(f"{root}: skipped {len(skipped)} non-image file(s): {shown}")
    if not found:
        # The same rule as a missing file or a glob that matches nothing: a failed input,
        # named in one error line; the others go on.
        add(Source(str(root), None, Path(root.name), "no images found in this folder"))
