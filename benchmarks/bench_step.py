"""Time a supervised training step against a main-stage step (scribble CE + pseudo CE + both contrastive terms).

Both are the bundle's own step, ``ScribbleTrainer._iteration`` (not a copy of it), on a fixed batch.

Usage::

    python benchmarks/bench_step.py [--batch 8] [--size 256] [--rounds 5] [--threads 0]

Batch 8 of 256x256 synthetic nuclei (monai_scribble.data.synthetic), MultiscaleUNet (FlexibleUNet
ResNet-34), RAdam with the bundle's parameter groups; the supervised trainer learns from the full masks,
the main-stage one from scribbles and EMA maps (confident inside and outside nuclei, 0.5 at their edges). The two steps are measured alternately in one process, in fp32 and in
bf16 autocast + channels_last; medians are reported. Then the contrastive loss alone (one term at
6000 samples per class, forward + backward) is timed, and its peak memory is measured in a fresh
child process (``ru_maxrss`` growth, eager kernel), next to the direct implementation (three ``n x n``
blocks with autograd) for comparison. The last line printed is one JSON object with at least
``supervised_step_s``, ``main_step_s``, ``ratio`` (main / supervised, bf16 + channels_last) and
``ratio_fp32``. On CPUs without native bf16 (no AVX-512-BF16/AMX; ``cpu_native_bf16`` false in
the output) bf16 convolutions fall back to a slow reference kernel, so the bf16 figures are measured
with a single round and the fp32 ratio is the meaningful one there.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import resource
import statistics
import time

import fire
import numpy as np
import torch

from monai_scribble.data.scribbles import image_rng, synthesize_scribble
from monai_scribble.data.synthetic import generate_dataset
from monai_scribble.engines import ScribbleTrainer
from monai_scribble.engines.optimizer import optimizer_param_groups
from monai_scribble.handlers.stage_switch import MAIN, WARMUP
from monai_scribble.losses import MultiscaleContrastiveLoss, contrastive_labels
from monai_scribble.losses.contrastive import balanced_sample, block_labels, pairwise_bce_loss
from monai_scribble.networks import MultiscaleUNet
from monai_scribble.pseudo_labels import threshold_pseudo_labels
from monai_scribble.utils.precision import default_amp_dtype


def make_batch(batch: int, size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Images, full masks, scribbles and EMA maps (1 on nuclei, 0 on background, 0.5 in a 2-px band at edges)."""
    images, masks, scribbles = [], [], []
    for image_id, image, label in generate_dataset(batch, seed=seed, shape=(size, size)):
        images.append(torch.from_numpy(image).permute(2, 0, 1).float() / 255.0)
        masks.append(torch.from_numpy((label > 0).astype(np.int64)))
        scribbles.append(torch.from_numpy(synthesize_scribble(label, 0.3, image_rng(seed, image_id)).astype(np.int64)))
    mask = torch.stack(masks)
    edge = torch.nn.functional.max_pool2d(mask[:, None].float(), 5, 1, 2)[:, 0] != -torch.nn.functional.max_pool2d(
        -mask[:, None].float(), 5, 1, 2
    )[:, 0]
    ema = torch.where(edge, torch.full_like(mask, 0.5, dtype=torch.float32), mask.float())
    return {"image": torch.stack(images), "mask": mask[:, None], "scribble": torch.stack(scribbles)[:, None], "ema": ema[:, None]}


def trainer(main_stage: bool, bf16: bool) -> ScribbleTrainer:
    """The bundle's trainer: a supervised one (full masks as targets) or one in its main stage (S2L + R1 + R4)."""
    torch.manual_seed(0)
    network = MultiscaleUNet(feature_names=("d5", "d3"))
    contrastive = MultiscaleContrastiveLoss(seed=0) if main_stage else None
    if bf16:
        network = network.to(memory_format=torch.channels_last)
    optimizer = torch.optim.RAdam(optimizer_param_groups(network, contrastive, 3e-4), lr=3e-4, weight_decay=5e-5, decoupled_weight_decay=True)
    engine = ScribbleTrainer(device="cpu", max_epochs=1, train_data_loader=[], network=network, optimizer=optimizer,
                             warmup_epochs=0 if main_stage else -1, contrastive_loss=contrastive, use_pseudo_labels=main_stage,
                             amp_dtype=torch.bfloat16 if bf16 else None, channels_last=bf16)  # fmt: skip
    engine.state.stage = MAIN if main_stage else WARMUP
    return engine


