"""Mode connectivity (Garipov et al. 2018): a trained curve of low loss between two runs.

``connect(A, B, out, ConnectOptions(...))`` trains the bends, evaluates the curve and the
straight line, and stores both in one curve file (:mod:`engine.connect.store`).
"""

from engine.connect.job import connect
from engine.connect.options import ConnectOptions
from engine.connect.store import CurveRecord, load_curve

__all__ = ["ConnectOptions", "CurveRecord", "connect", "load_curve"]
