"""A trained run as a centre-free :class:`~lvseg.volumes.SliceSegmenter`.

For every slice of a volume, :class:`RunSegmenter`

1. finds the LV and whether the slice has one with the *locator* (the run itself, or another run
   for end-to-end methods, see below): on its U-Net map over the whole slice
   (:func:`lvseg.locate.locate`), or in crops around the motion between the frames
   (:func:`lvseg.anchor.locate_motion`), as :meth:`RunSegmenter.finder` chooses;
2. prepares the slice as prediction does (resampling to the training spacing, a crop around the
   found centre: :func:`lvseg.prepare.prepare_image`) and segments it with the run's method
   (:func:`lvseg.segment.segment`) and star, with
   :data:`~lvseg.inference_options.CENTRE_FREE_N_LINES` lines unless the run has more or
   ``--n-lines`` is given (:func:`centre_free_star`);
3. for DP methods, re-centres once at the centroid of the DP's mask and segments again (a crop
   that did not move keeps its U-Net map: only the DP runs again);
   for ``unet`` keeps the largest connected component of the thresholded mask;
4. maps the mask back to the slice's grid (:func:`lvseg.predict.to_input_grid`);
5. for DP methods, replaces an implausible contour (:func:`implausible`: at the star's radius on
   most lines, or far larger than the locator's LV) by the locator's LV mask, with a note that
   becomes a warning naming the slice (``fallback``).

**Speed.** Every slice is resampled to the training grid once
(:func:`lvseg.prepare.training_grid`); the finder's crops and both segmentations' are cut from
it (:func:`lvseg.prepare.crop_grid`), and the U-Net sees :data:`lvseg.locate.BATCH_SIZE` crops
at a time, on the run's device (``--device``). The figures are in ``benchmarks/lv_volumes``.

**Why the fallback.** On ACDC (``benchmarks/lv_volumes``, per-slice analysis) most of an EDPCNN
run's end-systolic volume error came from a handful of basal slices where the DP found no edge
and drew the star's full disc; the locator's blob there is the LV's size.

**Locator.** A pixel-trained U-Net's map (``unet``, ``unet-dp``) is a foreground probability and
locates the LV. An end-to-end map (``edpcnn``, ``edpcnn-es``) is trained only through the DP's
contour: on ACDC its sign does not separate the LV from the rest of the slice
(``benchmarks/lv_volumes``), so such a run needs ``locator``, a pixel-trained run on the same
data; without one it is refused rather than placed wrongly. A locator trained as usual, on crops
centred on the LV (``crop_offset`` 0), does not find the LV on whole slices but does in crops
near it: ``find="auto"`` uses the motion finder for it whenever the input has two frames or more.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from lvseg.anchor import locate_motion_on_grid
from lvseg.inference_options import CENTRE_FREE_N_LINES, FINDERS, MIN_AREA_MM2
from lvseg.locate import BATCH_SIZE, Located, locate_on_grid
from lvseg.methods import get_method
from lvseg.predict import to_input_grid
from lvseg.prepare import crop_grid, training_grids
from lvseg.runs import LoadedRun
from lvseg.segment import segment_maps, unet_maps
from lvseg.star import StarConfig, lines_at_rim, mostly_at_rim
from lvseg.volumes.segment import SliceResult, largest_component

__all__ = ["MAX_AREA_RATIO", "RunSegmenter", "centre_free_star", "implausible"]

#: What a segmentation pass keeps for the next: its crops' origins and the U-Net's raw maps.
_Kept = tuple[np.ndarray, torch.Tensor]

#: A DP mask more than this many times the area of the locator's LV blob is implausible.
MAX_AREA_RATIO = 3.0


def implausible(mask: np.ndarray, radii: np.ndarray, star_radius: float,
                located: np.ndarray) -> str | None:
    """Why a DP result is implausible against the locator's LV blob ``located``, or ``None``.

    Implausible: more than :data:`~lvseg.star.RIM_FRACTION` of the star's lines end at its
    radius (:data:`~lvseg.star.RIM_TOLERANCE`, :func:`~lvseg.star.mostly_at_rim`; the DP found no
    edge), or the mask's area exceeds :data:`MAX_AREA_RATIO` times the blob's.

    Example:
        >>> blob = np.zeros((9, 9), bool); blob[3:6, 3:6] = True
        >>> print(implausible(blob, np.array([1.5, 4.0, 4.0]), 4.0, blob))
        the DP contour lies at the star radius on 2 of 3 lines
        >>> implausible(blob, np.array([1.5, 1.5, 1.5]), 4.0, blob) is None
        True
        >>> print(implausible(np.ones((9, 9), bool), np.full(3, 1.5), 4.0, blob))
        the DP mask is 9 times the area of the locator's LV
    """
    rim = int(lines_at_rim(radii, star_radius))
    if mostly_at_rim(rim, len(radii)):
        return f"the DP contour lies at the star radius on {rim} of {len(radii)} lines"
    ratio = int(np.count_nonzero(mask)) / max(int(np.count_nonzero(located)), 1)
    if ratio > MAX_AREA_RATIO:
        return f"the DP mask is {ratio:.2g} times the area of the locator's LV"
    return None


def centre_free_star(run: LoadedRun) -> StarConfig:
    """The star centre-free segmentation uses with ``run``: the run's (its ``config.star``,
    overrides applied), with :data:`~lvseg.inference_options.CENTRE_FREE_N_LINES` lines if it has
    fewer and ``run.overrides`` does not give ``n_lines`` (an explicit ``--n-lines`` wins, lower
    values included). Only the number of lines changes; a run's ``smoothing=None`` follows it.

    Example:
        >>> from lvseg.config import TrainConfig
        >>> from lvseg.inference_options import StarOverrides
        >>> run = LoadedRun(TrainConfig(method="edpcnn"), torch.nn.Identity(), "best.pt", 0)
        >>> run.config.star.n_lines, centre_free_star(run).n_lines  # trained with 25
        (25, 50)
        >>> given = dataclasses.replace(run, overrides=StarOverrides(n_lines=25))  # --n-lines 25
        >>> centre_free_star(given).n_lines
        25
    """
    star = run.config.star
    if run.overrides.n_lines is not None or star.n_lines >= CENTRE_FREE_N_LINES:
        return star
    return dataclasses.replace(star, n_lines=CENTRE_FREE_N_LINES)


class RunSegmenter:
    """Segment every slice of a volume with a trained run, no centre given.

    The star is the run's (``star``: as used), with
    :data:`~lvseg.inference_options.CENTRE_FREE_N_LINES` lines unless the run has more or the
    user gave ``n_lines`` (``run.overrides``, ``--n-lines``): a finer contour
    (:func:`centre_free_star`).

    Args:
        run: the loaded run (:func:`lvseg.runs.load_run`).
        locator: the run whose U-Net map finds the LV (default: ``run``); must be pixel-trained.
        method: predict a ``unet`` run as ``unet-dp`` (or back): the same weights.
        min_area_mm2: smallest LV blob; smaller means "no LV" (:func:`lvseg.locate.locate`).
        refine: re-centre once at the centroid of the DP's mask (DP methods).
        fallback: replace an implausible DP result (:func:`implausible`) by the locator's LV
            mask, with a note (DP methods).
        find: how the LV is found, one of :data:`~lvseg.inference_options.FINDERS` (:meth:`finder`).

    Raises:
        ValueError: if the locator is an end-to-end run, ``method`` switches between a
            pixel-trained and an end-to-end method, or ``find`` is unknown.
    """

    def __init__(self, run: LoadedRun, *, locator: LoadedRun | None = None,
                 method: str | None = None, min_area_mm2: float = MIN_AREA_MM2,
                 refine: bool = True, fallback: bool = True, find: str = "auto") -> None:
        if find not in FINDERS:
            raise ValueError(f"find must be one of {', '.join(FINDERS)}; got {find!r}")
        own = get_method(run.config.method)
        chosen = own if method is None else get_method(method)
        if chosen.end_to_end != own.end_to_end:
            raise ValueError(f"method can only switch between unet and unet-dp (same training); "
                             f"the run was trained with {own.name!r}, got {chosen.name!r}")
        locator = run if locator is None else locator
        if get_method(locator.config.method).end_to_end:
            raise ValueError(
                f"a {locator.config.method} run's output map is trained through the DP and does "
                "not locate the LV by itself; give a locator: a unet (or unet-dp) run trained "
                "on the same data (lvseg predict/evaluate --locator RUN_DIR)")
        self.run, self.locator, self.method = run, locator, chosen
        self.star = centre_free_star(run)
        self.min_area_mm2, self.refine = float(min_area_mm2), bool(refine)
        self.fallback, self.find = bool(fallback), find

    @property
    def drawn_star(self) -> StarConfig | None:
        """The star the contours are drawn with (``star``); ``None`` for a method without
        the DP (``unet`` predicts the U-Net's mask: no star). What a record says it used."""
        return self.star if self.method.dp else None

    def finder(self, n_frames: int) -> str:
        """The finder used for an input of ``n_frames`` frames: ``"map"`` or ``"motion"``.

        ``find="auto"`` takes ``motion`` when there are two frames or more and the locator was
        trained on LV-centred crops (``crop_offset`` 0: its map does not find the LV on whole
        slices), else ``map``; ``find="motion"`` takes ``map`` for a single frame (no motion).
        """
        if self.find == "map" or n_frames < 2:
            return "map"
        if self.find == "motion" or float(self.locator.config.crop_offset) == 0.0:
            return "motion"
        return "map"

    def __call__(self, images: np.ndarray, spacing: tuple[float, float, float]
                 ) -> list[SliceResult]:
        """Segment ``images`` :math:`(T, Z, H, W)` with voxel size ``(dz, dy, dx)`` mm.

        Returns:
            :math:`T \\cdot Z` :class:`~lvseg.volumes.SliceResult` in ``(t, z)`` order; the
            centre is the final star centre in input pixels, the radii in crop pixels.

        Raises:
            ValueError: if ``images`` is not 4-D.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 4:
            raise ValueError(f"images must be a volume's frames, (T, Z, H, W); got shape "
                             f"{images.shape} (a single 3-D frame is images[None])")
        height, width = images.shape[-2:]
        flat = images.reshape(-1, height, width)
        plane = (float(spacing[1]), float(spacing[2]))
        # every slice resampled once: the finder's and both segmentations' crops are cut from it
        grid = training_grids(flat, plane)
        found, why_not = self._locate(grid.reshape(*images.shape[:2], *grid.shape[-2:]), plane,
                                      (height, width))
        empty = np.zeros((height, width), dtype=bool)
        results = [SliceResult(empty, False)] * len(flat)
        todo = np.flatnonzero(found.has_lv)
        if len(todo) == 0:
            return results
        centers, lv_grid = found.centers[todo], grid[todo]
        out, kept = self._segment(lv_grid, centers, plane, (height, width))
        if self.method.dp and self.refine:
            moved = np.array([_centroid(mask, c) for (mask, *_), c in zip(out, centers)])
            out, _ = self._segment(lv_grid, moved, plane, (height, width), kept)
        radius = float(self.star.radius)
        for k, (mask, center, radii) in zip(todo, out):
            why = None
            if radii is not None and self.fallback:
                why = implausible(mask, radii, radius, found.masks[k])
            note = why_not if k == todo[0] else None  # said once, on the first LV slice
            if why is None:
                results[k] = SliceResult(mask, True, center, radii,
                                         None if radii is None else radius, note)
            else:
                why = f"{why}; the locator's LV mask is used instead"
                results[k] = SliceResult(found.masks[k], True, center,
                                         note=why if note is None else f"{note}; {why}")
        return results

    def _locate(self, grid: np.ndarray, plane: tuple[float, float], shape: tuple[int, int]
                ) -> tuple[Located, str | None]:
        """The LV of every slice of ``grid`` :math:`(T, Z, H', W')` (the input's slices of
        ``shape`` :math:`(H, W)` on the training grid), and why ``find="motion"`` fell back to
        the map (``None`` when it did not)."""
        if self.finder(grid.shape[0]) == "motion":
            found = locate_motion_on_grid(self.locator.unet, grid, plane, shape,
                                          self.min_area_mm2)
            if found is not None:
                return found, None
            reason = "its frames are identical"
        else:
            reason = "it has a single frame"
        why_not = None
        if self.find == "motion":
            why_not = (f"--find motion: no motion to find the LV by ({reason}); the LV of this "
                       "volume was found on the locator's map (--find map)")
        return locate_on_grid(self.locator.config.method, self.locator.unet,
                              grid.reshape(-1, *grid.shape[-2:]), plane, shape,
                              self.min_area_mm2), why_not

    def _segment(self, grid: np.ndarray, centers: np.ndarray, spacing: tuple[float, float],
                 shape: tuple[int, int], kept: _Kept | None = None
                 ) -> tuple[list[tuple[np.ndarray, tuple[float, float], np.ndarray | None]],
                            _Kept]:
        """``(mask, centre, radii)`` per slice of ``grid`` (slices of ``shape`` on the training
        grid), the star centred at ``centers`` (input px); and the crops' origins and U-Net maps
        for the next pass on the same slices (``kept``: a crop that did not move keeps its map)."""
        prepared = [crop_grid(image, (float(x), float(y)), spacing)
                    for image, (x, y) in zip(grid, centers)]
        crops = torch.from_numpy(np.stack([p.crop for p in prepared])[:, None])
        star_centers = torch.tensor([p.center for p in prepared], dtype=torch.float32)
        origins = np.array([p.origin for p in prepared])
        maps = self._maps(crops, origins, kept)
        seg = segment_maps(self.method, maps, star_centers, self.star)
        if not self.method.dp:  # the U-Net alone: its largest blob, as the protocol scores it
            seg = seg._replace(masks=torch.from_numpy(np.stack(
                [largest_component(m) for m in seg.masks.numpy()])))
        out = []
        for k, p in enumerate(prepared):
            mask, _ = to_input_grid(p, seg, k, shape)
            radii = None
            if seg.contours is not None:
                radii = np.linalg.norm(seg.contours[k].numpy() - np.asarray(p.center), axis=1)
            out.append((mask, (float(centers[k][0]), float(centers[k][1])), radii))
        return out, (origins, maps)

    def _maps(self, crops: torch.Tensor, origins: np.ndarray, kept: _Kept | None
              ) -> torch.Tensor:
        """The run's U-Net maps of ``crops`` (origins ``(top, left)`` in the training grid);
        a crop at its origin in ``kept`` (the previous pass on the same slices) is the same
        crop, and keeps its map instead of going through the U-Net again."""
        if kept is None:
            return unet_maps(self.run.unet, crops, batch_size=BATCH_SIZE)
        old_origins, maps = kept
        redo = np.flatnonzero((origins != old_origins).any(axis=1))
        maps = maps.clone()
        if len(redo):
            index = torch.from_numpy(redo)
            maps[index.to(maps.device)] = unet_maps(self.run.unet, crops[index],
                                                    batch_size=BATCH_SIZE)
        return maps


def _centroid(mask: np.ndarray, fallback: np.ndarray) -> tuple[float, float]:
    """``(x, y)`` centroid of ``mask``, or ``fallback`` when it is empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return float(fallback[0]), float(fallback[1])
    return float(cols.mean()), float(rows.mean())

