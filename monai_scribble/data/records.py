"""The record every dataset reader returns: one image with its optional label map and scribble."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Sample"]


@dataclass(frozen=True)
class Sample:
    """One image of a dataset, as file paths.

    Attributes:
        id: unique image id within the dataset (file stem or DSB image id).
        image: path of the image file (any format :func:`~monai_scribble.data.image_io.read_image` reads).
        label: path of the instance label map (int ids, 0 background), or ``None`` when there is none.
        scribble: path of a scribble file, or ``None`` (scribbles are then synthesised from ``label``).
    """

    id: str
    image: str
    label: str | None = None
    scribble: str | None = None

    def to_dict(self) -> dict[str, str]:
        """Datalist item (keys with ``None`` values are left out)."""
        return {k: v for k, v in asdict(self).items() if v is not None}
