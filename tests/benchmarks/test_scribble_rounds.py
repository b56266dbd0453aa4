from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "scribble_rounds.py"
sys.path.insert(0, str(PATH.parent))
spec = importlib.util.spec_from_file_location("scribble_rounds", PATH)
scribble_rounds = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scribble_rounds)


@pytest.mark.parametrize("fraction, seed, count", [(0.2, 0, 12), (0.2, 1, 12), (0.5, 0, 30), (0.001, 0, 1)])
def test_seeded_subset(fraction, seed, count):
    ids = [f"img{i:02d}" for i in range(60)]
    chosen = scribble_rounds.seeded_subset(ids, fraction, seed)
    assert len(chosen) == count and len(set(chosen)) == count and chosen == sorted(chosen, key=ids.index)
    assert chosen == scribble_rounds.seeded_subset(ids, fraction, seed)


def test_next_by_score_takes_the_first_unscribbled_rows(tmp_path):
    path = tmp_path / "scribble_next.csv"
    rows = [("a", "1", 0.9), ("b", "0", 0.8), ("c", "0", 0.7), ("d", "1", 0.6), ("e", "0", 0.5)]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", "id", "image", "scribbled", "unconfident_share", "nucleus_share", "background_share"])
        writer.writerows([(i + 1, name, f"{name}.png", scribbled, share, 0, 0) for i, (name, scribbled, share) in enumerate(rows)])
    assert scribble_rounds.next_by_score(path, 2) == ["b", "c"]
    assert scribble_rounds.next_by_score(path, 5) == ["b", "c", "e"]


def test_next_at_random_is_seeded_and_distinct():
    candidates = [f"c{i}" for i in range(48)]
    first = scribble_rounds.next_at_random(candidates, 12, 0)
    assert len(set(first)) == 12 and set(first) <= set(candidates)
    assert first == scribble_rounds.next_at_random(candidates, 12, 0) and first != scribble_rounds.next_at_random(candidates, 12, 1)
