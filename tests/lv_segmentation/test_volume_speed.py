"""The speed-ups of centre-free volume segmentation change no result (issue #19, speed).

Each slice is resampled once (:func:`lvseg.prepare.training_grid`) and cropped for the finder and
both segmentations (:func:`lvseg.prepare.crop_grid`); a refinement crop that did not move keeps
its U-Net map; blob centroids are computed in the crop's window instead of the whole slice
(:func:`lvseg.locate.label_blobs`, to the bit as ``scipy.ndimage.center_of_mass``). The masks, "no
LV" slices, warnings and JSON volumes of a phantom cine must stay those the code gave before
(the digests below were recorded with it, commit 394fb46, when the DP contour was drawn through
the chosen points: ``edge_offset=0`` here, which must give them to the bit). The three motion
digests were recorded again when the motion finder's stack step changed on purpose
(:data:`lvseg.anchor.STACK_REACH_MM`, 2026-12-08: the phantom's stack-end slices whose blob
stayed 30 mm off the LV's axis are now centred on the stack's median). The U-Net is an
exact oracle (a threshold of each crop's intensity range, the same on every machine), so the
digests do not depend on a CPU's convolution kernels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from scipy import ndimage

from lvseg.centre_free import RunSegmenter
from lvseg.inference_options import StarOverrides
from lvseg.locate import label_blobs
from lvseg.prepare import crop_grid, prepare_image, training_grid
from lvseg.runs import LoadedRun
from lvseg.volumes import Volume, phantom_cine, segment_volume, volume_record
from lvseg_testing import tiny_config


class Bright(torch.nn.Module):
    """Logit > 0 on the brightest 15 % of each input's intensity range."""

    depth = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hi, lo = x.amax(dim=(-2, -1), keepdim=True), x.amin(dim=(-2, -1), keepdim=True)
        return x - (hi - 0.15 * (hi - lo))


def _digest(method: str, find: str, n_frames: int) -> str:
    images, _, truth = phantom_cine(size=80, n_frames=n_frames, spacing=(10.0, 1.8, 1.6))
    volume = Volume(images, truth.spacing, "phantom")
    star = dataclasses.replace(tiny_config().star, edge_offset=0.0)  # as when recorded
    # the run's 12 lines, as when recorded (--n-lines 12: centre-free segmentation has 50 since)
    run = LoadedRun(tiny_config(method, star=star), Bright(), "oracle", 0,
                    StarOverrides(n_lines=star.n_lines))
    locator = LoadedRun(tiny_config("unet"), Bright(), "oracle locator", 0)
    result = segment_volume(volume, RunSegmenter(run, locator=locator, find=find,
                                                 min_area_mm2=300.0))
    assert result.masks.any() and result.no_lv  # both kinds of slice are in the digest
    record = volume_record(volume, result)
    text = json.dumps([record["frames"], record["slices_without_lv"], record["warnings"]])
    return hashlib.sha256(np.packbits(result.masks).tobytes() + text.encode()).hexdigest()[:16]


@pytest.mark.parametrize(("method", "find", "n_frames", "digest"), [
    ("unet-dp", "map", 3, "6ae5e59fe8c0d31e"),
    ("unet-dp", "motion", 5, "20f9cff72e89efcb"),
    ("unet", "motion", 5, "17501c3d6c90b56d"),
    ("unet-dp", "auto", 1, "89c2cc8430237f36"),
    ("edpcnn", "motion", 4, "fa17971c8a3b9283"),
])
def test_volume_results_are_those_before_the_speed_up(method: str, find: str, n_frames: int,
                                                      digest: str) -> None:
    assert _digest(method, find, n_frames) == digest


def test_crop_grid_of_the_training_grid_is_prepare_image() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(70, 90)).astype(np.float32)
    grid = training_grid(image, (1.8, 1.1))
    for center in [(10.3, 60.8), (45.0, 35.5), (-0.4, 69.4)]:
        a, b = crop_grid(grid, center, (1.8, 1.1)), prepare_image(image, center, (1.8, 1.1))
        assert np.array_equal(a.crop, b.crop) and a.crop.dtype == np.float32
        assert (a.center, a.origin, a.factors) == (b.center, b.origin, b.factors)


def _scipy_blobs(mask: np.ndarray) -> list[tuple[float, float, int, int]]:
    """What lvseg.locate.label_blobs computed before: scipy's labels and center_of_mass."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:]
    centres = ndimage.center_of_mass(mask, labels, range(1, n + 1))
    return [(float(centres[k][1]), float(centres[k][0]), int(sizes[k]), int(k) + 1)
            for k in np.argsort(-sizes, kind="stable")]


def test_blob_centroids_are_scipys_to_the_bit_in_a_window_too() -> None:
    rng = np.random.default_rng(1)
    for _ in range(40):
        image = ndimage.gaussian_filter(rng.normal(size=(90, 110)), 2) > 0.05
        assert label_blobs(image)[1] == _scipy_blobs(image)
        window = np.zeros_like(image)
        window[7:70, 13:] = image[7:70, 13:]
        assert label_blobs(image[7:70, 13:], (7, 13))[1] == _scipy_blobs(window)
