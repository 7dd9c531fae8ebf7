"""python -m benchmarks.acdc_ablation --quick: the whole code path (plan, training with validation and
best-checkpoint selection, baselines, jitter, resume, JSON + PNG) on a tiny setting.

On ten real ACDC patients (``../shared/data/acdc``, linked, never copied) where the data are
present; elsewhere (a fresh clone, CI) on phantoms written in the ACDC layout, so the code path
is always tested.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.acdc_ablation import __main__ as bench  # noqa: E402
from lvseg.data import make_phantoms  # noqa: E402

PATIENTS = [f"patient{k:03d}" for k in range(1, 11)]  # thesis split: 005 and 010 validate


SHARED = next((p for p in (ROOT.parent / "shared" / "data" / "acdc",
                           ROOT.parent.parent / "shared" / "data" / "acdc")  # a worktree
               if (p / "training").is_dir()), None)  # fmt: skip


def _acdc(tmp_path: Path, shared: Path | None) -> Path:
    """Ten ACDC patients: the shared data linked, or phantoms in the ACDC layout."""
    out = tmp_path / "acdc" / "training"
    out.mkdir(parents=True)
    for k, name in enumerate(PATIENTS):
        if shared is not None:
            (out / name).symlink_to(shared / "training" / name)
            continue
        (out / name).mkdir()
        slices = make_phantoms(4, size=64, seed=k, slices_per_patient=4)
        for frame, part in ((1, slices[:2]), (12, slices[2:])):
            image = np.stack([s.image for s in part], axis=-1).astype(np.float32) * 400
            labels = np.stack([s.mask for s in part], axis=-1).astype(np.uint8) * 3
            for data, suffix in ((image, ""), (labels, "_gt")):
                img = nib.Nifti1Image(data, np.diag([1.37, 1.37, 10.0, 1.0]))
                nib.save(img, str(out / name / f"{name}_frame{frame:02d}{suffix}.nii.gz"))
    return tmp_path / "acdc"


@pytest.mark.parametrize("source", ["acdc", "phantoms"])
def test_quick_run_writes_the_tables_and_resumes(tmp_path: Path, source: str) -> None:
    if source == "acdc" and SHARED is None:
        pytest.skip("the ACDC training data are not in ../shared/data/acdc (research licence, "
                    "not redistributed); the phantom variant tests the same code path")
    data = _acdc(tmp_path, SHARED if source == "acdc" else None)
    args = ["--quick", "--data-dir", str(data), "--out", str(tmp_path / "out"),
            "--work", str(tmp_path / "runs"), "--workers", "1"]  # fmt: skip
    bench.main(args)
    result = json.loads((tmp_path / "out" / "acdc_ablation_quick.json").read_text())
    assert result["complete"] and result["runs_done"] == result["runs_planned"] == 10
    rows = {r[0]: r[1] for r in result["table"]["rows"]}
    assert rows["U-Net"].endswith("[0.5115]") and rows["EDPCNN (bypass)"].endswith("[0.7270]")
    for name in ("U-Net+DP", "EDPCNN-ES-hi", "EDPCNN-ES-lo (pool 4)",
                 "DP on an untrained U-Net (no labels)", "EDPCNN-softDP (relaxation)",
                 "disc of the mean radius (no labels)",
                 "U-Net, mean teacher on unlabelled images",
                 "EDPCNN, teacher's DP pseudo-labels on unlabelled images"):
        assert not rows[name].startswith("-"), name
    runs = {r["variant"]: r for r in result["runs"]}
    assert runs["es-lo"]["train_config"]["star"]["pool"] == 4
    assert runs["softdp"]["method"] == "edpcnn-softdp" and "edpcnn-softdp" in runs["softdp"]["evaluations"]
    from lvseg.methods import METHODS

    default = METHODS["edpcnn-softdp"].temperature  # no grid in --quick: the method's default
    assert runs["softdp"]["train_config"]["temperature"] == default
    assert runs["edpcnn-semi"]["train_config"]["unlabelled"] == 10 == runs["unet-semi"][
        "train_config"]["unlabelled"]
    assert runs["edpcnn"]["curve"][0]["iteration"] == 3 and "train" in runs["edpcnn"]["curve"][0]
    assert list(runs["edpcnn"]["jitter_dice"]) == ["0", "0.2"]
    assert runs["jitter-delta2"]["delta"] == 2 and list(runs["jitter-delta2"]["jitter_dice"]) == [
        "0", "0.2"]  # the same model, the DP's delta replaced at test
    jitter_rows = json.loads((tmp_path / "out" / "acdc_ablation_quick_jitter.json").read_text())
    assert [r[0] for r in jitter_rows["table"]["rows"]] == ["edpcnn (delta 1)", "edpcnn (delta 2)"]
    assert (tmp_path / "out" / "acdc_ablation_quick.png").stat().st_size > 0
    seconds = json.loads((tmp_path / "out" / "acdc_ablation_quick_seconds.json").read_text())
    cells = {r[0]: r[1] for r in seconds["table"]["rows"]}
    assert re.fullmatch(r"\d+ s \(1; load [\d.]+–[\d.]+\)", cells["EDPCNN (bypass)"]), cells
    assert cells["disc of the mean radius (no labels)"] == "no training"
    issue20 = json.loads((tmp_path / "out" / "acdc_ablation_quick_issue20.json").read_text())
    assert issue20["complete"] and issue20["runs_done"] == 6  # unet, edpcnn, es-hi, 2 semi, softdp
    assert issue20["table"]["columns"] == ["method", "10 images"]
    cells = {r[0]: r[1] for r in issue20["table"]["rows"]}
    assert re.fullmatch(r"0\.\d{3} \(1\); \d+ s", cells["EDPCNN-ES"]), cells
    assert re.fullmatch(r"[+-]0\.\d{3} \(1 seed; best: EDPCNN \(bypass\)\)",
                        cells["bypass − softDP (target: ≥ 0)"]), cells
    ceilings = dict(result["ceiling_table"]["rows"])  # the DP on the true masks
    assert list(ceilings) == ["pool 1", "pool 2", "pool 4"]
    assert all(0.5 < d <= 1.0 for d in ceilings.values()), ceilings
    lines = (tmp_path / "out" / "raw" / "acdc_ablation_quick.jsonl").read_text().splitlines()
    bench.main(args)  # a restart finds every run done and only rewrites the outputs
    assert (tmp_path / "out" / "raw" / "acdc_ablation_quick.jsonl").read_text().splitlines() == lines
    assert [p.name for p in (tmp_path / "out" / "raw").iterdir()] == ["acdc_ablation_quick.jsonl"]
    assert not list(tmp_path.rglob("*.claim"))  # no claim files (lvseg.lock: the run's own lock)


def test_softdp_trains_with_the_temperature_chosen_on_validation() -> None:
    """Every softdp run of the full plan waits for the temperature grid and takes its best."""
    from benchmarks.acdc_ablation._study import FULL, TEMPERATURES, Job, after_of, chosen, jobs_of

    grid = [j for j in jobs_of(FULL) if j.variant.startswith("softdp-t")]
    assert [(j.size, j.seed) for j in grid] == [(10, 0)] * len(TEMPERATURES)
    runs = [j for j in jobs_of(FULL) if j.variant == "softdp"]
    assert sorted((j.size, j.seed) for j in runs) == [(s, k) for s in (10, 20, 50)
                                                       for k in FULL.seeds[s]]
    assert FULL.seeds[10] == FULL.seeds[20] == (0, 1, 2)  # issue #20: >= 3 seeds at 10 and 20
    assert all(after_of(j, FULL) == tuple(g.key for g in grid) for j in runs)
    records = [{"key": g.key, "train_config": {"temperature": t},
                "evaluations": {"edpcnn-softdp": {"dice": d}}}
               for g, t, d in zip(grid, TEMPERATURES, (0.70, 0.82, 0.80, 0.60))]
    assert chosen(runs[0], records) == {"temperature": TEMPERATURES[1]}
    assert chosen(runs[0], []) == {} and chosen(grid[0], records) == {}
    assert after_of(Job(10, 0, "edpcnn", 500), FULL) == ()


def test_a_restart_counts_the_older_per_worker_logs(tmp_path: Path) -> None:
    """Records of the per-worker logs written before the study ran on Dask (``stem.1.jsonl``)
    count as finished: those runs are not run again, and new records go to ``stem.jsonl``."""
    data = _acdc(tmp_path, None)
    out = tmp_path / "out"
    args = ["--quick", "--data-dir", str(data), "--out", str(out), "--work", str(tmp_path / "runs"),
            "--workers", "1"]  # fmt: skip
    bench.main(args)
    raw = out / "raw" / "acdc_ablation_quick.jsonl"
    lines = raw.read_text().splitlines()
    older = [x for x in lines if '"variant": "baselines"' in x or '"variant": "ceilings"' in x]
    assert len(older) == 2
    (out / "raw" / "acdc_ablation_quick.1.jsonl").write_text("".join(x + "\n" for x in older))
    raw.write_text("".join(x + "\n" for x in lines if x not in older))
    bench.main(args)  # nothing left to run
    assert raw.read_text().splitlines() == [x for x in lines if x not in older]
    assert json.loads((out / "acdc_ablation_quick.json").read_text())["complete"]


def test_a_bad_scheduler_address_is_a_clear_message(tmp_path: Path) -> None:
    data = _acdc(tmp_path, None)
    with pytest.raises(SystemExit, match="--scheduler 'tcp://127.0.0.1:9': no Dask scheduler"):
        bench.main(["--quick", "--data-dir", str(data), "--out", str(tmp_path / "out"),
                    "--work", str(tmp_path / "runs"), "--scheduler", "tcp://127.0.0.1:9"])


def test_missing_data_is_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="ACDC not found"):
        bench.main(["--quick", "--data-dir", str(tmp_path), "--out", str(tmp_path)])


def test_the_augmented_rows_run_every_seed_at_10_20_50(tmp_path: Path) -> None:
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, QUICK, Job, jobs_of

    jobs = jobs_of(FULL)
    for variant, method in (("unet-aug", "unet"), ("edpcnn-aug", "edpcnn")):
        runs = {(j.size, j.seed) for j in jobs if j.variant == variant}
        assert runs == {(s, seed) for s in (10, 20, 50) for seed in FULL.seeds[s]}, variant
        config = config_of(Job(10, 1, variant, 500), FULL, tmp_path)
        assert (config.method, config.augment, config.seed) == (method, "standard", 1)
    assert config_of(Job(10, 0, "edpcnn", 500), FULL, tmp_path).augment == "none"
    before = [j for j in jobs if not j.variant.endswith(("-aug", "-semi", "-k3", "-edge", "-avg",
                                                         "-noflip", "-1000"))
              and not j.variant.startswith("softdp")]
    # the plan before the -aug, -semi, -edge and softdp rows (38), and seed 2 at 10 and 20 images
    # (unet, edpcnn and the baselines at each)
    assert len(before) == 38 + 6
    assert not [j for j in jobs_of(QUICK) if j.variant.endswith(("-aug", "-noflip"))]
    noflip = {(j.size, j.seed, j.variant) for j in jobs if j.variant.endswith("-noflip")}
    assert noflip == {(s, seed, f"{m}-aug-noflip") for s in (10, 20) for seed in FULL.seeds[s]
                      for m in ("unet", "edpcnn")}  # paired with the -aug rows, every seed


def test_the_rows_keep_their_fit_steps_and_k3_trains_with_three(tmp_path: Path) -> None:
    """Every row that ran before lvseg's default became 3 fit steps keeps 1, whatever the
    default (resumed runs must match their checkpoints); ``edpcnn-k3`` runs every seed at 10,
    20 and 50 images with 3, as do the rows added after it (``*-aug-semi``, 10 images)."""
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, VARIANTS, Job, jobs_of

    k3 = {(j.size, j.seed) for j in jobs_of(FULL) if j.variant == "edpcnn-k3"}
    assert k3 == {(s, seed) for s in (10, 20, 50) for seed in FULL.seeds[s]}
    steps = {v: config_of(Job(10, 0, v, 500), FULL, tmp_path).fit_steps for v in VARIANTS}
    assert steps.pop("edpcnn-k3") == 3 and steps.pop("edpcnn-old") == 2
    assert steps.pop("edpcnn-aug-semi") == 3 == steps.pop("unet-aug-semi")
    assert steps.pop("edpcnn-aug-semi-edge") == 3 == steps.pop("edpcnn-aug-semi-avg")
    assert steps.pop("edpcnn-aug-noflip-semi") == 3 == steps.pop("edpcnn-aug-noflip-edge")
    assert steps.pop("edpcnn-defaults-1000") == 3 == steps.pop("unet-defaults-1000")
    for variant, sizes in (("edpcnn-aug-semi", (10,)), ("unet-aug-semi", (10,)),
                           ("edpcnn-aug-semi-edge", (10, 20)), ("edpcnn-aug-semi-avg", (10, 20)),
                           ("edpcnn-aug-noflip-semi", (10, 20)),
                           ("edpcnn-aug-noflip-edge", (10, 20))):
        both = {(j.size, j.seed) for j in jobs_of(FULL) if j.variant == variant}
        assert both == {(s, seed) for s in sizes for seed in FULL.seeds[s]}, variant
    assert config_of(Job(10, 0, "edpcnn-aug-semi-avg", 500), FULL, tmp_path).average == 0.99
    assert set(steps.values()) == {1}, steps


def test_the_defaults_rows_train_1000_iterations_at_10_images_every_seed(tmp_path: Path) -> None:
    """The rows at lvseg's defaults run 1000 iterations (the default since issue #20) where
    every other row of their size runs the plan's 500, validate every 50 (both methods), train
    as ``lvseg train`` does by default, and stay out of the quick plan."""
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, QUICK, jobs_of

    jobs = jobs_of(FULL)
    for variant, method in (("edpcnn-defaults-1000", "edpcnn"), ("unet-defaults-1000", "unet")):
        mine = [j for j in jobs if j.variant == variant]
        assert {(j.size, j.seed, j.iterations) for j in mine} == {
            (10, seed, 1000) for seed in FULL.seeds[10]}, variant
        assert FULL.val_every[variant] == 50
        config = config_of(mine[0], FULL, tmp_path)
        assert (config.method, config.augment, config.iterations) == (method, "noflip", 1000)
        assert (config.fit_steps, config.star.edge_offset) == (3, 0.5)
    assert {j.iterations for j in jobs if j.size == 10 and not j.variant.endswith("-1000")
            and j.variant not in ("baselines",)} == {500}
    assert not [j for j in jobs_of(QUICK) if j.variant.endswith("-1000")]


def test_every_row_draws_the_contour_where_the_study_started(tmp_path: Path) -> None:
    """lvseg's default moved the DP contour to the edge (0.5); every row of the study keeps the
    contour through the chosen points (0), whatever the default, but the rows at the edge."""
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, VARIANTS, Job
    from lvseg.config import TrainConfig

    assert TrainConfig(method="edpcnn").star.edge_offset == 0.5
    offsets = {v: config_of(Job(10, 0, v, 500), FULL, tmp_path).star.edge_offset
               for v in VARIANTS}
    assert offsets.pop("edpcnn-aug-semi-edge") == 0.5 == offsets.pop("edpcnn-aug-semi-avg")
    assert offsets.pop("edpcnn-aug-noflip-semi") == 0.5 == offsets.pop("edpcnn-aug-noflip-edge")
    assert offsets.pop("edpcnn-defaults-1000") == 0.5 == offsets.pop("unet-defaults-1000")
    assert set(offsets.values()) == {0.0}, offsets


def test_every_row_without_augment_trains_as_it_did_before_the_default(tmp_path: Path) -> None:
    """lvseg's default became ``--augment standard``; every row without AUGMENT keeps ``none``,
    whatever the default (resumed runs must match their checkpoints), the augmented rows
    ``standard``."""
    from benchmarks.acdc_ablation._data import config_of
    from benchmarks.acdc_ablation._study import FULL, VARIANTS, Job
    from lvseg.config import TrainConfig

    assert TrainConfig(method="edpcnn").augment == "noflip"
    augment = {v: config_of(Job(10, 0, v, 500), FULL, tmp_path).augment for v in VARIANTS}
    noflip = {v for v in VARIANTS if "-noflip" in v}
    assert noflip == {"unet-aug-noflip", "edpcnn-aug-noflip", "edpcnn-aug-noflip-semi",
                      "edpcnn-aug-noflip-edge"}
    assert {augment.pop(v) for v in noflip} == {"noflip"}
    augmented = {v for v in VARIANTS if "-aug" in v} - noflip
    assert augmented == {"unet-aug", "edpcnn-aug", "unet-aug-semi", "edpcnn-aug-semi",
                         "edpcnn-aug-semi-edge", "edpcnn-aug-semi-avg"}
    assert {augment.pop(v) for v in augmented} == {"standard"}
    # the rows at lvseg's defaults of 1000 iterations train as lvseg train does now
    assert augment.pop("edpcnn-defaults-1000") == "noflip" == augment.pop("unet-defaults-1000")
    assert len(augment) > 10 and set(augment.values()) == {"none"}, augment


def test_a_variant_entry_gives_its_plan_settings_and_its_row_is_checked() -> None:
    """A variant's entry gives the plans' settings (the full plan's validation period by method
    unless it names one); a variant missing from ROWS, or listed twice, fails with its name; a
    setting that would be ignored is refused."""
    from benchmarks.acdc_ablation._study import FULL, QUICK
    from benchmarks.acdc_ablation._variants import REGISTRY, ROWS, Variant, _check_rows

    assert FULL.val_every["unet-semi"] == 100 and FULL.val_every["edpcnn-semi"] == 50
    assert FULL.val_every["es-lo2"] == 100 and FULL.val_every["softdp-t3"] == 50
    assert FULL.only["edpcnn-aug-semi-edge"] == (10, 20) and "unet" not in FULL.only
    assert QUICK.only["softdp"] == (10,) and QUICK.only["edpcnn-k3"] == ()
    assert "es-lo2" not in FULL.every_seed and "edpcnn-k3" in FULL.every_seed
    with pytest.raises(ValueError, match=r"missing \['softdp-t100'\], unknown \[\], listed"):
        _check_rows(ROWS[:-1], REGISTRY)
    with pytest.raises(ValueError, match=r"unknown \[\], listed twice \['unet'\]"):
        _check_rows((*ROWS[:-1], "unet"), REGISTRY)
    with pytest.raises(ValueError, match=r"missing \['edpcnn-new'\]"):
        _check_rows(ROWS, {**REGISTRY, "edpcnn-new": Variant("edpcnn", "new")})
    with pytest.raises(ValueError, match="method 'edpcnn-x' has no validation period"):
        Variant("edpcnn-x", "x")
    assert Variant("edpcnn-x", "x", val_every=10).val_every == 10
    with pytest.raises(ValueError, match=r"every_seed=True, quick=\(\) without sizes"):
        Variant("edpcnn", "x", every_seed=True)


def test_the_edge_table_pairs_each_run_and_reads_the_run_folders_keys() -> None:
    """``_edge``: a run folder's name gives its study key; the table's paired differences and
    their spread by hand."""
    from benchmarks.acdc_ablation import _edge

    assert _edge.key_of(Path("n=10_seed=2_edpcnn-aug-semi_it=500")) == \
        "n=10/seed=2/edpcnn-aug-semi/it=500"

    def rec(variant: str, seed: int, at0: float, at5: float) -> dict:
        return {"variant": variant, "size": 10, "seed": seed, "dice": {"0": at0, "0.5": at5}}

    text = _edge.table([rec("edpcnn", 0, 0.80, 0.83), rec("edpcnn", 1, 0.90, 0.91),
                        rec("softdp", 0, 0.70, 0.69)])
    lines = text.splitlines()
    # differences +0.03 and +0.01: mean +0.020, s.d. sqrt(0.0002) = 0.014
    assert lines[2] == ("| edpcnn | 10 | 2 (0, 1) | 0.850 | 0.870 | "
                        "+0.020 ± 0.014, +0.010 … +0.030 |")
    assert lines[3] == "| softdp | 10 | 1 (0) | 0.700 | 0.690 | -0.010, -0.010 … -0.010 |"
    # every run: +0.03, +0.01, -0.01 -> mean +0.010, s.d. 0.020
    assert lines[4] == "| every trained run | | 3 | | | +0.010 ± 0.020, -0.010 … +0.030 |"


def test_the_edge_comparison_asks_for_the_data_only_when_something_is_left_to_score(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """With nothing scored yet it names ``--data-dir``; with every record in, ``--table`` needs
    no data (a fresh clone without ACDC)."""
    from benchmarks.acdc_ablation import _edge

    monkeypatch.setattr(_edge, "RESULTS", tmp_path / "edge.jsonl")
    monkeypatch.setattr(_edge, "RUNS", tmp_path / "runs")
    with pytest.raises(SystemExit):
        _edge.main(["--table", "--data-dir", str(tmp_path)])
    assert "--data-dir: expected the ACDC training folder" in capsys.readouterr().err
    truth = {"key": _edge.TRUTH, "size": 0, "seed": 0, "variant": _edge.TRUTH,
             "dice": {"0": 0.9, "0.5": 0.95}}
    (tmp_path / "edge.jsonl").write_text(json.dumps(truth) + "\n")
    assert _edge.main(["--table"]) == 0
    assert "| the DP on the true masks | none | 1 (0) | 0.900 | 0.950 |" in capsys.readouterr().out


def test_the_smoothing_table_pairs_each_setting_with_the_default(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """``_smoothing``: each setting's paired difference from lvseg's default width, with how many
    runs gain, by hand; ``--table`` without the data says how many kept runs are left."""
    from benchmarks.acdc_ablation import _smoothing as sm

    def rec(variant: str, seed: int, base: float, delta: float) -> dict:
        return {"key": f"{variant}/{seed}", "variant": variant, "size": 10, "seed": seed,
                "dice": {k: base + (delta if k == "n25_sm5" else 0.0) for k in sm.SETTINGS}}

    rows = sm.table([rec("edpcnn", 0, 0.80, 0.004), rec("edpcnn", 1, 0.90, -0.002),
                     {"key": sm.TRUTH, "dice": {k: 0.95 for k in sm.SETTINGS}}]).splitlines()
    assert rows[0].startswith("| row | images | runs | Dice, n25_sm7 | n25_sm5 | n25_sm3 |")
    # the two runs: mean of +0.004 and -0.002 = +0.001, one gains; the rest do not move
    assert rows[2] == "| truth | none | 1 | 0.950 | " + " | ".join(["+0.000"] * 6) + " |"
    assert rows[3] == ("| edpcnn | 10 | 2 | 0.850 | +0.001 (1/2) | +0.000 (0/2) | +0.000 (0/2) | "
                       "+0.000 (0/2) | +0.000 (0/2) | +0.000 (0/2) |")
    assert rows[4].startswith("| every trained run |  | 2 | 0.850 | +0.001 (1/2) |")
    monkeypatch.setattr(sm, "RESULTS", tmp_path / "smoothing.jsonl")
    monkeypatch.setattr(sm, "RUNS", tmp_path / "runs")
    assert sm.main(["--table"]) == 0
    assert "(0 kept runs not scored yet: give --data-dir to score them)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        sm.main(["--data-dir", str(tmp_path)])
    assert "--data-dir: expected the ACDC training folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the tables' cells
def _record(variant: str, size: int, seed: int, dice: float, step: float = 0.5,
            loads: tuple[float, float] = (1.0, 2.0), **extra: object) -> dict:  # fmt: skip
    """A finished run's record as ``train_job`` writes it (the fields the tables read)."""
    from benchmarks.acdc_ablation._study import EVALUATED, VARIANTS

    names = EVALUATED[variant]
    evals = {n: {"dice": dice + 0.1 * k} for k, n in enumerate(names)}  # unet-dp: +0.1
    return {"key": f"n={size}/seed={seed}/{variant}/it=500", "size": size, "seed": seed,
            "variant": variant, "method": VARIANTS[variant][0], "iterations": 500,
            "evaluations": evals, "resumed": False, "seconds_per_iteration_median": step,
            "train_seconds_this_session": 500 * step * 2 + 10.0,  # steps twice the median's
            "overhead_seconds_this_session": 10.0, "load_average_start": loads[0],
            "load_average_end": loads[1], "train_config": {"temperature": 1.0}, **extra}


