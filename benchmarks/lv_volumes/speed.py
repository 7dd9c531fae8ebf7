"""Speed of centre-free volume segmentation: slices per second of ``lvseg predict`` on a cine.

Method
------
A phantom cine (``lvseg.volumes.phantom_cine``: ``--frames`` frames x 10 slices of 224 x 224
pixels at 1.5625 mm, seed 0) is written as a 4-D NIfTI without ED/ES (what a user's
``cine.nii.gz`` is) and predicted with a trained run (``--run``; ``--locator`` for end-to-end
runs), as ``lvseg predict RUN_DIR cine.nii.gz`` does: read, find the LV (``--find``), segment
(with the star of centre-free segmentation, ``lvseg.centre_free.centre_free_star``: the lines
used are recorded as ``"n_lines"``; null for a ``unet`` run, which has no star), check, write
the NIfTI mask, the montage PNG and the JSON/CSV.

* **In process, by stage.** After a warm-up on the first frame (numba's cached kernels, torch's
  allocations), the whole cine goes through ``lvseg.volumes.predict_volumes``; wall and CPU
  time (``time.process_time``: every thread of the process) are charged to the innermost running
  stage (functions wrapped by name, the U-Nets through forward hooks), so the stages add up to
  the total. Slices per second = slices / wall time of that call.
* **The command.** ``lvseg predict`` in a fresh process (start-up, imports and loading the runs
  included), wall time and the child's CPU time.

Each is measured with torch on 1 thread and on 2 (``torch.set_num_threads``; the command gets
``OMP_NUM_THREADS``), the settings interleaved over ``--repeats`` rounds; medians are reported
with the load average (1 minute) before each measurement. On a shared machine the wall time
depends on the load; the CPU time much less.

Run ``python -m benchmarks.lv_volumes.speed --run RUN_DIR [--locator RUN_DIR]`` from the
repository root (about a minute per repeat and setting on 2 busy cores), or ``--quick``
(a 5-frame cine, one repeat). Writes ``results/NAME.json`` (``--stem``, default ``speed``).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from benchmarks import _harness as H
from lvseg.inference_options import FINDERS

#: (module, attribute, stage): functions timed as stages where the module has them.
STAGES = [
    ("lvseg.volumes.run", "input_case", "read"),
    ("lvseg.volumes.run", "segment_volume", "checks, volumes"),
    ("lvseg.centre_free", "RunSegmenter.__call__", "segmenter (rest)"),
    ("lvseg.centre_free", "RunSegmenter._locate", "finder (rest)"),
    ("lvseg.centre_free", "RunSegmenter._segment", "segmentation (DP, masks)"),
    ("lvseg.prepare", "resample", "resample, normalise"),
    ("lvseg.prepare", "normalize_intensities", "resample, normalise"),
    ("lvseg.volumes.run", "write_volume_results", "write JSON, CSV"),
    ("lvseg.volumes.write", "write_mask_nifti", "write NIfTI"),
    ("lvseg.volumes.write", "montage_figure", "montage PNG"),
]


class StageClock:
    """Wall and CPU time charged to the innermost running stage (exclusive times)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []
        self.mark = (time.perf_counter(), time.process_time())

    def _charge(self) -> None:
        now = (time.perf_counter(), time.process_time())
        if self.stack:
            self.wall[self.stack[-1]] += now[0] - self.mark[0]
            self.cpu[self.stack[-1]] += now[1] - self.mark[1]
        self.mark = now

    def push(self, name: str) -> None:
        self._charge()
        self.stack.append(name)

    def pop(self) -> None:
        self._charge()
        self.stack.pop()

    def wrap(self, function: Callable[..., Any], name: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self.push(name)
            try:
                return function(*args, **kwargs)
            finally:
                self.pop()
        return timed


def _patched(clock: StageClock, unets: list[Any]) -> Iterator[None]:
    """Wrap :data:`STAGES` and hook the U-Nets; undo on exit."""
    import importlib

    undo: list[Callable[[], None]] = []
    for module_name, attr, stage in STAGES:
        owner: Any = importlib.import_module(module_name)
        *path, name = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, name):
            original = getattr(owner, name)
            setattr(owner, name, clock.wrap(original, stage))
            undo.append(lambda o=owner, n=name, f=original: setattr(o, n, f))
    for unet in {id(u): u for u in unets}.values():
        undo.append(unet.register_forward_pre_hook(
            lambda *_: clock.push("U-Net (" + _outer(clock) + ")")).remove)
        undo.append(unet.register_forward_hook(lambda *_: clock.pop()).remove)
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


