"""monai-scribble: scribble-supervised cell and nucleus segmentation for MONAI.

Re-implements Scribble2Label (EMA pseudo-labels with a consistency threshold) and the multiscale
contrastive regularization of Oh, Lee & Jeong, "Scribble-supervised cell segmentation using
multiscale contrastive regularization", ISBI 2022.
"""

from __future__ import annotations

__version__ = "0.1.0"
