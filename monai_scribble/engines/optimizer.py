"""The authors' optimiser set-up: per-module learning rates (encoder 1x, decoder 10x, head 1x, projection heads 1x)."""

from __future__ import annotations

from monai_scribble.utils.distributed import unwrap

__all__ = ["optimizer_param_groups"]


def optimizer_param_groups(network, contrastive_loss, learning_rate: float, decoder_lr_multiplier: float = 10.0) -> list[dict]:
    """Parameter groups of the paper's optimiser: encoder and head at ``lr``, decoder at ``lr * multiplier``.

    The contrastive projection heads (if any) train at ``lr``. ``DistributedDataParallel`` wrappers are
    looked through, so train.json and multi_gpu_train.json share this.
    """
    network = unwrap(network)
    groups = [
        {"params": list(network.encoder.parameters()), "lr": learning_rate},
        {"params": list(network.decoder.parameters()), "lr": learning_rate * decoder_lr_multiplier},
        {"params": list(network.segmentation_head.parameters()), "lr": learning_rate},
    ]
    if contrastive_loss is not None:
        groups.append({"params": list(unwrap(contrastive_loss).parameters()), "lr": learning_rate})
    return groups
