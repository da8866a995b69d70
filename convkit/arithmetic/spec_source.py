"""Where a layer spec comes from: the text itself, a file of it, or ``-`` (stdin).

One rule for every command that takes a spec (``shape-calc``, ``run``, ``train-cifar``):

* ``-`` reads the spec from standard input;
* an existing file is read (one layer per line, ``#`` comments; errors name the file);
* text that looks like a file name (a suffix or a ``/``, no parentheses) but names no file
  is an error, rather than a spec with a layer called ``net.txt``;
* anything else is the spec itself.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

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
        text = sys.stdin.read()
        layers = parse_spec(text, path="<stdin>")
        return SpecSource(layers, " ".join(layer.text for layer in layers), "<stdin>")
    path = Path(value)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if is_file:
        layers = parse_spec_file(path)
        return SpecSource(layers, " ".join(layer.text for layer in layers), str(path))
    if _looks_like_file(value):
        raise SpecError(f"`{param}` {value}: no such spec file")
    return SpecSource(parse_spec(value), " ".join(value.split()))
