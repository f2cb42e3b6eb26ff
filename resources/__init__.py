"""LossLab's bundled data: experiment presets, studies and icons.

The repository keeps them in its top-level ``resources/`` folder; installed, it is the package
``losslab_resources`` (see setup.py) and the engine reads it with importlib.resources
(``engine.resources``), so a wheel or a bundle finds the same files as a source checkout.
"""
