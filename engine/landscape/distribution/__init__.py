"""Spreading a surface over torchrun processes: rank shards and their live merge."""
