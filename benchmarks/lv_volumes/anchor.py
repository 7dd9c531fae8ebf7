"""Finding the LV with a locator trained on 10 images: the candidates' centre accuracy.

For the ED and ES slices of the 20 thesis-validation patients (one stack per patient, ED then
ES, as ``lvseg.centre_free.RunSegmenter`` hands them to ``lvseg.locate``), each slice is
resampled to the training spacing and normalised (as ``lvseg.locate``), and the LV centre is
chosen by:

- ``largest``: the largest foreground blob of the locator's whole-slice map;
- ``stack``: ``lvseg.locate``'s rule (the largest blob, or the largest within
  ``MAX_JUMP_MM`` of the stack's median LV centre);
- ``mode``: the blob whose ``MAX_JUMP_MM`` neighbourhood holds an LV-sized blob on the most
  slices (the stack's mode instead of its median), then the largest blob near it;
- ``oracle``: the LV-sized blob nearest the true centre (what no selection rule can beat);
- ``motion`` (label-free anchor): the peak of the smoothed mean absolute ED - ES difference
  over the stack's slices (the beating heart), then per slice the largest blob within
  ``MAX_JUMP_MM`` of it;
- ``motion+disc``: the largest blob of the locator's foreground cut to a disc of ``DISC_MM``
  around the motion peak (a blob merged with its neighbours is cut apart);
- ``motion+centred`` (with ``--segmenter RUN_DIR``, a ``unet`` run trained on LV-centred
  crops): a 128 x 128 crop around the motion peak through that U-Net, the largest blob's
  centroid, re-cropped there ``--steps`` times (a slice keeps its centre when the blob is
  smaller than the LV minimum or further than 40 mm from the peak);
- ``motion+centred+stack``: then a slice whose centre lies more than ``MAX_JUMP_MM`` from the
  stack's median centre is cropped once more at that median (built into lvseg as
  ``lvseg.anchor.locate_motion``, ``lvseg evaluate/predict --find motion``).

Scored per slice against the ground truth as ``benchmarks.lv_volumes``: has-LV accuracy (blob
at least ``lvseg.inference_options.MIN_AREA_MM2``) and, where both have an LV, the centre error
in mm (median, 90th percentile, share within 10 mm). A one-off diagnostic (no JSON): run ``python -m
benchmarks.lv_volumes.anchor --locator RUN_DIR [--segmenter RUN_DIR]`` from the repository
root (1-2 minutes on 2 busy cores). The findings are in ``README.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from benchmarks.lv_volumes.__main__ import ACDC, validation_patients

CROP = 128
#: motion+disc: the locator's foreground is cut to this radius (mm) around the motion peak
DISC_MM = 40.0


def _maps(unet: Any, images: np.ndarray) -> np.ndarray:
    """The U-Net's output maps of same-size ``images`` (padded to its multiple, cropped back)."""
    multiple = 2 ** int(getattr(unet, "depth", 0))
    h, w = images.shape[-2:]
    padded = np.stack([np.pad(im, ((0, -h % multiple), (0, -w % multiple)),
                              constant_values=float(im.min())) for im in images])
    with torch.no_grad():
        out = [unet(torch.from_numpy(padded[s:s + 8, None]))[:, 0, :h, :w].numpy()
               for s in range(0, len(padded), 8)]
    return np.concatenate(out)


def _crop(image: np.ndarray, x: float, y: float) -> tuple[np.ndarray, int, int]:
    padded = np.pad(image, CROP, constant_values=float(image.min()))
    x0, y0 = int(round(x)) + CROP // 2, int(round(y)) + CROP // 2
    return padded[y0:y0 + CROP, x0:x0 + CROP], x0 - CROP, y0 - CROP


def _near(found: list[Any], x: float, y: float, limit: float) -> Any:
    from lvseg.locate import NO_BLOB

    near = [b for b in found if np.hypot(b[0] - x, b[1] - y) <= limit]
    return near[0] if near else NO_BLOB


def _mode(blobs: list[list[Any]], min_px: float, jump: float) -> list[Any]:
    candidates = [b for found in blobs for b in found if b[2] >= min_px]
    if not candidates:
        return [_near(found, 0, 0, np.inf) for found in blobs]
    support = [sum(any(b[2] >= min_px and np.hypot(b[0] - c[0], b[1] - c[1]) <= jump
                       for b in found) for found in blobs) for c in candidates]
    best = candidates[int(np.argmax(support))]
    return [_near(found, best[0], best[1], jump) for found in blobs]


