"""The part of a batch one run does: its shard, the inputs already done, the manifest.

Every batch pipeline plans the outputs of the *whole* input list first (so that two shards
can never write one file, and no output replaces an input), then asks :func:`batch_scope`
which of those inputs this run does, and runs only those, with the scope's options::

    targets = plan.validate(sources, whats)                  # every input
    scope = batch_scope(options, names, keys, outputs=lambda i: [...])
    sources, targets = scope.pick(sources), scope.rekey(targets)
    with scope, scope.options.executor(len(sources)) as executor:
        executor.run_tasks(task)
    return scope.finish(executor.report)

* **Shards** (``options.shard``, :mod:`convkit.engine.shards`): only the inputs whose key
  falls in this shard.
* **Skip existing** (``options.skip_existing``): an input whose outputs all exist is not
  processed again (outputs are written atomically, so an existing one is complete): it is
  left out of the run, counted in :attr:`Scope.skipped` (and in the progress, as done).
* **Stale temporary files**: before a run, the temporary files that a killed process left
  beside this run's outputs are removed (:func:`convkit.files.remove_stale_temp_files`).
* **Manifest** (``options.manifest``, :mod:`convkit.engine.manifest`): one line per input
  as it ends, the skipped ones first.

The report covers the inputs this run processes, numbered from 0 in the order of
:attr:`Scope.indices` (their positions in the caller's list); ``report.scope`` is the
:class:`Scope`. The scope's ``on_result`` event names each input by its position in the
caller's list, as without a scope.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from convkit.engine.executor import BatchOptions, BatchReport
from convkit.engine.manifest import Manifest, check_manifest
from convkit.engine.shards import Shard, parse_shard
from convkit.errors import ConvkitError, UsageError
from convkit.files import remove_stale_temp_files

T = TypeVar("T")

Outputs = Callable[[int], Sequence[Path | None]]
"""The files input ``index`` (of the caller's list) writes; ``None`` for standard output."""


@dataclass
class Scope:
    """This run's part of the caller's ``total`` inputs (see the module); a context manager
    around the run (the manifest, the skipped inputs' lines and progress)."""

    total: int
    indices: list[int]
    """The caller's positions of the inputs this run processes, in order."""
    shard: Shard | None = None
    skipped: list[int] = field(default_factory=list)
    """The caller's positions of the shard's inputs whose outputs all exist."""
    cleaned: int = 0
    """Stale temporary files removed before the run."""
    given: BatchOptions = field(default_factory=BatchOptions)
    names: Sequence[str] = ()
    outputs: Outputs | None = None
    """The files each input writes (by the caller's position), for the manifest."""
    _manifest: Manifest | None = field(default=None, init=False, repr=False)

    @property
    def options(self) -> BatchOptions:
        """The caller's options for an executor over :attr:`indices`: ``on_result`` in the
        caller's numbering, each ending written to the manifest, ``report.scope`` set
        before an interruption is reported."""
        return replace(self.given, on_result=self._on_result, on_interrupt=self._on_interrupt)

    def pick(self, items: Sequence[T]) -> list[T]:
        """This run's items of a list in the caller's order."""
        return [items[i] for i in self.indices]

    def rekey(self, mapping: dict) -> dict:
        """A ``{(index, ...): value}`` plan of the caller's list, for this run's inputs and
        keyed by their positions (the numbering of the report)."""
        position = {index: pos for pos, index in enumerate(self.indices)}
        return {
            (position[key[0]], *key[1:]): value
            for key, value in mapping.items()
            if key[0] in position
        }

    def planned(self, report: BatchReport[list[str]]) -> BatchReport[list[str]]:
        """A dry run's report of the caller's whole list, narrowed to this run."""
        results = [report.results[i] for i in self.indices]
        return BatchReport(inputs=len(results), results=results, scope=self)

    def finish(self, report: BatchReport[T]) -> BatchReport[T]:
        """``report`` (of this run's inputs) naming this scope."""
        report.scope = self
        return report

    def __enter__(self) -> Scope:
        if self.given.manifest is not None:
            shard = None if self.shard is None else str(self.shard)
            self._manifest = Manifest(self.given.manifest, shard=shard).__enter__()
        for index in self.skipped:
            if self._manifest is not None:
                self._manifest.add(self.names[index], "skipped", self._shown(index))
            if self.given.on_done is not None:
                self.given.on_done()
        return self

    def __exit__(self, *exc_info) -> None:
        manifest, self._manifest = self._manifest, None
        if manifest is not None:
            manifest.__exit__(*exc_info)

    def _on_result(self, pos: int, result: Any, error: ConvkitError | None) -> None:
        index = self.indices[pos]
        if self._manifest is not None:
            if error is not None:
                describe = self.given.error_text or (lambda exc: exc.message)
                self._manifest.add(self.names[index], "failed", [], describe(error))
            else:
                self._manifest.add(self.names[index], "ok", self._shown(index))
        if self.given.on_result is not None:
            self.given.on_result(index, result, error)

    def _shown(self, index: int) -> list[str]:
        if self.outputs is None:
            return []
        return ["-" if path is None else str(path) for path in self.outputs(index)]

    def _on_interrupt(self, report: BatchReport) -> None:
        report.scope = self
        if self.given.on_interrupt is not None:
            self.given.on_interrupt(report)


def batch_scope(
    options: BatchOptions | None,
    names: Sequence[str],
    keys: Sequence[str] | None = None,
    outputs: Outputs | None = None,
    *,
    dry_run: bool = False,
) -> Scope:
    """Which of the caller's inputs this run does (see the module).

    ``names`` are the inputs as messages and the manifest name them; ``keys`` decide their
    shard (:attr:`convkit.image.sources.Source.shard_key`; default: the names);
    ``outputs(index)`` lists the files an input writes, when the batch writes files. With
    ``dry_run`` nothing is removed and no manifest is opened.
    """
    options = options or BatchOptions()
    total = len(names)
    shard = parse_shard(options.shard)
    if shard is None:
        indices = list(range(total))
    else:
        indices = shard.select(names if keys is None else keys)
    if options.manifest is not None:
        check_manifest(options.manifest)
    if options.skip_existing and outputs is None:
        raise UsageError("`skip_existing`: this batch writes no files, so there is nothing to find")
    skipped: list[int] = []
    if options.skip_existing:
        complete = _Existing()
        skipped = [i for i in indices if complete(outputs(i))]
        done = set(skipped)
        indices = [i for i in indices if i not in done]
    cleaned = 0
    shards = [*indices, *skipped]
    mine = () if outputs is None else (p for i in shards for p in outputs(i) if p is not None)
    if not dry_run:
        cleaned = remove_stale_temp_files(mine)
    if options.manifest is not None and outputs is not None:
        _refuse_output(Path(options.manifest), outputs, total)
    return Scope(
        total, indices, shard, skipped, cleaned, replace(options, shard=shard), names, outputs
    )


class _Existing:
    """Whether every output of an input exists (written atomically: complete), from one
    listing per folder (a million outputs in one folder: one pass), then one ``stat`` of
    each file found: an empty one does not count. Standard output never exists; an input
    without outputs is never done."""

    def __init__(self) -> None:
        self._folders: dict[str, frozenset[str]] = {}

    def __call__(self, paths: Sequence[Path | None]) -> bool:
        return bool(paths) and all(path is not None and self._exists(path) for path in paths)

    def _exists(self, path: Path) -> bool:
        folder, name = os.path.split(os.fspath(path))
        files = self._folders.get(folder)
        if files is None:
            try:
                with os.scandir(folder or ".") as entries:
                    files = frozenset(e.name for e in entries if e.is_file())
            except OSError:
                files = frozenset()
            self._folders[folder] = files
        if name not in files:
            return False
        try:  # an empty file is no image: a crash after the rename, before the data reached
            return os.stat(path).st_size > 0  # the disk, or made by another tool; redo it
        except OSError:
            return False


def _refuse_output(manifest: Path, outputs: Outputs, total: int) -> None:
    target = os.path.abspath(manifest)
    for index in range(total):
        for path in outputs(index):
            if path is None or Path(path).name != manifest.name:
                continue
            if os.path.abspath(path) == target:
                raise UsageError(f"`manifest` {manifest} is also an output of this run")
