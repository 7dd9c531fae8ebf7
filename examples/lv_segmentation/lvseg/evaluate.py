"""Evaluation of a run (Dice, HD, HD95, ASSD inside the star's square); prediction on new images.

:func:`evaluate_run` follows the thesis protocol (§5.3): the star is centred at the LV's centre
of mass (optionally jittered inside the object, ``center_jitter`` times the object radius, to
test robustness as in thesis fig. 5.4) and every metric is computed inside the square that
tightly holds the star, for every method alike.

:func:`predict_image` segments one DICOM, NIfTI or ``.npy`` slice given the star centre in the
slice's own pixel coordinates, with the same preprocessing as training (resampling to the run's
spacing, robust normalisation, a crop around the centre), and maps the mask back to the slice.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lvseg.checkpoint import CheckpointError, load_checkpoint, read_config
from lvseg.data import resample
from lvseg.metrics import evaluate_batch, summarize
from lvseg.pipeline import DP_METHODS, Segmentation, jitter_centers, segment
from lvseg.train import CROP_SIZE, SPACING_MM, TrainConfig, build_model, prepare_data, unet_of

__all__ = ["LoadedRun", "evaluate_run", "load_run", "predict_image", "read_image"]


@dataclasses.dataclass
class LoadedRun:
    """A trained run: its config, the model (eval mode) and which checkpoint was loaded."""

    config: TrainConfig
    model: nn.Module
    checkpoint: str
    iteration: int

    @property
    def unet(self) -> nn.Module:
        """The run's U-Net (all methods predict from it)."""
        return unet_of(self.model)


