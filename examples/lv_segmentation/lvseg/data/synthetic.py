r"""Seeded phantoms that look like short-axis cardiac MRI, with exact LV masks.

Each image shows, from back to front: a body ellipse on a dark background, a few soft tissue
blobs (bright or dark), the right ventricle (RV, a bright crescent beside the LV), the dark
myocardial ring and the bright LV blood pool. The LV outline is star-shaped around its centre,
:math:`\rho < r(\theta) = r\,(1 + \sum_{k=2}^{4} a_k \cos(k\theta + \varphi_k))`, so the
star-pattern DP can represent it. The image is then blurred (partial volume), multiplied by a
smooth bias field :math:`\exp(b\,f(u, v))` (:math:`f` a random quadratic with
:math:`\max|f| = 1`) and given Rician noise (the magnitude of complex Gaussian noise, as in MR
magnitude images).

Slices are grouped into patients: a patient fixes the anatomy (position, LV size and shape, RV,
body, tissue, bias field); its slices go from base to apex, the LV and RV shrinking, with small
shifts and a fresh noise draw. Image ``i`` depends only on ``seed`` and ``i``, not on ``n``.
"""

from __future__ import annotations

import math

import numpy as np

from diffbypass.validation import int_at_least
from lvseg.data.preprocessing import SPACING_MM
from lvseg.data.types import Slice

__all__ = ["make_phantoms"]


def make_phantoms(
    n: int,
    *,
    size: int | tuple[int, int] = 128,
    seed: int = 0,
    slices_per_patient: int = 8,
    spacing: float = SPACING_MM,
    noise: float = 0.05,
    bias: float = 0.3,
) -> list[Slice]:
    r"""Generate ``n`` phantom slices with their LV masks.

    Args:
        n: number of slices, :math:`n \ge 1`.
        size: image shape ``(H, W)``, or one integer for a square; each side at least 32.
        seed: non-negative integer; the same seed gives the same images bit for bit.
        slices_per_patient: consecutive slices sharing one anatomy (``patient_id``
            ``"synth<seed>-<p>"``); splits by patient keep them together.
        spacing: pixel size in mm (square pixels); anatomy is drawn in pixels, so this only
            sets the reported spacing (default: the common spacing of :func:`preprocess`).
        noise: Rician noise level relative to the blood-pool intensity (about 1).
        bias: strength :math:`b` of the multiplicative bias field (0 disables it).

    Returns:
        ``n`` slices: ``image`` float32 :math:`(H, W)` with values roughly in ``[0, 1.3]``, ``mask``
        the LV blood pool, ``source`` ``"synthetic:seed=<seed>:index=<i>"``, ``extras``
        ``{"center": (x, y) of the LV shape, "position": 0 (base) .. 1 (apex)}``.

    Raises:
        ValueError: on an invalid argument.

    Example:
        >>> a = make_phantoms(3, size=64, seed=1)
        >>> b = make_phantoms(3, size=64, seed=1)
        >>> a[0].image.shape, bool(np.array_equal(a[2].image, b[2].image)), a[0].has_lv
        ((64, 64), True, True)
    """
    int_at_least("n", n, 1)
    shape = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 32 for s in shape):
        raise ValueError(f"size must be an integer >= 32 or (H, W) of such; got {size!r}")
    int_at_least("seed", seed, 0)
    if (
        isinstance(slices_per_patient, bool)
        or not isinstance(slices_per_patient, (int, np.integer))
        or slices_per_patient < 1
    ):
        raise ValueError(
            f"slices_per_patient must be a positive integer; got {slices_per_patient!r}"
        )
    if not _is_number(spacing) or spacing <= 0:
        raise ValueError(f"spacing must be a positive number (mm); got {spacing!r}")
    for name, value in (("noise", noise), ("bias", bias)):
        if not _is_number(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number; got {value!r}")

    height, width = int(shape[0]), int(shape[1])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    slices = []
    for p in range((n + slices_per_patient - 1) // slices_per_patient):
        anatomy = _Patient(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(p,))),
                           yy, xx, bias)
        for s in range(min(slices_per_patient, n - p * slices_per_patient)):
            i = p * slices_per_patient + s
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(p, s)))
            position = s / max(slices_per_patient - 1, 1)
            image, mask, center = anatomy.draw(rng, position, noise)
            slices.append(Slice(
                image=image,
                mask=mask,
                spacing=(float(spacing), float(spacing)),
                patient_id=f"synth{seed}-{p:04d}",
                source=f"synthetic:seed={seed}:index={i}",
                extras={"center": center, "position": position},
            ))
    return slices


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


