r"""Cine phantoms in the ACDC layout, with a known EDV, ESV and ejection fraction.

The LV blood pool of frame :math:`t` is a half ellipsoid, flat at the base, whose long axis runs
along the slices: with :math:`u` the distance from the base plane (mm) and :math:`\rho` the
in-plane distance from the axis,

.. math::

    \frac{\rho^2}{a_t^2} + \frac{u^2}{c_t^2} \le 1, \quad 0 \le u \le c_t, \qquad
    V_t = \tfrac{2}{3}\pi a_t^2 c_t .

:math:`a_t, c_t` move with :math:`s_t = \tfrac12 (1 - \cos \pi\phi_t)`, where :math:`\phi_t`
rises linearly from 0 at ED (frame index 0) to 1 at ES and falls back towards 0 at the end of
the cycle: from :math:`(a, c)` at ED to :math:`(k_a a, k_c c)` at ES, so
:math:`\mathrm{EF} = 100\,(1 - k_a^2 k_c)`. Slice :math:`z` samples :math:`u` at its centre;
the first slice lies above the base and the last ones beyond the apex, so the phantom has slices
without LV at both ends. A myocardial ring (label 2) and an
RV blob (label 1) surround the LV (label 3, :data:`lvseg.data.acdc.LV_LABEL`), the images get
Gaussian noise, and everything is seeded.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from diffbypass.validation import int_at_least

__all__ = ["PhantomTruth", "phantom_cine", "write_phantom_patient"]


class PhantomTruth(NamedTuple):
    """What a phantom was built with (analytic volumes: the continuous half ellipsoids)."""

    spacing: tuple[float, float, float]
    """Voxel size ``(dz, dy, dx)`` mm."""
    ed: int
    """Index of the ED frame (0)."""
    es: int
    """Index of the ES frame."""
    volumes_ml: np.ndarray
    """Analytic LV volume per frame (mL)."""
    edv_ml: float
    """Analytic EDV (mL)."""
    esv_ml: float
    """Analytic ESV (mL)."""
    ef: float
    """Analytic EF (%), :math:`100 (1 - k_a^2 k_c)`."""


def phantom_cine(*, size: int = 64, n_slices: int = 10, n_frames: int = 10,
                 spacing: tuple[float, float, float] = (10.0, 1.5625, 1.5625),
                 shrink: tuple[float, float] = (0.75, 0.9), noise: float = 0.03, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, PhantomTruth]:
    """Images and label maps :math:`(T, Z, H, W)` of a beating half-ellipsoid LV.

    Args:
        size: image side ``H = W`` (pixels), at least 32.
        n_slices: slices ``Z``, at least 4: one above the base, the LV, two beyond the apex.
        n_frames: frames ``T`` (1 gives a single 3-D frame, ED only).
        spacing: voxel size ``(dz, dy, dx)`` mm.
        shrink: ``(k_a, k_c)``, the ES semi-axes over the ED ones, each in ``(0, 1]``.
        noise: standard deviation of the Gaussian image noise (the blood pool is 1).
        seed: seed of the noise.

    Returns:
        ``(images float32, labels uint8, truth)``; labels 0 background, 1 RV, 2 myocardium,
        3 LV cavity.

    Example:
        >>> images, labels, truth = phantom_cine(size=48, n_frames=4)
        >>> images.shape, truth.es, round(truth.ef, 2)
        ((4, 10, 48, 48), 1, 49.38)
    """
    int_at_least("size", size, 32)
    int_at_least("n_slices", n_slices, 4)
    int_at_least("n_frames", n_frames, 1)
    k_a, k_c = (float(k) for k in shrink)
    if not (0 < k_a <= 1 and 0 < k_c <= 1):
        raise ValueError(f"shrink must be (k_a, k_c) in (0, 1]; got {shrink!r}")
    dz, dy, dx = (float(s) for s in spacing)
    es = max(n_frames * 2 // 5, 1) if n_frames > 1 else 0
    fov = size * min(dy, dx)
    a_ed, c_ed = 0.2 * fov, (n_slices - 3) * dz  # base at slice 1, apex two slices before the end
    rng = np.random.default_rng(seed)
    rows = (np.arange(size) - (size - 1) / 2) * dy
    cols = (np.arange(size) - (size - 1) / 2) * dx
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rho = np.hypot(rr, cc)
    images = np.zeros((n_frames, n_slices, size, size), np.float32)
    labels = np.zeros((n_frames, n_slices, size, size), np.uint8)
    volumes = np.zeros(n_frames)
    for t in range(n_frames):
        # 0 at ED, 1 at ES, back towards 0 at the end of the cycle
        phase = 0.0 if not es else t / es if t <= es else (n_frames - t) / (n_frames - es)
        s = 0.5 * (1 - math.cos(math.pi * phase))
        a = a_ed * (1 - (1 - k_a) * s)
        c = c_ed * (1 - (1 - k_c) * s)
        volumes[t] = 2 / 3 * math.pi * a * a * c / 1000.0
        for z in range(n_slices):
            u = (z - 1 + 0.5) * dz  # slice centre below the base plane
            lab = labels[t, z]
            lab[np.hypot(rr + 0.9 * a_ed + 8, cc) <= 0.45 * a_ed] = 1  # RV beside the LV
            if 0 <= u <= c:
                radius = a * math.sqrt(max(1 - (u / c) ** 2, 0.0))
                lab[(rho <= radius + 6.0) & (lab == 0)] = 2  # myocardium, about 6 mm thick
                lab[rho <= radius] = 3
        intensity = np.array([0.25, 0.8, 0.35, 1.0], np.float32)
        images[t] = intensity[labels[t]] + rng.normal(0, noise, labels[t].shape)
    edv, esv = float(volumes[0]), float(volumes[es])
    truth = PhantomTruth((dz, dy, dx), 0, es, volumes, edv, esv, 100.0 * (1 - esv / edv))
    return images, labels, truth


def write_phantom_patient(root: str | os.PathLike[str], patient_id: str = "patient901", *,
                          cine: bool = True, **options: object) -> Path:
    """Write a phantom as an ACDC patient folder ``root/patient_id`` (layout of
    :mod:`lvseg.volumes.patient`) and return the folder.

    Writes ``Info.cfg`` (``ED: 1``, ``ES``, ``NbFrame``), the ED and ES frames with their
    ``_gt`` label maps and, with ``cine``, ``patient_id_4d.nii.gz``. Intensities are stored as
    int16 (times 1000), the header's zooms are the spacing ``(dy, dx, dz)`` of the NIfTI axes.

    Args:
        root: parent folder (created).
        patient_id: folder and file-name prefix, ``patient`` and digits.
        cine: also write the 4-D cine.
        **options: passed to :func:`phantom_cine`.

    Example:
        >>> import tempfile
        >>> folder = write_phantom_patient(tempfile.mkdtemp(), size=40, n_frames=3)
        >>> sorted(p.name for p in folder.iterdir())[:3]
        ['Info.cfg', 'patient901_4d.nii.gz', 'patient901_frame01.nii.gz']
    """
    import nibabel as nib

    if not (patient_id.startswith("patient") and patient_id[7:].isdigit()):
        raise ValueError(f"patient_id must be 'patient' and digits (ACDC layout); got "
                         f"{patient_id!r}")
    images, labels, truth = phantom_cine(**options)  # type: ignore[arg-type]
    dz, dy, dx = truth.spacing
    folder = Path(root) / patient_id
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([dy, dx, dz, 1.0])

    def save(array: np.ndarray, name: str) -> None:  # (T|1, Z, H, W) -> (X, Y, Z[, T])
        data = array.transpose(2, 3, 1, 0)
        image = nib.Nifti1Image(data[..., 0] if data.shape[-1] == 1 else data, affine)
        image.header.set_zooms((dy, dx, dz) + ((1.0,) if data.shape[-1] > 1 else ()))
        nib.save(image, str(folder / name))

    stored = np.rint(images * 1000).astype(np.int16)
    for t in dict.fromkeys((truth.ed, truth.es)):
        save(stored[t : t + 1], f"{patient_id}_frame{t + 1:02d}.nii.gz")
        save(labels[t : t + 1], f"{patient_id}_frame{t + 1:02d}_gt.nii.gz")
    if cine:
        save(stored, f"{patient_id}_4d.nii.gz")
    (folder / "Info.cfg").write_text(f"ED: {truth.ed + 1}\nES: {truth.es + 1}\nGroup: NOR\n"
                                     f"Height: 170.0\nNbFrame: {images.shape[0]}\nWeight: 70.0\n")
    return folder
