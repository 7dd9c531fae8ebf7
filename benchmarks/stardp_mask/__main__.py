"""Filling the DP contour into a mask: ``star_mask`` against ``polygon_mask`` (issue #9).

Writes ``benchmarks/stardp_mask/results/stardp_mask.json`` (``"table"``, ``"method"``, ``"machine"``). Run:
``python -m benchmarks.stardp_mask`` (~1 min).

Method
------
Contours as lvseg's inference makes them (``segment``): the bundled Sunnybrook sample (lvseg's
loader and preprocessing, 128 x 128 at 1.37 mm around the LV), star at the LV centre (N = 25,
M = 65, R = 65), ``StarDP(output="float")`` on the warped map of a trained network's output
proxy (``3 (2 mask - 1)``, Gaussian blur 2 px), then ``contour_points``. What is timed: one call
of ``polygon_mask(contours, (128, 128))`` (one vectorised even-odd pass per edge, float64) and of
``star_mask(contours, centers, (128, 128))`` (numba: only pixels between the disc inside every
edge and the disc through the farthest vertex are tested against their wedge's edge), each
including its input checks, for batches of 1 and 10 contours (the slices in turn). One torch
thread. Warm-up: 5 calls of each (numba compiles, or loads its cache, on the first). Then
``--repeats`` rounds; each round times one call of each function, interleaved, so machine load
hits both alike. The table gives the median and the interquartile range over the rounds of the
CPU time of the calling thread (``time.thread_time``; on a shared machine the wall time mostly
measures waiting for a core; wall times are in the JSON), and the JSON the number of pixels
where the two masks differ over all 56 slices.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import torch
from benchmarks import _harness as h
from benchmarks._harness import machine_info
from scipy import ndimage

from diffbypass_stardp import StarDP, contour_points, polygon_mask, star_mask, star_points, warp



def contours() -> tuple[torch.Tensor, torch.Tensor]:
    from lvseg.data import load_dataset
    from lvseg.data.preprocessing import preprocess

    slices, _ = load_dataset("sunnybrook")
    data, _ = preprocess(slices, spacing=1.37, size=128)
    maps = np.stack([3.0 * ndimage.gaussian_filter(2.0 * m.astype(np.float32) - 1.0, 2.0)
                     for m in data.masks]).astype(np.float32)
    centers = torch.from_numpy(data.centers).float()
    points = star_points(centers)
    indices = StarDP(output="float")(warp(torch.from_numpy(maps), points))
    return contour_points(indices, points), centers


def main() -> None:
    parser = h.parser(__doc__, "20 rounds (stardp_mask_quick.json)", replot=False)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    if args.quick:
        args.repeats = 20
    stem = "stardp_mask_quick" if args.quick else "stardp_mask"
    torch.set_num_threads(1)
    machine = {**machine_info(), "load_start": list(np.round(os.getloadavg(), 2))}
    poly, centers = contours()
    shape = (128, 128)
    differ = int((polygon_mask(poly, shape) != star_mask(poly, centers, shape)).sum())
    rows, raw = [], {}
    for batch in (1, 10):
        calls = {"polygon_mask": lambda p, c: polygon_mask(p, shape),
                 "star_mask": lambda p, c: star_mask(p, c, shape)}
        times: dict[str, list[float]] = {k: [] for k in calls}
        wall: dict[str, list[float]] = {k: [] for k in calls}
        for r in range(args.repeats + 5):
            lo = (r * batch) % (len(poly) - batch + 1)
            p, c = poly[lo : lo + batch], centers[lo : lo + batch]
            for name, fn in calls.items():
                c0, t0 = time.thread_time(), time.perf_counter()
                fn(p, c)
                if r >= 5:
                    times[name].append(time.thread_time() - c0)
                    wall[name].append(time.perf_counter() - t0)
        med = {}
        for name, t in times.items():
            ms = np.array(t) * 1e3
            q1, med[name], q3 = np.percentile(ms, [25, 50, 75])
            rows.append([name, batch, round(float(med[name]), 3), round(float(q3 - q1), 3)])
            raw[f"{name}/{batch}"] = {"cpu_ms": ms.tolist(),
                                      "wall_ms": (np.array(wall[name]) * 1e3).tolist()}
        rows.append(["speed-up", batch, round(float(med["polygon_mask"] / med["star_mask"]), 1),
                     None])
    machine["load_end"] = list(np.round(os.getloadavg(), 2))
    result = {"method": __doc__.split("Method\n------\n", 1)[1].strip(),
              "table": {"columns": ["fill", "batch", "CPU ms per call (median)", "IQR ms"],
                        "rows": rows},
              "differing_pixels": differ, "pixels": int(len(poly) * shape[0] * shape[1]),
              "machine": machine, "args": {**vars(args), "out": str(args.out)}, "raw": raw}
    h.atomic_write(args.out / f"{stem}.json", json.dumps(result, indent=1))
    for row in rows:
        print(row)
    print("differing pixels:", differ, "of", result["pixels"])


if __name__ == "__main__":
    main()
