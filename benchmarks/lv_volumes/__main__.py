"""Centre-free LV segmentation of whole volumes on ACDC: the challenge's protocol and speed.

Writes ``benchmarks/lv_volumes/results/lv_volumes.json`` (a ``"table"``, the ``"method"``, the
``"machine"``, each run's summary, centre-finder accuracy and per-patient numbers; no images).

Method
------
Each trained run (``--run NAME=RUN_DIR``, e.g. the issue's ``lvseg train --data acdc --split
thesis --train-size all --iterations 2000`` runs of ``edpcnn`` and ``unet``) is loaded from its
``best.pt`` (the iteration is recorded) and segments the ED and ES volumes of the 20
thesis-validation patients (patient number divisible by 5, ``lvseg.data.thesis_validation``)
of the ACDC training folder, with no centre given: ``lvseg.centre_free.RunSegmenter`` finds
the LV on the U-Net map of the locator
(``--locator RUN_DIR``, a ``unet`` run trained on the same patients, for every run, so that all
runs are compared with the same centres; without it a ``unet``/``unet-dp`` run locates with
itself and an end-to-end run is refused; ``--find``: on its map over the whole slice, or by the
motion between ED and ES, ``lvseg.anchor``, as ``lvseg evaluate --find``), crops around it,
segments, and for DP methods re-centres once at the centroid of the DP's mask; a ``unet`` run
predicts its thresholded mask's largest component. Scoring is ``lvseg.volumes.evaluate_volumes``: 3-D Dice and Hausdorff distance over
the full image per phase, EDV/ESV/EF against the ground truth's (Pearson r, bias = mean
predicted - true, limits of agreement 1.96 s.d.). The centre finder is scored per slice against
the ground truth: has-LV accuracy (a slice has LV when its ``_gt`` mask has label 3), and, on
slices where both agree, the distance in mm from the final star centre to the true LV centroid
(median and 90th percentile), and ``fallbacks`` counts the slices whose implausible DP contour
was replaced by the locator's mask (``lvseg.centre_free.implausible``). Speed: the first run predicts a phantom cine
(``lvseg.volumes.phantom_cine``, 30 frames x 10 slices of 224 x 224 pixels at 1.5625 mm) as
``benchmarks/lv_volumes/speed.py`` does (one repeat; its docstring has the method): slices per
second, wall and CPU time by stage, on 1 and 2 threads, in process and as the ``lvseg predict``
command, with the load average (the machine is shared).

Run ``python -m benchmarks.lv_volumes --run edpcnn=DIR --run unet=DIR --locator DIR`` from the
repository root (about 10 minutes per run on 2 busy CPU cores), or ``--quick`` (2 patients, a
5-frame cine). ``--stem NAME`` writes ``results/NAME.json`` instead (other runs, e.g. those
trained on 10 images); ``--n-lines N`` segments with an N-line star (``lvseg --n-lines``;
default: ``lvseg.inference_options.CENTRE_FREE_N_LINES``, or the run's if it has more; the JSON
records the lines used as ``"n_lines"``, null for a ``unet`` run, which has no star);
``--find auto|map|motion`` chooses the finder (``lvseg --find``; the JSON records the one used);
``--no-speed`` skips the speed measurement (``"speed"`` is null).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _harness as H
from lvseg.inference_options import CENTRE_FREE_N_LINES, FINDERS

HERE = Path(__file__).resolve().parent
#: ../shared/data/acdc/training of the checkout, or of a worktree in wt/<name>
ACDC = next((base / "shared" / "data" / "acdc" / "training"
             for base in (H.REPO.parent, H.REPO.parent.parent)
             if (base / "shared" / "data" / "acdc" / "training").is_dir()),
            H.REPO.parent / "shared" / "data" / "acdc" / "training")
NAME = "lv_volumes"


def validation_patients(data_dir: Path) -> list[Path]:
    """The folders of the thesis-validation patients (:func:`lvseg.data.thesis_validation`) in
    ACDC's training folder ``data_dir`` that have an ``Info.cfg`` (the ED/ES frames), sorted."""
    from lvseg.data import thesis_validation
    from lvseg.data.acdc import patient_folders

    folders = [d for d in patient_folders(data_dir) if (d / "Info.cfg").is_file()]
    chosen = set(thesis_validation(d.name for d in folders))
    return [d for d in folders if d.name in chosen]


def star_lines(segmenter: Any) -> int | None:
    """The star lines of a :class:`lvseg.centre_free.RunSegmenter`'s contours; ``None`` without
    a star (:attr:`~lvseg.centre_free.RunSegmenter.drawn_star`: a ``unet`` run's mask)."""
    star = segmenter.drawn_star
    return None if star is None else star.n_lines


def _recorder(segmenter: Any, log: list[Any]) -> Any:
    def call(images: np.ndarray, spacing: tuple[float, float, float]) -> Any:
        results = segmenter(images, spacing)
        log.append(results)
        return results
    return call


