"""Curvature of a model's loss from Hessian-vector products: operators and spectral methods.

Below :mod:`engine.landscape` in the layers so that a surface can store curvature per grid
point and build Hessian-eigenvector directions; :mod:`engine.analysis` builds the flatness
measures on top of it.
"""
