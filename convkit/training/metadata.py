"""What a trained model needs besides its weights, kept inside its own ``model.keras``: the
class names, and how an image is prepared for it (size, gray or colour, stretched or padded,
the interpolation, how pixels are scaled). A copy of that one file alone predicts with the
right names and the right preparation.

Where it is kept: a ``.keras`` file is a zip archive of three members (``metadata.json``,
``config.json``, ``model.weights.h5``). Keras writes ``{"keras_version", "date_saved"}`` into
``metadata.json`` and never reads it back when it loads a model
(``keras/src/saving/saving_lib.py``: ``_load_model_from_fileobj`` reads ``config.json`` and
the weights only; ``KerasFileEditor`` reads it as a plain JSON object). convkit adds one key,
``"convkit"``, to that object. A fourth member would also load, but Keras then extracts the
*whole* archive into ``$TMPDIR`` as "assets" (every member past three), the weights
included, on every load; an extra key costs nothing. So the file still loads in plain Keras
without convkit: ``keras.saving.load_model(path, safe_mode=True)``.

The ``"convkit"`` object (:data:`FORMAT` 1)::

    {"format": 1,
     "class_names": ["cat", "dog"],
     "preparation": {"image_size": [H, W], "color": "gray" | "rgb", "keep_aspect": false,
                     "interpolation": "area", "pixels": "0..255" | "0..1"},
     "dataset": "pets", "convkit_version": "..."}

``pixels`` says what the model takes: ``0..255`` when it starts with a ``Rescaling`` layer
(every model convkit trains), ``0..1`` otherwise.

How an image is prepared, from the ``preparation`` (without ``pixels``):
:func:`convkit.training.preparation.prepare_pixels`, the one function that training on a
folder and ``predict`` share.

Reading it back (:func:`read_metadata`) trusts nothing: the member's size is checked before
it is read, and every field's type and range; a damaged or hostile entry is one
:class:`~convkit.errors.ModelError` line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convkit.defaults import INTERPOLATIONS
from convkit.errors import ModelError

METADATA_MEMBER = "metadata.json"
KEY = "convkit"
FORMAT = 1
MAX_METADATA_BYTES = 16 << 20
"""The largest ``metadata.json`` read (100,000 class names take about 2 MB)."""
MAX_SIDE = 65_536
COLORS = ("gray", "rgb")
PIXELS = ("0..255", "0..1")


@dataclass(frozen=True)
class Preparation:
    """How an image becomes what the model takes (see the module)."""

    height: int
    width: int
    color: str = "rgb"  # "gray" or "rgb"
    keep_aspect: bool = False
    interpolation: str = "area"
    pixels: str = "0..255"  # what the model takes: "0..255" or "0..1"

    @property
    def channels(self) -> int:
        return 1 if self.color == "gray" else 3

    @property
    def scale(self) -> float:
        """Multiply 0..255 pixels by this before feeding the model."""
        return 1.0 if self.pixels == "0..255" else 1.0 / 255

    def to_json(self) -> dict[str, Any]:
        return {
            "image_size": [self.height, self.width],
            "color": self.color,
            "keep_aspect": self.keep_aspect,
            "interpolation": self.interpolation,
            "pixels": self.pixels,
        }

    def describe(self) -> str:
        """One line for people: ``32x32 rgb, stretched, area, pixels 0..255``."""
        fit = "padded to keep the aspect" if self.keep_aspect else "stretched"
        return (
            f"{self.height}x{self.width} {self.color}, {fit}, {self.interpolation} "
            f"interpolation, pixels {self.pixels}"
        )


@dataclass(frozen=True)
class ModelMetadata:
    """What :func:`read_metadata` found in a model file."""

    class_names: list[str]
    preparation: Preparation
    dataset: str | None = None


# --------------------------------------------------------------------------- writing


def model_pixels(model) -> str:
    """``0..255`` when the model's first layer is a ``Rescaling`` (it scales its input
    itself), else ``0..1``."""
    from convkit.heavy import import_keras

    keras = import_keras()
    first = next(
        (layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)), None
    )
    return "0..255" if isinstance(first, keras.layers.Rescaling) else "0..1"


def training_metadata(data, model) -> dict[str, Any]:
    """The ``"convkit"`` object for a model trained on ``data`` (a
    :class:`~convkit.training.data.TrainingData`)."""
    from convkit import __version__

    prep = dict(getattr(data, "preparation", None) or {})
    height, width, channels = (int(d) for d in data.image_shape)
    preparation = {
        "image_size": [int(v) for v in prep.get("image_size", [height, width])],
        "color": str(prep.get("color", "gray" if channels == 1 else "rgb")),
        "keep_aspect": bool(prep.get("keep_aspect", False)),
        "interpolation": str(prep.get("interpolation", "area")),
        "pixels": model_pixels(model),
    }
    return {
        "format": FORMAT,
        "class_names": [str(n) for n in data.class_names],
        "preparation": preparation,
        "dataset": str(getattr(data, "name", "") or "") or None,
        "convkit_version": __version__,
    }


def save_model(model, path: Path, metadata: dict[str, Any] | None = None) -> None:
    """``model.save`` to ``path`` atomically, with ``metadata`` (the ``"convkit"`` object)
    in the archive's ``metadata.json`` when given."""
    from convkit.files import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=".keras") as final, warnings.catch_warnings():
        # Keras's saving trips NumPy 2's __array__(copy=...) deprecation: not ours to show.
        warnings.simplefilter("ignore", DeprecationWarning)
        if metadata is None:
            model.save(final, overwrite=True)
            return
        fd, raw = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".keras")
        os.close(fd)
        try:
            model.save(raw, overwrite=True)
            embed(Path(raw), final, metadata)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(raw)