def test_seconds_per_run_are_iterations_times_the_median_step() -> None:
    """Median over seeds of 500 x the median step, with the load range of the runs; the
    label-free baselines have none; a resumed run counts its whole length."""
    from benchmarks.acdc_ablation._cells import seconds_method, seconds_table
    from benchmarks.acdc_ablation._study import FULL

    records = [_record("unet", 10, 0, 0.70, step=0.2, loads=(1.0, 2.0)),
               _record("unet", 10, 1, 0.72, step=1.0, loads=(3.0, 9.0)),
               _record("unet", 10, 2, 0.74, step=0.4, loads=(2.5, 2.5), resumed=True),
               {"key": "n=10/seed=0/baselines/it=0", "size": 10, "seed": 0,
                "variant": "baselines", "evaluations": {"untrained-dp": {"dice": 0.5},
                                                        "mean-disc": {"dice": 0.7}}}]
    table = seconds_table(records, FULL)
    assert table["columns"] == ["method", "10 images", "20 images", "50 images", "100 images",
                                "200 images"]
    rows = {r[0]: r[1:] for r in table["rows"]}
    # 500 x (0.2, 1.0, 0.4) = 100, 500, 200 s: the median 200
    assert rows["U-Net"] == ["200 s (3; load 1.0–9.0)", "-", "-", "-", "-"]
    assert rows["U-Net+DP"][0] == "200 s (3; load 1.0–9.0)"  # the same runs
    assert rows["DP on an untrained U-Net (no labels)"][0] == "no training"
    assert rows["EDPCNN (bypass)"][0] == "-"
    text = seconds_method(records)
    assert "1.0 to 9.0 over these runs" in text
    assert "over the 2 runs trained in one session, the sum of steps was 2.00 to 2.00" in text


