"""Time the first (cold) full read of DSB 2018 stage1_train against a cached re-read.

Usage::

    python benchmarks/dsb_read.py [--stage_dir ../shared/data/dsb2018/stage1_train]

Prints one JSON object: seconds for the cold read (masks merged into instance maps, written to a
fresh temporary cache) and for the cached re-read, their ratio, and the image/mask counts.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import fire

from monai_scribble.data.data_root import default_data_root
from monai_scribble.data.dsb2018 import read_dsb2018


def main(stage_dir: str | None = None) -> dict:
    if stage_dir is None:
        stage_dir = str(default_data_root() / "dsb2018" / "stage1_train")
    with tempfile.TemporaryDirectory(prefix="dsb_read_bench_") as cache:
        start = time.perf_counter()
        infos = read_dsb2018(stage_dir, cache_dir=cache)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = read_dsb2018(stage_dir, cache_dir=cache)
        cached = time.perf_counter() - start
    assert [i.sample for i in infos] == [i.sample for i in again]
    result = {
        "benchmark": "dsb_read",
        "stage_dir": str(Path(stage_dir).resolve()),
        "images": len(infos),
        "masks": sum(i.num_masks for i in infos),
        "cold_read_s": round(cold, 2),
        "cached_read_s": round(cached, 3),
        "speedup": round(cold / cached, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    fire.Fire(main, serialize=lambda _: None)
