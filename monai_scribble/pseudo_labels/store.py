"""On-disk store of the per-image EMA foreground probabilities (Scribble2Label's E, docs/method.md#ema).

One float16 ``.npy`` map per training image, memory-mapped, under ``<root>/<generation>/<id>.npy``.
Every EMA refresh writes a complete new *generation* next to the current one and then switches
``<root>/current.json`` atomically, so:

- data-loader workers (other processes) and other data-parallel ranks always read a complete, fresh generation;
- a run killed during a refresh still has the old generation intact;
- a resumed run goes back to the generation recorded in its checkpoint (the previous generation is
  kept until a newer checkpoint no longer needs it, see :meth:`PseudoLabelStore.prune`).

Maps start at zeros (as in the authors' code); ``E <- m * p + (1 - m) * E``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import ignite.distributed as idist
import numpy as np

from monai_scribble.data.image_io import image_size
from monai_scribble.utils.arguments import number_in
from monai_scribble.utils.atomic import atomic_write

__all__ = ["PseudoLabelStore", "store_for_items"]


class PseudoLabelStore:
    """EMA maps of the training images, shared with data-loader workers through the file system.

    Args:
        root: folder of the store (e.g. ``<output_dir>/ema``).
        shapes: ``{image id: (H, W)}``; needed to create generation 0 if the store is new.
    """

    def __init__(self, root: str | os.PathLike, shapes: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.root = Path(root)
        if not (self.root / "current.json").is_file():
            if not shapes:
                raise FileNotFoundError(f"{self.root}: no pseudo-label store here and no image shapes to create one")
            self._create(shapes)

    # ---------------------------------------------------------------- layout
    def _create(self, shapes: Mapping[str, tuple[int, int]]) -> None:
        folder = self._folder(0)
        folder.mkdir(parents=True, exist_ok=True)
        for image_id, shape in shapes.items():
            self._write_map(folder / f"{image_id}.npy", np.zeros(tuple(int(s) for s in shape), dtype=np.float16))
        self._set_current(0, updates=0)

    def _folder(self, generation: int) -> Path:
        return self.root / f"{generation:06d}"

    @staticmethod
    def _write_map(path: Path, array: np.ndarray) -> None:
        atomic_write(path, lambda tmp: np.save(tmp, array.astype(np.float16), allow_pickle=False))

    def _set_current(self, generation: int, updates: int) -> None:
        state = {"generation": int(generation), "updates": int(updates)}
        atomic_write(self.root / "current.json", lambda tmp: Path(tmp).write_text(json.dumps(state)))

    @property
    def state(self) -> dict[str, int]:
        """``{"generation": g, "updates": k}`` of the current generation (k EMA updates applied)."""
        return json.loads((self.root / "current.json").read_text())

    @property
    def generation(self) -> int:
        return int(self.state["generation"])

    @property
    def ids(self) -> list[str]:
        return self._ids(self.generation)

    def _ids(self, generation: int) -> list[str]:
        return sorted(p.stem for p in self._folder(generation).glob("*.npy"))

    # ---------------------------------------------------------------- reading
    def path(self, image_id: str, generation: int | None = None) -> Path:
        """File of ``image_id``'s map in ``generation`` (default: the current one)."""
        path = self._folder(self.generation if generation is None else generation) / f"{image_id}.npy"
        if not path.is_file():
            raise KeyError(f"{path}: no EMA map for image '{image_id}' in the pseudo-label store")
        return path

    def get(self, image_id: str, generation: int | None = None) -> np.ndarray:
        """EMA map of ``image_id`` in ``generation`` (default: the current one, read fresh every call).

        Returns:
            float32 ``(H, W)`` in ``[0, 1]``.
        """
        return np.load(self.path(image_id, generation), mmap_mode="r").astype(np.float32)

    # ---------------------------------------------------------------- writing
    def update(self, probabilities: Mapping[str, np.ndarray], momentum: float) -> int:
        """Write a new generation ``E <- m * p + (1 - m) * E`` for every image and make it current.

        Single-process form of :meth:`begin_update` + :meth:`write_update` + :meth:`commit_update`.

        Args:
            probabilities: ``{id: (H, W) foreground probability}`` for **every** image of the store.
            momentum: ``m`` in ``(0, 1]``.

        Returns:
            The new generation number.
        """
        _check_momentum(momentum)
        state = self.state  # read once: every map below comes from this generation
        self._check_complete(state, probabilities)  # before writing anything
        self.begin_update(state)
        self.write_update(state, probabilities, momentum)
        self.commit_update(state)
        return state["generation"] + 1

    def begin_update(self, state: Mapping[str, int]) -> Path:
        """Create the empty folder of the generation after ``state`` (one process, before any write).

        Returns:
            The new generation's folder.
        """
        folder = self._folder(int(state["generation"]) + 1)
        if folder.exists():  # leftover of an interrupted refresh
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def write_update(self, state: Mapping[str, int], probabilities: Mapping[str, np.ndarray], momentum: float) -> None:
        """Write ``E <- m * p + (1 - m) * E`` for the images in ``probabilities`` into the next generation.

        Under data-parallel training each rank writes its own share of the images; the generation only
        becomes visible with :meth:`commit_update`.

        Args:
            state: the :attr:`state` the update starts from (read once, before :meth:`begin_update`).
            probabilities: ``{id: (H, W) foreground probability}`` for some images of the store.
            momentum: ``m`` in ``(0, 1]``.
        """
        _check_momentum(momentum)
        generation = int(state["generation"])
        folder = self._folder(generation + 1)
        unknown = sorted(set(probabilities) - set(self._ids(generation)))
        if unknown:
            raise KeyError(f"no EMA map for images {unknown[:5]} in {self._folder(generation)}")
        for image_id, prob in probabilities.items():
            old = self.get(image_id, generation)
            prob = np.asarray(prob, dtype=np.float32)
            if prob.shape != old.shape:
                raise ValueError(f"probability map of '{image_id}' has shape {prob.shape}, store has {old.shape}")
            self._write_map(folder / f"{image_id}.npy", momentum * prob + (1.0 - momentum) * old)

    def commit_update(self, state: Mapping[str, int]) -> None:
        """Make the generation after ``state`` current, once every image has been written to it.

        Raises:
            KeyError: some images of the store have no map in the new generation (it stays invisible).
        """
        generation = int(state["generation"])
        self._check_complete(state, self._ids(generation + 1))
        self._set_current(generation + 1, int(state["updates"]) + 1)

    def _check_complete(self, state: Mapping[str, int], ids: Iterable[str]) -> None:
        """``KeyError`` unless ``ids`` covers every image of the generation of ``state``."""
        missing = sorted(set(self._ids(int(state["generation"]))) - set(ids))
        if missing:
            raise KeyError(f"EMA update needs every image of the store; missing {missing[:5]} ({len(missing)} in all)")

    def restore(self, generation: int, updates: int) -> None:
        """Make ``generation`` current again (resume from a checkpoint that recorded it)."""
        if not self._folder(generation).is_dir():
            raise FileNotFoundError(f"{self._folder(generation)}: EMA generation {generation} recorded in the checkpoint is gone; resume from a checkpoint written with this store, or train afresh into a new output_dir")
        self._set_current(generation, updates)

    def prune(self, keep: set[int]) -> None:
        """Delete every generation folder except the current one and those in ``keep``."""
        keep = set(keep) | {self.generation}
        for folder in self.root.iterdir():
            if folder.is_dir() and folder.name.isdigit() and int(folder.name) not in keep:
                shutil.rmtree(folder, ignore_errors=True)


def _check_momentum(momentum: float) -> None:
    number_in("ema_momentum", momentum, 0.0, 1.0)  # the same rule and message as PseudoLabelConfig


def store_for_items(root: str | os.PathLike, items: list[dict], new_run: bool = False) -> PseudoLabelStore:
    """Open the store at ``root``, creating zero maps for ``items`` (``{"id", "image"}``) if it is new.

    Under data-parallel training rank 0 goes first (it alone discards and creates maps; the other ranks
    then open what it wrote); in a single process this is a plain call.

    Args:
        root: folder of the store.
        items: the training items.
        new_run: the run starts from scratch (no checkpoint to resume): maps left in ``root`` by an
            earlier run are discarded, so the EMA starts at zero with no update counted.
    """
    root = Path(root)
    with idist.one_rank_first(rank=0):
        if new_run and idist.get_rank() == 0 and root.exists():
            logging.getLogger(__name__).warning("%s: discarding the EMA maps of an earlier run that left no checkpoint", root)
            shutil.rmtree(root)
        if (root / "current.json").is_file():
            return PseudoLabelStore(root)
        return PseudoLabelStore(root, {str(item["id"]): image_size(item["image"]) for item in items})
