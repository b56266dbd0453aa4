"""The bundle's configs are declarative (model-zoo style) and each dataset preset is one overlay file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

CONFIGS = Path(__file__).resolve().parents[2] / "bundles" / "scribble_cell_segmentation" / "configs"
CONFIG_FILES = sorted([*CONFIGS.glob("*.json"), *(CONFIGS / "datasets").glob("*.json")])
MAX_EXPRESSION = 110  # characters of one "$" expression
MODEL_ZOO_DEVICE = "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"  # the zoo's idiom, kept


def expressions(node):
    if isinstance(node, str) and node.startswith("$"):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)


@pytest.mark.parametrize("path", CONFIG_FILES, ids=[p.relative_to(CONFIGS).as_posix() for p in CONFIG_FILES])
def test_expressions_are_short_and_never_branch(path):
    found = [e for e in expressions(json.loads(path.read_text())) if e != MODEL_ZOO_DEVICE]
    assert [e for e in found if len(e) > MAX_EXPRESSION] == []
    assert [e for e in found if " if " in e or " else " in e] == []


def parsed(*names: str) -> ConfigParser:
    parser = ConfigParser()
    parser.read_config([str(CONFIGS / name) for name in names])
    parser.get_parsed_content("imports")
    return parser


@pytest.mark.parametrize("preset, schedule, ema, intensity", [
    (None, (40, 30, 2, 8, 128, 5), (0.2, 0.8), "brightness_contrast"),  # train.json alone: the synthetic demo
    ("dsb_bf", (1000, 100, 5, "auto", 256, 1), (0.2, 0.8), "brightness_contrast"),
    ("dsb_fluo", (1000, 100, 5, "auto", 256, 1), (0.2, 0.8), "brightness_contrast"),
    ("dsb_histo", (1000, 100, 5, "auto", 256, 1), (0.2, 0.8), "brightness_contrast"),
    ("folder", (1000, 100, 5, "auto", 256, 1), (0.2, 0.8), "brightness_contrast"),
    ("monuseg", (1000, 100, 5, "auto", 256, 1), (0.1, 0.95), "color_jitter"),  # the authors' MoNuSeg EMA
])  # fmt: skip
def test_a_dataset_preset_sets_the_dataset_its_schedule_and_ema(preset, schedule, ema, intensity):
    parser = parsed("train.json", *([f"datasets/{preset}.json"] if preset else []))
    names = ("max_epochs", "warmup_epochs", "ema_period", "batch_size", "crop_size", "val_interval")
    assert tuple(parser.get_parsed_content(n) for n in names) == schedule
    assert parser["dataset"] == parser["dataset_preset"] == (preset or "synthetic")
    config = parser.get_parsed_content("ema_config")  # the one config the whole EMA loop shares
    assert (config.momentum, config.threshold, config.period) == (*ema, schedule[2])
    assert parser["intensity"] == intensity


def test_run_is_training_and_evaluation_reads_the_datalist_prepare_wrote():
    assert parsed("train.json")["run"] == "@training"
    assert parsed("train.json", "evaluate.json")["datalist"] == "$os.path.join(@output_dir, 'datalist.json')"
