"""benchmarks/lv_stability/_demo_augment: the plan (the demo's commands), the parts of
``standard`` against lvseg's preset, the fall rule and the falls table on hand-made records, and
the ``--quick`` sweep end to end on the bundled Sunnybrook sample (every row × augmentation cell
against the raw records, each run's ``config.json``, a restart that trains nothing, ``--replot``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.lv_stability import _demo_augment as sweep
from benchmarks.lv_stability._demo_outputs import falls
from benchmarks.lv_stability._demo_runs import PARTS, PRESETS, fell, part_configs, register_parts

ROWS = {"EDPCNN": ("edpcnn", "test_dice"), "U-Net": ("unet", "test_dice"),
        "U-Net+DP": ("unet", "test_dice_dp")}  # fmt: skip


def test_the_plan_is_the_demo_commands_per_seed_augmentation_and_method() -> None:
    runs = sweep.plan(quick=False)
    assert len(runs) == 4 * 6 * 2 and len({r.key for r in runs}) == 48
    assert [r.key for r in runs[:4]] == ["edpcnn_none_s0", "unet_none_s0", "edpcnn_standard_s0",
                                        "unet_standard_s0"]  # fmt: skip
    by = {r.key: r for r in runs}
    assert by["edpcnn_flips_s3"].options() == [
        "--method", "edpcnn", "--data", "sunnybrook", "--train-size", "10", "--iterations", "150",
        "--val-every", "25", "--seed", "3", "--augment", "flips"]
    assert by["unet_noflip_s1"].options()[6:8] == ["--iterations", "200"]
    assert [r.key for r in sweep.plan(quick=True)] == ["edpcnn_noflip_s0", "unet_noflip_s0",
                                                       "edpcnn_flips_s0", "unet_flips_s0"]


def test_the_parts_are_standard_one_part_at_a_time() -> None:
    from lvseg.train_choices import PRESETS as LVSEG_PRESETS

    standard, parts = LVSEG_PRESETS["standard"], part_configs()
    assert PRESETS == ("none", "standard", "noflip", "flips", "geometry", "intensity")
    fields = ("flip", "rotation", "scale", "elastic", "gamma", "contrast", "brightness")
    for name, kept in PARTS.items():
        for f in fields:
            want = getattr(standard, f) if f in kept else 0.0
            assert getattr(parts[name], f) == want, (name, f)
    # together the parts are standard (no part left out, none twice)
    assert sorted(f for kept in PARTS.values() for f in kept) == sorted(
        f for f in fields if getattr(standard, f))


def test_parts_cannot_be_registered_after_lvseg_config_is_imported() -> None:
    import lvseg.config  # noqa: F401  (the --augment choices are fixed now)

    with pytest.raises(RuntimeError, match="must run before lvseg.config is imported"):
        register_parts()


def test_the_fall_rule_and_the_falls_table() -> None:
    assert (fell(10, 18), fell(9, 18), fell(0, 1), fell(1, 1), fell(None, 18)) == (
        True, False, False, True, None)  # fmt: skip
    records = [{"method": "edpcnn", "preset": "none", "seed": s, "fell": f}
               for s, f in ((0, False), (1, True), (2, False), (3, True))]
    records += [{"method": "unet", "preset": "none", "seed": 0, "fell": None}]
    assert falls(records, ["edpcnn", "unet"], ["none", "flips"])["rows"] == [
        ["edpcnn", "2 / 4 (seeds [1, 3])", "–"], ["unet", "–", "–"]]


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``--quick`` sweep (4 runs of 2 iterations, one child process), then a restart."""
    tmp = tmp_path_factory.mktemp("demo_augment")
    args = ["--quick", "--threads", "1", "--out", str(tmp / "out"), "--work", str(tmp / "runs")]
    sweep.main(args)
    raw = tmp / "out" / "raw" / "demo_augment_quick.jsonl"
    metrics = sorted((tmp / "runs").glob("*/run/metrics.jsonl"))
    before = (raw.read_text(), [p.stat().st_mtime_ns for p in metrics])
    sweep.main(args)  # the restart
    return {"tmp": tmp, "args": args, "raw": raw, "metrics": metrics, "before": before,
            "after": (raw.read_text(), [p.stat().st_mtime_ns for p in metrics])}


