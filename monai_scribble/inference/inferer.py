"""The whole-image prediction path: validation, the EMA refresh, evaluation, deployment, MONAI Label and :func:`segment`
share it (docs/method.md#inference)."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from monai.inferers import Inferer, sliding_window_inference

from monai_scribble.inference.cpu_network import CPU_DTYPES, cpu_inference_network

__all__ = ["MAX_BATCH_PIXELS", "WholeImageInferer", "foreground_probabilities", "predict_whole_images"]

MODES = ("pad", "sliding_window")
MAX_BATCH_PIXELS = 2**20
"""Most pixels per forward pass of :func:`foreground_probabilities` (about one megapixel)."""


class WholeImageInferer(Inferer):
    """Logits for a whole ``(B, C, H, W)`` image of any size; the output has the input's ``H x W``.

    Runs under ``torch.inference_mode`` (the network is not put in eval mode here: callers do, as MONAI's
    evaluators do); the logits are inference tensors, for post-processing and metrics, not for autograd.

    - ``mode="pad"`` (default): zero-pad bottom/right to multiples of ``k`` (zero is the mean colour after
      ImageNet normalisation), one forward pass, crop back. The paper's code cropped top-left to a
      multiple of 32 instead, which drops the right and bottom strips from evaluation (docs/method.md#pitfall-crop32).
    - ``mode="sliding_window"``: MONAI's ``sliding_window_inference`` with ``roi_size`` windows and
      ``overlap`` (bounded memory on very large images).

    Args:
        mode: ``"pad"`` or ``"sliding_window"``.
        k: size divisor of the network (32).
        roi_size: sliding-window size (256, the training crop).
        overlap: sliding-window overlap (0.25).
        sw_batch_size: windows per forward pass.
        amp_dtype: autocast dtype (e.g. ``torch.bfloat16``; fast on CPUs with native bf16 and on GPUs),
            ``None`` for full precision. Logits are returned as float32, channels-last.
        channels_last: feed channels-last tensors; ``None`` (default): on CPU or under autocast, where oneDNN's
            channels-last convolutions are the faster path (fp32 on an AVX2 CPU: 0.84-0.93x the time of contiguous
            inputs for a 1000x1000 tile, the same logits to 1e-7; measured with an earlier ``bench_inference.py``); not for
            fp32 on a GPU.
        cpu_fast_path: for an eval-mode network on the CPU in fp32 or bf16 (``amp_dtype``), predict with a copy from
            :func:`~monai_scribble.inference.cpu_network.cpu_inference_network` (batch norms folded; in fp32 Winograd 3x3
            convolutions, the same logits to float32 rounding, faster with one thread in some runs, slower with two; in
            bf16 weights cast once instead of autocast; ``benchmarks/bench_inference.py``), a copy per call. Off by default, so training-time validation and the EMA refresh
            keep their exact arithmetic (``segment(cpu_fast_path=True)`` prepares its network once instead).
    """

    def __init__(
        self,
        mode: str = "pad",
        k: int = 32,
        roi_size: Sequence[int] | int = 256,
        overlap: float = 0.25,
        sw_batch_size: int = 4,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool | None = None,
        cpu_fast_path: bool = False,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown inference mode '{mode}'; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.k = int(k)
        self.roi_size = (roi_size, roi_size) if isinstance(roi_size, int) else tuple(roi_size)
        self.overlap = float(overlap)
        self.sw_batch_size = int(sw_batch_size)
        self.amp_dtype = amp_dtype
        self.channels_last = None if channels_last is None else bool(channels_last)
        self.cpu_fast_path = bool(cpu_fast_path)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., torch.Tensor], *args, **kwargs) -> torch.Tensor:
        if inputs.ndim != 4:
            raise ValueError(f"expected (B, C, H, W) inputs, got shape {tuple(inputs.shape)}")
        channels_last = self.channels_last
        if channels_last is None:
            channels_last = inputs.device.type == "cpu" or self.amp_dtype is not None
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        amp_dtype = self.amp_dtype
        if self.cpu_fast_path and inputs.device.type == "cpu" and (amp_dtype or torch.float32) in CPU_DTYPES:
            if isinstance(network, torch.nn.Module) and not network.training:
                network, amp_dtype = cpu_inference_network(network, dtype=amp_dtype or torch.float32), None
        autocast = torch.autocast(inputs.device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
        with torch.inference_mode(), autocast:
            if self.mode == "sliding_window":
                logits = sliding_window_inference(inputs, self.roi_size, self.sw_batch_size, network, self.overlap, *args, **kwargs)
            else:
                height, width = inputs.shape[-2:]
                padded = F.pad(inputs, (0, -width % self.k, 0, -height % self.k))
                logits = network(padded, *args, **kwargs)[..., :height, :width]
        # channels-last out, whatever the path: argmax over the 2 channels of a contiguous (B, 2, H, W) tensor
        # takes 183 ms per megapixel on a 2-core CPU, 5 ms channels-last (torch 2.13; sliding windows return contiguous)
        return logits.float().contiguous(memory_format=torch.channels_last)


def foreground_probabilities(
    network: torch.nn.Module,
    images: Sequence[torch.Tensor],
    inferer: WholeImageInferer | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> list[torch.Tensor]:
    """Nucleus probability of each image, predicted whole (eval mode, no augmentation, ``torch.inference_mode``).

    Same-size images are batched up to ``batch_size`` and about :data:`MAX_BATCH_PIXELS` pixels per forward
    pass (on CPU, batching small images is faster and batching large ones slower than one by one: 256²
    0.048 s/image at 8 vs 0.079 at 1; 1000² 0.77 s at 1 vs 1.0 at 4, bf16). The network's train/eval mode is
    restored afterwards.

    Args:
        network: logits ``(B, 2, H, W)`` (unwrapped from any data-parallel wrapper by the caller).
        images: normalised ``(3, H, W)`` tensors of any sizes.
        inferer: the whole-image inferer (default: padded to a multiple of 32, full precision).
        device: inference device.
        batch_size: most images per forward pass.

    Returns:
        One float32 ``(H, W)`` CPU tensor per image, in the order of ``images``.
    """
    return [p for (p,) in predict_whole_images(network, images, lambda logits: (torch.softmax(logits, dim=1)[:, 1],), inferer, device, batch_size)]


def predict_whole_images(
    network: torch.nn.Module,
    images: Sequence[torch.Tensor],
    reduce: Callable[[torch.Tensor], tuple[torch.Tensor, ...]],
    inferer: WholeImageInferer | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
) -> list[tuple[torch.Tensor, ...]]:
    """``reduce(logits)`` of each image, batched as :func:`foreground_probabilities` describes.

    ``reduce`` maps a batch's ``(B, 2, H, W)`` logits to a tuple of ``(B, ...)`` tensors (e.g. the argmax and
    the nucleus probability); each image gets its slice of every one of them, on the CPU.
    """
    inferer = inferer or WholeImageInferer()
    by_shape: dict[tuple, list[int]] = defaultdict(list)
    for index, image in enumerate(images):
        if image.ndim != 3:
            raise ValueError(f"expected (C, H, W) images, got shape {tuple(image.shape)} at position {index}")
        by_shape[tuple(image.shape)].append(index)
    outputs: list[tuple[torch.Tensor, ...] | None] = [None] * len(images)
    was_training = network.training
    network.eval()
    try:
        for shape, indices in by_shape.items():
            step = max(1, min(int(batch_size), MAX_BATCH_PIXELS // (shape[-2] * shape[-1])))
            for start in range(0, len(indices), step):
                chunk = indices[start : start + step]
                batch = torch.stack([torch.as_tensor(images[i]) for i in chunk]).to(device)
                reduced = tuple(r.cpu() for r in reduce(inferer(batch, network)))
                for position, i in enumerate(chunk):
                    outputs[i] = tuple(r[position] for r in reduced)
    finally:
        network.train(was_training)
    return outputs  # type: ignore[return-value]