def load_run(run_dir: str | os.PathLike[str], checkpoint: str = "best") -> LoadedRun:
    """Load ``run_dir/<checkpoint>.pt`` (``best``, falling back to ``last``) into its model.

    Raises:
        RunDirError: if ``run_dir`` is not a run directory.
        CheckpointError: if the checkpoint is missing, corrupt, or does not fit the config.
    """
    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(read_config(run_dir))
    path = run_dir / f"{checkpoint}.pt"
    if checkpoint == "best" and not path.exists():
        path = run_dir / "last.pt"
    if not path.exists():
        raise CheckpointError(
            f"{run_dir} has no checkpoint yet ({checkpoint}.pt missing); train it first"
        )
    state = load_checkpoint(path)
    model = build_model(config)
    try:
        model.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as error:
        raise CheckpointError(f"{path} does not fit {run_dir}/config.json ({error})") from None
    model.eval()
    return LoadedRun(config, model, path.name, int(state.get("iteration", 0)))


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    data: str | None = None,
    data_dir: str | None = None,
    split: str = "test",
    center_jitter: float = 0.0,
    seed: int = 0,
    figures_dir: str | os.PathLike[str] | None = None,
    max_figures: int | None = 12,
    method: str | None = None,
) -> dict[str, Any]:
    """Evaluate a run's best checkpoint; returns the summary with one row per image.

    Args:
        run_dir: the run directory.
        data: dataset name (default: the run's); another dataset is split with the run's seeds.
        data_dir: its folder (default: the run's when ``data`` is the run's dataset).
        split: ``"val"``, ``"test"`` or ``"all"`` (every usable slice, training ones included).
        center_jitter: s.d. of the star-centre jitter as a fraction of the object radius
            (0: the centre of mass), truncated to the object.
        seed: seed of the jitter.
        figures_dir: write an overlay PNG per image there (at most ``max_figures``).
        method: evaluate a ``unet`` run as ``unet-dp`` (or back): the pixel-trained methods share
            their training, only the prediction differs.

    Returns:
        ``{"method", "checkpoint", "iteration", "data", "split", "center_jitter", "n",
        "dice", "dice_std", "hd_mm", "hd_std", "hd95_mm", "hd95_std", "assd_mm", "assd_std",
        "n_undefined", "per_image": [{"index", "source", "patient_id", "center", "dice", "hd_mm",
        "hd95_mm", "assd_mm"}, ...]}`` (undefined distances are ``None``).
    """
    if not (isinstance(center_jitter, (int, float)) and math.isfinite(center_jitter)
            and center_jitter >= 0):
        raise ValueError(f"center_jitter must be a non-negative number; got {center_jitter!r}")
    run = load_run(run_dir)
    config = run.config
    if method is not None and method != config.method:
        pixel = ("unet", "unet-dp")
        if not (method in pixel and config.method in pixel):
            raise ValueError(
                f"method can only switch between unet and unet-dp (same training); the run "
                f"was trained with {config.method!r}, got {method!r}"
            )
        config = dataclasses.replace(config, method=method)
    if data is not None and data != config.data:
        config = dataclasses.replace(config, data=data, data_dir=data_dir, train_size=None)
    elif data_dir is not None:
        config = dataclasses.replace(config, data_dir=data_dir)
    if split in ("val", "test", "all"):
        # the evaluation splits do not depend on the telescopic training subset
        config = dataclasses.replace(config, train_size=None)
    else:
        raise ValueError(f"split must be val, test or all; got {split!r}")
    prepared = prepare_data(config)
    idx = prepared.indices(split)
    if len(idx) == 0:
        raise ValueError(f"the {split} split of {config.data} is empty; use --split all")
    sub = prepared.data.subset(idx)
    tensors = sub.to_tensors()
    centers = jitter_centers(sub.centers, sub.radii, sub.masks, center_jitter,
                             np.random.default_rng(seed))
    centers_t = torch.from_numpy(centers)
    seg = segment(config.method, run.unet, tensors["images"], centers_t, config.star)
    rows = evaluate_batch(seg.masks, tensors["masks"], sub.spacing, centers, config.star.radius)
    summary = summarize(rows)
    per_image = [
        {"index": int(i), "source": sub.sources[k], "patient_id": sub.patient_ids[k],
         "center": [float(centers[k, 0]), float(centers[k, 1])], "dice": row["dice"],
         "hd_mm": _finite(row["hd"]), "hd95_mm": _finite(row["hd95"]),
         "assd_mm": _finite(row["assd"])}
        for k, (i, row) in enumerate(zip(idx, rows))
    ]  # fmt: skip
    if figures_dir is not None:
        _write_figures(Path(figures_dir), config, sub, seg, per_image, max_figures, centers)
    return {
        "method": config.method, "run": str(run_dir), "checkpoint": run.checkpoint,
        "iteration": run.iteration, "data": config.data, "split": split,
        "center_jitter": float(center_jitter), "n": summary["n"],
        "dice": summary["dice_mean"], "dice_std": summary["dice_std"],
        "hd_mm": summary["hd_mean"], "hd_std": summary["hd_std"],
        "hd95_mm": summary["hd95_mean"], "hd95_std": summary["hd95_std"],
        "assd_mm": summary["assd_mean"], "assd_std": summary["assd_std"],
        "n_undefined": summary["n_undefined"], "per_image": per_image,
    }  # fmt: skip


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _write_figures(
    folder: Path, config: TrainConfig, sub: Any, seg: Segmentation, rows: list[dict[str, Any]],
    max_figures: int | None, centers: np.ndarray,
) -> None:
    from lvseg.figures import pipeline_figure

    folder.mkdir(parents=True, exist_ok=True)
    count = len(rows) if max_figures is None else min(max_figures, len(rows))
    for k in range(count):
        row = rows[k]
        name = Path(row["source"].split("#")[0]).stem.replace(":", "_").replace("=", "")
        hd = "n/a" if row["hd_mm"] is None else f"{row['hd_mm']:.1f} mm"
        title = f"{config.method} | {row['patient_id']} {name} | Dice {row['dice']:.3f}, HD {hd}"
        pipeline_figure(
            folder / f"{k:03d}_{row['patient_id']}_{name}.png", image=sub.images[k, 0],
            true_mask=sub.masks[k], seg=seg, k=k, star=config.star, center=centers[k],
            title=title,
        )  # fmt: skip


# --------------------------------------------------------------------------- predict
def read_image(
    path: str | os.PathLike[str], *, slice_index: int | None = None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Read one 2-D slice: DICOM (``.dcm`` or any file pydicom reads), NIfTI, or ``.npy``.

    Returns:
        ``(image float32 (H, W), spacing (row_mm, col_mm) or None)`` — ``.npy`` has no spacing.
        NIfTI slices are ``volume[:, :, z]`` (row = voxel axis 0), as the ACDC loader reads them.

    Raises:
        FileNotFoundError, ValueError: naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {path} does not exist")
    name = path.name.lower()
    if name.endswith(".npy"):
        image = np.load(path, allow_pickle=False)
        spacing = None
    elif name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        volume = nib.load(str(path))
        data = np.asarray(volume.dataobj, dtype=np.float32)
        zooms = volume.header.get_zooms()
        if data.ndim == 3:
            if slice_index is None and data.shape[2] != 1:
                raise ValueError(
                    f"{path} is a volume with {data.shape[2]} slices; pick one with --slice Z"
                )
            z = 0 if slice_index is None else slice_index
            if not 0 <= z < data.shape[2]:
                raise ValueError(f"--slice must be in [0, {data.shape[2] - 1}]; got {z}")
            data = data[:, :, z]
        image, spacing = data, (float(zooms[0]), float(zooms[1]))
    else:
        import pydicom

        try:
            ds = pydicom.dcmread(path)
            image = ds.pixel_array.astype(np.float32)
        except Exception as error:
            raise ValueError(
                f"{path} is not a readable DICOM, NIfTI (.nii, .nii.gz) or .npy image ({error})"
            ) from None
        spacing = (float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])) if "PixelSpacing" in ds else None
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"{path} must hold a 2-D slice; got shape {image.shape}")
    return image, spacing


