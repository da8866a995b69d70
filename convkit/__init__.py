"""convkit: a command-line image-convolution toolkit.

The package is a library first: :mod:`convkit.image.codec` reads and writes images,
:mod:`convkit.image.kernels` parses and names convolution kernels, :mod:`convkit.image.ops` runs the
OpenCV operations. The command line in :mod:`convkit.cli` only parses options and calls them.
Importing convkit imports neither OpenCV nor TensorFlow.
"""

__version__ = "0.1.0"
