"""The syntax of the spec language: locations and caret errors, tokens, the grammar.

A recursive-descent parser, never ``eval``; the grammar is in :mod:`convkit.arithmetic.spec`.
:func:`parse_calls` turns spec text into :class:`Call` objects (a layer name and its
arguments, each with where it stands in the text); :mod:`convkit.arithmetic.spec` makes
layers of them. Every error is a :class:`~convkit.errors.SpecError` that names the line and
column and echoes the spec line with a caret under the offending text.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from convkit.arithmetic.limits import MAX_INT, MAX_INT_TEXT, MAX_LAYERS, MAX_NESTING, clip_text
from convkit.errors import SpecError

__all__ = [
    "Arg",
    "Call",
    "Location",
    "Source",
    "Token",
    "Value",
    "format_caret",
    "located_error",
    "parse_calls",
    "tokenize",
]

# --------------------------------------------------------------------------- locations


class Location(NamedTuple):
    """Where something is in a spec: 1-based line and column, and its length in characters."""

    line: int
    column: int
    length: int
    line_text: str
    path: str | None = None
    multiline: bool = False


def format_caret(line_text: str, column: int, length: int = 1, *, width: int = 100) -> str:
    """Two lines: the spec line (an excerpt when long) and a caret under ``column`` (1-based)."""
    text = line_text.replace("\t", " ")
    start = 0
    if len(text) > width:
        start = max(0, min(column - 1 - width // 2, len(text) - width))
    excerpt = text[start : start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(text) else ""
    before = column - 1 - start
    marked = excerpt[before : before + max(1, length)] or " "
    caret_at = len(prefix) + len(_escaped(excerpt[:before]))
    marks = "^" * len(_escaped(marked))
    return f"  {prefix}{_escaped(excerpt)}{suffix}\n  {' ' * caret_at}{marks}"


def _escaped(text: str) -> str:
    """Control characters shown escaped (``\\x00``), as every message shows them: the
    caret must stand under the escaped text."""
    return "".join(repr(ch)[1:-1] if _is_control(ch) else ch for ch in text)


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 and ch != "\n" or 0x7F <= code <= 0x9F


class Source:
    """Spec text and where its lines start, to turn an offset into a :class:`Location`."""

    def __init__(self, text: str, path: str | None):
        self.text = text
        self.path = path
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.multiline = len([ln for ln in self.lines if ln.strip()]) > 1

    def location(self, offset: int, length: int = 1) -> Location:
        line = 0
        lo, hi = 0, len(self.starts) - 1
        while lo <= hi:  # last line start <= offset
            mid = (lo + hi) // 2
            if self.starts[mid] <= offset:
                line, lo = mid, mid + 1
            else:
                hi = mid - 1
        line_text = self.lines[line].rstrip("\r")
        column = offset - self.starts[line] + 1
        return Location(line + 1, column, length, line_text, self.path, self.multiline)

    def error(self, message: str, offset: int, length: int = 1) -> SpecError:
        return located_error(message, self.location(offset, length))


def located_error(message: str, loc: Location) -> SpecError:
    """``message`` prefixed with where (``line L, column C`` or ``column C``) and followed by
    the spec line with a caret; the error names the spec file, if any."""
    where = (
        f"line {loc.line}, column {loc.column}"
        if loc.multiline or loc.path
        else (f"column {loc.column}")
    )
    caret = format_caret(loc.line_text, loc.column, loc.length)
    return SpecError(f"{where}: {message}\n{caret}", path=loc.path)


# --------------------------------------------------------------------------- tokens


class Token(NamedTuple):
    """A token: ``kind`` is NAME, NUMBER, STRING, DIMS, one of ``( ) [ ] , =``, or EOF."""

    kind: str
    value: Any
    text: str
    offset: int

    def describe(self) -> str:
        if self.kind == "EOF":
            return "the end of the spec"
        if self.kind == "STRING":
            return f"the string {self.text}"
        return f"'{self.text}'"


_PUNCTUATION = set("()[],=")


def tokenize(text: str, *, path: str | None = None) -> list[Token]:
    """Split a spec into tokens (comments and whitespace dropped), ending with an EOF token."""
    return _tokens(Source(text, path))


def _tokens(src: Source) -> list[Token]:
    text = src.text
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n\f\v":
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif ch in _PUNCTUATION:
            tokens.append(Token(ch, ch, ch, i))
            i += 1
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (
                text[j].isalnum()
                or text[j] == "_"
                or (text[j] == "." and j + 1 < n and (text[j + 1].isalpha() or text[j + 1] == "_"))
            ):
                j += 1
            tokens.append(Token("NAME", text[i:j], text[i:j], i))
            i = j
        elif ch.isdigit() or (
            ch in "+-."
            and i + 1 < n
            and (
                text[i + 1].isdigit()
                or (text[i + 1] == "." and i + 2 < n and text[i + 2].isdigit())
            )
        ):
            i = _number(src, tokens, i)
        elif ch in "'\"":
            end = i + 1
            while end < n and text[end] != ch and text[end] != "\n":
                end += 1
            if end >= n or text[end] != ch:
                raise src.error(f"unterminated string: expected a closing {ch}", i)
            tokens.append(Token("STRING", text[i + 1 : end], text[i : end + 1], i))
            i = end + 1
        else:
            hint = ""
            if ch == ";":
                hint = " (layers are separated by spaces or newlines)"
            raise src.error(
                f"unexpected character {ch!r}: expected a layer name, a value or one of "
                f"( ) , ={hint}",
                i,
            )
    end = tokens[-1].offset + len(tokens[-1].text) if tokens else 0
    tokens.append(Token("EOF", None, "", end))
    return tokens


def _number(src: Source, tokens: list[Token], start: int) -> int:
    text, n = src.text, len(src.text)
    i = start
    if text[i] in "+-":
        i += 1
    digits_start = i
    while i < n and text[i].isdigit():
        i += 1
    is_float = False
    if i < n and text[i] == "." and not (i + 1 < n and text[i + 1] == "."):
        is_float = True
        i += 1
        while i < n and text[i].isdigit():
            i += 1
    if (
        i < n
        and text[i] in "eE"
        and i + 1 < n
        and (text[i + 1].isdigit() or (text[i + 1] in "+-" and i + 2 < n and text[i + 2].isdigit()))
    ):
        is_float = True
        i += 2
        while i < n and text[i].isdigit():
            i += 1
    literal = text[start:i]
    # 3x3, 224x224x3: a tuple of positive integers
    if (
        not is_float
        and digits_start == start
        and i + 1 < n
        and text[i] in "xX×"
        and (text[i + 1].isdigit())
    ):
        parts = [_integer(src, literal, start)]
        while i + 1 < n and text[i] in "xX×" and text[i + 1].isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            parts.append(_integer(src, text[i + 1 : j], i + 1))
            i = j
        if i < n and (text[i].isalnum() or text[i] == "_"):
            raise src.error(f"unexpected {text[i]!r} in the dimensions {text[start:i]!r}", i)
        tokens.append(Token("DIMS", tuple(parts), text[start:i], start))
        return i
    if i < n and (text[i].isalnum() or text[i] == "_" or text[i] == "."):
        raise src.error(
            f"unexpected {text[i]!r} after the number {literal}: expected a separator", i
        )
    value: Any = _float(src, literal, start) if is_float else _integer(src, literal, start)
    tokens.append(Token("NUMBER", value, literal, start))
    return i


def _integer(src: Source, literal: str, start: int) -> int:
    """An integer literal, at most :data:`MAX_INT` either way (checked on its digits
    before it becomes a number: Python refuses integers of more than 4,300 digits)."""
    digits = literal.lstrip("+-").lstrip("0") or "0"
    if len(digits) <= len(str(MAX_INT)) and int(digits) <= MAX_INT:
        return -int(digits) if literal.startswith("-") else int(digits)
    raise src.error(
        f"the number {clip_text(literal, 24)} is too large: integers in a spec are at most "
        f"{MAX_INT_TEXT} in size",
        start,
        len(literal),
    )


def _float(src: Source, literal: str, start: int) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise src.error(
            f"the number {clip_text(literal, 24)} is too large for a float", start, len(literal)
        )
    return value


# --------------------------------------------------------------------------- grammar


class Value(NamedTuple):
    """A value as written: the Python value and its span in the text."""

    value: Any
    start: int
    end: int


class Arg(NamedTuple):
    """One argument: its keyword token (None when positional) and its value."""

    key: Token | None
    value: Value


class Call(NamedTuple):
    """One layer as written: its name token and arguments."""

    name: Token
    args: tuple[Arg, ...]
    has_parens: bool
    end: int  # offset after the layer's last character
    close: int  # offset of ")" or of the name's end


class _Parser:
    def __init__(self, src: Source, tokens: list[Token]):
        self.src = src
        self.tokens = tokens
        self.i = 0
        self.depth = 0  # of the tuple being read

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str, tok: Token | None = None, hint: str = "") -> SpecError:
        tok = tok or self.tok
        return self.src.error(
            f"expected {expected}, found {tok.describe()}{hint}", tok.offset, max(1, len(tok.text))
        )

    # spec := layer* EOF
    def spec(self) -> list[Call]:
        calls = []
        while self.tok.kind != "EOF":
            if len(calls) == MAX_LAYERS:
                tok = self.tok
                raise self.src.error(
                    f"a spec has at most {MAX_LAYERS:,} layers; this is layer {MAX_LAYERS + 1:,}",
                    tok.offset,
                    max(1, len(tok.text)),
                )
            calls.append(self.layer())
        return calls

    # layer := NAME [ "(" args ")" ]
    def layer(self) -> Call:
        tok = self.tok
        if tok.kind != "NAME":
            hint = ""
            if tok.kind == ",":
                hint = " (layers are separated by spaces, not commas)"
            elif tok.kind in ("NUMBER", "DIMS", "("):
                hint = " (arguments go inside the parentheses after a layer name)"
            raise self.fail("a layer name", hint=hint)
        self.advance()
        if self.tok.kind != "(":
            end = tok.offset + len(tok.text)
            return Call(tok, (), False, end, tok.offset)
        self.advance()
        args: list[Arg] = []
        while self.tok.kind != ")":
            args.append(self.arg(tok))
            if self.tok.kind == ",":
                self.advance()
            elif self.tok.kind != ")":
                raise self.fail(f"',' or ')' to close {tok.text}(")
        close = self.advance()
        return Call(tok, tuple(args), True, close.offset + 1, close.offset)

    # arg := NAME "=" value | value
    def arg(self, layer: Token) -> Arg:
        if self.tok.kind == "NAME" and self.tokens[self.i + 1].kind == "=":
            key = self.advance()
            self.advance()
            if self.tok.kind in (")", ",", "EOF", "="):
                raise self.fail(f"a value after '{key.text}='")
            return Arg(key, self.value())
        if self.tok.kind in (",", ")", "EOF", "="):
            raise self.fail(f"an argument of {layer.text}(")
        return Arg(None, self.value())

    # value := NUMBER | STRING | WORD | DIMS | group
    def value(self) -> Value:
        tok = self.tok
        if tok.kind in ("NUMBER", "STRING", "DIMS"):
            self.advance()
            return Value(tok.value, tok.offset, tok.offset + len(tok.text))
        if tok.kind == "NAME":
            self.advance()
            word = tok.value
            lowered = word.lower()
            value: Any = {"true": True, "false": False, "none": None, "null": None}.get(
                lowered, word
            )
            return Value(value, tok.offset, tok.offset + len(tok.text))
        if tok.kind in ("(", "["):
            return self.group()
        raise self.fail("a value (a number, a word, a string or a tuple)")

    # group := "(" [ value ("," value)* [","] ] ")" | "[" ... "]"
    def group(self) -> Value:
        open_tok = self.tok
        if self.depth == MAX_NESTING:
            raise self.src.error(
                f"tuples nested more than {MAX_NESTING} deep: a layer argument is at most a "
                "pair of pairs, like ((1, 1), (2, 2))",
                open_tok.offset,
            )
        self.advance()
        close = ")" if open_tok.kind == "(" else "]"
        items: list[Any] = []
        trailing_comma = False
        while self.tok.kind != close:
            if self.tok.kind == "EOF":
                raise self.fail(
                    f"{close!r} to close the {open_tok.text!r} at column "
                    f"{self.src.location(open_tok.offset).column}"
                )
            self.depth += 1
            items.append(self.value().value)
            self.depth -= 1
            trailing_comma = False
            if self.tok.kind == ",":
                self.advance()
                trailing_comma = True
            elif self.tok.kind != close:
                raise self.fail(f"',' or {close!r} in a tuple")
        end = self.advance()
        if close == ")" and len(items) == 1 and not trailing_comma:
            value: Any = items[0]  # (3) is 3, as in Python
        else:
            value = tuple(items)
        return Value(value, open_tok.offset, end.offset + 1)


def parse_calls(src: Source) -> list[Call]:
    """The layers of a spec, as written (no layer names or arguments checked yet)."""
    return _Parser(src, _tokens(src)).spec()
