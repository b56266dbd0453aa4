"""Data: readers, scribble synthesis and file formats, splits, synthetic nuclei and MONAI transforms."""

from __future__ import annotations
