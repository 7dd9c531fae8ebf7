"""The registry of studies: one row per folder ``benchmarks/<study>/``.

``make bench`` (``python -m benchmarks run-all``), ``benchmarks/README.md`` and the docs page
``docs/benchmarks.md`` read this table; ``tests/benchmarks/test_registry.py`` checks that every
study folder is registered and every registered study exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Study:
    """One study: a package ``benchmarks/<name>/`` run as ``python -m benchmarks.<name>``.

    Attributes:
        name: the folder's name.
        description: what it measures, in one line.
        quick: the options of its smoke run (seconds to a few minutes).
        full: the options of the run whose results are committed.
        in_bench: whether ``make bench`` runs the full run.
        duration: how long the full run takes on the project's 2-core CPU machine.
        needs: data or packages beyond the ``bench`` extra, empty if none.
    """

    name: str
    description: str
    quick: str = "--quick"
    full: str = ""
    in_bench: bool = False
    duration: str = ""
    needs: str = ""

    def command(self, quick: bool = False) -> str:
        """The shell command that runs the quick or the full study from the repository root."""
        options = self.quick if quick else self.full
        return f"python -m benchmarks.{self.name} {options}".strip()


STUDIES: tuple[Study, ...] = (
    Study("estimators", "gradient estimators against the smoothed gradient: cosine, time, fn calls",
          in_bench=True, duration="about 33 min"),
    # results/executors.json: runtime_s 277 at a load of 1; its README: about 11 min when busy
    Study("executors", "threads, processes and Dask for an expensive black box: speed-up, overhead",
          in_bench=True, duration="about 5 min (11 on a busy machine)"),
    Study("guided_gating", "guided ES, trust gating and replay along a 1000-step trajectory",
          duration="about 45 min (resumable)"),
    Study("shortest_path", "decision-focused learning on the 5 x 5 shortest path against PyEPO",
          duration="about 30 min (resumable)", needs="pyepo (bench extra)"),
    # results/stardp_throughput.json: runtime_s 83
    Study("stardp_throughput", "contours per second of the star DP against a torch version",
          in_bench=True, duration="about 1.5 min"),
    Study("stardp_mask", "star_mask against polygon_mask on the DP contours of the LV sample",
          in_bench=True, duration="about 1 min"),
    # results/stardp_surrogates.json: seconds 842 at a load of 2-5
    Study("stardp_surrogates", "surrogate architectures for StarDP: fit-step cost against fit quality",
          in_bench=True, duration="about 14 min"),
    Study("stardp_geometry", "draws the star-pattern figure of the stardp docs page", quick="",
          in_bench=True, duration="seconds"),
    Study("surrogate_threads", "a small surrogate's step on 1 thread, all threads and 'auto', idle and busy",
          duration="about 2 min"),
    Study("lv_overhead", "seconds per training step and per image, EDPCNN against the U-Net",
          in_bench=True, duration="about 4 min"),
    Study("ddp", "lvseg training steps on 1 against 2 DDP processes (gloo), and the all-reduce cost",
          duration="about 5 min"),
    Study("lv_cli_overhead", "the EDPCNN / U-Net cost of an iteration through the lvseg train command",
          duration="about 7 min"),
    Study("lv_ablation", "LV example: Dice against training-set size, four methods",
          in_bench=True, duration="about 40 min (resumable)"),
    # results/lv_pareto.json: its 60 runs' seconds add up to 2.75 h (at loads of 0.2-13), about
    # 1.4 h on 2 workers, plus --measure (a few minutes)
    Study("lv_pareto", "LV example: Dice against seconds per iteration for surrogate settings",
          full="--workers 2; --measure; --report",
          duration="about 1.5 h on 2 Dask workers (resumable)", needs="ACDC"),
    Study("acdc_ablation", "thesis chapter 5 on ACDC: Table 5.1, jitter, learning curves, ES",
          duration="hours (resumable; --measure prints the cost)", needs="ACDC"),
    # results/lv_volumes*.json: a run's "seconds" 19-120 (20 patients), the "speed" 21-84 s
    Study("lv_volumes", "centre-free LV volumes on ACDC: 3-D Dice/HD, EF agreement, centre error, "
          "slices per second", quick="--quick --run unet=RUN_DIR",
          full="--run edpcnn=RUN_DIR --run unet=RUN_DIR --locator RUN_DIR",
          duration="about 1 min per run, plus 1 min for the speed",
          needs="ACDC and trained runs"),
    Study("lv_smoothness", "the star DP's smoothness penalty on ACDC: learned against fixed lambda",
          duration="hours (resumable; --scale: the lambda scale)", needs="ACDC"),
    # results/bypass_vs_es.json: the 6 committed runs' wall_seconds add up to 17.5 min, with the
    # bypass at 150 iterations (132 s a run) and 1 fit step, its defaults then; a run added now
    # trains at today's defaults, the bypass's 1000 iterations (and 3 fit steps): its 3 runs take
    # 3 x 1000/150 x 132 s = 44 min or more, ES's 3 runs of 300 iterations 11 min
    Study("bypass_vs_es", "lvseg train's bypass against ES at their defaults on ACDC: best Dice "
          "at equal step seconds and equal DP evaluations",
          duration="about 1 h at today's defaults (the committed runs: 18 min; resumable)",
          needs="ACDC"),
    Study("lv_stability", "EDPCNN's surrogate fit steps, samples and learning rate over "
          "500-iteration ACDC runs: how far the validation Dice swings late in a run",
          duration="about 1 h for 10 runs, one at a time (resumable)", needs="ACDC"),
    Study("dask_overhead", "what scheduling a study's runs on Dask costs per run, projected",
          duration="about 1 min"),
    Study("single_input", "Bypass with one input before and after issue #18: time per estimator, "
          "bit-identical gradients", duration="about 13 min", needs="git history (the old commit)"),
)

BY_NAME: dict[str, Study] = {s.name: s for s in STUDIES}


def study_folders(root: Path = ROOT) -> list[str]:
    """The study packages on disk: folders under ``benchmarks/`` with a ``__main__.py``."""
    return sorted(p.parent.name for p in root.glob("*/__main__.py"))


def markdown_table() -> str:
    """The registry as a Markdown table (the index in ``benchmarks/README.md``)."""
    lines = ["| study | what it measures | quick run | full run takes | `make bench` | needs |",
             "| --- | --- | --- | --- | --- | --- |"]
    for s in STUDIES:
        quick = f"`{s.command(quick=True)}`"
        lines.append(f"| [{s.name}]({s.name}/README.md) | {s.description} | {quick} | "
                     f"{s.duration} | {'yes' if s.in_bench else 'no'} | {s.needs or '–'} |")
    return "\n".join(lines) + "\n"
