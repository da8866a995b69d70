"""Defaults shared by the core and the command line, in a module that imports nothing.

The command line declares its options from these without importing NumPy or OpenCV, so
commands that need neither (``shape-calc``, ``--help``) start fast.
"""

DEFAULT_MAX_PIXELS = 256_000_000
"""Images whose header announces more pixels than this are refused (``--max-pixels``)."""

DEFAULT_NAME_TEMPLATE = "{stem}_{what}.{ext}"
"""How results are named in ``--out-dir``: input stem, result name, format suffix."""
