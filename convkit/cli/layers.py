"""``convkit layers``: the layer-spec language's layers, their arguments and defaults.

Read from the catalogue the parser itself uses (:mod:`convkit.arithmetic.catalogue`), so
the list cannot drift from what ``shape-calc``, ``run`` and ``train-cifar`` accept.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from convkit.cli import report
from convkit.cli.options import Json

_SKIPPED = frozenset({"data_format", "name", "trainable", "dtype"})


def _default(value) -> str:
    from convkit.arithmetic.catalogue import OMIT, REQUIRED

    if value is REQUIRED:
        return "required"
    if value is OMIT:
        return "Keras's default"
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1]:
        return str(value[0])
    return str(value)


def _records(only: str | None) -> list[dict]:
    from convkit.arithmetic.catalogue import ACTIVATIONS, LAYER_KINDS, layer_kind, suggest
    from convkit.errors import UsageError

    kinds = list(LAYER_KINDS)
    if only is not None:
        kind = layer_kind(only)
        if kind is None:
            close = suggest(only, [k.snake for k in LAYER_KINDS])
            hint = f"; did you mean {close}?" if close else ""
            raise UsageError(f"no layer named {only!r} in the spec language{hint}")
        kinds = [kind]
    out = []
    for kind in kinds:
        # Keras's initializers, regularizers and constraints pass through unchecked: not
        # what a person looks up here.
        params = [p for p in kind.params if p.name not in _SKIPPED and p.kind != "any"]
        out.append(
            {
                "layer": kind.snake,
                "keras": kind.type,
                "aliases": sorted(set(kind.aliases) - {kind.snake.replace("_", "")}),
                "arguments": [
                    {
                        "name": p.name,
                        "default": _default(p.default),
                        "positional": i < kind.positional,
                    }
                    for i, p in enumerate(params)
                ],
                "example": kind.example,
            }
        )
    if only is None:
        out.append({"layer": "activations", "names": list(ACTIVATIONS)})
    return out


def layers(
    layer: Annotated[
        str | None,
        typer.Argument(
            help="Show only this layer (any spelling the spec accepts).", show_default=False
        ),
    ] = None,
    json_out: Json = False,
) -> None:
    """The layers of the layer-spec language, with their arguments in Keras's order and
    their defaults: what shape-calc, run and train-cifar accept.

    Example: convkit layers conv2d
    """
    records = _records(layer)
    if json_out:
        report.emit(json.dumps(records, indent=2))
        return
    from rich import box
    from rich.table import Table

    table = Table(
        title="Layers of the spec language (arguments in Keras's order; * = positional)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_lines=True,
    )
    table.add_column("layer", max_width=28)
    table.add_column("arguments = default")
    table.add_column("example")
    for item in records:
        if item["layer"] == "activations":
            continue
        args = ", ".join(
            f"{a['name']}{'*' if a['positional'] else ''}"
            + ("" if a["default"] == "Keras's default" else f" = {a['default']}")
            for a in item["arguments"]
        )
        names = item["layer"] + (f"\nalso {', '.join(item['aliases'])}" if item["aliases"] else "")
        table.add_row(names, args, item["example"])
    report.print_table(table)
    if layer is None:
        import textwrap

        names = ", ".join(records[-1]["names"])
        report.emit(textwrap.fill(f"Bare activation names are layers too: {names}.", 78))
