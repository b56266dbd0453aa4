"""What to scribble next: images ranked by how much of them the trained model is still unsure about.

When training completes, the selected model (``model.pt``) predicts every image of the pool (the training images
and the training-split images left without scribbles, ``datalist["unscribbled"]``) and each image gets the
share of its pixels whose nucleus probability gives neither a nucleus nor a background pseudo-label at the
run's thresholds. Images with the largest share are where scribbles help most: the human-in-the-loop round of
Cellpose 2.0 (README: Scribble in rounds). One whole-image inference pass over the pool, as one EMA refresh.
:class:`ModelFileRanking` ranks image files by a model file the same way for MONAI Label's ``scribble_next``
next-sample strategy (:mod:`monai_scribble.monailabel_strategy`).
"""

from __future__ import annotations

import copy
import csv
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.data.transforms import eval_transforms
from monai_scribble.inference.inferer import WholeImageInferer, foreground_probabilities
from monai_scribble.inference.model_file import load_model_file
from monai_scribble.pseudo_labels.config import PseudoLabelConfig
from monai_scribble.utils.distributed import unwrap

__all__ = ["SCRIBBLE_NEXT_FILE", "SHARE_COLUMNS", "ModelFileRanking", "ScribbleNextWriter", "rank_images_to_scribble", "unconfident_shares"]

SCRIBBLE_NEXT_FILE = "scribble_next.csv"
COLUMNS = ("rank", "id", "image", "scribbled", "unconfident_share", "nucleus_share", "background_share")
SHARE_COLUMNS = COLUMNS[4:]
"""The shares of an image's pixels with no / a nucleus / a background pseudo-label (:func:`unconfident_shares`)."""

logger = logging.getLogger(__name__)


def unconfident_shares(probability: torch.Tensor, config: PseudoLabelConfig) -> dict[str, float]:
    """Shares of the pixels of a ``(H, W)`` nucleus probability map with no / a nucleus / a background pseudo-label."""
    labels = config.pseudo_labels(probability[None].float(), torch.full((1, *probability.shape), IGNORE, dtype=torch.long))[0]
    total = labels.numel()
    return {"unconfident_share": round(float((labels == IGNORE).sum()) / total, 6),
            "nucleus_share": round(float((labels == FOREGROUND).sum()) / total, 6),
            "background_share": round(float((labels == BACKGROUND).sum()) / total, 6)}  # fmt: skip


def rank_images_to_scribble(
    network: torch.nn.Module, items: Sequence[dict], config: PseudoLabelConfig, inferer: WholeImageInferer | None = None,
    device: str | torch.device = "cpu",
) -> list[dict]:  # fmt: skip
    """One row per image of ``items``, most unconfident first (ties by id).

    Args:
        network: the segmentation network (its weights are the model that is ranked by).
        items: ``{"id", "image", ...}`` with ``"scribble"`` for scribbled images (the column ``scribbled``).
        config: the thresholds that make a pixel confident (the run's pseudo-label thresholds).
        inferer: the whole-image inferer (default: padded, full precision).
        device: inference device.

    Returns:
        Rows ``{"rank", "id", "image", "scribbled", "unconfident_share", "nucleus_share", "background_share"}``.
    """
    load = eval_transforms(keys=("image",))
    images = [load({"image": item["image"]})["image"].as_tensor() for item in items]
    probabilities = foreground_probabilities(network, images, inferer, device)
    rows = [{"id": item["id"], "image": str(item["image"]), "scribbled": int(bool(item.get("scribble"))), **unconfident_shares(p, config)}
            for item, p in zip(items, probabilities)]  # fmt: skip
    return _ranked(rows)


def _ranked(rows: list[dict]) -> list[dict]:
    """``rows`` most unconfident first (ties by id), each with its ``rank`` (from 1) first."""
    rows = sorted(rows, key=lambda row: (-row["unconfident_share"], row["id"]))
    return [{"rank": rank, **row} for rank, row in enumerate(rows, start=1)]


