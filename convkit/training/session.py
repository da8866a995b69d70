"""``convkit train-cifar`` as one call: :func:`train_cifar`.

Everything the command does besides showing progress: the settings checked (and, when
resuming, held against the run's own), the results folder chosen and made ready before any
time is spent (refusing to overwrite an earlier run unless asked, and refusing any result
file that is the data or the spec file), the CIFAR data found and
read, the run trained (Ctrl-C stopping it after the current batch, when asked), and an
empty results folder removed again when the run never began. A Python caller gets what the
command gets: a :class:`~convkit.training.results.TrainResult`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from pathlib import Path

from convkit.defaults import DEFAULT_MAX_MEMORY
from convkit.errors import UsageError
from convkit.training import cifar
from convkit.training.config import TrainConfig, TrainSettings
from convkit.training.events import StopRequest, TrainingEvents, sigint_stops
from convkit.training.models import check_stack
from convkit.training.results import TrainResult
from convkit.training.runfolder import (
    RunState,
    default_out,
    load_run,
    prepare_out,
    resume_config,
)
from convkit.training.trainer import train


@dataclass
class RunPlan:
    """A run checked and ready to start: nothing heavy was imported to make it."""

    config: TrainConfig
    out: Path
    state: RunState | None  # the run being resumed
    data_dir: Path | None
    created: bool  # ``out`` was made for this run


def _refuse_overwriting(
    out: Path, dataset: str, data_dir: Path | None, spec_file: Path | None
) -> None:
    """No file the run writes (its results, ``run.json``, the checkpoint) may be a file it
    reads (the data, the spec file), compared by device and inode, before anything is
    written or an earlier run's results are removed. (The model a resumed run continues
    from is the run's own checkpoint, which the run replaces by design.)"""
    from convkit.image.outputs import refuse_overwriting
    from convkit.training.runfolder import RESULT_FILES

    info = cifar.dataset_info(dataset)
    reads: list[tuple[Path, str]] = []
    location = cifar.locate(info, data_dir)
    if location is not None:
        reads += [(path, f"{info.title} file") for path in cifar.data_files(location, info)]
    if spec_file is not None:
        reads.append((Path(spec_file), "spec file"))
    refuse_overwriting([Path(out) / name for name in RESULT_FILES], reads)


def plan_run(
    settings: TrainSettings,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
    data_dir: Path | None = None,
    spec_file: Path | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
) -> RunPlan:
    """Check the settings and make the results folder ready (see :func:`train_cifar`)."""
    if settings.model is not None and settings.spec is not None:
        raise UsageError("give either `model` or `spec`, not both")
    if settings.dataset is not None:
        settings = replace(settings, dataset=cifar.dataset_info(settings.dataset).key)
    if resume is not None:
        return _plan_resume(
            settings,
            resume,
            out=out,
            overwrite=overwrite,
            data_dir=data_dir,
            spec_file=spec_file,
            max_memory=max_memory,
        )
    config = TrainConfig.from_settings(settings)
    info = cifar.dataset_info(config.dataset)
    check_stack(
        config,
        info.num_classes,
        cifar.IMAGE_SHAPE,
        images=f"{info.title} images",
        max_memory=max_memory,
    )
    wanted = Path(out) if out is not None else default_out(info.key)
    _refuse_overwriting(wanted, info.key, data_dir, spec_file)
    created = not wanted.exists()
    return RunPlan(config, prepare_out(wanted, overwrite=overwrite), None, data_dir, created)


def _plan_resume(
    settings: TrainSettings,
    resume: Path,
    *,
    out: Path | None,
    overwrite: bool,
    data_dir: Path | None,
    spec_file: Path | None,
    max_memory: int,
) -> RunPlan:
    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise UsageError("`resume` DIR writes its results into DIR; leave out `out`")
    if overwrite:
        raise UsageError("`overwrite` cannot be used with `resume`")
    state = load_run(resume)
    config = resume_config(state, settings)
    info = cifar.dataset_info(config.dataset)
    images = f"{info.title} images"
    check_stack(config, info.num_classes, cifar.IMAGE_SHAPE, images=images, max_memory=max_memory)
    if data_dir is None and state.source and Path(state.source).exists():
        data_dir = Path(state.source)
    _refuse_overwriting(Path(resume), config.dataset, data_dir, spec_file)
    target = prepare_out(resume, resume=True)
    return RunPlan(config, target, state, data_dir, created=False)


def train_cifar(
    settings: TrainSettings | None = None,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
    data_dir: Path | None = None,
    spec_file: Path | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    download: bool = True,
    events: TrainingEvents | None = None,
    stop: StopRequest | None = None,
    catch_sigint: bool = False,
) -> TrainResult:
    """Train on CIFAR-10 or CIFAR-100 and write every result into a folder.

    ``settings`` left ``None`` take their defaults (:class:`TrainConfig`). The results go
    into ``out`` (default ``out/DATASET-DATE-TIME``), which must not hold an earlier run
    unless ``overwrite``. ``resume`` continues the run in that folder with its own settings,
    up to ``settings.epochs`` epochs in all. The data comes from ``data_dir`` or the places
    :func:`convkit.training.cifar.locate` knows (a Keras download when ``download``).
    ``spec_file`` is the file ``settings.spec`` was read from, if any: like the data, it is
    never overwritten by the run's results. A model whose training step would need more
    than ``max_memory`` bytes is refused before anything is built
    (:func:`convkit.training.models.check_stack`).
    With ``catch_sigint`` a first Ctrl-C sets ``stop`` (training ends after the current
    batch, and the results are still written) and a second one aborts.
    """
    events = events or TrainingEvents()
    stop = stop or StopRequest()
    plan = plan_run(
        settings or TrainSettings(),
        out=out,
        resume=resume,
        overwrite=overwrite,
        data_dir=data_dir,
        spec_file=spec_file,
        max_memory=max_memory,
    )
    try:
        data = cifar.load(
            plan.config.dataset, plan.data_dir, allow_download=download, on_note=events.note
        )
        for note in data.notes:
            events.note(note)
        events.note(
            f"{data.title} from {data.source}: {len(data.x_train):,} training and "
            f"{len(data.x_test):,} test images"
        )
        guard = (
            sigint_stops(stop, events.on_interrupt) if catch_sigint else contextlib.nullcontext()
        )
        with guard:
            return train(
                plan.config, data, plan.out, events=events, stop=stop, resume_state=plan.state
            )
    except BaseException:
        if plan.created and plan.out.is_dir() and not any(plan.out.iterdir()):
            plan.out.rmdir()  # no empty results folder is left by a run that never began
        raise