def patient_choices(folder: Path, locator: Any, segmenter: Any, steps: int
                    ) -> tuple[dict[str, list[Any]], list[Any]]:
    """Per rule the chosen ``(x, y, pixels, ...)`` per slice (training grid), and the truth."""
    from lvseg.data import SPACING_MM, normalize_intensities, resample
    from lvseg.inference_options import MIN_AREA_MM2
    from lvseg.locate import MAX_JUMP_MM, consistent_blobs, foreground, label_blobs
    from lvseg.volumes import read_patient

    case = read_patient(folder, cine=False)
    n_z, h, w = case.volume.array.shape[1:]
    dy, dx = case.volume.spacing[1:]
    images = np.stack([normalize_intensities(resample(im, np.zeros(im.shape, bool), (dy, dx),
                                                      SPACING_MM)[0]).astype(np.float32)
                       for im in case.volume.array.reshape(-1, h, w)])
    truth = []
    for t in (case.ed, case.es):
        for z in range(n_z):
            rows, cols = np.nonzero(case.truth[t][z])
            truth.append(None if rows.size == 0 else (
                (cols.mean() + 0.5) * dx / SPACING_MM - 0.5,
                (rows.mean() + 0.5) * dy / SPACING_MM - 0.5))
    min_px, jump = MIN_AREA_MM2 / SPACING_MM**2, MAX_JUMP_MM / SPACING_MM
    masks = foreground(torch.from_numpy(_maps(locator, images))).numpy()
    blobs = [label_blobs(m)[1] for m in masks]
    motion = ndimage.gaussian_filter(np.abs(images[:n_z] - images[n_z:]).mean(0), 5)
    ay, ax = np.unravel_index(int(np.argmax(motion)), motion.shape)
    rows, cols = np.ogrid[:masks.shape[1], :masks.shape[2]]
    disc = np.hypot(cols - ax, rows - ay) <= DISC_MM / SPACING_MM
    chosen = {
        "largest": [_near(found, 0, 0, np.inf) for found in blobs],
        "stack": consistent_blobs(blobs, min_px, jump),
        "mode": _mode(blobs, min_px, jump),
        "oracle": [_near(sorted((b for b in found if b[2] >= min_px),
                                key=lambda b: np.hypot(b[0] - tr[0], b[1] - tr[1])), 0, 0, np.inf)
                   if tr is not None else _near(found, 0, 0, np.inf)
                   for found, tr in zip(blobs, truth)],
        "motion": [_near(found, ax, ay, jump) for found in blobs],
        "motion+disc": [_near(label_blobs(m & disc)[1], 0, 0, np.inf) for m in masks],
    }
    if segmenter is not None:
        cx, cy = np.full(len(images), float(ax)), np.full(len(images), float(ay))
        for _ in range(steps):
            crops = [_crop(im, x, y) for im, x, y in zip(images, cx, cy)]
            maps = _maps(segmenter, np.stack([c for c, _, _ in crops]))
            found = []
            for m, (_, x0, y0) in zip(maps > 0, crops):
                b = _near(label_blobs(m)[1], 0, 0, np.inf)
                found.append((b[0] + x0, b[1] + y0, b[2]))
            for k, (x, y, n) in enumerate(found):
                if n >= min_px and np.hypot(x - ax, y - ay) <= 40 / SPACING_MM:
                    cx[k], cy[k] = x, y
        chosen["motion+centred"] = found
        ok = np.array([n >= min_px for _, _, n in found])
        if ok.sum() >= 3:  # a slice far from the stack's median centre: one more crop there
            mx, my = np.median(np.array([(x, y) for x, y, _ in found])[ok], axis=0)
            far = [k for k, (x, y, _) in enumerate(found) if np.hypot(x - mx, y - my) > jump]
            found = list(found)
            for k in far:
                crop, x0, y0 = _crop(images[k], mx, my)
                b = _near(label_blobs(_maps(segmenter, crop[None])[0] > 0)[1], 0, 0, np.inf)
                found[k] = (b[0] + x0, b[1] + y0, b[2])
        chosen["motion+centred+stack"] = found
    return chosen, truth


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--locator", required=True, help="a unet run (whole-slice map)")
    p.add_argument("--segmenter", help="a unet run trained on LV-centred crops")
    p.add_argument("--steps", type=int, default=2, help="re-crops for motion+centred")
    p.add_argument("--data-dir", type=Path, default=ACDC, help="ACDC training folder")
    args = p.parse_args()
    from lvseg.data import SPACING_MM
    from lvseg.inference_options import MIN_AREA_MM2
    from lvseg.runs import load_run

    locator = load_run(args.locator).unet.eval()
    segmenter = None if args.segmenter is None else load_run(args.segmenter).unet.eval()
    patients = validation_patients(args.data_dir)
    scores: dict[str, list[Any]] = {}
    for folder in patients:
        chosen, truth = patient_choices(folder, locator, segmenter, args.steps)
        for rule, picks in chosen.items():
            for (x, y, n, *_), true in zip(picks, truth):
                has = n >= MIN_AREA_MM2 / SPACING_MM**2
                error = (np.hypot(x - true[0], y - true[1]) * SPACING_MM
                         if has and true is not None else None)
                scores.setdefault(rule, []).append((has == (true is not None), error))
    for rule, rows in scores.items():
        errors = np.array([e for _, e in rows if e is not None])
        print(f"{rule:15s} has-LV accuracy {np.mean([a for a, _ in rows]):.3f}  centre mm: "
              f"median {np.median(errors):.1f}  p90 {np.percentile(errors, 90):.1f}  "
              f"within 10 mm {np.mean(errors < 10):.2f}  (n {len(errors)})")


if __name__ == "__main__":
    main()
