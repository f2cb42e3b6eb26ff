"""Qt views of surfaces: 3D, heatmap, 1D curves, comparison, and their display controls."""
