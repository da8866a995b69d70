"""Steps every image command shares: gather the inputs, plan the outputs, close a batch."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from convkit.cli import report
from convkit.errors import UsageError

if TYPE_CHECKING:
    from convkit.engine.executor import BatchOptions, BatchReport
    from convkit.image.outputs import OutputPlan
    from convkit.image.sources import Source


def collect_inputs(images: list[str] | None, recursive: bool, quiet: bool) -> list[Source]:
    """The sources named on the command line, with notes on stderr (unless ``quiet``)."""
    from convkit.image.sources import collect_sources

    if not images:
        raise UsageError("no input images given (see --help)")
    collected = collect_sources(images, recursive=recursive)
    if not quiet:
        for text in collected.notes:
            report.note(text)
    if not collected.sources:
        raise UsageError("no images found in the inputs given")
    return collected.sources


def output_plan(output, out_dir, name, fmt, in_place, quality=None) -> OutputPlan:
    """The :class:`~convkit.image.outputs.OutputPlan` for the shared output options."""
    from convkit.image.outputs import OutputPlan

    return OutputPlan(
        output=output,
        out_dir=out_dir,
        template=name,
        fmt=fmt,
        in_place=in_place,
        stdout_is_tty=sys.stdout.isatty(),
        quality=quality,
    )


def batch_options(
    flags: Mapping[str, Any],
    tick,
    on_result=None,
    *,
    verb: str = "written",
    per_image: bool = False,
) -> BatchOptions:
    """The executor's options from the batch flags every many-image command shares, read
    from ``flags`` (the command's parameters: its ``locals()``; a flag the command does not
    take keeps its default): ``-j``, ``--fail-fast``, ``--scheduler`` (or
    ``DASK_SCHEDULER_ADDRESS``) and ``--scheduler-file`` (a Dask cluster; the file wins over
    the environment variable), ``--shard``, ``--skip-existing`` and ``--manifest``
    (:mod:`convkit.engine.scope`). A progress ``tick``; failed inputs are reported on stderr
    as they happen, and an interruption closes with a line that says how far the batch got
    (in the words of :func:`finish_batch`: ``verb``, ``per_image``).
    ``on_result(index, result, error)`` streams records."""
    from convkit.engine.executor import BatchOptions, default_jobs
    from convkit.engine.shards import parse_shard

    scheduler, scheduler_file = flags.get("scheduler"), flags.get("scheduler_file")
    if scheduler_file is not None and scheduler and scheduler == _env_scheduler():
        scheduler = None  # the file given on the command line over the environment
    return BatchOptions(
        scheduler=scheduler or None,
        scheduler_file=None if scheduler_file is None else str(scheduler_file),
        jobs=flags.get("jobs") or default_jobs(),
        fail_fast=bool(flags.get("fail_fast", False)),
        on_error=report.input_error,
        on_done=tick,
        on_interrupt=lambda result: report.summary(result, verb=verb, per_image=per_image),
        on_result=on_result,
        shard=parse_shard(flags.get("shard")),
        skip_existing=bool(flags.get("skip_existing", False)),
        manifest=flags.get("manifest"),
        error_text=lambda exc: report.for_user(exc.message),
    )


def shard_sources(sources, shard: str | None) -> list:
    """The part of ``sources`` that ``--shard`` takes (all of them without it)."""
    from convkit.engine.shards import parse_shard

    chosen = parse_shard(shard)
    if chosen is None:
        return list(sources)
    return [sources[i] for i in chosen.select(s.shard_key for s in sources)]


def shard_count(sources, shard: str | None) -> int:
    """How many of ``sources`` a ``--shard`` run takes (the length of its progress bar)."""
    return len(shard_sources(sources, shard))


def covered(result: BatchReport, sources) -> list:
    """The sources a report covers, in its order: a shard's, or all of them."""
    return list(sources) if result.scope is None else result.scope.pick(sources)


def _env_scheduler() -> str | None:
    import os

    return os.environ.get("DASK_SCHEDULER_ADDRESS", "").strip() or None


def json_records(result: BatchReport, sources, record=lambda r: r) -> list[dict]:
    """The JSON contract of every batch command: one record per input, in input order —
    ``record(result)`` for those that succeeded, ``{"path", "error"}`` for the others
    (``"not processed"`` when the batch stopped early)."""
    out = []
    for index, source in enumerate(covered(result, sources)):
        value = result.results[index]
        if value is not None:
            out.append(record(value))
        elif index in result.failures:
            message = report.for_user(result.failures[index].message)
            out.append({"path": source.display, "error": message})
        else:
            out.append({"path": source.display, "error": "not processed (the batch stopped)"})
    return out


def finish_batch(
    result: BatchReport, *, quiet: bool, verb: str = "written", per_image: bool = False
) -> None:
    """The closing summary of a batch (several inputs, unless ``quiet``); exit 1 on failures."""
    scope = result.scope
    several = result.inputs + len(getattr(scope, "skipped", ())) > 1
    if (several or getattr(scope, "shard", None)) and not quiet:
        report.summary(result, verb=verb, per_image=per_image)
    if result.failed:
        raise typer.Exit(1)


def print_plan(result: BatchReport, sources, *, quiet: bool = False) -> None:
    """A dry run's plan on stdout: ``INPUT -> OUTPUT``, one line per file it would write."""
    lines = [
        f"{source.display} -> {path}"
        for source, files in zip(covered(result, sources), result.results, strict=True)
        for path in files
    ]
    if not quiet:
        report.plan_note(result)
    report.emit("\n".join(lines))


def close_batch(result: BatchReport, sources, *, dry_run: bool, quiet: bool) -> None:
    """A dry run's plan, or a real run's summary and exit code (:func:`finish_batch`)."""
    if dry_run:
        print_plan(result, sources, quiet=quiet)
    else:
        finish_batch(result, quiet=quiet)