def _outer(clock: StageClock) -> str:
    return "segmentation" if "segmentation (DP, masks)" in clock.stack else "finder"


def write_cine(folder: Path, n_frames: int) -> Path:
    """The phantom cine of the module docstring as ``folder/cine.nii.gz``."""
    import nibabel as nib

    from lvseg.volumes import phantom_cine

    images, _, truth = phantom_cine(size=224, n_frames=n_frames, spacing=(10.0, 1.5625, 1.5625))
    dz, dy, dx = truth.spacing
    image = nib.Nifti1Image(np.rint(images * 1000).astype(np.int16).transpose(2, 3, 1, 0),
                            np.diag([dy, dx, dz, 1.0]))
    image.header.set_zooms((dy, dx, dz, 1.0))
    path = folder / "cine.nii.gz"
    nib.save(image, str(path))
    return path


def in_process(run_dir: str, locator: str | None, cine: Path, threads: int, find: str,
               out: Path) -> dict[str, Any]:
    """Stage times of one ``predict_volumes`` call on ``cine`` with torch on ``threads``."""
    import torch

    from lvseg.centre_free import RunSegmenter
    from lvseg.runs import load_run

    torch.set_num_threads(threads)
    run = load_run(run_dir)
    segmenter = RunSegmenter(run, locator=None if locator is None else load_run(locator),
                             find=find)
    return {"threads": threads, **stage_times(segmenter, cine, out)}


def stage_times(segmenter: Any, cine: Path, out: Path) -> dict[str, Any]:
    """Slices per second, the star lines used (``"n_lines"``, null without a star) and wall/CPU
    time by stage of ``predict_volumes([cine], segmenter, out)`` (a
    :class:`lvseg.centre_free.RunSegmenter`), after a warm-up on two frames."""
    import contextlib

    from lvseg.volumes import predict_volumes, read_volume

    from benchmarks.lv_volumes.__main__ import star_lines

    volume = read_volume(cine)
    segmenter(volume.array[:2], volume.spacing)  # warm-up: numba's kernels, allocations
    clock = StageClock()
    load = os.getloadavg()[0]
    with contextlib.contextmanager(_patched)(clock, [segmenter.run.unet,
                                                     segmenter.locator.unet]):
        start = (time.perf_counter(), time.process_time())
        clock.push("other")
        predict_volumes([cine], segmenter, out)
        clock.pop()
        wall, cpu = time.perf_counter() - start[0], time.process_time() - start[1]
    slices = int(np.prod(volume.array.shape[:2]))
    return {"slices": slices, "n_lines": star_lines(segmenter), "wall_s": wall, "cpu_s": cpu,
            "slices_per_s": slices / wall, "load": load,
            "stages": {k: {"wall_s": clock.wall[k], "cpu_s": clock.cpu[k]} for k in clock.wall}}


def command(run_dir: str, locator: str | None, cine: Path, threads: int, find: str,
            out: Path) -> dict[str, Any]:
    """Wall and CPU time of ``lvseg predict`` in a fresh process."""
    args = [sys.executable, "-c", "import sys; from lvseg.cli import main; main(sys.argv[1:])",
            "predict", run_dir, str(cine), "--out", str(out), "--find", find]
    if locator is not None:
        args += ["--locator", locator]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(args, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"threads": threads, "wall_s": wall, "cpu_s": cpu, "load": load}


