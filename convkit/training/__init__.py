"""Training: CIFAR data, the tf.data pipeline and loop, results, plots, and prediction."""