def test_quick_sweep_has_every_cell_from_its_raw_records(quick: dict[str, Any]) -> None:
    out = quick["tmp"] / "out"
    result = json.loads((out / "demo_augment_quick.json").read_text())
    records = [json.loads(line) for line in quick["raw"].read_text().splitlines()]
    assert result["complete"] and result["runs_done"] == result["runs_planned"] == 4
    assert result["table"]["columns"] == ["row", *sweep.QUICK["presets"]]
    assert [row[0] for row in result["table"]["rows"]] == list(ROWS)
    for label, (method, field) in ROWS.items():
        for preset in sweep.QUICK["presets"]:
            (record,) = [r for r in records if (r["method"], r["preset"]) == (method, preset)]
            assert 0.0 <= record[field] <= 1.0
            assert result["means"][label][preset] == {"mean": record[field], "seeds": [0],
                                                      "values": [record[field]]}  # fmt: skip
    row = result["table"]["rows"][0]  # EDPCNN: "mean (seed 0's value)"
    assert row[1] == "{0:.3f} ({0:.3f})".format(result["means"]["EDPCNN"]["noflip"]["mean"])
    assert [r[0] for r in result["falls"]["rows"]] == ["edpcnn", "unet"]
    assert all(c.endswith("/ 1") for c in result["falls"]["rows"][0][1:])
    no_dp = ["–"] * len(sweep.QUICK["presets"])  # the U-Net is validated without the DP
    assert result["falls"]["rows"][1][1:] == no_dp
    assert {"method", "machine", "curves", "runs", "augment_ranges"} <= set(result)
    assert (out / "demo_augment_quick.png").stat().st_size > 0


def test_quick_runs_are_the_planned_commands(quick: dict[str, Any]) -> None:
    records = [json.loads(line) for line in quick["raw"].read_text().splitlines()]
    for r in records:
        config = json.loads((quick["tmp"] / "runs" / r["key"] / "run" / "config.json").read_text())
        assert (config["augment"], config["seed"], config["iterations"], config["method"],
                config["data"], config["train_size"]) == (r["preset"], 0, 2, r["method"],
                                                          "sunnybrook", 10)  # fmt: skip
        assert r["augment_ranges"]["flip"] == (0.5 if r["preset"] in ("standard", "flips") else 0)
        assert [v[0] for v in r["validations"]] == [1, 2] and r["threads"] == 1
        assert (r["n_val"], r["n_test"]) == (18, 18)  # SCD0000101 and SCD0000201, all slices
        assert max(v[1] for v in r["validations"]) == pytest.approx(r["best_dice"], abs=1e-5)
        if r["method"] == "edpcnn":  # validated through the DP: a rim count and the rule
            assert 0 <= r["at_rim_last"] <= 18 and r["fell"] == (r["at_rim_last"] * 2 > 18)  # the rule, by hand
            assert r["test_dice_dp"] is None
        else:
            assert r["at_rim_last"] is None and r["fell"] is None
        assert r["seconds"] > 0 and r["load_average_start"] >= 0


def test_the_restart_trains_nothing(quick: dict[str, Any]) -> None:
    assert len(quick["metrics"]) == 4
    assert quick["after"] == quick["before"]  # no record appended, no run directory touched


def test_replot_rebuilds_json_and_png_from_the_raw_records(quick: dict[str, Any]) -> None:
    out = quick["tmp"] / "out"
    before = json.loads((out / "demo_augment_quick.json").read_text())
    (out / "demo_augment_quick.json").unlink()
    (out / "demo_augment_quick.png").unlink()
    sweep.main([*quick["args"], "--replot"])
    after = json.loads((out / "demo_augment_quick.json").read_text())
    assert (after["table"], after["falls"], after["means"]) == (
        before["table"], before["falls"], before["means"])  # fmt: skip
    assert (out / "demo_augment_quick.png").stat().st_size > 0


def test_replot_without_records_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"--replot found no raw records at .*demo_augment_quick"):
        sweep.main(["--quick", "--replot", "--out", str(tmp_path), "--work", str(tmp_path)])
