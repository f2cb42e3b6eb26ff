"""Which packages the wheel holds; every other setting is in pyproject.toml.

The top-level ``resources/`` folder ships as the package ``losslab_resources``, so an installed
LossLab reads its presets, studies and icons with importlib.resources. pyproject.toml's
``packages.find`` cannot install a folder under another name, hence this file.
"""

from setuptools import find_packages, setup

RESOURCE_FILES = ["presets/*.toml", "studies/*.toml", "icons/*.svg"]

setup(
    packages=[*find_packages(include=["engine*", "app*"]), "losslab_resources"],
    package_dir={"losslab_resources": "resources"},
    package_data={"losslab_resources": RESOURCE_FILES, "": ["*.toml"]},
)
