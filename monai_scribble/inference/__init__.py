"""The one whole-image prediction path, instance post-processing, inference I/O and :func:`segment`.

Validation, the EMA refresh, evaluation, ``configs/inference.json``, MONAI Label and the notebooks all
predict through :class:`WholeImageInferer` (:func:`foreground_probabilities` batches it over images of
any size); :func:`foreground_to_instances` turns a foreground mask into nucleus instances.
"""

from __future__ import annotations

from monai_scribble.inference.inferer import MAX_BATCH_PIXELS, WholeImageInferer, foreground_probabilities, predict_whole_images
from monai_scribble.inference.io import MonaiLabelLayoutd, SaveInstancesd, check_output_dir, list_input_images
from monai_scribble.inference.model_file import DEMO_DATASET, describe, encoder_layout_of, load_model_file, read_model_file
from monai_scribble.inference.postprocessing import ForegroundOneHotd, ForegroundToInstances, ForegroundToInstancesd, foreground_to_instances
from monai_scribble.inference.segment import ImageLike, load_network, segment

__all__ = [
    "DEMO_DATASET",
    "ForegroundOneHotd",
    "ForegroundToInstances",
    "ForegroundToInstancesd",
    "ImageLike",
    "MAX_BATCH_PIXELS",
    "MonaiLabelLayoutd",
    "SaveInstancesd",
    "WholeImageInferer",
    "check_output_dir",
    "describe",
    "encoder_layout_of",
    "foreground_probabilities",
    "foreground_to_instances",
    "list_input_images",
    "load_model_file",
    "load_network",
    "predict_whole_images",
    "read_model_file",
    "segment",
]
