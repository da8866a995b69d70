"""Running convkit in a real terminal (a pty) of a given width, for the table tests."""

from __future__ import annotations

import re
import subprocess
import sys


def in_terminal(args: list[str], columns: int, cwd) -> str:
    """What ``convkit ARGS`` shows in a terminal ``columns`` wide (a pty), as plain text."""
    code = (
        "import os, pty, sys; pid, fd = pty.fork()\n"
        "if pid == 0:\n"
        f"    os.environ['COLUMNS'] = '{columns}'\n"
        f"    os.execv(sys.executable, [sys.executable, '-m', 'convkit', *{args!r}])\n"
        "out = b''\n"
        "while True:\n"
        "    try:\n"
        "        chunk = os.read(fd, 65536)\n"
        "    except OSError:\n"
        "        break\n"
        "    if not chunk:\n"
        "        break\n"
        "    out += chunk\n"
        "os.waitpid(pid, 0)\n"
        "sys.stdout.buffer.write(out)\n"
    )
    raw = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, cwd=cwd)
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", raw.stdout.decode()).replace("\r", "")
