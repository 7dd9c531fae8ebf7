"""Prediction on new slices: read DICOM, NIfTI or ``.npy`` images and segment them.

:func:`predict_image` segments one slice given the star centre in the slice's own pixel
coordinates, with the preparation of training (:func:`lvseg.prepare.prepare_image`: resampling
to the training spacing, robust normalisation, a crop around the centre), and maps the mask back
to the slice. :func:`predict_files` does it for many files (read by :mod:`lvseg.images`) and
writes the results: it checks every input and names every output before it writes anything, so
an error leaves no partial output folder and two inputs never write to the same file.

The method needs the LV centre. For a new image, read it off a viewer (the pixel column ``x`` and
row ``y`` near the middle of the bright blood pool), or take it from another annotation of the
same patient; the contour tolerates a centre a fraction of the LV radius off (thesis fig. 5.4).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from diffbypass.validation import positive_number
from lvseg.data import SPACING_MM
from lvseg.data.types import check_pixels, check_spacing
from lvseg.images import read_image
from lvseg.prepare import PreparedImage, prepare_image
from lvseg.rundir import atomic_write_with
from lvseg.runs import LoadedRun
from lvseg.segment import Segmentation, segment

__all__ = ["output_names", "predict_files", "predict_image", "to_input_grid"]

def _check_image(image: np.ndarray, name: str) -> None:
    check_pixels(image, name)
    if float(image.max()) == float(image.min()):
        raise ValueError(
            f"{name} is constant (every pixel is {float(image.min()):g}): there is no structure "
            "to segment"
        )


def predict_image(
    run: LoadedRun,
    image: np.ndarray,
    center: tuple[float, float],
    spacing: tuple[float, float] | None = None,
    *,
    name: str = "the image",
) -> dict[str, Any]:
    """Segment one slice with the star centred at ``center`` = (x, y) in its pixel coordinates.

    Steps: :func:`~lvseg.prepare.prepare_image` (``spacing=None`` means the image already has the
    training spacing), segment, and map the result back to the input grid (the DP contour as a
    polygon, the U-Net mask by nearest neighbour).

    Returns:
        ``{"mask": bool (H, W), "contour": (N, 2) array in input pixels or None, "center",
        "method", "dp"}``.

    Raises:
        ValueError: if the centre lies outside the image, the spacing is not two numbers in
            :data:`~lvseg.data.types.SPACING_RANGE_MM`, or the image has non-finite pixels or
            is constant (``name`` names it in the message).
    """
    height, width = image.shape
    x, y = float(center[0]), float(center[1])
    if not (math.isfinite(x) and math.isfinite(y) and -0.5 <= x < width - 0.5
            and -0.5 <= y < height - 0.5):
        raise ValueError(
            f"--center ({x:g}, {y:g}) lies outside the {width}x{height} image; x must be in "
            f"[0, {width - 1}] and y in [0, {height - 1}] (pixel column, row)"
        )
    spacing = (SPACING_MM, SPACING_MM) if spacing is None else spacing
    spacing = (positive_number("spacing", spacing[0]), positive_number("spacing", spacing[1]))
    spacing = check_spacing(spacing)
    _check_image(image, name)
    prepared = prepare_image(image, (x, y), spacing)
    star_center = torch.tensor([prepared.center], dtype=torch.float32)
    seg = segment(run.config.method, run.unet, torch.from_numpy(prepared.crop)[None, None],
                  star_center, run.config.star)
    mask, contour = to_input_grid(prepared, seg, 0, (height, width))
    return {"mask": mask.astype(bool), "contour": contour, "center": (x, y),
            "method": run.config.method, "dp": seg.contours is not None}


def to_input_grid(prepared: PreparedImage, seg: Segmentation, k: int, shape: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Map item ``k`` of a crop's segmentation back to the input slice of ``shape`` (H, W).

    The DP contour is mapped exactly and filled (``star_mask``); a U-Net mask (no DP) is read at
    the nearest crop pixel of every input pixel centre (outside the crop: background).

    Returns:
        ``(mask bool (H, W), contour (N, 2) in input pixels or None)``.
    """
    from diffbypass_stardp import star_mask

    if seg.contours is not None:  # DP methods: the contour, mapped back exactly
        contour = prepared.to_input(seg.contours[k].numpy().astype(np.float64))
        centre = prepared.to_input(np.array([prepared.center], dtype=np.float64))  # same map
        return star_mask(contour[None], centre, shape)[0].numpy().astype(bool), contour
    height, width = shape
    size = prepared.crop.shape[0]
    rows, cols = prepared.crop_index(height, 0), prepared.crop_index(width, 1)
    ok_r, ok_c = (rows >= 0) & (rows < size), (cols >= 0) & (cols < size)
    crop_mask = seg.masks[k].numpy()
    mask = np.zeros((height, width), dtype=bool)
    mask[np.ix_(ok_r, ok_c)] = crop_mask[np.ix_(rows[ok_r], cols[ok_c])]
    return mask, None


