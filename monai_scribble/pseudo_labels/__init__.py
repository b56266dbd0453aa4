"""The EMA pseudo-label loop of Scribble2Label, in one place (docs/method.md#ema).

:class:`PseudoLabelConfig` (momentum, thresholds, period, bias correction) is given once and shared by
the :class:`PseudoLabelStore` of EMA maps on disk, the :class:`EMAPseudoLabelHandler` that refreshes them
by whole-image inference, the :class:`LoadPseudoLabelMapd` transform that reads them into training
samples and :func:`threshold_pseudo_labels`, which turns them into pseudo-labels for the trainer; after
training, :class:`ScribbleNextWriter` ranks the images by how much of them the selected model is still unsure
about, at the same thresholds (:class:`ModelFileRanking` does it for MONAI Label's next-sample strategy).
"""

from __future__ import annotations

from monai_scribble.pseudo_labels.config import PseudoLabelConfig
from monai_scribble.pseudo_labels.refresh import EMAPseudoLabelHandler
from monai_scribble.pseudo_labels.scribble_next import ModelFileRanking, ScribbleNextWriter, rank_images_to_scribble
from monai_scribble.pseudo_labels.store import PseudoLabelStore, store_for_items
from monai_scribble.pseudo_labels.thresholding import threshold_pseudo_labels
from monai_scribble.pseudo_labels.transform import LoadPseudoLabelMapd

__all__ = [
    "EMAPseudoLabelHandler",
    "LoadPseudoLabelMapd",
    "ModelFileRanking",
    "PseudoLabelConfig",
    "PseudoLabelStore",
    "ScribbleNextWriter",
    "rank_images_to_scribble",
    "store_for_items",
    "threshold_pseudo_labels",
]
