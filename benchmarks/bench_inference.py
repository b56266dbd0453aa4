"""Whole-image inference time and peak memory on one 1000 x 1000 MoNuSeg tile (or a random image).

Usage::

    python benchmarks/bench_inference.py [--data_root ../shared/data] [--repeats 3]

Each mode runs in its own subprocess (fresh peak-RSS counter): fp32 with contiguous inputs, fp32 with
channels-last inputs (``WholeImageInferer``'s default on CPU), and bf16 autocast + channels-last (network and
inputs). Reported per mode: median seconds of ``repeats`` passes after one warm-up pass
(``WholeImageInferer`` pad mode: 1000 -> 1024, one forward, crop back), and the process's peak RSS
increase during inference (MiB). The ratios to fp32 are from the same run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


MODES = ("fp32", "fp32_channels_last", "bf16_channels_last")


def measure(mode: str, image_path: str | None, repeats: int) -> dict:
    import torch

    from monai_scribble.data.transforms import eval_transforms
    from monai_scribble.inference import WholeImageInferer
    from monai_scribble.networks import MultiscaleUNet

    if image_path:
        image = eval_transforms(keys=("image",))({"image": image_path})["image"][None].as_tensor()
    else:
        image = torch.randn(1, 3, 1000, 1000)
    network = MultiscaleUNet().eval()
    bf16 = mode == "bf16_channels_last"
    if bf16:
        network = network.to(memory_format=torch.channels_last)
    inferer = WholeImageInferer(amp_dtype=torch.bfloat16 if bf16 else None, channels_last=mode != "fp32")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            start = time.perf_counter()
            logits = inferer(image, network)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mode": mode, "shape": list(image.shape[-2:]), "seconds": round(statistics.median(times[1:]), 3),
            "peak_rss_increase_mib": round((peak - before) / 1024, 1), "logits_shape": list(logits.shape)}  # fmt: skip


def main() -> None:
    from monai_scribble.data.data_root import default_data_root

    parser = argparse.ArgumentParser()
    parser.add_argument("--data_root", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--_mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_image", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._mode:
        print(json.dumps(measure(args._mode, args._image, args.repeats)))
        return
    root = Path(args.data_root or default_data_root())
    tiles = sorted((root / "monuseg" / "test" / "images").glob("*.tif"))
    image = str(tiles[0]) if tiles else None
    results = {}
    for mode in MODES:
        command = [sys.executable, __file__, "--_mode", mode, "--repeats", str(args.repeats)] + (["--_image", image] if image else [])
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        results[mode] = json.loads(result.stdout.strip().splitlines()[-1])
    import torch

    from monai_scribble.utils.precision import default_amp_dtype

    print(json.dumps({
        "image": Path(image).name if image else "random 1000x1000", "torch_threads": torch.get_num_threads(),
        "cpu_native_bf16": default_amp_dtype("cpu") is not None,
        **results, **{f"{mode}_over_fp32_time": round(results[mode]["seconds"] / results["fp32"]["seconds"], 2) for mode in MODES[1:]},
    }))  # fmt: skip


if __name__ == "__main__":
    main()
