r"""Semi-supervised training (``--unlabelled K``): a mean teacher and the unlabelled batches.

The training split's slices outside the telescopic subset (:attr:`PreparedSplits.unlabelled
<lvseg.prepare.PreparedSplits>`) are used without their labels: no mask, contour or radius of
an unlabelled image is read anywhere. Their star centre is an *input*, given from the data as
for every image in the evaluation protocol (training, validation and test alike; the thesis
gives the centre to the model), so the unlabelled images keep theirs.

The teacher is an exponential moving average (EMA) of the student's U-Net (and of its learned
smoothness penalty, if any: :class:`~lvseg.averaging.WeightAverage`), updated after every
optimiser step (:func:`~lvseg.averaging.ema_update`,
:math:`\theta_t \leftarrow d\,\theta_t + (1 - d)\,\theta_s`, ``--teacher-decay`` :math:`d`).
Each iteration :meth:`MeanTeacher.batch` draws ``K`` unlabelled images (their own shuffled
epochs, :class:`~lvseg.sampler.BatchSampler`) and runs the teacher's U-Net on them; the method's
``semi_loss`` (:class:`~lvseg.methods.Method`) turns that into the student's loss:

* pixel-trained methods (``unet``, ``unet-dp``): the mean-teacher consistency, the mean squared
  error between the student's and the teacher's foreground probabilities;
* ``edpcnn``: pseudo-labels through the DP. The star of an unlabelled image is jittered and
  rotated by the same law as a labelled one (:func:`~lvseg.jitter.training_stars`), with the
  teacher's DP mask at the given centre in place of the unknown true mask (it truncates the
  jitter to the object and gives its radius); the teacher's exact DP indices on that star are
  the targets of the same bypass loss as the true indices of a labelled image, and the
  unlabelled warped maps go through the same bypass call, so the surrogate is fitted on them.
  With ``--unlabelled-agreement A`` only the lines where the teacher is consistent count: where
  its DP on the jittered star and its contour at the given centre cross the line within ``A``
  points of each other (the two stars' centres differ; the other lines get weight 0).

The unlabelled loss is weighted by ``--unlabelled-weight`` times a sigmoid-shaped ramp over the
first ``--unlabelled-rampup`` iterations (:func:`rampup`). The teacher (its weights and its
sampler) is saved in ``last.pt``, so a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from diffbypass_stardp import contour_points, mask_to_indices, star_mask, warp
from lvseg.averaging import WeightAverage
from lvseg.data.preprocessing import object_radius
from lvseg.jitter import training_stars
from lvseg.sampler import BatchSampler
from lvseg.star import StarConfig

if TYPE_CHECKING:
    from lvseg.config import TrainConfig
    from lvseg.distributed import Ranks

__all__ = ["MeanTeacher", "Unlabelled", "check_semi", "rampup"]

#: The options that only semi-supervised training reads (``--unlabelled K`` with K > 0).
SEMI_OPTIONS = ("unlabelled_weight", "unlabelled_rampup", "unlabelled_agreement", "teacher_decay")


def check_semi(config: TrainConfig, method: Any, able: list[str]) -> None:
    """Refuse semi-supervised options that would be ignored: ``unlabelled`` with a method
    without a ``semi_loss`` (``able`` lists those with one), another semi option changed
    without ``unlabelled``, ``unlabelled_agreement`` for a method that does not train through
    the DP.

    Raises:
        ValueError: naming the option, the method and the fix.
    """
    if config.unlabelled and method.semi_loss is None:
        raise ValueError(f"unlabelled > 0 needs a method with a semi-supervised loss "
                         f"({', '.join(able)}); got method {config.method!r}: drop --unlabelled")
    fields = {f.name: f for f in dataclasses.fields(config)}
    changed = [n for n in SEMI_OPTIONS if getattr(config, n) != fields[n].default]
    if changed and not config.unlabelled:
        raise ValueError(f"{changed[0]} is read only with unlabelled > 0; got unlabelled=0: add "
                         f"--unlabelled K, or drop --{changed[0].replace('_', '-')}")
    if config.unlabelled_agreement is not None and not method.end_to_end:
        raise ValueError(f"unlabelled_agreement is for methods trained through the DP; got "
                         f"method {config.method!r}: drop --unlabelled-agreement")


class Unlabelled(NamedTuple):
    """One iteration's unlabelled images and what the teacher says about them (this rank's
    slice of the global batch)."""

    images: Tensor
    """Images :math:`(K, 1, H, W)`."""
    maps: Tensor
    """The teacher's output maps :math:`(K, 1, H, W)` (no gradient)."""
    centers: Tensor | None
    """The student's star centres :math:`(K, 2)`, jittered (``None`` for pixel methods)."""
    angles: Tensor | None
    """The student's star rotations :math:`(K,)` (``None`` for pixel methods)."""
    star: StarConfig
    """The teacher's star and DP settings (its own learned smoothness penalty, if any)."""
    weight: float
    """The weight of the unlabelled loss at this iteration (ramp included)."""
    masks: Tensor | None = None
    """The teacher's DP masks at the given centres :math:`(K, H, W)` (CPU; end-to-end methods)."""
    agreement: int | None = None
    """``--unlabelled-agreement``: the largest disagreement (points) of a line that counts."""

    def pseudo_labels(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """The teacher's exact DP indices :math:`(K, N)` on the star ``points`` (int64), and
        each line's weight :math:`(K, N)`: 1, or with :attr:`agreement` 0 where the teacher's
        contour at the given centre crosses the line more than that many points away."""
        warped = self.star.reduce(warp(self.maps, points, mode=self.star.interpolation))
        indices = torch.as_tensor(self.star.dp("indices")(warped.detach().cpu()))
        keep = torch.ones(indices.shape)
        if self.agreement is not None and self.masks is not None:
            some = self.masks.flatten(1).any(1)  # an empty teacher mask: no line counts
            keep[~some] = 0.0
            if bool(some.any()):
                other = mask_to_indices(self.masks[some], points[some].detach().cpu())
                keep[some] = ((indices[some] - other).abs() <= self.agreement).float()
        return indices.to(points.device), keep.to(points.device)


def rampup(iteration: int, length: int) -> float:
    r""":math:`\exp(-5 (1 - t)^2)`, :math:`t = \min(\text{iteration} / \text{length}, 1)`:
    the usual mean-teacher ramp from about 0 to 1 (1 throughout for ``length`` 0).

    Example:
        >>> rampup(100, 100), rampup(0, 0), round(rampup(0, 100), 4)
        (1.0, 1.0, 0.0067)
    """
    t = 1.0 if length == 0 else min(iteration / length, 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


class MeanTeacher:
    """The EMA teacher of a training run and its unlabelled sampler (the module docstring).

    Args:
        model: the student (:func:`~lvseg.methods.build_model`): a U-Net or an EDPCNN; the
            teacher starts as a copy of its U-Net (and learned smoothness penalty).
        config: the run's configuration (``unlabelled``, ``unlabelled_weight``,
            ``unlabelled_rampup``, ``teacher_decay``, ``jitter``, ``rotation``, ``star``,
            ``seed``).
        pool: the unlabelled item indices (:attr:`PreparedSplits.unlabelled
            <lvseg.prepare.PreparedSplits>`).
        end_to_end: whether the student trains through the DP (draw a star per image).

    Raises:
        ValueError: if ``pool`` is empty (every training slice is labelled).
    """

    def __init__(self, model: nn.Module, config: TrainConfig, pool: np.ndarray, *,
                 end_to_end: bool) -> None:  # fmt: skip
        if len(pool) == 0:
            raise ValueError(
                f"unlabelled needs training-split slices outside the labelled subset; got none "
                f"(train_size={config.train_size} takes them all): lower --train-size, or "
                "drop --unlabelled"
            )
        self.config, self.pool, self.end_to_end = config, np.asarray(pool), end_to_end
        self.average = WeightAverage(model, config.teacher_decay)
        self.sampler = BatchSampler(len(pool), config.unlabelled, seed=config.seed + 2)

    @property
    def unet(self) -> nn.Module:
        """The teacher's U-Net (the EMA of the student's)."""
        return self.average.unet

    @property
    def star(self) -> StarConfig:
        """The config's star with the teacher's smoothness penalty, if it learns one."""
        return self.average.star(self.config.star)

    def batch(self, images: Tensor, centers: Tensor, iteration: int, rng: np.random.Generator,
              ranks: Ranks, device: torch.device) -> Unlabelled:  # fmt: skip
        """The next unlabelled batch (from the dataset's ``images`` and given ``centers``,
        never its masks); jitter and rotation are drawn from ``rng`` for the global batch."""
        idx = self.pool[self.sampler.next().numpy()]
        batch = images[idx].to(device)
        with torch.no_grad():
            maps = self.unet(batch)
        star, cfg = self.star, self.config
        centre = angle = masks = None
        if self.end_to_end:  # the labelled images' jitter law, the teacher's mask for the truth
            given = centers[idx]
            masks = _dp_masks(maps.cpu(), given, star)
            radii = np.array([object_radius(m, c) for m, c in zip(masks.numpy(), given.numpy())])
            jittered, turns = training_stars(given.numpy(), radii, masks.numpy(), cfg.jitter,
                                             cfg.rotation, rng)
            centre = ranks.shard(torch.from_numpy(jittered)).to(device)
            angle = ranks.shard(torch.from_numpy(turns)).float().to(device)
            masks = ranks.shard(masks)
        weight = cfg.unlabelled_weight * rampup(iteration, cfg.unlabelled_rampup)
        return Unlabelled(ranks.shard(batch), ranks.shard(maps), centre, angle, star, weight,
                          masks, cfg.unlabelled_agreement)

    def update(self, model: nn.Module, iteration: int) -> None:
        """One EMA step towards the student ``model`` (after the optimiser step of
        ``iteration``)."""
        self.average.update(model, iteration)

    def state_dict(self) -> dict[str, Any]:
        """The teacher's weights and its sampler's state (for ``last.pt``)."""
        return {**self.average.state_dict(), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (errors as ``nn.Module.load_state_dict``
        and :meth:`BatchSampler.load_state_dict <lvseg.sampler.BatchSampler.load_state_dict>`)."""
        self.average.load_state_dict(state)
        self.sampler.load_state_dict(state["sampler"])


def _dp_masks(maps: Tensor, centers: Tensor, star: StarConfig) -> Tensor:
    """The DP's filled contours :math:`(K, H, W)` on ``maps`` with the star at ``centers``: the
    inference of :func:`lvseg.segment.segment` for the end-to-end methods, the contour drawn
    where ``star.edge_offset`` says (a stand-in for a true mask, whose edge lies beyond the last
    inside points that ``mask_to_indices`` reads back)."""
    points = star.points(centers)
    indices = star.dp("float")(star.reduce(warp(maps, points, mode=star.interpolation)))
    contours = contour_points(indices, points, offset=star.edge_offset)
    return star_mask(contours, centers, tuple(maps.shape[-2:]))
