"""MONAI Label next-sample strategy ``scribble_next``: the unlabelled image the deployed model is least sure about.

The app made by :mod:`monai_scribble.monailabel_app` offers it beside MONAI Label's ``random`` and ``first``
(``POST /activelearning/scribble_next``). It ranks the datastore's images without a label the way
``scribble_next.csv`` ranks a run's pool (:func:`~monai_scribble.pseudo_labels.rank_images_to_scribble`): the
deployed ``models/model.pt`` predicts each image whole and the image with the largest share of pixels that get
neither a nucleus nor a background pseudo-label, at the deployed ``train.json``'s ``ema_threshold`` and
``ema_background_threshold``, comes first. Each image is predicted once per version of ``model.pt``, so after a
training request the next ask predicts the pool again and later asks only new images. Until a model is
deployed it gives the first unlabelled image (by id), as MONAI Label's ``first``. Needs ``monailabel``
installed (the MONAI Label environment, ``scripts/monailabel_venv.sh``) and a local datastore (image files).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from monai.bundle import ConfigParser
from monailabel.interfaces.datastore import Datastore
from monailabel.interfaces.tasks.strategy import Strategy

from monai_scribble.pseudo_labels import ModelFileRanking, PseudoLabelConfig
from monai_scribble.pseudo_labels.scribble_next import SHARE_COLUMNS
from monai_scribble.utils.precision import default_amp_dtype

__all__ = ["ScribbleNext"]

logger = logging.getLogger(__name__)


class ScribbleNext(Strategy):
    """Next sample: the unlabelled image with the largest share of unconfident pixels under the deployed model.

    Args:
        bundle_dir: the deployed bundle (``<app>/model/scribble_cell_segmentation``): its ``models/model.pt`` ranks,
            its ``configs/train.json`` gives the thresholds.
        device: inference device.
    """

    def __init__(self, bundle_dir: str | os.PathLike, device: str = "cpu") -> None:
        super().__init__("Unlabelled image the model is least sure about (share of pixels without a pseudo-label)")
        self.bundle_dir, self.device = Path(bundle_dir), device
        self.model_file = self.bundle_dir / "models" / "model.pt"
        self._ranking: ModelFileRanking | None = None

    def thresholds(self) -> PseudoLabelConfig:
        """The pseudo-label thresholds of the deployed ``train.json`` (read on every request: ``--set`` may change them)."""
        parser = ConfigParser()
        parser.read_config(str(self.bundle_dir / "configs" / "train.json"))
        return PseudoLabelConfig(threshold=parser.get_parsed_content("ema_threshold"),
                                 background_threshold=parser.get_parsed_content("ema_background_threshold"))  # fmt: skip

    def __call__(self, request: dict, datastore: Datastore) -> dict | None:
        images = sorted(datastore.get_unlabeled_images(request.get("label_tag"), request.get("labels")))
        if not images:
            return None
        if not self.model_file.is_file():
            logger.warning("%s not found (no model deployed or trained yet): scribble_next gives the first unlabelled image, %s",
                           self.model_file, images[0])  # fmt: skip
            return {"id": images[0]}
        config = self.thresholds()
        if self._ranking is None or self._ranking.config != config:
            self._ranking = ModelFileRanking(config, device=self.device, amp_dtype=default_amp_dtype(self.device))
        rows = self._ranking(self.model_file, {image_id: datastore.get_image_uri(image_id) for image_id in images})
        best = rows[0]
        logger.info("scribble_next: %s (%.1f %% of its pixels unconfident; %d unlabelled images ranked)",
                    best["id"], 100 * best["unconfident_share"], len(rows))  # fmt: skip
        return {"id": best["id"], **{key: best[key] for key in SHARE_COLUMNS}}
