"""Pictures of the CNN arithmetic: ``convkit animate`` (a kernel sliding over a padded
grid, frame by frame) and ``shape-calc --diagram`` (a whole stack as boxes).

Drawn from :mod:`convkit.arithmetic`'s exact numbers, without TensorFlow or OpenCV (OpenCV
only when ``animate --image`` reads a photo).
"""
