"""Where results go, decided for every input before the first one is read.

:class:`OutputPlan` maps each (input, result) pair to a :class:`Target`, refusing two results
aimed at one file and any result that would overwrite an input (compared by device and
inode); :class:`RawPlan` does the same for ``--raw`` float arrays.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from convkit.defaults import DEFAULT_NAME_TEMPLATE
from convkit.errors import UsageError
from convkit.image.codec import WRITE_FORMATS, format_for_path, normalize_format
from convkit.image.sources import STDIN, Source

TEMPLATE_FIELDS = ("stem", "what", "ext", "index")


def _template_parts(template: str) -> list[tuple[str, str | None, str]]:
    """``[(literal text, field or None, format spec)]`` of a name template. Only the
    documented fields, plainly: no attribute or index access, no conversion, and no format
    spec but a zero-padded width of ``{index}`` (``{index:03d}``); ``{stem.x}`` or
    ``{index:>99999999}`` would run arbitrary formatting on a file name."""
    import string

    problem = ""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        parts, problem = [], str(exc)
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        padded = field == "index" and re.fullmatch(r"0?[1-9]d?", spec or "") is not None
        if field not in TEMPLATE_FIELDS or (spec and not padded) or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            problem = f"unknown field {shown + (':' + spec if spec else '') + '}'}"
            break
    if problem:
        raise UsageError(
            f"`template` {template!r} is not a valid name template ({problem}); "
            "its fields are {stem}, {what}, {ext}, {index}"
        )
    return [(literal, field, spec or "") for literal, field, spec, _ in parts]


@dataclass(frozen=True)
class Target:
    """Where one result goes: a file path, or stdout when ``path`` is None."""

    path: Path | None
    fmt: str
    quality: int | None = None
    """JPEG/WebP quality (1-100); None: OpenCV's default (95 for JPEG, 100 for WebP)."""

    @property
    def display(self) -> str:
        return "-" if self.path is None else str(self.path)


@dataclass
class OutputPlan:
    """Decides the target of every (input, result) pair before anything is processed.

    ``output`` is ``-o`` (a file, or ``-`` for stdout): one input, one result. ``out_dir``
    takes any number, named by ``template`` with the fields ``{stem}`` (input file name
    without suffix), ``{what}`` (the result: ``gray``, ``sobel-x``...), ``{ext}`` (the
    output format's suffix) and ``{index}`` (the input's position, from 1). Files found
    inside a directory keep their sub-folder under ``out_dir``.
    """

    output: str | None = None
    out_dir: Path | None = None
    template: str = DEFAULT_NAME_TEMPLATE
    fmt: str | None = None
    in_place: bool = False
    stdout_is_tty: bool = False
    quality: int | None = None

    def validate(self, sources: Sequence[Source], whats: Sequence[str]) -> dict:
        """Return ``{(source_index, what): Target}``; raise :class:`UsageError` on conflicts."""
        if self.output is not None and self.out_dir is not None:
            raise UsageError("give either `output` or `out_dir`, not both")
        if self.output is None and self.out_dir is None:
            raise UsageError("say where results go: `output` FILE (one input) or `out_dir` DIR")
        if self.fmt is not None:
            self.fmt = normalize_format(self.fmt)
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise UsageError(f"`quality` must be from 1 to 100, got {self.quality}")
        if self.output is not None:
            if len(sources) != 1:
                raise UsageError(f"`output` takes one input, got {len(sources)}; use `out_dir` DIR")
            if len(whats) != 1:
                raise UsageError(
                    f"`output` takes one result, this run makes {len(whats)} per image "
                    f"({', '.join(whats)}); use `out_dir` DIR"
                )
            if self.output == STDIN:
                if self.stdout_is_tty:
                    raise UsageError(
                        "refusing to write binary image data to a terminal; "
                        "redirect stdout or use `output` FILE"
                    )
                targets = {(0, whats[0]): Target(None, self.fmt or "png", self.quality)}
            else:
                path = Path(self.output)
                fmt = self.fmt or format_for_path(path)
                targets = {(0, whats[0]): Target(path, fmt, self.quality)}
        else:
            targets = {}
            for i, src in enumerate(sources):
                for what in whats:
                    targets[(i, what)] = self._dir_target(src, i, what)
        self._check_conflicts(sources, targets)
        return targets

    def _dir_target(self, src: Source, index: int, what: str) -> Target:
        fmt = self.fmt or "png"
        fields = {
            "stem": src.stem,
            "what": what,
            "ext": WRITE_FORMATS[fmt][0].lstrip("."),
            "index": index + 1,
        }
        name = "".join(
            literal + (format(fields[field], spec) if field is not None else "")
            for literal, field, spec in _template_parts(self.template)
        )
        if not name or name.strip(".") == "" or "/" in name or os.sep in name:
            raise UsageError(f"`template` {self.template!r} gives a bad file name {name!r}")
        if self.fmt is None:
            fmt = format_for_path(name, fmt)
        return Target(self.out_dir / src.rel.parent / name, fmt, self.quality)

    def _check_conflicts(self, sources: Sequence[Source], targets: dict) -> None:
        seen: dict[str, tuple] = {}
        for key, target in targets.items():
            if target.path is None:
                continue
            norm = os.path.abspath(target.path)
            if norm in seen:
                (first, first_what), (second, second_what) = seen[norm], key
                if first == second:  # two results of one image: only {what} tells them apart
                    raise UsageError(
                        f"two results would be written to {target.display} ({first_what} "
                        f"and {second_what} of {sources[first].display}); make `template` "
                        "include {what}"
                    )
                raise UsageError(
                    f"two results would be written to {target.display} (from "
                    f"{sources[first].display} and {sources[second].display}); make "
                    "`template` include {index}, or use separate runs"
                )
            seen[norm] = key
        if self.in_place:
            return
        # Compare file identities (device, inode), not names: a symlink, a hard link or
        # "./a/../x.png" is still the input. One stat per path keeps a 10,000-image batch
        # linear; a target that does not exist yet cannot be an input.
        existing: dict[tuple[int, int], Target] = {}
        for target in targets.values():
            identity = _file_identity(target.path) if target.path is not None else None
            if identity is not None:
                existing[identity] = target
        if not existing:
            return
        for src in sources:
            identity = _file_identity(src.path) if src.path is not None else None
            if identity is not None and identity in existing:
                raise UsageError(
                    f"{src.display}: the result would overwrite its input "
                    "(choose another output, or pass `in_place`)"
                )


