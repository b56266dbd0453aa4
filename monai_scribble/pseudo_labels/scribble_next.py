"""What to scribble next: training images ranked by how much of them the EMA is still unsure about.

After training, the EMA map of every training image says, pixel by pixel, whether the run ended confident
(a nucleus or a background pseudo-label at the config's thresholds) or not. Images with the largest share
of unconfident pixels are where more scribbles help most: the human-in-the-loop round of Cellpose 2.0
(README: Scribble in rounds). The ranking costs nothing: the maps are already on disk.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import ignite.distributed as idist
import torch
from ignite.engine import Engine, Events

from monai_scribble.constants import BACKGROUND, FOREGROUND, IGNORE
from monai_scribble.pseudo_labels.config import PseudoLabelConfig
from monai_scribble.pseudo_labels.store import PseudoLabelStore

__all__ = ["SCRIBBLE_NEXT_FILE", "ScribbleNextWriter", "rank_images_to_scribble"]

SCRIBBLE_NEXT_FILE = "scribble_next.csv"
COLUMNS = ("rank", "id", "image", "unconfident_share", "nucleus_share", "background_share")

logger = logging.getLogger(__name__)


def rank_images_to_scribble(store: PseudoLabelStore, items: Sequence[dict], config: PseudoLabelConfig) -> list[dict]:
    """One row per training image with an EMA map, most unconfident first (ties by id).

    Args:
        store: the run's EMA maps.
        items: training items ``{"id", "image", ...}`` (``image``: the file, for the table).
        config: the thresholds that make a pixel a pseudo-label (the run's).

    Returns:
        Rows ``{"rank", "id", "image", "unconfident_share", "nucleus_share", "background_share"}``: shares of the
        image's pixels with no pseudo-label, with a nucleus one and with a background one (summing to 1).
    """
    known = set(store.ids)
    rows = []
    for item in items:
        if item["id"] not in known:
            continue
        ema = torch.from_numpy(store.get(item["id"])).float()
        ema = config.read(ema, store.state["updates"])
        labels = config.pseudo_labels(ema[None], torch.full((1, *ema.shape), IGNORE, dtype=torch.long))[0]
        total = labels.numel()
        rows.append({
            "id": item["id"], "image": str(item.get("image", "")),
            "unconfident_share": round(float((labels == IGNORE).sum()) / total, 6),
            "nucleus_share": round(float((labels == FOREGROUND).sum()) / total, 6),
            "background_share": round(float((labels == BACKGROUND).sum()) / total, 6),
        })  # fmt: skip
    rows.sort(key=lambda row: (-row["unconfident_share"], row["id"]))
    return [{"rank": rank, **row} for rank, row in enumerate(rows, start=1)]


class ScribbleNextWriter:
    """Write ``<output_dir>/scribble_next.csv`` (:func:`rank_images_to_scribble`) when training completes.

    Rank 0 only, written to a temporary file and renamed (never half-written). Nothing is written for methods
    without EMA maps (``enabled=False``) or when no refresh has happened yet.

    Args:
        store: the run's :class:`~monai_scribble.pseudo_labels.PseudoLabelStore`.
        items: the training items.
        config: the run's :class:`~monai_scribble.pseudo_labels.PseudoLabelConfig`.
        output_dir: the run folder.
        enabled: attach at all (the method uses pseudo-labels).
    """

    def __init__(self, store: PseudoLabelStore, items: Sequence[dict], config: PseudoLabelConfig, output_dir: str | os.PathLike,
                 enabled: bool = True) -> None:  # fmt: skip
        self.store, self.items, self.config = store, list(items), config
        self.path = Path(output_dir) / SCRIBBLE_NEXT_FILE
        self.enabled = bool(enabled)

    def attach(self, engine: Engine) -> None:  # noqa: D102 - Ignite handler protocol
        if self.enabled:
            engine.add_event_handler(Events.COMPLETED, self)

    def __call__(self, engine: Engine) -> None:  # noqa: D102
        if idist.get_rank() != 0 or self.store.state["updates"] == 0:
            return
        rows = rank_images_to_scribble(self.store, self.items, self.config)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temporary, self.path)
        if rows:
            logger.info("%s: %d training images ranked for the next scribbles (first: %s, %.1f %% unconfident)",
                        self.path, len(rows), rows[0]["id"], 100 * rows[0]["unconfident_share"])  # fmt: skip
