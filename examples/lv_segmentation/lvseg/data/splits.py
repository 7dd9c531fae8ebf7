"""Patient-level train/val/test splits and telescopic training subsets.

Slices of one patient are strongly correlated, so splits are made over patients: no patient has
slices in two splits. The named schemes (:data:`SCHEMES`) are ``random`` (:func:`split_by_patient`)
and ``thesis`` (:func:`split_by_number`: the thesis' ACDC split, after Baumgartner et al. 2017). Telescopic subsets follow the thesis (§5.1): shuffle the training set once
with a seed and take prefixes, so each smaller training set lies inside every bigger one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from diffbypass.validation import int_at_least

__all__ = [
    "ALL",
    "SCHEMES",
    "SPLITS",
    "Split",
    "split_by_number",
    "split_by_patient",
    "split_from_lists",
    "telescopic_subsets",
    "thesis_validation",
]

#: The parts of a patient split, in order (the one place their names are spelled).
SPLITS = ("train", "val", "test")

#: The name of every usable slice, without a patient split (beside :data:`SPLITS`).
ALL = "all"


@dataclass(frozen=True, eq=False)
class Split:
    """Item indices and patients of the train, validation and test splits.

    Attributes:
        train: indices (into the ``patient_ids`` given to the split function), sorted, int64.
        val: as ``train``.
        test: as ``train``; may be empty.
        patients: ``{"train": (...), "val": (...), "test": (...)}`` patient ids, sorted.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    patients: dict[str, tuple[str, ...]]


def split_by_patient(
    patient_ids: Sequence[str],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    *,
    seed: int = 0,
) -> Split:
    """Split items by patient, drawing patients at random in the given proportions.

    Patients are sorted, shuffled with ``seed`` and dealt out in order: train, val, test. The
    number of patients per split is proportional to ``fractions`` (largest remainders), and every
    split with a positive fraction gets at least one patient.

    Args:
        patient_ids: the patient of each item (e.g. ``PreparedData.patient_ids``).
        fractions: ``(train, val, test)`` shares of *patients*, non-negative, summing to 1.
        seed: seed of the shuffle; the same ids and seed give the same split.

    Returns:
        A :class:`Split` of item indices.

    Raises:
        ValueError: on invalid fractions, or fewer patients than splits with a positive share.

    Example:
        >>> s = split_by_patient(["a", "a", "b", "c", "c", "d"], (0.5, 0.25, 0.25), seed=0)
        >>> sorted(len(s.patients[k]) for k in ("train", "val", "test"))
        [1, 1, 2]
    """
    shares = [float(f) for f in fractions]
    if len(shares) != 3 or any(not math.isfinite(f) or f < 0 for f in shares) or not math.isclose(
        sum(shares), 1.0, abs_tol=1e-6
    ):
        raise ValueError(
            f"fractions must be three non-negative numbers (train, val, test) summing to 1; "
            f"got {fractions!r}"
        )
    int_at_least("seed", seed, 0)
    ids = [str(p) for p in patient_ids]
    patients = sorted(set(ids))
    positive = [i for i, f in enumerate(shares) if f > 0]
    if len(patients) < len(positive):
        raise ValueError(
            f"need at least {len(positive)} patients for fractions {fractions!r}; "
            f"got {len(patients)}"
        )
    counts = [1 if f > 0 else 0 for f in shares]
    for _ in range(len(patients) - sum(counts)):
        # give the next patient to the split furthest below its share
        deficits = [shares[i] * len(patients) - counts[i] for i in range(3)]
        counts[int(np.argmax(deficits))] += 1
    order = np.random.default_rng(seed).permutation(len(patients))
    groups, start = [], 0
    for count in counts:
        groups.append([patients[i] for i in order[start : start + count]])
        start += count
    return _make_split(ids, dict(zip(SPLITS, groups)))


def split_by_number(patient_ids: Sequence[str], divisor: int = 5) -> Split:
    """Validation = patients whose number is divisible by ``divisor``; training = the others.

    The number is the trailing digits of the patient id (``patient045`` → 45). With the
    default, on the 100 ACDC training patients, this is the thesis' split (Baumgartner et al.
    2017): 20 validation patients, 1436 training and 372 validation slices with an LV. There is
    no test split.

    Raises:
        ValueError: if a patient id does not end in a number.

    Example:
        >>> s = split_by_number(["patient004", "patient005", "patient010", "patient011"])
        >>> s.patients["train"], s.patients["val"]
        (('patient004', 'patient011'), ('patient005', 'patient010'))
    """
    ids = [str(p) for p in patient_ids]
    groups: dict[str, list[str]] = {name: [] for name in SPLITS}
    for patient in sorted(set(ids)):
        match = re.search(r"(\d+)$", patient)
        if match is None:
            raise ValueError(
                f"the thesis split needs patient ids ending in a number (ACDC's patientNNN); "
                f"got {patient!r}"
            )
        groups["val" if int(match.group(1)) % divisor == 0 else "train"].append(patient)
    return _make_split(ids, groups)


