r"""A training iteration's labelled batch: what :meth:`lvseg.train.Trainer.step` trains on.

:meth:`TrainingBatches.next` assembles it from the prepared data, drawing in this fixed order
(the order is part of a run: ``last.pt`` holds the generators' states, and a resumed run must
draw what an uninterrupted one draws):

1. the global batch's items, from the resumable :class:`~lvseg.sampler.BatchSampler`;
2. their augmentation (``--augment``, :func:`~lvseg.augment.augment_batch`), from the NumPy
   generator;
3. for a method that trains through the DP, a star per image (thesis §5.4), from the same
   generator: its centre jittered inside the LV (``--jitter``,
   :func:`~lvseg.jitter.training_stars`), its rotation uniform in :math:`\pm` ``--rotation``
   and, with ``--centres``, which images put the star at the locator's centre instead (each with
   probability ``--centres-share``; :mod:`lvseg.train_centres`). The locator's centre is augmented
   with the image, as the true centre is, then moved to the nearest LV pixel if the resampled
   mask left it just outside (:func:`~lvseg.jitter.onto_object`).

Everything is drawn for the global batch, so the generators stay the same on every rank under
torchrun; each rank then keeps its slice (:meth:`~lvseg.distributed.Ranks.shard`) on its device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, NamedTuple

import numpy as np
import torch
from torch import Tensor

from lvseg.augment import augment_batch
from lvseg.jitter import onto_object, training_stars
from lvseg.train_choices import PRESETS

if TYPE_CHECKING:
    from lvseg.config import TrainConfig
    from lvseg.distributed import Ranks
    from lvseg.sampler import BatchSampler

__all__ = ["TrainingBatch", "TrainingBatches"]


class TrainingBatch(NamedTuple):
    """This rank's part of a training batch, on its device, in the order of a method's loss
    arguments after the model (:attr:`Method.loss <lvseg.methods.Method>`)."""

    images: Tensor  #: :math:`(b, 1, H, W)` float, augmented
    masks: Tensor  #: :math:`(b, H, W)` bool, augmented with the images
    centers: Tensor | None  #: :math:`(b, 2)` star centres :math:`(x, y)`; ``None`` without a DP
    angles: Tensor | None  #: :math:`(b,)` float32 star rotations in radians; ``None`` likewise


class TrainingBatches:
    """The labelled training batches of a run (the module docstring).

    Args:
        tensors: the prepared data (:meth:`lvseg.data.PreparedData.to_tensors`): ``images``
            :math:`(K, 1, H, W)`, ``masks`` :math:`(K, H, W)`, ``centers`` :math:`(K, 2)` and
            ``radii`` :math:`(K,)`.
        train: the training items' indices into ``tensors``.
        sampler: draws each batch's positions in ``train``; its state is the trainer's to save.
        config: the run's configuration (``augment``, ``jitter``, ``rotation``,
            ``centres_share``).
        ranks: this process among torchrun's; its ``device`` is where the batch goes.
        end_to_end: whether the method trains through the DP (draw a star per image).
        predicted: with ``--centres``, the star centre of every item :math:`(K, 2)`
            (:func:`~lvseg.train_centres.training_centres`); ``None`` without.

    Example:
        >>> import numpy as np, torch
        >>> from lvseg.config import TrainConfig
        >>> from lvseg.distributed import Ranks
        >>> from lvseg.sampler import BatchSampler
        >>> masks = torch.zeros(6, 32, 32, dtype=torch.bool); masks[:, 8:24, 8:24] = True
        >>> data = {"images": torch.zeros(6, 1, 32, 32), "masks": masks,
        ...         "centers": torch.full((6, 2), 15.5), "radii": torch.full((6,), 8.0)}
        >>> batches = TrainingBatches(data, np.arange(6), BatchSampler(6, 4, seed=0),
        ...                           TrainConfig(method="edpcnn"), Ranks(torch.device("cpu")),
        ...                           end_to_end=True)
        >>> batch = batches.next(np.random.default_rng(0))
        >>> batch.images.shape, batch.centers.shape, batch.angles.shape
        (torch.Size([4, 1, 32, 32]), torch.Size([4, 2]), torch.Size([4]))
    """

    def __init__(self, tensors: Mapping[str, Tensor], train: np.ndarray, sampler: BatchSampler,
                 config: TrainConfig, ranks: Ranks, *, end_to_end: bool,
                 predicted: np.ndarray | None = None) -> None:  # fmt: skip
        self.images, self.masks = tensors["images"], tensors["masks"]
        self.centers, self.radii = tensors["centers"], tensors["radii"]
        self.train, self.sampler, self.config, self.ranks = train, sampler, config, ranks
        self.end_to_end, self.predicted = end_to_end, predicted

    def next(self, rng: np.random.Generator) -> TrainingBatch:
        """The next batch, its random values drawn from ``rng`` (the trainer's generator)."""
        cfg, ranks, device = self.config, self.ranks, self.ranks.device
        batch = self.train[self.sampler.next().numpy()]  # the global batch
        centers = self.centers[batch]
        if self.predicted is not None and self.end_to_end:  # the locator's centres move too
            located = torch.from_numpy(self.predicted[batch]).to(centers)
            centers = torch.stack([centers, located], dim=1)  # (B, 2 points, 2)
        view = augment_batch(self.images[batch], self.masks[batch], centers, self.radii[batch],
                             PRESETS[cfg.augment], rng)
        images, masks = (ranks.shard(t).to(device) for t in view[:2])  # this rank's part
        if not self.end_to_end:
            return TrainingBatch(images, masks, None, None)
        true = view.centers if self.predicted is None else view.centers[:, 0]
        jittered, turns = training_stars(true.numpy(), view.radii.numpy(), view.masks.numpy(),
                                         cfg.jitter, cfg.rotation, rng)
        if self.predicted is not None:  # --centres: some stars where the locator puts them
            chosen = rng.random(len(batch)) < cfg.centres_share
            located = onto_object(view.centers[:, 1].numpy(), view.masks.numpy())
            jittered[chosen] = located[chosen]
        centers = ranks.shard(torch.from_numpy(jittered)).to(device)
        angles = ranks.shard(torch.from_numpy(turns)).float().to(device)
        return TrainingBatch(images, masks, centers, angles)