def output_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """One distinct output name per input: its stem, or ``<folder>_<stem>`` where stems repeat.

    Raises:
        ValueError: if two inputs still get the same name (nothing has been written).

    Example:
        >>> output_names(["a/47.dcm", "b/47.dcm", "c/12.npy"])
        ['a_47', 'b_47', '12']
    """
    stems = [Path(p).name.split(".")[0] for p in paths]
    names = [f"{Path(p).resolve().parent.name}_{s}" if stems.count(s) > 1 else s
             for p, s in zip(paths, stems)]
    for i, name in enumerate(names):
        if name in names[:i]:
            first = paths[names.index(name)]
            raise ValueError(
                f"inputs {first} and {paths[i]} would both write {name}_mask.npy; rename one or "
                "predict them into different --out folders (nothing was written)"
            )
    return names


def predict_files(
    run: LoadedRun,
    paths: Sequence[str | os.PathLike[str]],
    center: tuple[float, float],
    out: str | os.PathLike[str],
    *,
    spacing: float | None = None,
    slice_index: int | None = None,
) -> list[tuple[Path, dict[str, Any]]]:
    """Segment every file and write ``<name>_mask.npy``, ``_mask.png`` and ``_overlay.png``.

    Every input is read, checked and segmented before the output folder is created, so an error
    leaves nothing behind. Names come from :func:`output_names`.

    Args:
        run: the loaded run.
        paths: DICOM, NIfTI or ``.npy`` slices.
        center: the star centre :math:`(x, y)` in each image's pixels.
        out: output folder.
        spacing: pixel size (mm) of images whose file has none (``.npy``; default: the training
            spacing).
        slice_index: slice of a 3-D NIfTI volume.

    Returns:
        ``[(mask .png path, result of predict_image), ...]``.
    """
    import matplotlib.pyplot as plt

    from lvseg.figures import prediction_figure

    names = output_names(paths)
    results = []
    for path in paths:
        image, own = read_image(path, slice_index=slice_index)
        if own is None and spacing is not None:
            own = (spacing, spacing)
        try:
            results.append((image, predict_image(run, image, center, own, name=f"image {path}")))
        except ValueError as error:
            text = str(error)
            raise ValueError(text if str(path) in text else f"{path}: {text}") from None
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for path, name, (image, result) in zip(paths, names, results):
        mask = result["mask"]
        # atomic: a full disk leaves no truncated file, a planted link is replaced, not followed
        atomic_write_with(folder / f"{name}_mask.npy", lambda tmp: np.save(tmp, mask))
        atomic_write_with(folder / f"{name}_mask.png", lambda tmp: plt.imsave(
            tmp, mask.astype(np.uint8) * 255, cmap="gray", vmin=0, vmax=255))
        atomic_write_with(folder / f"{name}_overlay.png", lambda tmp: prediction_figure(
            tmp, image, mask, result["center"], result["contour"],
            title=f"{run.config.method}: {Path(path).name}"))
        written.append((folder / f"{name}_mask.png", result))
    return written
