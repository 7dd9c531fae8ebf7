"""Centre jitter: the star centre drawn inside the object (thesis §5.4), for training and for the
jitter study at evaluation."""

from __future__ import annotations

import numpy as np

__all__ = ["jitter_centers", "onto_object", "training_stars"]


def onto_object(centers: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Star centres moved onto their object: a centre whose nearest pixel is off the mask goes
    to the nearest mask pixel (a star must start inside the object: ``mask_to_indices``); the
    others, and those of an empty mask, stay. Draws nothing.

    Args:
        centers: :math:`(B, 2)` centres :math:`(x, y)`.
        masks: :math:`(B, H, W)` bool.

    Returns:
        float32 :math:`(B, 2)`, a new array.

    Example:
        >>> m = np.zeros((1, 8, 8), bool); m[0, 2:4, 5:7] = True
        >>> onto_object(np.array([[1.0, 1.0]]), m).tolist()
        [[5.0, 2.0]]
    """
    out = np.array(centers, dtype=np.float32, copy=True)
    height, width = masks.shape[-2:]
    for k in range(len(out)):
        row, col = int(np.floor(out[k, 1] + 0.5)), int(np.floor(out[k, 0] + 0.5))
        if not (0 <= row < height and 0 <= col < width and masks[k, row, col]) and masks[k].any():
            rows, cols = np.nonzero(masks[k])  # a centre off the object: its nearest pixel
            near = int(np.argmin((rows - out[k, 1]) ** 2 + (cols - out[k, 0]) ** 2))
            out[k] = (cols[near], rows[near])
    return out


def jitter_centers(
    centers: np.ndarray,
    radii: np.ndarray,
    masks: np.ndarray,
    scale: float,
    rng: np.random.Generator,
    *,
    max_tries: int = 1000,
) -> np.ndarray:
    r"""Move star centres at random inside the object (thesis §5.4).

    Each centre :math:`c` becomes :math:`c + \varepsilon`, :math:`\varepsilon \sim
    \mathcal N(0, (s r)^2 I)` with :math:`r` the object radius and :math:`s` = ``scale``, drawn
    again until the nearest pixel to the new centre lies inside the mask (a 2-D normal truncated
    to the object). After ``max_tries`` failed draws, or for :math:`s r = 0`, the centre stays.
    A centre whose nearest pixel is off the object (a crescent-shaped mask) is first moved to the
    nearest object pixel (:func:`onto_object`), so that the star always lies inside the object.

    Args:
        centers: :math:`(B, 2)` centres :math:`(x, y)`.
        radii: :math:`(B,)` object radii in pixels.
        masks: :math:`(B, H, W)` bool.
        scale: standard deviation as a fraction of the object radius (training: 1).
        rng: the NumPy generator to draw from.

    Example:
        >>> m = np.zeros((1, 32, 32), bool); m[0, 8:24, 8:24] = True
        >>> c = jitter_centers(np.array([[15.5, 15.5]]), np.array([8.0]), m, 1.0,
        ...                    np.random.default_rng(0))
        >>> bool(m[0, int(c[0, 1] + 0.5), int(c[0, 0] + 0.5)])
        True
    """
    out = onto_object(centers, masks)
    height, width = masks.shape[-2:]
    for k in range(len(out)):
        sd = float(scale) * float(radii[k])
        if sd <= 0:
            continue
        for _ in range(max_tries):
            x, y = out[k] + rng.normal(0.0, sd, size=2)
            row, col = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
            if 0 <= row < height and 0 <= col < width and masks[k, row, col]:
                out[k] = (x, y)
                break
    return out


def training_stars(
    centers: np.ndarray,
    radii: np.ndarray,
    masks: np.ndarray,
    jitter: float,
    rotation: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Where a training image's star goes (thesis §5.4): its centre jittered inside the object
    (:func:`jitter_centers` with ``scale`` = ``jitter``), then its rotation drawn uniform in
    :math:`[-\text{rotation}, \text{rotation}]` radians, in that order from ``rng``. The one law
    for labelled (:mod:`lvseg.batch`) and unlabelled (:mod:`lvseg.teacher`) images.

    Returns:
        The centres :math:`(B, 2)` float32 and the angles :math:`(B,)` float64.

    Example:
        >>> m = np.ones((2, 16, 16), bool)
        >>> c, a = training_stars(np.full((2, 2), 8.0), np.full(2, 4.0), m, 1.0, 0.5,
        ...                       np.random.default_rng(0))
        >>> c.shape, a.shape, bool((abs(a) <= 0.5).all())
        ((2, 2), (2,), True)
    """
    jittered = jitter_centers(centers, radii, masks, jitter, rng)
    return jittered, rng.uniform(-rotation, rotation, size=len(jittered))