def step_fns(batch: dict[str, torch.Tensor], bf16: bool):
    """Closures running ``ScribbleTrainer._iteration`` itself (the step the bundle trains with)."""
    supervised_trainer, main_trainer = trainer(False, bf16), trainer(True, bf16)
    supervised_batch = {"image": batch["image"], "scribble": batch["mask"]}  # what LabelAsScribbled gives the supervised method
    main_batch = {"image": batch["image"], "scribble": batch["scribble"], "ema": batch["ema"]}

    def supervised() -> None:
        supervised_trainer._iteration(supervised_trainer, supervised_batch)

    def main_stage() -> None:
        output = main_trainer._iteration(main_trainer, main_batch)
        assert {"pseudo_ce", "contrastive_d5_delta1", "contrastive_d3_delta4"} <= set(output)

    return supervised, main_stage


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(batch: dict[str, torch.Tensor], bf16: bool, rounds: int) -> tuple[float, float]:
    supervised, main_stage = step_fns(batch, bf16)
    for _ in range(2 if rounds > 1 else 1):  # warm-up (and torch.compile of the contrastive kernel)
        supervised()
        main_stage()
    sup, main = [], []
    for _ in range(rounds):
        sup.append(timed(supervised))
        main.append(timed(main_stage))
    return statistics.median(sup), statistics.median(main)


def contrastive_alone(num: int, tau: float = 0.1, dims: int = 32) -> float:
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn(num, dims, generator=generator, requires_grad=True)
    z1 = torch.randn(num, dims, generator=generator, requires_grad=True)
    pairwise_bce_loss(z0, z1, tau).backward()  # warm-up / compile
    times = []
    for _ in range(3):
        times.append(timed(lambda: pairwise_bce_loss(z0, z1, tau).backward()))
    return statistics.median(times)


def naive_pairwise(z0: torch.Tensor, z1: torch.Tensor, tau: float) -> torch.Tensor:
    """The direct implementation (three n x n blocks, autograd through elementwise BCE), for comparison."""
    u0, u1 = torch.nn.functional.normalize(z0, dim=1), torch.nn.functional.normalize(z1, dim=1)
    off0 = ~torch.eye(len(u0), dtype=torch.bool)
    off1 = ~torch.eye(len(u1), dtype=torch.bool)
    s00, s11, s01 = (u0 @ u0.T / tau)[off0], (u1 @ u1.T / tau)[off1], u0 @ u1.T / tau
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return bce(s00, torch.ones_like(s00)) + bce(s11, torch.ones_like(s11)) + bce(s01, torch.zeros_like(s01))


def _peak_child(num: int, naive: bool, queue) -> None:
    generator = torch.Generator().manual_seed(0)
    z0 = torch.randn(num, 32, generator=generator, requires_grad=True)
    z1 = torch.randn(num, 32, generator=generator, requires_grad=True)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if naive:
        naive_pairwise(z0, z1, 0.1).backward()
    else:  # eager kernel: a fresh process cannot compile without the compiler's own memory showing up
        pairwise_bce_loss(z0, z1, 0.1, use_compile=False).backward()
    seconds = time.perf_counter() - start
    queue.put(((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024.0, seconds))


def in_child(num: int, naive: bool) -> tuple[float, float]:
    """(peak memory growth in MB, seconds) of one forward+backward in a fresh process."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_peak_child, args=(num, naive, queue))
    child.start()
    result = queue.get(timeout=600)
    child.join()
    return result


def main(batch: int = 8, size: int = 256, rounds: int = 5, threads: int = 0, samples: int = 6000, bf16_rounds: int = 0) -> dict:
    """``bf16_rounds``: rounds for bf16 (0: ``rounds``, or 1 on CPUs without native bf16, where oneDNN
    falls back to a ~10x slower reference convolution and the comparison only needs one sample)."""
    if threads:
        torch.set_num_threads(threads)
    native_bf16 = default_amp_dtype("cpu") is not None
    data = make_batch(batch, size)
    scribbles = data["scribble"][:, 0]
    labels = contrastive_labels(threshold_pseudo_labels(data["ema"], scribbles, 0.8), scribbles)
    available = {}
    for delta in (1, 4):
        blocks = block_labels(labels, delta)
        idx0, _ = balanced_sample(blocks, samples)
        available[f"samples_per_class_delta{delta}"] = int(idx0.numel())
    peak_mb, _ = in_child(samples, naive=False)
    naive_peak_mb, naive_s = in_child(samples, naive=True)
    sup_fp32, main_fp32 = compare(data, bf16=False, rounds=rounds)
    sup_bf16, main_bf16 = compare(data, bf16=True, rounds=bf16_rounds or (rounds if native_bf16 else 1))
    result = {
        "benchmark": "bench_step",
        "batch": batch,
        "size": size,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_native_bf16": native_bf16,
        **available,
        "supervised_step_s": round(sup_bf16, 4),
        "main_step_s": round(main_bf16, 4),
        "ratio": round(main_bf16 / sup_bf16, 3),
        "supervised_step_fp32_s": round(sup_fp32, 4),
        "main_step_fp32_s": round(main_fp32, 4),
        "ratio_fp32": round(main_fp32 / sup_fp32, 3),
        "contrastive_term_fwd_bwd_s": round(contrastive_alone(samples), 4),
        "contrastive_term_peak_mb": round(peak_mb, 1),
        "naive_contrastive_term_fwd_bwd_s": round(naive_s, 3),
        "naive_contrastive_term_peak_mb": round(naive_peak_mb, 1),
        "samples_per_class": samples,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    fire.Fire(main, serialize=lambda _: None)
