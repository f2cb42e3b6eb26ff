"""Training: optimisers, schedules, losses, the distance regulariser and the epoch loop."""

from engine.training.loop import train

__all__ = ["train"]