def embed(source: Path, target: Path, metadata: dict[str, Any]) -> None:
    """Copy the ``.keras`` archive ``source`` to ``target`` with ``metadata`` under
    :data:`KEY` in its ``metadata.json`` (every other member copied as it is, in order)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for info in zin.infolist():
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.compress_type, copy.external_attr = info.compress_type, info.external_attr
            if info.filename == METADATA_MEMBER:
                try:
                    current = json.loads(zin.read(info))
                except ValueError:
                    current = {}
                if not isinstance(current, dict):
                    current = {}
                current[KEY] = metadata
                zout.writestr(copy, json.dumps(current, indent=1).encode())
                continue
            big = info.file_size >= zipfile.ZIP64_LIMIT
            with zin.open(info) as src, zout.open(copy, "w", force_zip64=big) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


# --------------------------------------------------------------------------- reading


def _damaged(path: Path, reason: str) -> ModelError:
    return ModelError(f"its convkit metadata is damaged or hostile: {reason}", path=str(path))


def read_metadata(path: str | Path) -> ModelMetadata | None:
    """The metadata convkit wrote into the ``.keras`` model at ``path``; ``None`` for a
    model without it (a plain Keras model, a legacy ``.h5`` file). A damaged or hostile
    entry is a :class:`ModelError`. The file should have passed
    :func:`convkit.training.modelfile.check_model_file`; sizes are checked again here."""
    path = Path(path)
    try:
        if not zipfile.is_zipfile(path):
            return None
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(METADATA_MEMBER)
            except KeyError:
                return None
            if info.file_size > MAX_METADATA_BYTES:
                raise _damaged(
                    path,
                    f"metadata.json takes {info.file_size:,} bytes, more than "
                    f"{MAX_METADATA_BYTES:,}",
                )
            with archive.open(info) as member:
                raw = member.read(MAX_METADATA_BYTES + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise ModelError(f"cannot read its metadata.json: {exc}", path=str(path)) from None
    if len(raw) > MAX_METADATA_BYTES:
        raise _damaged(path, f"metadata.json holds more than {MAX_METADATA_BYTES:,} bytes")
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        raise _damaged(path, "metadata.json is not JSON") from None
    if not isinstance(document, dict):
        raise _damaged(path, "metadata.json is not a JSON object")
    if KEY not in document:
        return None
    return parse_metadata(document[KEY], path)


def parse_metadata(entry: Any, path: Path) -> ModelMetadata:
    """The ``"convkit"`` object, every field checked."""
    if not isinstance(entry, dict):
        raise _damaged(path, f'"{KEY}" is not a JSON object')
    if entry.get("format") != FORMAT:
        raise _damaged(
            path, f'"format" is {_shown(entry.get("format"))}, this convkit reads {FORMAT}'
        )
    names = entry.get("class_names")
    if (
        not isinstance(names, list)
        or len(names) < 2
        or not all(isinstance(n, str) and 0 < len(n) <= 1000 for n in names)
    ):
        raise _damaged(path, '"class_names" must be a list of at least 2 non-empty names')
    if len(set(names)) < len(names):
        twice = next(n for i, n in enumerate(names) if n in names[:i])
        raise _damaged(path, f'"class_names" names {_shown(twice)} twice')
    if any(unicodedata.category(c) == "Cc" for n in names for c in n):
        raise _damaged(path, '"class_names" has a name with a control character (a newline ...)')
    prep = entry.get("preparation")
    if not isinstance(prep, dict):
        raise _damaged(path, '"preparation" is not a JSON object')
    size = prep.get("image_size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(type(v) is int and 1 <= v <= MAX_SIDE for v in size)
    ):
        raise _damaged(path, f'"image_size" must be [height, width], got {_shown(size)}')
    checks = (
        ("color", COLORS),
        ("interpolation", INTERPOLATIONS),
        ("pixels", PIXELS),
    )
    for key, allowed in checks:
        if prep.get(key) not in allowed:
            raise _damaged(
                path, f'"{key}" must be one of {", ".join(allowed)}, got {_shown(prep.get(key))}'
            )
    if not isinstance(prep.get("keep_aspect"), bool):
        raise _damaged(
            path, f'"keep_aspect" must be true or false, got {_shown(prep.get("keep_aspect"))}'
        )
    dataset = entry.get("dataset")
    return ModelMetadata(
        class_names=list(names),
        preparation=Preparation(
            height=size[0],
            width=size[1],
            color=prep["color"],
            keep_aspect=prep["keep_aspect"],
            interpolation=prep["interpolation"],
            pixels=prep["pixels"],
        ),
        dataset=dataset if isinstance(dataset, str) else None,
    )


def _shown(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
