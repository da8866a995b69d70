"""Images: the I/O contract (sources, decoding, headers, output planning), OpenCV
operations, kernels, float-to-pixel rendering, and the read-transform-write pipeline.
"""