class ScribbleNextWriter:
    """Write ``<output_dir>/scribble_next.csv`` (:func:`rank_images_to_scribble`) when training completes.

    Ranks by the selected model (``model_file``, loaded into a copy of ``network``; the network itself where that file
    does not exist yet). Rank 0 only, written to a temporary file and renamed (never half-written).

    Args:
        network: the trained network (a data-parallel wrapper is unwrapped).
        items: the pool: training items and unscribbled ones (:func:`~monai_scribble.data.datalist.unscribbled_items`).
        config: the run's :class:`~monai_scribble.pseudo_labels.PseudoLabelConfig` (its thresholds).
        output_dir: the run folder.
        model_file: the selected model (``<ckpt_dir>/model.pt``).
        device: inference device.
        amp_dtype: autocast dtype for the inference (``None``: full precision).
    """

    def __init__(self, network: torch.nn.Module, items: Sequence[dict], config: PseudoLabelConfig, output_dir: str | os.PathLike,
                 model_file: str | os.PathLike | None = None, device: str | torch.device = "cpu", amp_dtype: torch.dtype | None = None) -> None:  # fmt: skip
        self.network, self.items, self.config = network, list(items), config
        self.path = Path(output_dir) / SCRIBBLE_NEXT_FILE
        self.model_file = Path(model_file) if model_file else None
        self.device, self.inferer = device, WholeImageInferer(amp_dtype=amp_dtype)

    def attach(self, engine: Engine) -> None:  # noqa: D102 - Ignite handler protocol
        engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        if idist.get_rank() != 0 or not self.items:
            return
        network = unwrap(self.network)
        if self.model_file is not None and self.model_file.is_file():
            network = copy.deepcopy(network)
            load_model_file(self.model_file, network, map_location=self.device)
        rows = rank_images_to_scribble(network, self.items, self.config, self.inferer, self.device)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, self.path)
        logger.info("%s: %d images ranked for the next scribbles (first: %s, %.1f %% unconfident)",
                    self.path, len(rows), rows[0]["id"], 100 * rows[0]["unconfident_share"])  # fmt: skip


def _file_version(path: str | os.PathLike) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


class ModelFileRanking:
    """Rank image files as :func:`rank_images_to_scribble` does, by the weights a model file holds now.

    Each image's shares are kept until the model file or the image file changes, so that asking again after every
    saved label (MONAI Label's next-sample request) predicts only images not seen with this model yet. Images are
    read and predicted ``chunk`` at a time, so the pool never has to fit in memory at once.

    Args:
        config: the thresholds that make a pixel confident (the deployed ``train.json``'s ``ema_threshold`` and
            ``ema_background_threshold``).
        device: inference device.
        amp_dtype: autocast dtype (``None``: full precision).
        chunk: images read and predicted together.
        load_network: ``(model file, device) -> network`` (default:
            :func:`~monai_scribble.inference.segment.load_network`, the bundle's network with the file's encoder layout).
    """

    def __init__(self, config: PseudoLabelConfig, device: str | torch.device = "cpu", amp_dtype: torch.dtype | None = None, chunk: int = 8,
                 load_network: Callable[[str | os.PathLike, str | torch.device], torch.nn.Module] | None = None) -> None:  # fmt: skip
        if load_network is None:
            from monai_scribble.inference.segment import load_network
        self.config, self.device, self.chunk, self.load_network = config, device, chunk, load_network
        self.inferer = WholeImageInferer(amp_dtype=amp_dtype)
        self._model_version: tuple | None = None
        self._network: torch.nn.Module | None = None
        self._shares: dict[tuple, dict[str, float]] = {}

    def __call__(self, model_file: str | os.PathLike, images: Mapping[str, str | os.PathLike]) -> list[dict]:
        """Rows ``{"rank", "id", "image", "unconfident_share", "nucleus_share", "background_share"}``, most unconfident first.

        Args:
            model_file: a ``model.pt`` (re-read when it was rewritten, e.g. by a training request).
            images: ``{id: image path}``.

        Raises:
            DataError: the model file cannot be read or does not fit the network.
        """
        version = (str(Path(model_file).resolve()), *_file_version(model_file))
        if version != self._model_version:
            self._network, self._shares = self.load_network(model_file, self.device).eval(), {}
            self._model_version = version
        keys = {image_id: (str(path), *_file_version(path)) for image_id, path in images.items()}
        todo = [{"id": image_id, "image": key[0]} for image_id, key in keys.items() if key not in self._shares]
        for start in range(0, len(todo), self.chunk):
            for row in rank_images_to_scribble(self._network, todo[start : start + self.chunk], self.config, self.inferer, self.device):
                self._shares[keys[row["id"]]] = {k: row[k] for k in SHARE_COLUMNS}
        rows = [{"id": image_id, "image": key[0], **self._shares[key]} for image_id, key in keys.items()]
        return _ranked(rows)
