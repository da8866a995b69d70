"""The ``convkit`` command line: parses options, calls the core, reports.

Every command lives in a module of this package and is registered on :data:`app` below.
Errors from the core all derive from :class:`convkit.errors.ConvkitError`; :func:`main`
catches them once and prints one line, ``convkit: error: ...``, with the error's exit code.
Tracebacks appear only with ``--debug`` or ``CONVKIT_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from convkit import __version__
from convkit.cli import report
from convkit.errors import ConvkitError, OutputClosed

COMMANDS: dict[str, tuple[str, str]] = {
    # command: (module in convkit.cli, function). Command modules import only Typer and the
    # light core; NumPy, OpenCV and TensorFlow are imported inside the functions using them.
    "info": ("image_commands", "info"),
    "grayscale": ("image_commands", "grayscale"),
    "filter": ("image_commands", "filter_"),
    "conv": ("keras_commands", "conv"),
    "pool": ("keras_commands", "pool"),
    "run": ("keras_commands", "run"),
    "shape-calc": ("shape_calc", "shape_calc"),
    "animate": ("animate", "animate"),
    "layers": ("layers", "layers"),
    "train-cifar": ("train_commands", "train_cifar"),
    "predict": ("train_commands", "predict"),
    "train": ("train_folder", "train"),
    "kernels": ("inspect_commands", "kernels"),
    "explain": ("inspect_commands", "explain"),
}

# Core parameters that a command sets through a flag of another name: {command: {parameter:
# its own parameter}}. Every other parameter maps to the flag of the same name (see
# flag_names); this is the one place where the two vocabularies meet.
# "*" holds those of every command (the output plan's `template` is each command's --name).
PARAMETER_ALIASES: dict[str, dict[str, str]] = {
    "*": {"template": "name"},
    "grayscale": {"size": "resize"},
    "run": {"outputs": "layers"},
    "train-cifar": {"learning_rate": "lr"},
    "animate": {"json": "json_"},
    "train": {"learning_rate": "lr", "color": "gray", "dataset": "data"},
}

# Options of the top-level `convkit` itself, which may stand before a command's name.
_ROOT_FLAGS = {"--debug"}


def _version(value: bool) -> None:
    if value:
        print(f"convkit {__version__}")
        raise typer.Exit()


def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show Python tracebacks for errors.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    if debug:
        os.environ["CONVKIT_DEBUG"] = "1"


def build_app(commands: list[str] | None = None) -> typer.Typer:
    """The ``convkit`` Typer app with ``commands`` (default: all of them)."""
    cli = typer.Typer(
        name="convkit",
        help="Image convolution from the shell: OpenCV filters, exact CNN shape arithmetic, "
        "Keras feature maps. Every image result is written to disk.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    cli.callback()(_root)
    for name in commands or COMMANDS:
        module, function = COMMANDS[name]
        cli.command(name)(getattr(importlib.import_module(f"convkit.cli.{module}"), function))
    return cli


_FULL_APP: typer.Typer | None = None


def __getattr__(name: str) -> typer.Typer:
    # ``convkit.cli.app``, the app with every command (what ``--help``, completion and tests
    # see), is built on first use: a run of one command builds only that one (see main).
    global _FULL_APP
    if name == "app":
        if _FULL_APP is None:
            _FULL_APP = build_app()
        return _FULL_APP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _invoked_command(args: list[str]) -> str | None:
    """The command named on the command line, if it is the first word after root flags."""
    for word in args:
        if word in _ROOT_FLAGS:
            continue
        return word if word in COMMANDS else None
    return None


def flag_names(cli: typer.Typer, command: str | None) -> dict[str, str]:
    """``{parameter: flag}`` of ``command`` as its Typer app declares it (``epochs`` ->
    ``--epochs``, ``out_dir`` -> ``--out-dir``, an argument -> its metavar)."""
    import typer.main

    group = typer.main.get_command(cli)
    found = getattr(group, "commands", {}).get(command) if command else None
    flags: dict[str, str] = {}
    for param in found.params if found is not None else []:
        if param.param_type_name == "option":
            longs = [o for o in param.opts if o.startswith("--")]
            flags[param.name] = (longs or param.opts)[0]
        else:
            flags[param.name] = param.human_readable_name
    aliases = {**PARAMETER_ALIASES["*"], **PARAMETER_ALIASES.get(command or "", {})}
    for parameter, own in aliases.items():
        if own in flags:
            flags[parameter] = flags[own]
    return flags


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP, raised in the main thread like Ctrl-C so that every
    ``finally``, every atomic write and training's own Ctrl-C handling clean up alike."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_signal_received: int | None = None


def _interrupt(signum, frame) -> None:
    global _signal_received
    _signal_received = signum
    raise Interrupted(signum)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """While inside, Ctrl-C, SIGTERM (a CI job cancelled) and SIGHUP (a terminal closed)
    end a run the same way: cleaned up, one line, exit 128 + the signal's number. The
    previous handlers come back afterwards (``main()`` may run inside a larger program)."""
    import signal
    import threading

    saved = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            previous = signal.getsignal(signum)
            if previous in (signal.SIG_DFL, signal.default_int_handler, None):
                saved[signum] = previous
                signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)


def _interrupted_exit(signum: int) -> None:
    import signal

    name = signal.Signals(signum).name
    report.error("interrupted" if name == "SIGINT" else f"terminated by {name}")
    sys.exit(128 + signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``convkit`` console script and ``python -m convkit``."""
    global _signal_received
    _signal_received = None
    try:
        with _signals_interrupt():
            _main(argv)
    except SystemExit as exc:
        _end(exc.code)
        raise
    _end(0)


