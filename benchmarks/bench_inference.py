"""Tile -> instance map time and peak memory of ``segment()`` on one 1000 x 1000 MoNuSeg tile (or a random image).

Usage::

    python benchmarks/bench_inference.py [--data_root ../shared/data] [--model output/models/model.pt] [--repeats 3]
    python benchmarks/bench_inference.py --side 8000 --random_image --modes fp32_eager --inference_mode sliding_window --repeats 0

Each mode runs in its own subprocess (fresh peak-RSS counter) and times the whole
``segment(image, model, inference_mode=...)`` call on the loaded image (network, argmax, connected components,
small objects removed, holes filled): ``fp32_eager`` (``cpu_fast_path=False``), ``fp32_fast_path`` (``cpu_fast_path=True``:
batch norms folded, Winograd 3x3 convolutions), ``bf16`` (autocast + channels-last) and ``bf16_fast_path``
(``cpu_fast_path=True``: batch norms folded, weights cast to bf16 once); the bf16 modes are measured only where the
CPU has native bf16. Reported per mode: median seconds of ``repeats`` calls after one warm-up call (with
``--repeats 0``: the one call; ``segment()`` keeps a model file's network, so only the first call, also
reported, builds the network and reads the weights), the process's peak RSS (MiB), and the time ratios to
``fp32_eager`` from the same run.
Without ``--model`` the network is randomly initialised and saved to a temporary ``model.pt`` (the same
arithmetic; the post-processing then sees another mask). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


MODES = ("fp32_eager", "fp32_fast_path", "bf16", "bf16_fast_path")


def measure(mode: str, image_path: str | None, model: str | None, side: int, inference_mode: str, repeats: int) -> dict:
    import torch

    from monai_scribble.inference import segment
    from monai_scribble.networks import MultiscaleUNet
    from monai_scribble.data.image_io import read_image

    if image_path:
        image = read_image(image_path)
    else:
        image = (torch.rand(side, side, 3) * 255).to(torch.uint8).numpy()
    if model is None:  # a model file, as users pass: segment() prepares its network once and keeps it
        torch.manual_seed(0)
        model = str(Path(tempfile.mkdtemp(prefix="bench_inference_")) / "model.pt")
        torch.save({"model": MultiscaleUNet().state_dict()}, model)
    options = {"cpu_fast_path": mode.endswith("fast_path"), "amp_dtype": torch.bfloat16 if mode.startswith("bf16") else None}
    times = []
    for _ in range(repeats + 1 if repeats else 1):
        start = time.perf_counter()
        instances = segment(image, model, inference_mode=inference_mode, device="cpu", **options)
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if model.startswith(tempfile.gettempdir()) and Path(model).parent.name.startswith("bench_inference_"):
        shutil.rmtree(Path(model).parent, ignore_errors=True)
    return {"mode": mode, "shape": list(instances.shape), "seconds": round(statistics.median(times[1:] or times), 3),
            "first_call_seconds": round(times[0], 3), "peak_rss_mib": round(peak / 1024, 1), "objects": int(instances.max())}  # fmt: skip


def main() -> None:
    from monai_scribble.data.data_root import default_data_root
    from monai_scribble.utils.precision import default_amp_dtype

    parser = argparse.ArgumentParser()
    parser.add_argument("--data_root", default=None)
    parser.add_argument("--model", default=None, help="a model.pt (default: a randomly initialised network)")
    parser.add_argument("--side", type=int, default=1000, help="side of a random image when no MoNuSeg tile is used")
    parser.add_argument("--random_image", action="store_true", help="use a random side x side image, not the tile")
    parser.add_argument("--inference_mode", default="pad", choices=("pad", "sliding_window"))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--_mode", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_image", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._mode:
        print(json.dumps(measure(args._mode, args._image, args.model, args.side, args.inference_mode, args.repeats)))
        return
    image = None
    if not args.random_image and args.side == 1000:
        tiles = sorted((Path(args.data_root or default_data_root()) / "monuseg" / "test" / "images").glob("*.tif"))
        image = str(tiles[0]) if tiles else None
    native_bf16 = default_amp_dtype("cpu") is not None
    modes = [m for m in args.modes if not m.startswith("bf16") or native_bf16]
    results = {}
    for mode in modes:
        command = [sys.executable, __file__, "--_mode", mode, "--repeats", str(args.repeats), "--side", str(args.side),
                   "--inference_mode", args.inference_mode] + (["--_image", image] if image else []) + (["--model", args.model] if args.model else [])  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        results[mode] = json.loads(result.stdout.strip().splitlines()[-1])
    import torch

    ratios = {f"{m}_over_fp32_eager_time": round(results[m]["seconds"] / results["fp32_eager"]["seconds"], 2) for m in results if m != "fp32_eager" and "fp32_eager" in results}  # fmt: skip
    print(json.dumps({
        "image": Path(image).name if image else f"random {args.side}x{args.side}", "inference_mode": args.inference_mode,
        "model": args.model or "random init", "torch_threads": torch.get_num_threads(), "cpu_native_bf16": native_bf16,
        **results, **ratios,
    }))  # fmt: skip


if __name__ == "__main__":
    main()
