"""Unpickling CIFAR's batch files, which may be hostile: the restricted unpickler and the
bounds checked before it runs.

A data file must never run code: :class:`SafeUnpickler` resolves only the globals a NumPy
array needs (``_reconstruct``, ``ndarray``, ``dtype``; ``_frombuffer`` for protocol 5),
plus two harmless helpers that Python 3 writes into protocol-2 pickles of bytes; anything
else (``os.system``, ``builtins.eval``, ``subprocess.Popen``...) is refused before it is
even looked up. ``_reconstruct`` itself is taken only as NumPy writes it (an empty array
that ``__setstate__`` then fills), so a pickle cannot make it allocate.

Nor may a small file cost much: a pickle can name one object many times (memo references),
so a 37 kB file can describe a list of lists of a billion leaves, which took 7.7 GiB and
54 s to turn into an array. Before unpickling, :func:`check_pickle` runs through the opcodes
(:func:`pickletools.genops`, nothing is built) with the unpickler's stack and memo, giving
every object the number of objects it holds *counting each reference again* and its
nesting depth; a file with more than ``max_objects`` opcodes, an object past
``max_objects``, or nesting past ``max_depth`` is refused. A real CIFAR-100 training file
(the largest) has about 200,000 opcodes and 150,000 objects, nested 5 deep.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from typing import Any

import numpy as np

from convkit.errors import DataError, ForbiddenGlobal

MAX_OBJECTS = 500_000
"""The most opcodes, and objects (each reference counted), a batch file may hold; the
largest real one has about 200,000 opcodes."""

MAX_DEPTH = 32
"""The deepest nesting of a batch file's objects (real ones: 5)."""


def _safe_latin1_encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Python 3 pickles ``bytes`` at protocol 2 as ``_codecs.encode(text, "latin1")``.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise pickle.UnpicklingError("unexpected use of _codecs.encode")
    return text.encode("latin1")


def _safe_empty_bytes(*args: Any) -> bytes:
    # ... and an empty ``bytes`` as ``bytes()``; nothing else may reach the constructor.
    if args:
        raise pickle.UnpicklingError("unexpected use of bytes()")
    return b""


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # this NumPy's multiarray._reconstruct


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    # NumPy pickles every array as ``_reconstruct(ndarray, (0,), b"b")`` and then fills it
    # with ``__setstate__`` (whose data must be in the file); any other shape would make
    # ``_reconstruct`` allocate what the file does not hold.
    if subtype is not np.ndarray or tuple(shape) != (0,) or dtype not in (b"b", "b"):
        raise pickle.UnpicklingError("unexpected use of numpy _reconstruct")
    return _RECONSTRUCT(subtype, shape, dtype)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]  # numeric._frombuffer (protocol 5)
    return {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,  # written by NumPy < 2
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,  # by NumPy >= 2
        ("numpy.core.numeric", "_frombuffer"): frombuffer,
        ("numpy._core.numeric", "_frombuffer"): frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _safe_latin1_encode,
        ("__builtin__", "bytes"): _safe_empty_bytes,
        ("builtins", "bytes"): _safe_empty_bytes,
    }


class SafeUnpickler(pickle.Unpickler):
    """Unpickles plain data and NumPy arrays only; any other global is refused.

    ``find_class`` is the only way a pickle reaches code (``GLOBAL``, ``STACK_GLOBAL``,
    ``INST``, ``OBJ`` and the extension registry all go through it), so answering it from a
    fixed table, without importing anything, keeps a malicious file from running a command.
    Persistent ids are refused by the base class.
    """

    _ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        found = self._ALLOWED.get((module, name))
        if found is None:
            raise ForbiddenGlobal(module, name)
        return found


class _Node:
    """An object on the simulated stack: how many objects it holds (references counted
    again) and how deep they nest."""

    __slots__ = ("weight", "depth")

    def __init__(self, weight: int = 1, depth: int = 1) -> None:
        self.weight = weight
        self.depth = depth


class _TooBig(Exception):
    pass


_MARK = object()
_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_IN_PLACE = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "BUILD", "ADDITEMS"})


