"""Measurements of a landscape: curvature, flatness, sharpness and sub-level sets."""