def _centre_accuracy(patients: list[Path], log: list[Any]) -> dict[str, Any]:
    from lvseg.volumes import read_patient

    distances, agree, total, fallbacks = [], 0, 0, 0
    for folder, results in zip(patients, log):
        case = read_patient(folder, cine=False)
        n_z = case.volume.array.shape[1]
        dy, dx = case.volume.spacing[1:]
        for t in (case.ed, case.es):
            for z in range(n_z):
                r, true = results[t * n_z + z], case.truth[t][z]
                total += 1
                fallbacks += getattr(r, "note", None) is not None
                agree += bool(r.has_lv) == bool(true.any())
                if r.has_lv and true.any():
                    rows, cols = np.nonzero(true)
                    distances.append(float(np.hypot((r.center[0] - cols.mean()) * dx,
                                                    (r.center[1] - rows.mean()) * dy)))
    return {"has_lv_accuracy": agree / total, "slices": total, "fallbacks": fallbacks,
            "centre_mm": H.summary(distances, 2),
            "centre_mm_p90": float(np.percentile(distances, 90)) if distances else None}


def evaluate(name: str, run_dir: str, locator: str | None, patients: list[Path],
             n_lines: int | None = None, find: str = "auto") -> dict[str, Any]:
    from lvseg.centre_free import RunSegmenter
    from lvseg.inference_options import StarOverrides
    from lvseg.runs import load_run
    from lvseg.volumes import evaluate_volumes

    run = load_run(run_dir, overrides=StarOverrides(n_lines=n_lines))
    own = locator is None
    locating = None if own else load_run(locator)
    log: list[Any] = []
    segmenter = RunSegmenter(run, locator=locating, find=find)
    start = time.perf_counter()
    report = evaluate_volumes(patients, _recorder(segmenter, log))
    return {"name": name, "run": run_dir, "method": run.config.method,
            "iteration": run.iteration, "locator": None if own else locator,
            "find": find, "finder": segmenter.finder(2),
            "n_lines": star_lines(segmenter), "train_size": run.config.train_size,
            "seconds": time.perf_counter() - start, "summary": report["summary"],
            "centre": _centre_accuracy(patients, log), "patients": report["patients"]}


def speed(run_dir: str, locator: str | None, n_frames: int, find: str = "auto"
          ) -> dict[str, Any]:
    from benchmarks.lv_volumes.speed import measure, stage_table

    result = measure(run_dir, locator, n_frames, repeats=1, find=find)
    return {**result, "table": stage_table(result)}


def _f(value: Any, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main() -> None:
    p = H.parser(__doc__, "2 patients and a 5-frame cine", replot=False)
    p.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR")
    p.add_argument("--locator", help="a unet run for end-to-end runs", metavar="RUN_DIR")
    p.add_argument("--data-dir", type=Path, default=ACDC, help="ACDC training folder")
    p.add_argument("--stem", default=NAME, help="the result file's name, without .json")
    p.add_argument("--n-lines", type=int, help="star lines for prediction (default: "
                   f"{CENTRE_FREE_N_LINES}, or the run's if it has more: lvseg's centre-free "
                   "default)")
    p.add_argument("--find", default="auto", choices=FINDERS, help="how the LV is found "
                   "(lvseg --find)")
    p.add_argument("--no-speed", dest="speed", action="store_false", help="skip the speed "
                   "measurement (the JSON's \"speed\" is null)")
    args = p.parse_args()
    if not args.stem or Path(args.stem).name != args.stem:
        p.error(f"--stem must be a file name without folders; got {args.stem!r}")
    runs = [item.split("=", 1) for item in args.run]
    patients = validation_patients(args.data_dir)
    if args.quick:
        patients = patients[:2]
    results = [evaluate(name, path, args.locator, patients, args.n_lines, args.find)
               for name, path in runs]
    fast = (speed(runs[0][1], args.locator, 5 if args.quick else 30, args.find)
            if args.speed else None)
    rows = []
    for r in results:
        s, c = r["summary"], r["centre"]
        rows.append([f"{r['name']} ({r['method']}, it. {r['iteration']}, {r['finder']})",
                     _f(s["dice_ed"], 3), _f(s["dice_es"], 3), _f(s["hd_ed_mm"], 1),
                     _f(s["hd_es_mm"], 1), _f(s["ef_r"], 3), _f(s["ef_bias"], 1),
                     _f(s["ef_loa"], 1), _f(c["centre_mm"]["median"], 1),
                     _f(c["has_lv_accuracy"], 3)])
    table = {"columns": ["run", "Dice ED", "Dice ES", "HD ED mm", "HD ES mm", "EF r",
                         "EF bias", "EF LoA ±", "centre error mm (median)", "has-LV accuracy"],
             "rows": rows}
    H.write_result(args.out / f"{args.stem}.json", {
        "table": table, "method": H.method_text(__doc__),
        "machine": H.machine_info(), "patients": [d.name for d in patients],
        "quick": args.quick, "runs": results, "speed": fast})
    if fast is not None:
        print(H.format_table(fast["table"]))


if __name__ == "__main__":
    main()