def _can_exit_fast() -> bool:
    """True in a real ``convkit`` process (not a test calling main(), not a library user)
    that has loaded TensorFlow: tearing it down takes most of a second and produces
    nothing, so such a process ends at once when its work is written and flushed."""
    if report.debug_enabled() or "tensorflow" not in sys.modules:
        return False
    if sys.stdout is not sys.__stdout__:
        return False
    main_module = sys.modules.get("__main__")
    main_spec = getattr(main_module, "__spec__", None)
    from_module = main_spec is not None and main_spec.name == "convkit.__main__"
    from_script = bool(sys.argv) and os.path.basename(sys.argv[0]) == "convkit"
    return from_module or from_script


def _end(code: int | str | None) -> None:
    """Every run ends here: with TensorFlow loaded, flush and leave without its teardown."""
    if not _can_exit_fast():
        return
    for stream in (sys.stdout, sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _main(argv: list[str] | None) -> None:
    args = _without_debug(sys.argv[1:] if argv is None else [str(a) for a in argv])
    try:
        # Typer turns every registered command, with all its options, into a click command
        # on each run; building only the one invoked keeps start-up lean (shape-calc).
        from convkit.heavy import thread_count

        thread_count()  # a bad CONVKIT_THREADS is a usage error before anything runs
        command = _invoked_command(args)
        target = build_app([command]) if command else __getattr__("app")
        report.use_flags(lambda: flag_names(target, command))
        with report.native_stderr_silenced():
            # Not standalone: Typer's own usage errors come back here, to be one line.
            code = target(args=args, prog_name="convkit", standalone_mode=False)
    except SystemExit:
        if _signal_received is not None:
            _interrupted_exit(_signal_received)
        raise
    except ConvkitError as exc:
        if report.debug_enabled():
            raise
        report.error(str(exc))
        sys.exit(exc.exit_code)
    except (BrokenPipeError, OutputClosed):
        _quiet_broken_pipe()
    except (OSError, MemoryError) as exc:
        # The last wall: the core turns the file errors it expects into ConvkitErrors, and
        # one it did not expect (a path too long, a folder that cannot be entered, memory
        # that ran out) is still one line, not a traceback.
        if report.debug_enabled():
            raise
        report.error(_environment_error(exc))
        sys.exit(1)
    except KeyboardInterrupt as exc:
        _interrupted_exit(exc.signum if isinstance(exc, Interrupted) else 2)
    except Exception as exc:
        if not _is_click_error(exc):
            raise
        _click_error(exc)
    # Typer turns a KeyboardInterrupt into a silent exit code 130: say what happened.
    if _signal_received is not None:
        _interrupted_exit(_signal_received)
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)


def _without_debug(args: list[str]) -> list[str]:
    """``--debug`` works anywhere before ``--``, also after the command's name."""
    if "--debug" not in args:
        return args
    end = args.index("--") if "--" in args else len(args)
    if "--debug" in args[:end]:
        os.environ["CONVKIT_DEBUG"] = "1"  # before any library is imported or run
    return [a for i, a in enumerate(args) if a != "--debug" or i > end]


def _is_click_error(exc: Exception) -> bool:
    return type(exc).__module__.endswith("_click.exceptions") or type(exc).__name__ == "Abort"


def _click_error(exc: Exception) -> None:
    """Typer's usage errors (an unknown option, a missing or ill-typed value) as convkit's
    own: one line, exit 2. Showing help when no command is given stays as it is."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        sys.exit(exc.exit_code)
    if type(exc).__name__ == "Abort":
        report.error("aborted")
        sys.exit(1)
    if type(exc).__name__ == "NoSuchOption":
        import difflib

        close = difflib.get_close_matches(exc.option_name, exc.possibilities or [], n=1)
        hint = f" (did you mean {close[0]}?)" if close else " (see --help)"
        message = f"no such option {exc.option_name}{hint}"
    else:
        lines = [line.strip() for line in exc.format_message().splitlines() if line.strip()]
        message = " ".join(lines).rstrip(".")
        message = message[:1].lower() + message[1:]
    report.error(message)
    sys.exit(getattr(exc, "exit_code", 2))


def _environment_error(exc: OSError | MemoryError) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory"
    from convkit.files import os_error_reason

    name = exc.filename if isinstance(exc.filename, str) else None
    reason = os_error_reason(exc)
    return f"{name}: {reason}" if name else reason


def _quiet_broken_pipe() -> None:
    # The reader went away (`| head`): stop quietly. Point stdout at /dev/null so the
    # interpreter's final flush does not raise a second time, and exit as a shell would
    # report a process ended by SIGPIPE.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)
