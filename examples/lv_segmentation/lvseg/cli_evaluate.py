"""``lvseg evaluate``: score a run's best checkpoint and print (and optionally write) the result.

:func:`run_evaluate` is the command's runner (:mod:`lvseg.cli` parses the arguments and turns
the errors it raises into one ``lvseg: error: ...`` line): the thesis protocol
(:func:`lvseg.evaluate.evaluate_run`) or, with ``--protocol volumes``, the ACDC challenge's
(:func:`lvseg.evaluate.evaluate_run_volumes`).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from lvseg.options import given_options

__all__ = ["run_evaluate"]


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``lvseg evaluate`` with the parsed ``args``; returns the exit status.

    Raises:
        ValueError: an option that does not apply, or a ``--json`` file that cannot be written.
    """
    from lvseg.evaluate import evaluate_run
    from lvseg.inference_options import EvaluateConfig
    from lvseg.rundir import atomic_write_bytes

    config = EvaluateConfig(**given_options(args, EvaluateConfig))
    if config.json:  # before the evaluation, not after it
        _check_writable(config.json, "--json")
    if config.protocol == "volumes":
        return _evaluate_volumes(args, config)
    volumes_only = [name for name in ("locator", "min_lv_area", "find")
                    if name in given_options(args, EvaluateConfig)]
    if volumes_only:
        raise ValueError(f"--{volumes_only[0].replace('_', '-')} applies to --protocol volumes "
                         "(the LV found without ground truth); the thesis protocol puts the "
                         "star at the true LV centre: leave it out or add --protocol volumes")

    result = evaluate_run(
        args.run_dir, data=config.data, data_dir=config.data_dir, split=config.split,
        center_jitter=config.center_jitter, jitter_seed=config.jitter_seed,
        figures_dir=config.figures, max_figures=config.max_figures,
        method="unet-dp" if config.dp else None, device=config.device,
        overrides=config.star_overrides,
    )  # fmt: skip
    where = f" ({result['data_dir']})" if result["data_dir"] else ""
    print(f"{result['method']} ({result['checkpoint']}, iteration {result['iteration']}) on "
          f"{result['data']}{where}/{result['split']}, n={result['n']}: Dice "
          f"{result['dice']:.4f} ± {result['dice_std']:.4f}, HD {result['hd_mm']:.2f} mm, HD95 "
          f"{result['hd95_mm']:.2f} mm, ASSD {result['assd_mm']:.2f} mm"
          + (f" ({result['n_undefined']} empty predictions)" if result["n_undefined"] else "")
          + (f"; learned smoothness lambda {result['smoothness']:.4g}"
             if result["learned_smoothness"] else ""))
    if config.json:
        Path(config.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(config.json, (json.dumps(result, indent=2) + "\n").encode())
    return 0


def _evaluate_volumes(args: argparse.Namespace, config: Any) -> int:
    """``lvseg evaluate --protocol volumes``: the challenge's JSON and the EF Bland–Altman PNG."""
    from lvseg.evaluate import evaluate_run_volumes

    thesis_only = [name for name in ("center_jitter", "jitter_seed", "max_figures")
                   if name in given_options(args, type(config))]
    if thesis_only or config.data not in (None, "acdc"):
        what = ", ".join("--" + n.replace("_", "-") for n in thesis_only) or f"--data {config.data}"
        raise ValueError(f"{what} does not apply to --protocol volumes (ACDC patient folders, "
                         "the LV found without ground truth); leave it out")
    figure = None
    if config.json:
        figure = Path(config.json).with_name(Path(config.json).stem + "_bland_altman.png")
    elif config.figures:
        figure = Path(config.figures) / "bland_altman_ef.png"
    if figure is not None:
        figure.parent.mkdir(parents=True, exist_ok=True)
    report = evaluate_run_volumes(
        args.run_dir, data_dir=config.data_dir, split=config.split, locator=config.locator,
        min_lv_area=config.min_lv_area, find=config.find,
        method="unet-dp" if config.dp else None,
        device=config.device, overrides=config.star_overrides, json_path=config.json,
        figure=figure)
    s = report["summary"]

    def fmt(key: str, digits: int = 3) -> str:
        return "n/a" if s.get(key) is None else f"{s[key]:.{digits}f}"

    print(f"{report['method']} ({report['checkpoint']}, iteration {report['iteration']}), "
          f"{len(report['patients'])} patients ({report['split']}), centre predicted: Dice ED "
          f"{fmt('dice_ed')}, ES {fmt('dice_es')}; HD ED {fmt('hd_ed_mm', 1)} mm, ES "
          f"{fmt('hd_es_mm', 1)} mm; EF r {fmt('ef_r')}, bias {fmt('ef_bias', 1)}, LoA "
          f"±{fmt('ef_loa', 1)}; LV found by {report['finder']}"
          + (f"; Bland–Altman {figure}" if figure else ""))
    return 0


def _check_writable(path: str, option: str) -> None:
    """Refuse an output file that is a folder, or whose nearest existing parent is not one."""
    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path} is a folder; give the name of a file to write, e.g. "
                         f"{target / 'results.json'}")
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"{option} {path} cannot be written: {parent} is not a writable folder")
