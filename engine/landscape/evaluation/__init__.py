"""Evaluating a model at grid points fast: flat parameter buffer, BN folding, batched points, precision."""
