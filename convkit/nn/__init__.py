"""Keras models built from layer specs, and feature maps: images through a model, drawn."""