def thesis_validation(patient_ids: Iterable[str]) -> tuple[str, ...]:
    """The validation patients of the thesis split (``--split thesis``) among ``patient_ids``.

    What benchmarks scored "on the 20 thesis-validation patients" take from ACDC's training
    folder: the ``val`` patients of :data:`SCHEMES` ``["thesis"]`` (:func:`split_by_number`),
    sorted.

    Example:
        >>> thesis_validation(["patient011", "patient010", "patient004", "patient005"])
        ('patient005', 'patient010')
    """
    return _thesis(list(patient_ids), (1.0, 0.0, 0.0), 0).patients["val"]


def split_from_lists(
    patient_ids: Sequence[str],
    train: Iterable[str],
    val: Iterable[str],
    test: Iterable[str] = (),
) -> Split:
    """Split items by explicit patient lists (e.g. a published split).

    Args:
        patient_ids: the patient of each item.
        train: patients of the training split.
        val: patients of the validation split.
        test: patients of the test split (may be empty).

    Raises:
        ValueError: if a patient is in two lists, a listed patient has no item, or a patient
            with items is in no list (filter the items first to use a subset).

    Example:
        >>> s = split_from_lists(["a", "b", "b", "c"], train=["b"], val=["a"], test=["c"])
        >>> s.train.tolist(), s.val.tolist(), s.test.tolist()
        ([1, 2], [0], [3])
    """
    ids = [str(p) for p in patient_ids]
    groups = {name: [str(p) for p in group] for name, group in zip(SPLITS, (train, val, test))}
    seen: dict[str, str] = {}
    for name, group in groups.items():
        for patient in group:
            if patient in seen and seen[patient] != name:
                raise ValueError(
                    f"patient {patient!r} is listed in both {seen[patient]} and {name}"
                )
            seen[patient] = name
    unknown = sorted(set(seen) - set(ids))
    if unknown:
        raise ValueError(f"listed patients have no item: {unknown}")
    unassigned = sorted(set(ids) - set(seen))
    if unassigned:
        raise ValueError(
            f"patients with items are in no split: {unassigned}; list them or drop their items"
        )
    return _make_split(ids, groups)


def telescopic_subsets(
    indices: Sequence[int] | np.ndarray, sizes: Iterable[int], *, seed: int = 0
) -> dict[int, np.ndarray]:
    """Nested training subsets: one shuffle with ``seed``, then a prefix per size.

    The shuffle depends only on ``indices`` and ``seed``, so separate calls with different
    ``sizes`` agree: the subset of size 10 is inside the subset of size 100 either way.

    Args:
        indices: the training items (e.g. ``Split.train``).
        sizes: subset sizes, each between 1 and ``len(indices)``.
        seed: seed of the shuffle.

    Returns:
        ``{size: int64 indices}`` in shuffled order (the first ``size`` of one permutation).

    Example:
        >>> subsets = telescopic_subsets(range(100), [10, 50], seed=0)
        >>> set(subsets[10]) <= set(subsets[50]), len(subsets[50])
        (True, 50)
    """
    items = np.asarray(indices, dtype=np.int64).reshape(-1)
    int_at_least("seed", seed, 0)
    shuffled = items[np.random.default_rng(seed).permutation(len(items))]
    subsets = {}
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not (
            1 <= size <= len(items)
        ):
            raise ValueError(f"sizes must be integers in [1, {len(items)}]; got {size!r}")
        subsets[int(size)] = shuffled[: int(size)].copy()
    return subsets


def _make_split(ids: list[str], groups: dict[str, list[str]]) -> Split:
    members = {name: set(groups.get(name, [])) for name in SPLITS}
    arrays = {
        name: np.array([i for i, p in enumerate(ids) if p in members[name]], dtype=np.int64)
        for name in SPLITS
    }
    patients = {name: tuple(sorted(members[name])) for name in SPLITS}
    return Split(train=arrays["train"], val=arrays["val"], test=arrays["test"], patients=patients)


def _random(patient_ids: Sequence[str], fractions: tuple[float, float, float], seed: int) -> Split:
    return split_by_patient(patient_ids, fractions, seed=seed)


def _thesis(patient_ids: Sequence[str], fractions: tuple[float, float, float], seed: int) -> Split:
    """The thesis split: :func:`split_by_number` with its default; ``fractions`` and ``seed``
    are not used."""
    return split_by_number(patient_ids)


#: Patient split schemes by name: ``scheme(patient_ids, fractions, seed) -> Split``.
SCHEMES: dict[str, Callable[[Sequence[str], tuple[float, float, float], int], Split]] = {
    "random": _random,
    "thesis": _thesis,
}
