"""Defaults shared by the core and the command line, in a module that imports nothing.

The command line declares its options from these without importing NumPy or OpenCV, so
commands that need neither (``shape-calc``, ``--help``) start fast.
"""

DEFAULT_MAX_PIXELS = 256_000_000
"""Images whose header announces more pixels than this are refused (``--max-pixels``)."""

DEFAULT_NAME_TEMPLATE = "{stem}_{what}.{ext}"
"""How results are named in ``--out-dir``: input stem, result name, format suffix."""

DEFAULT_MAX_MEMORY = 4 << 30
"""The memory one image (conv/pool/run, predict) or one training step may need, checked
from convkit's own arithmetic before a model is built or loaded (``--max-memory``)."""

# The choices of options shared by the core and the command line, declared once. The core
# validates against these (naming the parameter); the command line lists them in --help.

RANGE_MODES = ("clip", "abs", "rescale")
"""How a float response becomes pixels (see :mod:`convkit.image.pixels`)."""

BORDERS = ("reflect101", "reflect", "replicate", "constant")
"""How ``filter2D`` extends an image beyond its edges."""

INTERPOLATIONS = ("area", "linear", "cubic", "nearest", "lanczos")
"""OpenCV resize interpolations."""

POOL_MODES = ("max", "avg")
"""Keras pooling: MaxPooling2D or AveragePooling2D."""

KERAS_PADDINGS = ("valid", "same")
"""The paddings a Keras Conv2D or pooling layer takes."""

STRATEGIES = ("auto", "mirrored", "default")
"""How training spreads over the devices of one host: ``mirrored`` (tf.distribute's
MirroredStrategy over every GPU), ``default`` (one device), ``auto`` (mirrored when more
than one GPU is visible)."""

DEFAULT_MAX_FRAMES = 400
"""``convkit animate`` draws at most this many frames (the first rows of the output, then a
sample up to the last cell) unless told otherwise (``max_frames``)."""
