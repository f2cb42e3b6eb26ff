"""Directions in parameter space: the parameter-vector type, random/PCA/interpolation directions and the
models they are taken from."""
