"""The pure arithmetic of convolutional networks and the layer-spec language.

Nothing here imports NumPy, OpenCV or Keras: ``convkit shape-calc`` runs on this alone.
"""
