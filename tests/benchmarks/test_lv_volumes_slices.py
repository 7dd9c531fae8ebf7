"""benchmarks/lv_volumes/slices.py: per-slice categories on an ACDC-layout phantom patient."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.lv_volumes.slices import slice_rows, summarize
from lvseg.volumes import CardiacCase, SliceResult, read_patient, write_phantom_patient


def _true_results(case: CardiacCase, *, star: bool = False) -> list[SliceResult]:
    """A segmenter's results that are ``case``'s truth, one per slice in ``(t, z)`` order: the
    true mask (empty in frames without truth), centred at its centroid (the middle without an
    LV); with ``star``, a contour of 8 lines of 3 px in a star of radius 20 px (none at the rim).
    """
    n_t, n_z, height, width = case.volume.array.shape
    results = []
    for t in range(n_t):
        for z in range(n_z):
            true = case.truth[t][z] if t in case.truth else np.zeros((height, width), bool)
            rows, cols = np.nonzero(true) if true.any() else ([height // 2], [width // 2])
            centre = (float(np.mean(cols)), float(np.mean(rows)))
            contour = (np.full(8, 3.0), 20.0) if star else ()
            results.append(SliceResult(true, bool(true.any()), centre, *contour))
    return results


def test_each_slice_gets_its_category_and_volume_error(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient905", size=48, n_frames=4)
    case = read_patient(folder, cine=False)
    n_z = case.volume.array.shape[1]
    results = _true_results(case, star=True)
    ed = case.ed * n_z
    lv = [z for z in range(n_z) if case.truth[case.ed][z].any()]
    results[ed + lv[0]] = SliceResult(np.zeros((48, 48), bool), False)  # missed
    disc = np.ones((48, 48), bool)
    results[ed + lv[1]] = results[ed + lv[1]]._replace(mask=disc, radii=np.full(8, 20.0))  # rim
    empty = next(z for z in range(n_z) if not case.truth[case.ed][z].any())
    results[ed + empty] = SliceResult(disc, True, (24.0, 24.0))  # false LV
    rows = slice_rows([folder], [results])
    category = {(r["phase"], r["z"]): r["category"] for r in rows}
    assert category[("ED", lv[0])] == "missed" and category[("ED", lv[1])] == "rim"
    assert category[("ED", empty)] == "false LV" and category[("ED", lv[2])] == "ok"
    assert {c for (phase, _), c in category.items() if phase == "ES"} <= {"ok", "no LV"}
    voxel_ml = np.prod(case.volume.spacing) / 1000
    summary = summarize(rows)["ED"]
    assert summary["false LV"]["error_ml"] == round(48 * 48 * voxel_ml, 1)
    assert summary["ok"]["error_ml"] == 0.0 and summary["ok"]["dice"] == 1.0
    assert summary["missed"]["error_ml"] == round(-case.truth[case.ed][lv[0]].sum() * voxel_ml, 1)


def test_a_wrong_slice_without_a_warning_is_counted_silent(tmp_path: Path) -> None:
    folder = write_phantom_patient(tmp_path, "patient906", size=48, n_frames=4)
    case = read_patient(folder, cine=False)
    n_z = case.volume.array.shape[1]
    results = _true_results(case)
    disc = np.ones((48, 48), bool)
    empty = [z for z in range(n_z) if not case.truth[case.es][z].any()]
    for z in empty[:2]:  # two false LVs at ES: one warned (named by frame), one not
        results[case.es * n_z + z] = SliceResult(disc, True, (24.0, 24.0))
    frame_es = case.volume.frames[case.es]
    warnings = [f"frame {frame_es}, slice {empty[0]}: the contour is odd",
                f"frame {case.volume.frames[case.ed]}, slice {empty[1]}: an ED warning"]
    rows = slice_rows([folder], [results], [warnings])
    warned = {(r["phase"], r["z"]) for r in rows if r["warned"]}
    assert warned == {("ES", empty[0]), ("ED", empty[1])}
    summary = summarize(rows)["ES"]
    assert summary["false LV"]["slices"] == 2 and summary["silent"]["slices"] == 1
    # every warning names its frame: one without a frame names no slice (no guess), and the
    # checks across ED and ES name the ES frame
    rows = slice_rows([folder], [results], [warnings + [f"slice {empty[1]}: no frame"]])
    assert summarize(rows)["ES"]["silent"]["slices"] == 1
    rows = slice_rows([folder], [results],
                      [warnings + [f"frame {frame_es}, slice {empty[1]}: across phases"]])
    assert "silent" not in summarize(rows)["ES"]
    assert "silent" not in summarize(slice_rows([folder], [results]))["ED"]