def predict_image(
    run: LoadedRun,
    image: np.ndarray,
    center: tuple[float, float],
    spacing: tuple[float, float] | None = None,
    *,
    size: int = CROP_SIZE,
) -> dict[str, Any]:
    """Segment one slice with the star centred at ``center`` = (x, y) in its pixel coordinates.

    Steps: resample to the training spacing (1.37 mm; ``spacing=None`` means the image already
    has it), clip to the 1st/99th percentile and standardise, crop ``size`` x ``size`` around the
    centre, segment, and map the result back to the input grid (the DP contour as a polygon,
    the U-Net mask by nearest neighbour).

    Returns:
        ``{"mask": bool (H, W), "contour": (N, 2) array in input pixels or None, "center"}``.

    Raises:
        ValueError: if the centre lies outside the image.
    """
    from diffbypass_stardp import polygon_mask

    height, width = image.shape
    x, y = float(center[0]), float(center[1])
    if not (math.isfinite(x) and math.isfinite(y) and -0.5 <= x < width - 0.5
            and -0.5 <= y < height - 0.5):
        raise ValueError(
            f"--center ({x:g}, {y:g}) lies outside the {width}x{height} image; x must be in "
            f"[0, {width - 1}] and y in [0, {height - 1}] (pixel column, row)"
        )
    target = SPACING_MM
    spacing = (target, target) if spacing is None else spacing
    resampled, _ = resample(image, np.zeros(image.shape, bool), spacing, target)
    lo, hi = np.percentile(resampled, (1.0, 99.0))
    norm = np.clip(resampled, lo, hi)
    norm = (norm - norm.mean()) / (float(norm.std()) or 1.0)
    fr, fc = spacing[0] / target, spacing[1] / target
    cx, cy = (x + 0.5) * fc - 0.5, (y + 0.5) * fr - 0.5  # centre in the resampled grid
    top, left = int(math.floor(cy + 0.5)) - size // 2, int(math.floor(cx + 0.5)) - size // 2
    crop = np.full((size, size), float(norm.min()), dtype=np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size, norm.shape[0]), min(left + size, norm.shape[1])
    crop[r0 - top : r1 - top, c0 - left : c1 - left] = norm[r0:r1, c0:c1]
    star_center = torch.tensor([[cx - left, cy - top]], dtype=torch.float32)
    seg = segment(run.config.method, run.unet, torch.from_numpy(crop)[None, None], star_center,
                  run.config.star)
    if seg.contours is not None:  # DP methods: the contour, mapped back exactly
        contour = seg.contours[0].numpy().astype(np.float64)
        contour = np.stack([(contour[:, 0] + left + 0.5) / fc - 0.5,
                            (contour[:, 1] + top + 0.5) / fr - 0.5], axis=1)
        mask = polygon_mask(torch.from_numpy(contour).float()[None], (height, width))[0].numpy()
    else:  # nearest crop pixel of every input pixel centre
        contour = None
        rows = np.floor((np.arange(height) + 0.5) * fr - 0.5 - top + 0.5).astype(int)
        cols = np.floor((np.arange(width) + 0.5) * fc - 0.5 - left + 0.5).astype(int)
        ok_r, ok_c = (rows >= 0) & (rows < size), (cols >= 0) & (cols < size)
        crop_mask = seg.masks[0].numpy()
        mask = np.zeros((height, width), dtype=bool)
        mask[np.ix_(ok_r, ok_c)] = crop_mask[np.ix_(rows[ok_r], cols[ok_c])]
    return {"mask": mask.astype(bool), "contour": contour, "center": (x, y),
            "method": run.config.method, "dp": run.config.method in DP_METHODS}
