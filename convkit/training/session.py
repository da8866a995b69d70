"""``convkit train-cifar`` as one call: :func:`train_cifar`; ``convkit train DATA`` on a
folder of labelled images: :func:`train_folder` (the same steps, the data from the folder's
scan instead of CIFAR's files).

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from convkit.defaults import DEFAULT_MAX_MEMORY
from convkit.errors import UsageError
from convkit.training import cifar
from convkit.training.config import TrainConfig, TrainSettings
from convkit.training.events import StopRequest, TrainingEvents, sigint_stops
from convkit.training.folder_data import FolderReading, read_folder
from convkit.training.folders import FolderLayout, FolderScan, find_layout
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

FOLDER_DATASET = "folder"
"""``TrainConfig.dataset`` of a run on a folder of images."""


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
    if state.config.dataset == FOLDER_DATASET:
        raise UsageError(
            f"`resume` {resume} is a run on a folder of images ({state.source}): continue it "
            f"with `data` {state.source}"
        )
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

    def run() -> TrainResult:
        data = cifar.load(
            plan.config.dataset, plan.data_dir, allow_download=download, on_note=events.note
        )
        for note in data.notes:
            events.note(note)
        events.note(
            f"{data.title} from {data.source}: {len(data.x_train):,} training and "
            f"{len(data.x_test):,} test images"
        )
        with _guard(stop, events, catch_sigint):
            return train(
                plan.config, data, plan.out, events=events, stop=stop, resume_state=plan.state
            )

    return _cleaning_up(plan.out, plan.created, run)


def _guard(stop: StopRequest, events: TrainingEvents, catch_sigint: bool):
    return sigint_stops(stop, events.on_interrupt) if catch_sigint else contextlib.nullcontext()


def _cleaning_up(out: Path, created: bool, run: Callable[[], TrainResult]) -> TrainResult:
    """``run()``; a results folder made for it and left empty is removed if it fails."""
    try:
        return run()
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # no empty results folder is left by a run that never began
        raise


# --------------------------------------------------------------------------- a folder


@dataclass
class FolderPlan:
    """A run on a folder, checked and ready to start: the folder listed, nothing read."""

    config: TrainConfig  # its seed chosen
    layout: FolderLayout
    out: Path
    state: RunState | None  # the run being resumed
    created: bool


def plan_folder_run(
    data: str | Path | None,
    settings: TrainSettings,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
    spec_file: Path | None = None,
) -> FolderPlan:
    """Check the settings, list the folder and make the results folder ready (see
    :func:`train_folder`)."""
    from convkit.training.loop import choose_seed
    from convkit.training.models import config_layers

    if settings.model is not None and settings.spec is not None:
        raise UsageError("give either `model` or `spec`, not both")
    state = _folder_state(resume, out, overwrite)
    if data is None:
        if state is None or not state.source:
            raise UsageError("give the folder of images to train on as `data`")
        data = state.source
    if state is not None:
        config = resume_config(state, settings)
    else:
        config = TrainConfig.from_settings(replace(settings, dataset=FOLDER_DATASET))
        config = replace(config, seed=choose_seed(config.seed))
    layout = find_layout(data)
    if "val" in layout.parts and settings.val_split is not None:
        raise UsageError(
            "the folder has a val/ folder, used as it is: leave out `val_split`",
        )
    config_layers(config, len(layout.class_names))  # a spec that does not parse fails now
    wanted = Path(resume if resume is not None else out or default_out(layout.root.resolve().name))
    _refuse_folder_overwriting(wanted, layout.root, spec_file)
    created = not wanted.exists()
    target = prepare_out(wanted, overwrite=overwrite, resume=resume is not None)
    return FolderPlan(config, layout, target, state, created)


def run_dataset(resume: Path) -> str:
    """What the run in the folder ``resume`` trained on: ``cifar10``, ``cifar100``, or
    :data:`FOLDER_DATASET`."""
    return load_run(resume).config.dataset


def _folder_state(resume: Path | None, out: Path | None, overwrite: bool) -> RunState | None:
    """The state of the folder run being resumed, if any."""
    if resume is None:
        return None
    if out is not None and Path(out).resolve() != Path(resume).resolve():
        raise UsageError("`resume` DIR writes its results into DIR; leave out `out`")
    if overwrite:
        raise UsageError("`overwrite` cannot be used with `resume`")
    state = load_run(resume)
    if state.config.dataset != FOLDER_DATASET:
        raise UsageError(
            f"`resume` {resume} is a run on {state.dataset or state.config.dataset}, not on a "
            f"folder of images: continue it with `data` {state.config.dataset}"
        )
    return state


def _refuse_folder_overwriting(out: Path, root: Path, spec_file: Path | None) -> None:
    """The results go neither into the data folder (they would be read as images next
    time) nor over the spec file."""
    from convkit.image.outputs import refuse_overwriting
    from convkit.training.runfolder import RESULT_FILES

    resolved, data = Path(out).resolve(), Path(root).resolve()
    if resolved == data or data in resolved.parents:
        raise UsageError(
            f"`out` {out} is inside the folder of images {root}: the results would be taken "
            "for images of a class next time; choose another `out`"
        )
    reads = [(Path(spec_file), "spec file")] if spec_file is not None else []
    refuse_overwriting([Path(out) / name for name in RESULT_FILES], reads)


def train_folder(
    data: str | Path | None,
    settings: TrainSettings | None = None,
    *,
    out: Path | None = None,
    resume: Path | None = None,
    overwrite: bool = False,
    spec_file: Path | None = None,
    max_memory: int = DEFAULT_MAX_MEMORY,
    reading: FolderReading | None = None,
    events: TrainingEvents | None = None,
    stop: StopRequest | None = None,
    catch_sigint: bool = False,
    on_scan: Callable[[FolderScan], None] | None = None,
) -> TrainResult:
    """Train on a folder of labelled images and write every result into a folder.

    ``data`` is a folder of class folders, or of ``train/`` and ``test/`` (and ``val/``)
    holding them (:mod:`convkit.training.folders`); with ``resume`` it may be left out (the
    run's own folder). The folder is scanned (``on_scan`` sees the scan: the classes and
    the unreadable files), split and prepared as ``reading`` and ``settings`` say
    (:func:`convkit.training.folder_data.read_folder`), then trained as :func:`train_cifar`
    trains: the same ``out``, ``resume``, ``overwrite``, ``spec_file``, ``max_memory``,
    ``stop`` and ``catch_sigint``.
    """
    events = events or TrainingEvents()
    stop = stop or StopRequest()
    plan = plan_folder_run(
        data,
        settings or TrainSettings(),
        out=out,
        resume=resume,
        overwrite=overwrite,
        spec_file=spec_file,
    )

    def run() -> TrainResult:
        images, config = read_folder(
            plan.layout,
            plan.config,
            seed=plan.config.seed,
            reading=reading,
            events=events,
            on_scan=on_scan,
        )
        check_stack(
            config,
            images.num_classes,
            images.image_shape,
            images=f"the images of {images.title}",
            max_memory=max_memory,
        )
        with _guard(stop, events, catch_sigint):
            return train(
                config, images, plan.out, events=events, stop=stop, resume_state=plan.state
            )

    return _cleaning_up(plan.out, plan.created, run)