def measure(run_dir: str, locator: str | None, n_frames: int, repeats: int, find: str = "auto",
            threads: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    """In-process and command measurements, thread settings interleaved (module docstring)."""
    inside: dict[int, list[dict[str, Any]]] = defaultdict(list)
    outside: dict[int, list[dict[str, Any]]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp:
        cine = write_cine(Path(tmp), n_frames)
        for _ in range(repeats):
            for n in threads:  # a fresh process each, so torch's thread count is the one set
                inside[n].append(H.run_json_child(
                    [sys.executable, "-m", "benchmarks.lv_volumes.speed", "--child", run_dir,
                     locator or "", str(cine), str(n), find, str(Path(tmp) / "in")]))
                outside[n].append(command(run_dir, locator, cine, n, find, Path(tmp) / "cmd"))
    return {"run": run_dir, "locator": locator, "find": find, "frames": n_frames,
            "slices": n_frames * 10, "repeats": repeats,
            "in_process": {str(n): _median(v) for n, v in inside.items()},
            "command": {str(n): _median(v) for n, v in outside.items()},
            "raw": {"in_process": inside, "command": outside}}


def _median(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The median record by wall time (its stages are that repeat's), with every load seen."""
    ranked = sorted(records, key=lambda r: r["wall_s"])
    return {**ranked[len(ranked) // 2], "loads": [r["load"] for r in records]}


def stage_table(result: dict[str, Any]) -> dict[str, Any]:
    """Rows: stage, then wall and CPU seconds per thread setting."""
    settings = sorted(result["in_process"])
    names: list[str] = []
    for n in settings:
        stages = result["in_process"][n]["stages"]
        names += [k for k in sorted(stages, key=lambda k: -stages[k]["cpu_s"]) if k not in names]
    rows = [[name] + [f"{result['in_process'][n]['stages'].get(name, {}).get(key, 0.0):.2f}"
                      for n in settings for key in ("wall_s", "cpu_s")] for name in names]
    for label, source in (("total (in process)", "in_process"), ("lvseg predict (command)",
                                                                 "command")):
        rows.append([label] + [f"{result[source][n][key]:.2f}" for n in settings
                               for key in ("wall_s", "cpu_s")])
    rows.append(["slices/s (in process)"] + [
        f"{result['in_process'][n]['slices_per_s']:.1f}" for n in settings for _ in range(2)])
    rows.append(["load average"] + [
        f"{max(result['in_process'][n]['loads'] + result['command'][n]['loads']):.1f}"
        for n in settings for _ in range(2)])
    return {"columns": ["stage"] + [f"{what}, {n} thread{'s' if n != '1' else ''}"
                                    for n in settings for what in ("wall s", "CPU s")],
            "rows": rows}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_dir, locator, cine, threads, find, out = sys.argv[2:8]
        print(json.dumps(in_process(run_dir, locator or None, Path(cine), int(threads), find,
                                    Path(out))))
        return
    p = H.parser(__doc__, "a 5-frame cine, one repeat", replot=False)
    p.add_argument("--run", required=True, metavar="RUN_DIR")
    p.add_argument("--locator", metavar="RUN_DIR", help="a unet run for end-to-end runs")
    p.add_argument("--find", default="auto", choices=FINDERS, help="lvseg --find")
    p.add_argument("--frames", type=int, default=30, help="frames of the cine")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--stem", default="speed", help="the result file's name, without .json")
    args = p.parse_args()
    frames, repeats = (5, 1) if args.quick else (args.frames, args.repeats)
    result = measure(args.run, args.locator, frames, repeats, args.find)
    H.write_result(args.out / f"{args.stem}.json", {
        "table": stage_table(result), "method": H.method_text(__doc__),
        "machine": H.machine_info(), "quick": args.quick, "speed": result})


if __name__ == "__main__":
    main()
