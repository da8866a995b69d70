"""The part of a batch one run does: its shard, the inputs already done, the manifest.

Every batch pipeline plans the outputs of the *whole* input list first (so that two shards
can never write one file, and no output replaces an input), then asks :func:`batch_scope`
which of those inputs this run does, and runs only those::

    targets = plan.validate(sources, whats)                  # every input
    scope = batch_scope(options, names, keys, outputs=lambda i: [...])
    sources, targets = scope.pick(sources), scope.rekey(targets)
    with scope.executor(name_input=...) as executor:
        executor.run_tasks(task, scope.todo, ...)

* **Shards** (``options.shard``, :mod:`convkit.engine.shards`): only the inputs whose key
  falls in this shard.
* **Skip existing** (``options.skip_existing``): an input whose outputs all exist is not
  processed again (outputs are written atomically, so an existing one is complete); it ends
  at once as a success that wrote nothing, and the report counts it in ``skipped``.
* **Stale temporary files**: before a run, the temporary files that a killed process left
  beside this run's outputs are removed (:func:`convkit.files.remove_stale_temp_files`).
* **Manifest** (``options.manifest``, :mod:`convkit.engine.manifest`): one line per input
  as it ends.

The report covers this run's inputs only, numbered from 0 in the order of
:attr:`Scope.indices` (their positions in the caller's list); ``report.scope`` is the
:class:`Scope`, and the ``on_result`` event names each input by its position in the
caller's list, as without a scope.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from convkit.engine.executor import BatchOptions, BatchReport, Executor
from convkit.engine.manifest import Manifest, check_manifest
from convkit.engine.shards import Shard, parse_shard
from convkit.errors import ConvkitError, UsageError
from convkit.files import remove_stale_temp_files

T = TypeVar("T")

Outputs = Callable[[int], Sequence[Path | None]]
"""The files input ``index`` (of the caller's list) writes; ``None`` for standard output."""


@dataclass
class Scope:
    """This run's part of the caller's ``total`` inputs (see the module)."""

    total: int
    indices: list[int]
    """The caller's positions of this run's inputs, in order."""
    shard: Shard | None = None
    skipped: frozenset[int] = frozenset()
    """Positions in :attr:`indices` of the inputs whose outputs all exist."""
    cleaned: int = 0
    """Stale temporary files removed before the run."""
    options: BatchOptions = field(default_factory=BatchOptions)
    names: Sequence[str] = ()
    outputs: dict[int, list[str]] = field(default_factory=dict)
    """The output files of each input (by position in :attr:`indices`), for the manifest."""
    _manifest: Manifest | None = field(default=None, init=False, repr=False)

    @property
    def todo(self) -> list[int]:
        """Positions (in :attr:`indices`) of the inputs to process: all but the skipped."""
        return [pos for pos in range(len(self.indices)) if pos not in self.skipped]

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
        """A dry run's report of the caller's whole list narrowed to this run: per input,
        the files it would write (none for those that would be skipped)."""
        results = [
            [] if pos in self.skipped else report.results[i] for pos, i in enumerate(self.indices)
        ]
        return BatchReport(inputs=len(results), results=results, scope=self)

    @contextmanager
    def executor(
        self, *, name_input: Callable[[int], str] | None = None, skipped_result: Any = 0
    ) -> Iterator[Executor]:
        """An :class:`Executor` over this run's inputs (opened, as ``with`` opens it): the
        skipped inputs have already ended (as ``skipped_result``, no file written), and
        every input that ends adds its line to the manifest."""
        options = replace(self.options, on_result=self._on_result)
        manifest = self.options.manifest
        opened = Manifest(manifest, shard=self.shard and str(self.shard)) if manifest else None
        with opened or nullcontext():
            self._manifest = opened
            with options.executor(len(self.indices), name_input=name_input) as executor:
                executor.report.scope = self
                for pos in sorted(self.skipped):
                    executor.succeed(pos, skipped_result, 0)
                yield executor

    def _on_result(self, pos: int, result: Any, error: ConvkitError | None) -> None:
        if self._manifest is not None:
            if error is not None:
                describe = self.options.error_text or (lambda exc: exc.message)
                status, outputs, text = "failed", [], describe(error)
            else:
                status = "skipped" if pos in self.skipped else "ok"
                outputs, text = self.outputs.get(pos, []), None
            self._manifest.add(self.names[self.indices[pos]], status, outputs, text)
        if self.options.on_result is not None:
            self.options.on_result(self.indices[pos], result, error)


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
    files: dict[int, list[Path | None]] = {}
    if outputs is not None:
        files = {pos: list(outputs(index)) for pos, index in enumerate(indices)}
    skipped: frozenset[int] = frozenset()
    if options.skip_existing:
        skipped = frozenset(
            pos for pos, paths in files.items() if paths and all(_complete(p) for p in paths)
        )
    cleaned = 0
    if not dry_run and files:
        cleaned = remove_stale_temp_files(p for paths in files.values() for p in paths if p)
    if options.manifest is not None:
        _refuse_output(Path(options.manifest), files)
    shown = {pos: ["-" if p is None else str(p) for p in paths] for pos, paths in files.items()}
    return Scope(
        total,
        indices,
        shard,
        skipped,
        cleaned,
        replace(options, shard=shard),
        names,
        shown,
    )


def _complete(path: Path | None) -> bool:
    """An output that exists (written atomically: complete); standard output never does."""
    return path is not None and os.path.isfile(path)


def _refuse_output(manifest: Path, files: dict[int, list[Path | None]]) -> None:
    target = os.path.abspath(manifest)
    for paths in files.values():
        for path in paths:
            if path is not None and os.path.abspath(path) == target:
                raise UsageError(f"`manifest` {manifest} is also an output of this run")
