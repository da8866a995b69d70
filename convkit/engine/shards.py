"""Static shards: which part of a batch one of N processes does, agreed without talking.

Shard ``K`` of ``N`` (``K`` counted from 1) takes the inputs whose key hashes to ``K``: the
key is the input's path relative to the folder or glob it came from (``sub/cat.png`` of
``photos/``, whatever ``photos/`` is mounted as), and the hash is SHA-256, the same in
every process, on every machine and in every Python (``hash()`` is salted per process).
Every input belongs to exactly one shard; adding or removing a file moves only that file.

:func:`parse_shard` reads ``K/N``, or ``auto``: the index and the count from the
environment of a scheduler (:func:`shard_from_environment`):

* Slurm job arrays: ``SLURM_ARRAY_TASK_ID`` counted from ``SLURM_ARRAY_TASK_MIN`` (in
  steps of ``SLURM_ARRAY_TASK_STEP``), ``SLURM_ARRAY_TASK_COUNT`` tasks;
* Kubernetes Indexed Jobs: ``JOB_COMPLETION_INDEX`` (from 0), the count from
  ``CONVKIT_SHARDS`` (the Job's ``completions``: Kubernetes does not pass it on);
* GitLab ``parallel:``: ``CI_NODE_INDEX`` (from 1) of ``CI_NODE_TOTAL``.

GitHub Actions has no such variables: a matrix passes ``K/N`` itself. Missing, partial,
non-numeric or inconsistent variables are a :class:`~convkit.errors.UsageError`, never a
silent "process everything".
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from convkit.errors import UsageError

AUTO = "auto"

SCHEDULERS = (
    "Slurm job array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT, SLURM_ARRAY_TASK_MIN)",
    "Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with the count in CONVKIT_SHARDS)",
    "GitLab parallel (CI_NODE_INDEX, CI_NODE_TOTAL)",
)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (``index`` from 1), and where it was read from."""

    index: int
    count: int
    origin: str = ""
    """The scheduler the shard came from with ``auto`` (``Slurm``...), else empty."""

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise UsageError(f"`shard` must be K/N with 1 <= K <= N, got {self.index}/{self.count}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, key: str) -> bool:
        """Whether the input with ``key`` is this shard's."""
        return shard_of(key, self.count) == self.index

    def select(self, keys: Iterable[str]) -> list[int]:
        """The positions of this shard's keys, in order."""
        return [i for i, key in enumerate(keys) if self.owns(key)]


def shard_of(key: str, count: int) -> int:
    """The shard (from 1) of ``count`` that takes the input with ``key``: the first 8 bytes
    of the SHA-256 of its UTF-8 bytes (undecodable file-name bytes kept as they were),
    modulo ``count``."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


_FORM = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


def parse_shard(text: str | Shard | None, environ: Mapping[str, str] | None = None) -> Shard | None:
    """``"K/N"`` or ``"auto"`` (from ``environ``, default :data:`os.environ`) as a
    :class:`Shard`; ``None`` stays ``None`` (no sharding)."""
    if text is None or isinstance(text, Shard):
        return text
    if text.strip().lower() == AUTO:
        return shard_from_environment(os.environ if environ is None else environ)
    match = _FORM.fullmatch(text)
    if not match:
        raise UsageError(
            f"`shard` must be K/N (shard K of N, K from 1: 2/4) or {AUTO}, got {text!r}"
        )
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_environment(environ: Mapping[str, str]) -> Shard:
    """The shard a scheduler's variables describe (see the module); an error when none,
    or two that disagree, are found."""
    found = [
        shard
        for shard in (_slurm(environ), _kubernetes(environ), _gitlab(environ))
        if shard is not None
    ]
    if not found and environ.get("CI_NODE_TOTAL", "").strip() == "1":
        return Shard(1, 1, "GitLab job without parallel:")  # the one job does it all
    if not found:
        hint = ""
        if environ.get("GITHUB_ACTIONS") == "true":
            hint = " (GitHub Actions sets none: pass K/N from the matrix, ${{ matrix.shard }}/N)"
        raise UsageError(
            f"`shard` {AUTO} found no scheduler's variables{hint}; it reads those of a "
            + ", a ".join(SCHEDULERS[:-1])
            + f" or {SCHEDULERS[-1]}; or give K/N"
        )
    first = found[0]
    for other in found[1:]:
        if (other.index, other.count) != (first.index, first.count):
            raise UsageError(
                f"`shard` {AUTO}: the environment names two different shards, {first} "
                f"({first.origin}) and {other} ({other.origin}); give K/N"
            )
    return first


def _integer(environ: Mapping[str, str], name: str, origin: str) -> int:
    value = environ.get(name)
    if value is None or not value.strip():
        raise UsageError(f"`shard` {AUTO}: {origin} without {name} in the environment")
    try:
        return int(value.strip())
    except ValueError:
        raise UsageError(f"`shard` {AUTO}: {name} must be a whole number, got {value!r}") from None


def _checked(index: int, count: int, origin: str, described: str) -> Shard:
    """Shard ``index`` (from 0) of ``count``, or an error that says which variables."""
    if count < 1:
        raise UsageError(f"`shard` {AUTO}: {origin} says there are {count} shards ({described})")
    if not 0 <= index < count:
        raise UsageError(
            f"`shard` {AUTO}: {origin} gives shard {index + 1} of {count}, out of range "
            f"({described})"
        )
    return Shard(index + 1, count, origin)


def _slurm(environ: Mapping[str, str]) -> Shard | None:
    origin = "Slurm job array"
    names = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN")
    if not any(name in environ for name in names):
        return None
    task, count, first = (_integer(environ, name, origin) for name in names)
    step = 1
    if environ.get("SLURM_ARRAY_TASK_STEP", "").strip():
        step = _integer(environ, "SLURM_ARRAY_TASK_STEP", origin)
    described = f"SLURM_ARRAY_TASK_ID={task}, SLURM_ARRAY_TASK_MIN={first}"
    described += f", SLURM_ARRAY_TASK_COUNT={count}"
    if step < 1 or (task - first) % step:
        raise UsageError(
            f"`shard` {AUTO}: task {task} is not on the array's steps of {step} from {first} "
            f"({described}); give K/N"
        )
    last = environ.get("SLURM_ARRAY_TASK_MAX", "").strip()
    if last:
        top = _integer(environ, "SLURM_ARRAY_TASK_MAX", origin)
        if (top - first) % step or (top - first) // step + 1 != count:
            # An array of a list (0,3,7) is not shards 1..N.
            raise UsageError(
                f"`shard` {AUTO}: the Slurm array {first}-{top} (step {step}) has {count} "
                "tasks, not one per step between them; make the array a range (0-N), or "
                "give K/N"
            )
    return _checked((task - first) // step, count, origin, described)


def _kubernetes(environ: Mapping[str, str]) -> Shard | None:
    origin = "Kubernetes Indexed Job"
    if "JOB_COMPLETION_INDEX" not in environ:
        if "CONVKIT_SHARDS" in environ:
            raise UsageError(
                f"`shard` {AUTO}: CONVKIT_SHARDS is set but JOB_COMPLETION_INDEX is not "
                "(a Kubernetes Indexed Job sets it: completionMode: Indexed)"
            )
        return None
    index = _integer(environ, "JOB_COMPLETION_INDEX", origin)
    if not environ.get("CONVKIT_SHARDS", "").strip():
        raise UsageError(
            f"`shard` {AUTO}: JOB_COMPLETION_INDEX is set, but not CONVKIT_SHARDS, the "
            "number of shards (set it to the Job's completions)"
        )
    count = _integer(environ, "CONVKIT_SHARDS", origin)
    described = f"JOB_COMPLETION_INDEX={index}, CONVKIT_SHARDS={count}"
    return _checked(index, count, origin, described)


def _gitlab(environ: Mapping[str, str]) -> Shard | None:
    origin = "GitLab parallel"
    if "CI_NODE_INDEX" not in environ:
        return None  # GitLab sets CI_NODE_TOTAL=1 in every job; CI_NODE_INDEX with parallel:
    index, count = (_integer(environ, name, origin) for name in ("CI_NODE_INDEX", "CI_NODE_TOTAL"))
    described = f"CI_NODE_INDEX={index}, CI_NODE_TOTAL={count}"
    return _checked(index - 1, count, origin, described)
