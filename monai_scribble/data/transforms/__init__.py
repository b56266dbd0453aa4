"""Dictionary-based MONAI transforms for scribble-supervised training and evaluation.

A sample is a dictionary with (by default) the keys ``"image"``, ``"scribble"`` and ``"label"``, holding
file paths (datalist items) or in-memory arrays. After :class:`LoadScribbleSampled`:

- ``image``: float32 :class:`~monai.data.MetaTensor` ``(3, H, W)``, RGB in ``[0, 1]``;
- ``scribble``: uint8 ``(1, H, W)`` with values {0 background, 1 foreground, 250 unlabeled};
- ``label``: int32 ``(1, H, W)`` instance map (0 background).

Scribbles are label maps, so every spatial transform resamples them with nearest interpolation and
they stay integer-valued. Pixels that do not come from the image (spatial padding of small images, and
the area outside the rotated/shifted image after the random affine transform) become *unlabeled*
(:data:`~monai_scribble.constants.IGNORE`), never background: :class:`AddValidMaskd` adds a ``valid``
mask of ones before the spatial transforms, the mask is padded and resampled with zeros, and
:class:`MaskInvalidd` writes ``IGNORE`` wherever it ended up 0. The image itself is resampled with
reflection padding as in the original method (docs/method.md#data-pipeline), so the network sees plausible texture
there but is never supervised on it.

:func:`train_transforms` and :func:`eval_transforms` build the method's pipelines (docs/method.md#data-pipeline).
"""

from __future__ import annotations

from monai_scribble.data.transforms.intensity import RandBrightnessContrastd, RandColorJitterd
from monai_scribble.data.transforms.loading import LoadScribbleSampled, ScribbleItemd
from monai_scribble.data.transforms.masks import AddValidMaskd, CropToMultipled, LabelAsScribbled, MaskInvalidd
from monai_scribble.data.transforms.pipelines import IMAGENET_MEAN, IMAGENET_STD, eval_transforms, train_transforms
from monai_scribble.data.transforms.spatial import RandIsotropicAffined

__all__ = [
    "LabelAsScribbled",
    "ScribbleItemd",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LoadScribbleSampled",
    "AddValidMaskd",
    "MaskInvalidd",
    "CropToMultipled",
    "RandBrightnessContrastd",
    "RandColorJitterd",
    "RandIsotropicAffined",
    "train_transforms",
    "eval_transforms",
]
