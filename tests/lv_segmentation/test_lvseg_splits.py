"""Patient splits never share a patient; telescopic subsets are nested."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lvseg.config import TrainConfig
from lvseg.data import (
    SCHEMES,
    split_by_number,
    split_by_patient,
    split_from_lists,
    telescopic_subsets,
    thesis_validation,
)
from lvseg.prepare import prepare_data

patient_lists = st.lists(
    st.sampled_from([f"p{i:02d}" for i in range(30)]), min_size=3, max_size=120
)


@settings(max_examples=60, deadline=None)
@given(ids=patient_lists, seed=st.integers(0, 2**31), share=st.floats(0.05, 0.9))
def test_no_patient_in_two_splits_and_every_item_in_one(ids, seed, share):
    assume(len(set(ids)) >= 3)
    rest = (1 - share) / 2
    split = split_by_patient(ids, (share, rest, rest), seed=seed)
    parts = [split.train, split.val, split.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(ids)))
    patient_sets = [{ids[i] for i in part} for part in parts]
    for a in range(3):
        for b in range(a + 1, 3):
            assert patient_sets[a].isdisjoint(patient_sets[b])
    for name, part in zip(("train", "val", "test"), parts):
        assert split.patients[name] == tuple(sorted({ids[i] for i in part}))
        assert len(split.patients[name]) >= 1
        assert np.all(np.diff(part) > 0) and part.dtype == np.int64


def test_deterministic_per_seed_and_seed_dependent():
    ids = [f"p{i}" for i in range(20) for _ in range(3)]
    a, b = split_by_patient(ids, seed=4), split_by_patient(ids, seed=4)
    assert a.patients == b.patients and np.array_equal(a.train, b.train)
    assert len({split_by_patient(ids, seed=s).patients["test"] for s in range(6)}) > 1
    # the order in which items come does not matter, only the patients
    shuffled = split_by_patient(ids[::-1], seed=4)
    assert shuffled.patients == a.patients


def test_patient_counts_follow_the_fractions():
    ids = [f"p{i}" for i in range(10)]
    split = split_by_patient(ids, (0.7, 0.2, 0.1), seed=0)
    assert [len(split.patients[k]) for k in ("train", "val", "test")] == [7, 2, 1]
    three = split_by_patient(["a", "b", "c"], (0.8, 0.1, 0.1))
    assert [len(three.patients[k]) for k in ("train", "val", "test")] == [1, 1, 1]
    no_test = split_by_patient(ids, (0.8, 0.2, 0.0))
    assert len(no_test.test) == 0 and no_test.patients["test"] == ()


@pytest.mark.parametrize(
    ("ids", "fractions", "message"),
    [
        (["a", "b"], (0.8, 0.1, 0.1), "need at least 3 patients for fractions (0.8, 0.1, 0.1)"),
        (["a", "b", "c"], (0.5, 0.5, 0.5), "summing to 1; got (0.5, 0.5, 0.5)"),
        (["a", "b", "c"], (1.2, -0.1, -0.1), "three non-negative numbers"),
        (["a", "b", "c"], (0.5, 0.5), "three non-negative numbers"),
    ],
)
def test_invalid_fractions(ids, fractions, message):
    with pytest.raises(ValueError) as info:
        split_by_patient(ids, fractions)
    assert message in str(info.value)


def test_explicit_lists():
    ids = ["a", "b", "a", "c", "d", "c"]
    split = split_from_lists(ids, train=["a", "d"], val=["c"], test=["b"])
    assert split.train.tolist() == [0, 2, 4] and split.val.tolist() == [3, 5]
    assert split.test.tolist() == [1] and split.patients["train"] == ("a", "d")
    with pytest.raises(ValueError) as info:
        split_from_lists(ids, train=["a", "b", "d"], val=["c", "b"])
    assert "patient 'b' is listed in both train and val" in str(info.value)
    with pytest.raises(ValueError) as info:
        split_from_lists(ids, train=["a", "b", "d", "x"], val=["c"])
    assert "listed patients have no item: ['x']" in str(info.value)
    with pytest.raises(ValueError) as info:
        split_from_lists(ids, train=["a"], val=["c"])
    assert "patients with items are in no split: ['b', 'd']" in str(info.value)


def test_telescopic_subsets_are_nested_and_stable():
    indices = np.arange(100, 400, 3)
    subsets = telescopic_subsets(indices, [100, 5, 10, 50], seed=3)
    sizes = sorted(subsets)
    for small, big in zip(sizes, sizes[1:]):
        assert np.array_equal(subsets[small], subsets[big][:small])
    assert set(subsets[100]) == set(indices.tolist())
    assert np.array_equal(telescopic_subsets(indices, [10], seed=3)[10], subsets[10])
    assert not np.array_equal(telescopic_subsets(indices, [10], seed=4)[10], subsets[10])
    for bad in (0, 101, 2.5):
        with pytest.raises(ValueError) as info:
            telescopic_subsets(indices, [bad])
        assert f"sizes must be integers in [1, 100]; got {bad!r}" in str(info.value)


def test_split_by_number_is_the_thesis_rule() -> None:
    ids = ["patient005", "patient001", "patient005", "patient100", "patient099"]
    s = split_by_number(ids)
    assert s.patients == {"train": ("patient001", "patient099"),
                          "val": ("patient005", "patient100"), "test": ()}
    assert s.val.tolist() == [0, 2, 3] and s.test.size == 0
    with pytest.raises(ValueError, match="the thesis split needs patient ids ending in a number"):
        split_by_number(["SC-HF-I-1x"])


def test_thesis_validation_is_every_fifth_of_acdcs_100_training_patients() -> None:
    ids = [f"patient{n:03d}" for n in range(100, 0, -1)]  # in any order
    expected = ("patient005", "patient010", "patient015", "patient020", "patient025",
                "patient030", "patient035", "patient040", "patient045", "patient050",
                "patient055", "patient060", "patient065", "patient070", "patient075",
                "patient080", "patient085", "patient090", "patient095", "patient100")
    assert thesis_validation(ids) == expected
    assert SCHEMES["thesis"](ids, (0.8, 0.1, 0.1), 3).patients["val"] == expected  # training's
    assert thesis_validation(iter(ids[:3])) == ("patient100",)  # any iterable


def _acdc_dir() -> Path | None:
    """``../shared/data/acdc/training`` of the checkout (or of ``$LVSEG_ACDC``), if present."""
    root = Path(__file__).resolve().parents[2]
    candidates = (os.environ.get("LVSEG_ACDC"), root.parent / "shared" / "data" / "acdc",
                  root.parent.parent / "shared" / "data" / "acdc")  # a worktree in wt/<name>
    for base in filter(None, candidates):
        if (Path(base) / "training").is_dir():
            return Path(base) / "training"
    return None


@pytest.mark.skipif(_acdc_dir() is None, reason="the ACDC training data are not in ../shared/data/"
                    "acdc (research licence, not redistributed; set LVSEG_ACDC to its folder)")
def test_thesis_split_of_acdc_gives_the_thesis_1436_and_372_images() -> None:
    config = TrainConfig(method="edpcnn", data="acdc", data_dir=str(_acdc_dir()), split="thesis",
                         train_size=None)
    prepared = prepare_data(config)
    assert (len(prepared.train), len(prepared.val), len(prepared.test)) == (1436, 372, 0)
    assert len(prepared.patients["val"]) == 20
