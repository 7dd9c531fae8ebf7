"""diffbypass: train PyTorch models through black boxes.

``Bypass(fn, estimator)`` returns ``fn``'s exact output in the forward pass and asks a gradient
estimator for the input gradient in the backward pass.
"""

from __future__ import annotations

from diffbypass import plugins
from diffbypass.base import BlackBoxFn, Estimator
from diffbypass.blackbox import BlackBox, BlackBoxError
from diffbypass.sampler import NoiseSampler

__all__ = [
    "BlackBox",
    "BlackBoxError",
    "BlackBoxFn",
    "Estimator",
    "NoiseSampler",
    "plugins",
]

__version__ = "0.1.0"
