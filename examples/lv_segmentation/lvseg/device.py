"""Where the networks run: ``--device auto|cpu|cuda``.

The U-Net, the warp and the surrogate run on the chosen device; the star DP (numba) always runs
on the CPU, and ``StarDP`` moves its input there and its output back. Noise is drawn on the CPU
(``diffbypass``'s sampler), so a seed gives the same noise on every device. The device is a
property of a process, not of a run: it is not stored in ``config.json``, and a run trained on
one device resumes or evaluates on another.

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from diffbypass.validation import one_of

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICES", "resolve_device"]

#: Accepted ``--device`` values; ``auto`` is CUDA when it is available, else the CPU.
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "cpu") -> torch.device:
    """The :class:`torch.device` for ``name`` (one of :data:`DEVICES`, or a device).

    Raises:
        ValueError: on an unknown name, or ``cuda`` where torch sees no CUDA device.
    """
    import torch  # here: the options list DEVICES without starting torch

    if isinstance(name, torch.device):
        return name
    one_of("device", name, DEVICES)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device 'cuda' was asked for, but torch {torch.__version__} sees no CUDA device; "
            "use --device cpu, or --device auto to take CUDA only where it is present"
        )
    return torch.device(name)
