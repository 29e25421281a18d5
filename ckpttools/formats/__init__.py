"""Decoders for TensorFlow's on-disk formats, in plain Python + numpy.

Nothing in this package imports TensorFlow: every format is decoded from its
bytes, following TensorFlow's own sources (cited in each module).
"""
