"""Keras models built from layer specs, and feature maps: images through a model, drawn.

Modules, from the commands down:

* :mod:`~convkit.nn.builders`: the networks of ``conv``, ``pool`` and ``run``
  (:func:`conv_network`, :func:`pool_network`, :func:`spec_network`);
* :mod:`~convkit.nn.pipeline`: :func:`extract_feature_maps`, many images through a
  network on the one executor, every output written;
* :mod:`~convkit.nn.network`: a spec checked and described for feature maps;
  :mod:`~convkit.nn.weights`: given filters for its first ``Conv2D`` layer;
* :mod:`~convkit.nn.extractor`: the Keras models, one per image size;
* :mod:`~convkit.nn.inputs`: what the model sees of an image (:func:`model_input`);
* :mod:`~convkit.nn.render`, :mod:`~convkit.nn.montage`: maps as pictures and montages;
  :mod:`~convkit.nn.writer`: where they go, and writing them;
* :mod:`~convkit.nn.models`: Keras models from the layer spec (also used by training);
  :mod:`~convkit.nn.text`: shapes and layers as text.
"""
