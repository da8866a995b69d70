"""The ``convkit`` command line: parses options, calls the core, reports.

Every command lives in a module of this package and is registered on :data:`app` below.
Errors from the core all derive from :class:`convkit.errors.ConvkitError`; :func:`main`
catches them once and prints one line, ``convkit: error: ...``, with the error's exit code.
Tracebacks appear only with ``--debug`` or ``CONVKIT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from convkit import __version__
from convkit.cli import report
from convkit.errors import ConvkitError

app = typer.Typer(
    name="convkit",
    help="Image convolution from the shell: OpenCV filters, exact CNN shape arithmetic, "
    "Keras feature maps. Every image result is written to disk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"convkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    if debug:
        os.environ["CONVKIT_DEBUG"] = "1"


def _register() -> None:
    # Command modules import only Typer and the light core; OpenCV and TensorFlow are
    # imported inside the functions that use them.
    from convkit.cli import image_commands, keras_commands, shape_calc, train_commands

    app.command("info")(image_commands.info)
    app.command("grayscale")(image_commands.grayscale)
    app.command("filter")(image_commands.filter_)
    app.command("conv")(keras_commands.conv)
    app.command("pool")(keras_commands.pool)
    app.command("run")(keras_commands.run)
    app.command("shape-calc")(shape_calc.shape_calc)
    app.command("train-cifar")(train_commands.train_cifar)
    app.command("predict")(train_commands.predict)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``convkit`` console script and ``python -m convkit``."""
    if "--debug" in (sys.argv[1:] if argv is None else argv):
        os.environ["CONVKIT_DEBUG"] = "1"  # before any library is imported or run
    try:
        with report.native_stderr_silenced():
            app(args=argv, prog_name="convkit", standalone_mode=True)
    except ConvkitError as exc:
        if report.debug_enabled():
            raise
        report.error(str(exc))
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        report.error("interrupted")
        sys.exit(130)


def _quiet_broken_pipe() -> None:
    # The reader went away (`| head`): stop quietly. Point stdout at /dev/null so the
    # interpreter's final flush does not raise a second time, and exit as a shell would
    # report a process ended by SIGPIPE.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)