class _Patient:
    """Anatomy shared by a patient's slices; ``draw`` renders one slice."""

    def __init__(self, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, bias: float):
        self.yy, self.xx = yy, xx
        height, width = yy.shape
        side = min(height, width)
        self.center = np.array([width / 2, height / 2]) + rng.uniform(-0.12, 0.12, 2) * side
        self.radius = rng.uniform(0.08, 0.15) * side
        self.harmonics = [
            (rng.normal(0, 0.08 / (k - 1)), rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4)
        ]
        self.wall = float(rng.uniform(0.35, 0.55) * self.radius)
        self.rv_angle = float(np.pi + rng.uniform(-0.6, 0.6))
        self.rv_size = float(rng.uniform(1.3, 1.8))
        self.blood = float(rng.uniform(0.85, 1.0))
        self.muscle = float(rng.uniform(0.15, 0.3))

        u, v = (xx - width / 2) / (width / 2), (yy - height / 2) / (height / 2)
        ax, ay = rng.uniform(0.75, 0.95), rng.uniform(0.6, 0.85)
        body = (u / ax) ** 2 + (v / ay) ** 2 < 1
        background = np.where(body, rng.uniform(0.3, 0.45), 0.02).astype(np.float32)
        for _ in range(int(rng.integers(3, 7))):
            bx, by = rng.uniform(-0.7, 0.7, 2)
            sigma = rng.uniform(0.06, 0.2)
            blob = np.exp(-((u - bx) ** 2 + (v - by) ** 2) / (2 * sigma**2))
            background += (rng.uniform(-0.3, 0.4) * blob * body).astype(np.float32)
        self.background = np.clip(background, 0.0, None)

        coeffs = rng.normal(size=5)
        field = (
            coeffs[0] * u + coeffs[1] * v + coeffs[2] * u * v + coeffs[3] * u**2 + coeffs[4] * v**2
        )
        field /= max(float(np.abs(field).max()), 1e-6)
        self.gain = np.exp(bias * field).astype(np.float32)

    def draw(
        self, rng: np.random.Generator, position: float, noise: float
    ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        from scipy import ndimage  # imported here: `lvseg --help` needs no scipy

        shrink = 1.0 - 0.55 * position
        cx, cy = (self.center + rng.normal(0, 1.0, 2) + np.array([1.5, -1.5]) * position).tolist()
        radius = float(self.radius * shrink * rng.uniform(0.95, 1.05))
        dx, dy = self.xx - cx, self.yy - cy
        rho, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
        outline = np.ones_like(rho)
        for k, (amp, phase) in zip((2, 3, 4), self.harmonics):
            outline += float(amp + rng.normal(0, 0.01)) * np.cos(k * theta + float(phase))
        lv = rho < radius * outline
        epi = rho < (radius + self.wall) * outline

        # RV: an ellipse beside the LV, minus the epicardium grown by a thin gap -> a crescent
        rv_scale = float(radius * self.rv_size * max(1.0 - 0.7 * position, 0.2))
        cos_a, sin_a = math.cos(self.rv_angle), math.sin(self.rv_angle)
        along = dx * cos_a + dy * sin_a - (radius + self.wall) * 0.9
        across = -dx * sin_a + dy * cos_a
        rv = ((along / (0.7 * rv_scale)) ** 2 + (across / (1.2 * rv_scale)) ** 2 < 1) & (
            rho > (radius + self.wall) * outline + 2.0
        )

        image = self.background.copy()
        image[rv] = self.blood * float(rng.uniform(0.85, 1.0))
        image[epi] = self.muscle
        image[lv] = self.blood
        image = ndimage.gaussian_filter(image, 0.7) * self.gain
        if noise > 0:
            real = image + noise * rng.standard_normal(image.shape, dtype=np.float32)
            imag = noise * rng.standard_normal(image.shape, dtype=np.float32)
            image = np.hypot(real, imag)
        return image.astype(np.float32), lv, (float(cx), float(cy))
