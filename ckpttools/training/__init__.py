"""The TensorFlow-free side of training: IDX data sets, run configuration and run directories.

``ckpttools.tfcore`` builds the graphs and runs them; everything here is plain Python and numpy.
"""
