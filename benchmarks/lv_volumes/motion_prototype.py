"""Prototype (not lvseg's locator): ``benchmarks.lv_volumes`` with the LV found by the ED-ES motion
peak and a U-Net trained on LV-centred crops (``benchmarks.lv_volumes.anchor``'s
``motion+centred`` rule).

``lvseg.centre_free.locate`` is replaced for this process only: the stack (ED slices, then ES)
is resampled and normalised as in ``lvseg.locate``; the anchor is the peak of the smoothed mean
absolute ED - ES difference; each slice's 128 x 128 crop around it goes through the ``--centred``
run's U-Net, whose largest blob's centroid becomes the slice's centre (twice; kept only when the
blob is LV-sized and within 40 mm of the anchor); the blob's area decides "no LV" and the blob is
the fallback mask; with ``--stack``, a slice whose centre lies more than ``MAX_JUMP_MM`` from
the stack's median centre is cropped once more at that median. Only for ED/ES stacks (the speed figure's cine is split in halves, not
phases). Run ``python -m benchmarks.lv_volumes.motion_prototype --centred RUN_DIR --run ...
--locator ... --stem NAME`` (the other arguments as ``benchmarks.lv_volumes``). Findings in
``README.md``.
"""
import sys
import numpy as np, torch
from scipy import ndimage
import lvseg.centre_free as cf
from lvseg.locate import MAX_JUMP_MM, Located, _blobs, _NONE
from lvseg.data import SPACING_MM, normalize_intensities, resample
from lvseg.runs import load_run
from benchmarks.lv_volumes.__main__ import main as bench_main
from benchmarks.lv_volumes.anchor import CROP, _crop, _maps, _near
SEG: torch.nn.Module | None = None  # the --centred run's U-Net, set by main()
STACK = False  # --stack: re-crop slices far from the stack's median centre

def locate(method, unet, images, spacing, *, min_area_mm2=100.0):
    images = np.asarray(images, np.float32); k, h, w = images.shape
    grid = np.stack([normalize_intensities(resample(im, np.zeros(im.shape, bool), spacing, SPACING_MM)[0]).astype(np.float32) for im in images])
    n = k // 2
    motion = ndimage.gaussian_filter(np.abs(grid[:n] - grid[n:2 * n]).mean(0), 5)
    ay, ax = np.unravel_index(int(np.argmax(motion)), motion.shape)
    min_px = min_area_mm2 / SPACING_MM**2
    cx, cy = np.full(k, float(ax)), np.full(k, float(ay))
    for _ in range(2):
        crops = [_crop(im, x, y) for im, x, y in zip(grid, cx, cy)]
        maps = _maps(SEG, np.stack([c for c, _, _ in crops])) > 0
        found = []
        for m, (_, x0, y0) in zip(maps, crops):
            lab, bl = _blobs(m); b = _near(bl, 0, 0, np.inf)
            found.append((b[0] + x0, b[1] + y0, b[2], (lab == b[3]) if b[3] else None, x0, y0))
        for i, f in enumerate(found):
            if f[2] >= min_px and np.hypot(f[0] - ax, f[1] - ay) <= 40 / SPACING_MM:
                cx[i], cy[i] = f[0], f[1]
    ok = np.array([f[2] >= min_px for f in found])
    if STACK and ok.sum() >= 3:  # far from the stack's median centre: one more crop there
        mx, my = np.median(np.array([f[:2] for f in found])[ok], axis=0)
        for i, f in enumerate(found):
            if np.hypot(f[0] - mx, f[1] - my) > MAX_JUMP_MM / SPACING_MM:
                crop, x0, y0 = _crop(grid[i], mx, my)
                lab, bl = _blobs(_maps(SEG, crop[None])[0] > 0); b = _near(bl, 0, 0, np.inf)
                found[i] = (b[0] + x0, b[1] + y0, b[2], (lab == b[3]) if b[3] else None, x0, y0)
    H, W = grid.shape[1:]
    fr, fc = spacing[0] / SPACING_MM, spacing[1] / SPACING_MM
    rows = np.clip(np.floor((np.arange(h) + .5) * fr).astype(int), 0, H - 1)
    cols = np.clip(np.floor((np.arange(w) + .5) * fc).astype(int), 0, W - 1)
    centers, areas, masks = [], [], np.zeros((k, h, w), bool)
    for i, (x, y, npx, blob, x0, y0) in enumerate(found):
        centers.append(((x + .5) / fc - .5, (y + .5) / fr - .5)); areas.append(npx * SPACING_MM**2)
        if blob is not None:
            full = np.zeros((H + 2 * CROP, W + 2 * CROP), bool)
            full[y0 + CROP:y0 + 2 * CROP, x0 + CROP:x0 + 2 * CROP] = blob
            masks[i] = full[CROP:CROP + H, CROP:CROP + W][np.ix_(rows, cols)]
    areas = np.array(areas)
    return Located(np.array(centers, float), areas >= min_area_mm2, areas, masks)

def main() -> None:
    global SEG, STACK
    STACK = "--stack" in sys.argv
    if STACK:
        sys.argv.remove("--stack")
    if "--centred" not in sys.argv:
        sys.exit("--centred RUN_DIR is required (a unet run trained on LV-centred crops)")
    at = sys.argv.index("--centred")
    SEG = load_run(sys.argv[at + 1]).unet.eval()
    del sys.argv[at:at + 2]
    cf.locate = locate
    bench_main()


if __name__ == "__main__":
    main()
