"""A trained network rewritten for fast CPU inference: the same function, fewer operations.

Rewrites for inference only (eval mode, frozen weights):

- **Batch norm folded into the convolution before it** (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one
  pass over the activations instead of two, for every ResNet block and decoder convolution.
- **Winograd convolutions** for the 3x3, stride-1 convolutions (39 of the 43 in the ResNet-34 U-Net, about
  80 % of its multiply-adds) through PyTorch's NNPACK kernel. PyTorch picks NNPACK itself only for batches
  of 16 or more; at one image oneDNN's direct convolution does ~1.7x the arithmetic per output.
  ``torch._nnpack_spatial_convolution`` is private, so every use falls back to ``F.conv2d`` when it is
  missing, the input needs gradients or is not float32 on the CPU.

- **bfloat16 weights** (``dtype=torch.bfloat16``, for CPUs with native bf16: AMX / AVX-512-BF16): after the
  folding, weights are cast to bf16 and stored channels-last, and inputs are cast once, instead of autocast
  casting every weight on every call (:class:`ReducedPrecisionNetwork`). Winograd is fp32-only and not used.

Logits equal the eager network's to float32 rounding (``tests/inference/test_cpu_network.py``). Speed
(``benchmarks/bench_inference.py``, 1000 x 1000 MoNuSeg tile, 2-core AVX2 CPU, quiet): ``segment()`` takes
1.24x the eager time with 2 threads (NNPACK gains less from the second thread than oneDNN) and 0.84-1.08x with
one, for 0.3-0.4 GB more peak RSS; so it is opt-in, for single-threaded deployments to measure on their CPU.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from monai.networks.blocks import ADN, Convolution
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["ReducedPrecisionNetwork", "WinogradConv2d", "cpu_inference_network", "fold_batch_norms", "use_winograd_convolutions"]


def _nnpack_available() -> bool:
    return hasattr(torch, "_nnpack_spatial_convolution") and bool(getattr(torch, "_nnpack_available", lambda: False)())


class WinogradConv2d(torch.nn.Module):
    """A 3x3, stride-1 ``Conv2d`` run with NNPACK's Winograd kernel on float32 CPU inputs (else ``F.conv2d``).

    Args:
        conv: a ``Conv2d`` with kernel 3x3, stride 1, dilation 1, one group and zero padding.

    Raises:
        ValueError: ``conv`` is not such a convolution (the message gives its settings).
    """

    def __init__(self, conv: torch.nn.Conv2d) -> None:
        super().__init__()
        if not self.supports(conv):
            raise ValueError(
                f"WinogradConv2d needs a 3x3, stride-1, undilated, ungrouped, zero-padded Conv2d, got kernel {conv.kernel_size}, "
                f"stride {conv.stride}, dilation {conv.dilation}, groups {conv.groups}, padding mode '{conv.padding_mode}'"
            )
        self.weight = conv.weight
        self.bias = conv.bias
        self.padding = tuple(int(p) for p in conv.padding)
        self.use_nnpack = _nnpack_available()

    @staticmethod
    def supports(conv: torch.nn.Module) -> bool:
        """Whether ``conv`` can be replaced by a :class:`WinogradConv2d`."""
        return (
            type(conv) is torch.nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple)
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fast = self.use_nnpack and x.device.type == "cpu" and x.dtype == torch.float32 and x.ndim == 4
        if fast and not (torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)):
            return torch._nnpack_spatial_convolution(x.contiguous(), self.weight, self.bias, list(self.padding))
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


def fold_batch_norms(network: torch.nn.Module) -> torch.nn.Module:
    """Fold every batch norm that directly follows a convolution into it, in place; returns ``network``.

    Covers MONAI's ResNet blocks (``convN`` then ``bnN``) and ``Convolution`` blocks whose ``ADN`` starts
    with the norm (FlexibleUNet's decoder); the folded norms become ``Identity``. ``network`` must be in
    eval mode (running statistics are used).
    """
    if network.training:
        raise ValueError("fold_batch_norms needs a network in eval mode (call network.eval() first)")
    for module in network.modules():
        if isinstance(module, Convolution) and isinstance(getattr(module, "adn", None), ADN):
            first = next(iter(module.adn.named_children()), None)
            if first and first[0] == "N" and isinstance(first[1], torch.nn.BatchNorm2d) and isinstance(module.conv, torch.nn.Conv2d):
                module.conv = fuse_conv_bn_eval(module.conv, first[1])
                module.adn.N = torch.nn.Identity()
            continue
        for name, child in list(module.named_children()):
            if name.startswith("conv") and isinstance(child, torch.nn.Conv2d):
                norm_name = "bn" + name[len("conv") :]
                norm = getattr(module, norm_name, None)
                if isinstance(norm, torch.nn.BatchNorm2d):
                    setattr(module, name, fuse_conv_bn_eval(child, norm))
                    setattr(module, norm_name, torch.nn.Identity())
    return network


def use_winograd_convolutions(network: torch.nn.Module) -> torch.nn.Module:
    """Replace every supported ``Conv2d`` of ``network`` by a :class:`WinogradConv2d`, in place; returns ``network``."""
    for module in list(network.modules()):
        for name, child in list(module.named_children()):
            if WinogradConv2d.supports(child):
                setattr(module, name, WinogradConv2d(child))
    return network


class ReducedPrecisionNetwork(torch.nn.Module):
    """``network`` with weights in ``dtype`` (channels-last), called on inputs cast to ``dtype``; returns float32 logits.

    Args:
        network: an eval-mode network (batch norms already folded, so no norm runs in reduced precision).
        dtype: the weights' dtype (``torch.bfloat16``).
    """

    def __init__(self, network: torch.nn.Module, dtype: torch.dtype = torch.bfloat16) -> None:
        super().__init__()
        self.dtype = dtype
        self.network = network.to(dtype=dtype, memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.network(x.to(dtype=self.dtype, memory_format=torch.channels_last), *args, **kwargs).float()


CPU_DTYPES = (torch.float32, torch.bfloat16)


def cpu_inference_network(network: torch.nn.Module, inplace: bool = False, dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """``network`` in eval mode with its batch norms folded, for CPU inference in ``dtype``.

    In float32 its 3x3 convolutions become Winograd ones (:class:`WinogradConv2d`); in bfloat16 its weights are
    cast to bf16 (:class:`ReducedPrecisionNetwork`: the logits of autocast to bf16 rounding, faster on CPUs with
    native bf16, ``benchmarks/bench_inference.py``).

    Args:
        network: a trained network (``segment()`` and ``WholeImageInferer(cpu_fast_path=True)`` pass theirs).
        inplace: rewrite ``network`` itself (no second copy of the weights in memory) instead of a copy.
        dtype: ``torch.float32`` or ``torch.bfloat16``.

    Raises:
        ValueError: another ``dtype`` (the message names it).

    Example::

        fast = cpu_inference_network(network)
        with torch.inference_mode():
            logits = fast(images)  # equal to network.eval()(images) to float32 rounding
    """
    if dtype not in CPU_DTYPES:
        raise ValueError(f"cpu_inference_network supports dtype torch.float32 or torch.bfloat16, got {dtype}")
    prepared = fold_batch_norms((network if inplace else copy.deepcopy(network)).eval())
    for parameter in prepared.parameters():
        parameter.requires_grad_(False)
    if dtype == torch.bfloat16:
        return ReducedPrecisionNetwork(prepared, dtype).eval()
    return use_winograd_convolutions(prepared)
