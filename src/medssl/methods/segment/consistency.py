"""The weight every semi-supervised segmentation method puts on its unsupervised term.

A ramp-up over the schedule (SSL4MIS ``ramps.py``), stated in the config, so that mean teacher,
UA-MT, MC-Net+, URPC and KP-Net ramp the same way. The consistency losses themselves are pure
tensor functions in :mod:`medssl.losses`.
"""

from __future__ import annotations

import math

from pydantic import Field

from medssl.engine.module import MethodConfig


def sigmoid_rampup(step: float, length: float) -> float:
    """Laine & Aila's ramp-up ``exp(-5 (1 - t)^2)``, t = step / length clipped to [0, 1]."""
    if length <= 0:
        return 1.0
    t = min(max(step / length, 0.0), 1.0)
    return float(math.exp(-5.0 * (1.0 - t) ** 2))


class ConsistencyConfig(MethodConfig):
    """Weight of an unsupervised term: ``consistency * sigmoid_rampup(step, rampup)``.

    The papers ramp over "epochs" of 150 iterations (UA-MT on LA: ``consistency_rampup=40``,
    ``iter // 150`` of 6000 iterations, i.e. the whole schedule; MC-Net+: 40 x 150 of 15000).
    medssl states the ramp as a share of the schedule, so shortened CPU schedules ramp
    proportionally: ``rampup_fraction * max_steps`` steps.
    """

    consistency: float = Field(0.1, ge=0)
    rampup_fraction: float = Field(1.0, ge=0, le=1)


def consistency_weight(hp: ConsistencyConfig, step: int, max_steps: int) -> float:
    return hp.consistency * sigmoid_rampup(step, hp.rampup_fraction * max_steps)
