"""Looking inside trained models: learned kernels (``convkit kernels``), Grad-CAM heat maps
(``convkit explain``) and a trained network's feature maps (``convkit run --model``).

Sits above :mod:`convkit.training` (it opens models the way ``predict`` does) and below the
command line.
"""
