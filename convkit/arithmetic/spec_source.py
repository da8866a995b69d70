"""Where a layer spec comes from: the text itself, a file of it, or ``-`` (stdin).

One rule for every command that takes a spec (``shape-calc``, ``run``, ``train-cifar``):

* ``-`` reads the spec from standard input;
* an existing file is read (one layer per line, ``#`` comments; errors name the file);
* text that looks like a file name (a suffix or a ``/``, no parentheses) but names no file
  is an error, rather than a spec with a layer called ``net.txt``;
* anything else is the spec itself.

Trying the text as a file name never fails on text that cannot be one (too long for a file
name, a null byte): such text is the spec. A name that exists but is not a regular file (a
folder, a named pipe, a device) is refused rather than read, and a spec, wherever it comes
from, is at most :data:`~convkit.arithmetic.limits.MAX_SPEC_CHARS` long.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from convkit.arithmetic.limits import MAX_SPEC_CHARS
from convkit.arithmetic.spec import LayerSpec, parse_spec, parse_spec_file
from convkit.errors import SpecError

STDIN = "-"


@dataclass(frozen=True)
class SpecSource:
    """A parsed spec: its layers, its text on one line (for summaries), and the file it
    came from (None for inline text, ``"<stdin>"`` for stdin)."""

    layers: list[LayerSpec]
    text: str
    path: str | None = None


def _looks_like_file(value: str) -> bool:
    text = value.strip()
    if "(" in text or not text or any(ch.isspace() for ch in text):
        return False
    return "/" in text or Path(text).suffix != ""


def read_spec(value: str, *, param: str = "spec") -> SpecSource:
    """Parse ``value`` by the rule in the module docstring."""
    if value.strip() == STDIN:
        text = sys.stdin.read(MAX_SPEC_CHARS + 1)
        layers = parse_spec(text, path="<stdin>")
        return SpecSource(layers, " ".join(layer.text for layer in layers), "<stdin>")
    kind = _file_kind(value)
    if kind == "file":
        path = Path(value)
        layers = parse_spec_file(path)
        return SpecSource(layers, " ".join(layer.text for layer in layers), str(path))
    if kind is not None:
        raise SpecError(f"`{param}` {value}: {kind}, not a spec file")
    if _looks_like_file(value):
        raise SpecError(f"`{param}` {value}: no such spec file")
    return SpecSource(parse_spec(value), " ".join(value.split()))


def _file_kind(value: str) -> str | None:
    """``"file"`` when ``value`` names a regular file, what it is when it names something
    else (``"is a directory"``), None when it names nothing (or cannot be a file name)."""
    if not value or len(value) > 4096 or "\0" in value:
        return None
    try:
        mode = os.stat(value).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a named pipe"
    return "is a device or a socket"
