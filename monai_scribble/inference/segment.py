"""One call from images to nucleus instance maps: :func:`segment` (as stardist's ``predict_instances`` or cellpose's ``eval``)."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

from monai_scribble.data.transforms import eval_transforms
from monai_scribble.errors import DataError, find_user_error
from monai_scribble.inference.cpu_network import CPU_DTYPES, cpu_inference_network
from monai_scribble.inference.inferer import WholeImageInferer, predict_whole_images
from monai_scribble.inference.model_file import encoder_layout_of, load_model_file, model_file_path
from monai_scribble.inference.postprocessing import foreground_to_instances

__all__ = ["ImageLike", "load_network", "segment"]

ImageLike = Union[str, os.PathLike, np.ndarray, torch.Tensor]
"""An image file (any format of :func:`~monai_scribble.data.image_io.read_image`) or an array: ``(H, W)``,
``(H, W, C)`` with ``C`` in 1..4 (converted like a file: gray, RGBA, 16-bit ...) or channel-first RGB ``(3, H, W)``."""


def load_network(model: str | os.PathLike | torch.nn.Module, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The segmentation network of ``model``: a ``model.pt``, a folder holding one (itself or its ``models/``), or a network.

    Raises:
        DataError: no ``model.pt`` there, or one that cannot be read or does not fit the network.
    """
    if isinstance(model, torch.nn.Module):
        return model.to(device)
    from monai_scribble.networks import MultiscaleUNet

    path = model_file_path(model)
    network = MultiscaleUNet(encoder_layout=encoder_layout_of(path))
    load_model_file(path, network, map_location="cpu")
    return network.to(device)


@functools.lru_cache(maxsize=1)
def _inference_network(path: str, version: tuple[int, int], device: torch.device, fast_path_dtype: torch.dtype | None) -> torch.nn.Module:
    """The eval-mode network of the ``model.pt`` at ``path``, kept for the next ``segment()`` call on the same file.

    ``version`` (modification time, size) is part of the key, so a rewritten file is loaded again. Building the
    network and reading its weights take ~0.9 s on a 2-core CPU, a third of one 1000 x 1000 tile's segmentation.
    """
    network = load_network(path, device).eval()
    return cpu_inference_network(network, inplace=True, dtype=fast_path_dtype) if fast_path_dtype else network


def segment(
    images: ImageLike | Sequence[ImageLike],
    model: str | os.PathLike | torch.nn.Module,
    min_size: int = 64,
    watershed_split: bool = False,
    inference_mode: str = "pad",
    roi_size: int = 256,
    amp_dtype: torch.dtype | None = None,
    device: str | torch.device | None = None,
    batch_size: int = 8,
    return_probabilities: bool = False,
    cpu_fast_path: bool = False,
) -> np.ndarray | list[np.ndarray] | tuple:
    """Segment nuclei: instance maps of one image or of several, with the bundle's inference path and defaults.

    The same steps as ``configs/inference.json`` (and with its parameter names): ImageNet normalisation, the
    whole image through the network (:class:`~monai_scribble.inference.WholeImageInferer`), argmax, then
    connected components, objects under ``min_size`` pixels removed, holes filled
    (:func:`~monai_scribble.inference.foreground_to_instances`).

    Example::

        from monai_scribble.inference import segment

        instances = segment("tile.png", model="output/models/model.pt")  # (H, W) int32, 0 = background

    Args:
        images: one image or a sequence of them (see :data:`ImageLike`).
        model: a ``model.pt`` written by training, a folder holding one (a training ``output_dir`` or the
            bundle folder: ``models/model.pt``), or a loaded network. A file's network is kept for the next
            call with the same file (loaded again once the file changes), so segmenting tile after tile loads it once.
        min_size: objects with fewer pixels are removed (64, as the paper's evaluation).
        watershed_split: split touching nuclei with a watershed (docs/method.md#ext-watershed; off as in the paper).
        inference_mode: ``"pad"`` (one forward pass per image) or ``"sliding_window"`` (bounded memory on
            whole-slide-sized images).
        roi_size: window size of ``"sliding_window"``.
        amp_dtype: autocast dtype (``torch.bfloat16`` is fast on GPUs and CPUs with native bf16), ``None``: fp32.
        device: inference device (default: the first GPU if there is one, else the CPU).
        batch_size: most same-size images per forward pass.
        return_probabilities: also return the nucleus probability map(s), float32 ``(H, W)``.
        cpu_fast_path: on the CPU, predict with :func:`~monai_scribble.inference.cpu_network.cpu_inference_network`
            (batch norms folded, prepared once per model file). In fp32: Winograd 3x3 convolutions, the same logits to
            float32 rounding, but slower with 2 threads on a quiet 2-core AVX2 CPU. With ``amp_dtype=torch.bfloat16``:
            weights cast to bf16 once instead of autocast on every call, 0.72x the autocast time per 1000 x 1000 tile
            on a 2-core CPU with native bf16 (``benchmarks/bench_inference.py``). Off by default.

    Returns:
        The ``(H, W)`` int32 instance map of a single image, or a list of them for a sequence; with
        ``return_probabilities``, a pair ``(instances, probabilities)`` of the same shape.

    Raises:
        DataError: an unreadable image or model file (the message names it).
    """
    single = isinstance(images, (str, os.PathLike, np.ndarray, torch.Tensor))
    items = [images] if single else list(images)
    if not items:
        raise DataError("images", "no image to segment: pass an image file, an array or a non-empty list of them")
    device = torch.device(device or ("cuda:0" if torch.cuda.is_available() else "cpu"))
    load = eval_transforms(keys=("image",))
    try:
        tensors = [load({"image": item})["image"].as_tensor() for item in items]
    except RuntimeError as err:  # MONAI's Compose wraps the reader's DataError: raise that one line
        user_error = find_user_error(err)
        if user_error is None:
            raise
        raise user_error from None
    fast_path_dtype = None
    if cpu_fast_path and device.type == "cpu" and (amp_dtype or torch.float32) in CPU_DTYPES:
        fast_path_dtype = amp_dtype or torch.float32
    if isinstance(model, torch.nn.Module):
        network = cpu_inference_network(model.to(device), dtype=fast_path_dtype) if fast_path_dtype else model.to(device)
    else:
        path = model_file_path(model)
        stat = path.stat() if path.is_file() else None
        version = (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)
        network = _inference_network(str(path), version, device, fast_path_dtype) if stat else load_network(path, device)
    inferer = WholeImageInferer(mode=inference_mode, roi_size=roi_size, amp_dtype=None if fast_path_dtype else amp_dtype)
    def reduce(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return logits.argmax(dim=1), torch.softmax(logits, dim=1)[:, 1]

    predictions = predict_whole_images(network, tensors, reduce, inferer, device, batch_size)
    instances = [foreground_to_instances(foreground, min_size=min_size, watershed_split=watershed_split) for foreground, _ in predictions]
    maps = [probability.numpy() for _, probability in predictions]
    if single:
        return (instances[0], maps[0]) if return_probabilities else instances[0]
    return (instances, maps) if return_probabilities else instances