def refuse_overwriting(writes: Iterable[Path], reads: Iterable[tuple[Path, str]]) -> None:
    """No file written is a file read: every path in ``writes`` is compared with every
    ``(path, what it is)`` in ``reads`` (kernel files, weights, spec files, input images)
    by device and inode, up front. A target that does not exist yet cannot be one."""
    written: dict[tuple[int, int], Path] = {}
    for path in writes:
        identity = _file_identity(path)
        if identity is not None:
            written[identity] = path
    if not written:
        return
    for path, what in reads:
        identity = _file_identity(path)
        if identity is not None and identity in written:
            raise UsageError(
                f"{written[identity]}: this output would overwrite the {what} {path} "
                "(choose another output)"
            )


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


@dataclass
class RawPlan:
    """Where ``--raw`` puts float32 arrays: one ``.npy`` file (a single result), or a folder
    where each result's array takes its image's file name with a ``.npy`` suffix."""

    path: Path

    @property
    def is_file(self) -> bool:
        return self.path.suffix.lower() == ".npy"

    def validate(self, n_results: int) -> None:
        if not self.is_file and self.path.exists() and not self.path.is_dir():
            raise UsageError(
                f"`raw` {self.path} is neither a .npy file name nor a folder; give FILE.npy "
                "or a folder"
            )
        if self.is_file and n_results != 1:
            raise UsageError(
                f"`raw` {self.path} names one file, but this run makes {n_results} results; "
                "give `raw` a folder instead"
            )

    def targets(self, targets: dict, sources: Sequence[Source]) -> dict:
        """``{(source_index, what): .npy path}`` beside the image targets; two arrays on one
        path, or an array on an image target or on an input, are refused up front."""
        paths = {key: self.target(t, key[1], sources[key[0]]) for key, t in targets.items()}
        images = {os.path.abspath(t.path) for t in targets.values() if t.path is not None}
        seen: set[str] = set()
        for path in paths.values():
            norm = os.path.abspath(path)
            if norm in seen or norm in images:
                raise UsageError(f"`raw` would write two results to {path}; give another `raw`")
            seen.add(norm)
        refuse_overwriting(
            paths.values(), [(s.path, "input image") for s in sources if s.path is not None]
        )
        return paths

    def target(self, image_target: Target, what: str, source: Source) -> Path:
        if self.is_file:
            return self.path
        if image_target.path is not None:
            name = image_target.path.with_suffix(".npy").name
        else:
            name = f"{source.stem}_{what}.npy"
        return self.path / source.rel.parent / name
