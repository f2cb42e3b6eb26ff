"""The three side panels of the main window: Experiment, Training and Surface."""
