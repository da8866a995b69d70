"""Training a classifier on images, and classifying with it.

``session.train_cifar`` is ``convkit train-cifar`` as one call; ``trainer.train`` trains on
any :class:`~convkit.training.data.TrainingData` (uint8 images of any size, labels, class
names). The steps: ``config`` (settings, named models), ``data`` (the data and its split),
``models`` (the classifier), ``pipeline`` (tf.data), ``loop`` (fit, stop, resume point),
``runfolder`` (the results folder and ``run.json``), ``results`` (scores and files),
``plots``; ``events`` and ``records`` are what a run reports. ``cifar`` reads CIFAR safely;
``labels`` holds class names; ``predict`` classifies images with a trained model.
"""