def test_the_issue20_table_pairs_the_differences_by_seed() -> None:
    """Closed forms: means, s.d. and median seconds per cell; each difference over the seeds
    both rows ran, the best of the EDPCNN rows by its mean."""
    from benchmarks.acdc_ablation import _issue20
    from benchmarks.acdc_ablation._study import FULL

    records = [
        *(_record("unet", 10, s, d, step=0.2) for s, d in ((0, 0.70), (1, 0.72), (2, 0.74))),
        *(_record("edpcnn", 10, s, d, step=st) for s, d, st in ((0, 0.85, 0.3), (1, 0.86, 0.5),
                                                                 (2, 0.90, 0.4))),
        *(_record("edpcnn-semi", 10, s, d) for s, d in ((0, 0.88), (1, 0.92))),  # mean 0.90
        *(_record("unet-semi", 10, s, d) for s, d in ((0, 0.80), (2, 0.84))),
        *(_record("unet-aug", 10, s, d) for s, d in ((0, 0.81), (1, 0.83))),  # mean 0.82
        *(_record("unet-aug-noflip", 10, s, d) for s, d in ((1, 0.86), (2, 0.75))),  # 0.805
        *(_record("softdp", 10, s, d, train_config={"temperature": 3.0})
          for s, d in ((0, 0.83), (1, 0.84))),
        *(_record("edpcnn-defaults-1000", 10, s, d) for s, d in ((0, 0.86), (2, 0.87))),
        *(_record("unet-defaults-1000", 10, s, d) for s, d in ((0, 0.80), (1, 0.81), (2, 0.82))),
        _record("edpcnn", 20, 0, 0.85),  # no U-Net at 20 images: no difference
    ]
    table = _issue20.table(records, FULL)
    assert table["columns"] == ["method", "10 images", "20 images", "50 images"]
    rows = {r[0]: r[1:] for r in table["rows"]}
    assert list(rows)[:20] == [
        "U-Net", "U-Net, augmented", "U-Net, augmented without flips",
        "U-Net, mean teacher (semi-supervised)", "U-Net, augmented + mean teacher", "U-Net+DP",
        "EDPCNN (bypass)", "EDPCNN (bypass), 3 fit steps (lvseg's default)",
        "EDPCNN, augmented", "EDPCNN, augmented without flips", "EDPCNN, semi-supervised",
        "EDPCNN, augmented + semi-supervised (3 fit steps)",
        "EDPCNN, augmented + semi-supervised, contour at the edge (3 fit steps)",
        "EDPCNN, augmented + semi-supervised, contour at the edge, weight averaging 0.99",
        "EDPCNN at lvseg's defaults (augmented without flips, 3 fit steps, contour at the edge)",
        "EDPCNN, augmented without flips + semi-supervised (lvseg's defaults with --unlabelled "
        "10)", "U-Net at lvseg's defaults, 1000 iterations (augmented without flips)",
        "EDPCNN at lvseg's defaults, 1000 iterations",
        "EDPCNN-softDP, temperature 3 (chosen on validation)", "EDPCNN-ES"]
    assert rows["U-Net"] == ["0.720 ± 0.020 (3); 100 s", "-", "-"]
    assert rows["U-Net+DP"][0] == "0.820 ± 0.020 (3); 100 s"
    # s.d. of (0.85, 0.86, 0.90): sqrt(0.0014 / 2) = 0.0265; seconds 500 x median(0.3, 0.5, 0.4)
    assert rows["EDPCNN (bypass)"] == ["0.870 ± 0.026 (3); 200 s", "0.850 (1); 250 s", "-"]
    assert rows["EDPCNN-ES"] == ["-", "-", "-"]
    diffs = list(rows.values())[20:]
    # EDPCNN best at 10 = semi (0.90 > 0.87); seeds 0, 1 against the U-Net: 0.18, 0.20
    assert diffs[0] == ["+0.190 ± 0.014 (2 seeds; best: EDPCNN, semi-supervised)", "-", "-"]
    # against the semi-supervised U-Net only seed 0 pairs: 0.88 - 0.80
    assert diffs[1] == ["+0.080 (1 seed; best: EDPCNN, semi-supervised)", "-", "-"]
    # bypass - softDP, seeds 0, 1 (the better bypass row: the only one with runs)
    assert diffs[2] == ["+0.020 ± 0.000 (2 seeds; best: EDPCNN (bypass))", "-", "-"]
    # against the better U-Net row, the augmented one (0.82 > 0.72): 0.88 - 0.81, 0.92 - 0.83
    assert diffs[3] == ["+0.080 ± 0.014 (2 seeds; best: EDPCNN, semi-supervised)", "-", "-"]
    # both at lvseg's defaults, seeds 0 and 2 pair: 0.86 - 0.80, 0.87 - 0.82
    assert diffs[4] == ["+0.055 ± 0.007 (2 seeds)", "-", "-"]
    # the flips: only seed 1 has both U-Net rows (0.86 - 0.83); no EDPCNN pair
    assert diffs[5:] == [["+0.030 (1 seed)", "-", "-"], ["-", "-", "-"]]
    done, planned = _issue20.progress(records, FULL)
    assert done == 16 and planned > done  # the 20-image run is not the plan's (600 iterations)


def test_the_averaging_table_means_by_hand() -> None:
    from benchmarks.acdc_ablation._averaging import DECAYS, table

    def record(seed: int, trained: list[float], averaged: list[float]) -> dict:
        curve = [{"iteration": 50 * (k + 1), "trained": t, **{f"{d:g}": a for d in DECAYS}}
                 for k, (t, a) in enumerate(zip(trained, averaged))]
        return {"size": 10, "seed": seed, "curve": curve,
                "best": {k: max(c[k] for c in curve) for k in curve[0] if k != "iteration"}}

    text = table([record(0, [0.8, 0.6], [0.7, 0.7]), record(1, [0.5, 0.9], [0.9, 0.9])])
    rows = text.splitlines()
    assert rows[2] == "| trained (no average) | 0.800 / 0.900 | 0.850 | 0.700 |"
    assert rows[3] == "| EMA, decay 0.9 | 0.700 / 0.900 | 0.800 | 0.800 |"
    assert len(rows) == 2 + 1 + len(DECAYS)