def check_pickle(
    data: bytes, *, name: str, max_objects: int = MAX_OBJECTS, max_depth: int = MAX_DEPTH
) -> None:
    """Refuse (:class:`DataError`) a pickle that would build more than ``max_objects``
    objects (each reference counted again) or nest deeper than ``max_depth``, before any of
    it is built. Where the opcodes themselves cannot be read (a truncated or damaged file),
    everything before was checked and the unpickler stops at the same place and says why;
    a stack the unpickler would refuse is refused here."""
    try:
        _walk(data, max_objects, max_depth)
    except _TooBig as exc:
        raise DataError(
            f"refused to load: {exc} (a corrupt or malicious file; get a fresh copy of the data)",
            path=name,
        ) from None
    except _Damaged as exc:
        raise DataError(f"not a CIFAR batch: corrupt pickle ({exc})", path=name) from None


class _Damaged(Exception):
    pass


def _opcodes(data: bytes):
    """``pickletools.genops``, ending quietly where the opcodes cannot be read."""
    ops = pickletools.genops(data)
    while True:
        try:
            yield next(ops)
        except (StopIteration, ValueError):
            return


def _walk(data: bytes, max_objects: int, max_depth: int) -> None:
    stack: list = []
    memo: dict = {}

    def top() -> Any:
        if not stack or stack[-1] is _MARK:
            raise _Damaged("unpickling stack underflow")
        return stack[-1]

    for count, (opcode, arg, _) in enumerate(_opcodes(data), start=1):
        if count > max_objects:
            raise _TooBig(f"it holds more than {max_objects:,} objects")
        code = opcode.name
        if code in ("PROTO", "FRAME"):
            continue
        if code in _PUTS or code == "MEMOIZE":
            memo[arg if code in _PUTS else len(memo)] = top()
        elif code in _GETS:
            if arg not in memo:
                raise _Damaged("memo value not found")
            stack.append(memo[arg])
        elif code in ("MARK", "DUP"):
            stack.append(_MARK if code == "MARK" else top())
        elif code == "POP" and stack and stack[-1] is _MARK:
            stack.pop()  # as the unpickler does: POP right after MARK drops the mark
        else:
            _apply(code, opcode, stack, max_objects, max_depth)


def _apply(code: str, opcode, stack: list, max_objects: int, max_depth: int) -> None:
    popped = _pop(stack, opcode.stack_before)
    if code in _IN_PLACE:
        node, children = popped[-1], popped[:-1]
    elif opcode.stack_after:
        node, children = _Node(), popped
    else:
        return  # POP, POP_MARK, STOP
    for child in children:
        node.weight += child.weight
        node.depth = max(node.depth, child.depth + 1)
    if node.weight > max_objects:
        raise _TooBig(f"it holds more than {max_objects:,} objects, references counted")
    if node.depth > max_depth:
        raise _TooBig(f"its objects nest more than {max_depth} deep")
    stack.append(node)


def _pop(stack: list, before: list) -> list:
    """Pop what an opcode takes, topmost first (so the object it works on comes last)."""
    popped = []
    if pickletools.markobject in before:
        while stack and stack[-1] is not _MARK:
            popped.append(stack.pop())
        if not stack:
            raise _Damaged("could not find MARK")
        stack.pop()
        wanted = before.index(pickletools.markobject)
    else:
        wanted = len(before)
    for _ in range(wanted):
        if not stack or stack[-1] is _MARK:
            raise _Damaged("unpickling stack underflow")
        popped.append(stack.pop())
    return popped


def safe_loads(data: bytes, *, name: str) -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler` (Python 2 strings stay bytes), after
    :func:`check_pickle`."""
    check_pickle(data, name=name)
    try:
        return SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ForbiddenGlobal as exc:
        raise DataError(
            f"refused to load: the file asks to run {exc.module}.{exc.name}, which no CIFAR "
            "batch needs (a corrupt or malicious file; get a fresh copy of the data)",
            path=name,
        ) from None
    except (RecursionError, MemoryError):
        raise DataError("not a CIFAR batch: unreadable pickle", path=name) from None
    except Exception as exc:  # noqa: BLE001 - any decoding failure of untrusted bytes
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, EOFError) or "truncated" in reason or "ran out of input" in reason:
            reason = "the file is truncated"
        raise DataError(f"not a CIFAR batch: corrupt pickle ({reason})", path=name) from None
