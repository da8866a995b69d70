"""The pure arithmetic of convolutional networks and the layer-spec language.

Nothing here imports NumPy, OpenCV or Keras: ``convkit shape-calc`` runs on this alone.

The spec language: :mod:`~convkit.arithmetic.spec` (``parse_spec``, ``LayerSpec``), built
from the layer catalogue (:mod:`~convkit.arithmetic.catalogue`), the tokenizer and grammar
(:mod:`~convkit.arithmetic.syntax`) and the argument checks
(:mod:`~convkit.arithmetic.normalize`); where a spec comes from:
:mod:`~convkit.arithmetic.spec_source`. The arithmetic: :mod:`~convkit.arithmetic.shapes`
gathers it (one-axis formulas, layer rules, stacks, results, the flag-mode explanation,
formatting). Sizes written as text: :mod:`~convkit.arithmetic.sizes`.
"""
