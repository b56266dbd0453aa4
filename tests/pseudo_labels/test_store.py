from __future__ import annotations

import numpy as np
import pytest

from monai_scribble.pseudo_labels import PseudoLabelStore

SHAPES = {"a": (4, 5), "b": (3, 3)}


def test_starts_at_zero_and_updates_by_ema(tmp_path):
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    assert store.state == {"generation": 0, "updates": 0} and store.ids == ["a", "b"]
    assert np.array_equal(store.get("a"), np.zeros((4, 5), np.float32))
    ones = {k: np.ones(s, np.float32) for k, s in SHAPES.items()}
    store.update(ones, momentum=0.2)
    store.update(ones, momentum=0.2)
    np.testing.assert_allclose(store.get("a"), 1 - 0.8**2, atol=1e-3)  # float16 storage
    assert store.state == {"generation": 2, "updates": 2}
    reopened = PseudoLabelStore(tmp_path / "ema")  # e.g. in a data-loader worker
    np.testing.assert_array_equal(reopened.get("b"), store.get("b"))


def test_restore_and_prune(tmp_path):
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    ones = {k: np.ones(s, np.float32) for k, s in SHAPES.items()}
    store.update(ones, 0.5)
    store.update(ones, 0.5)
    store.prune(keep={1})
    assert sorted(p.name for p in (tmp_path / "ema").iterdir()) == ["000001", "000002", "current.json"]
    store.restore(1, 1)  # a resumed run goes back to the generation its checkpoint recorded
    np.testing.assert_allclose(store.get("a"), 0.5, atol=1e-3)
    with pytest.raises(FileNotFoundError, match="EMA generation 0 recorded in the checkpoint is gone"):
        store.restore(0, 0)


@pytest.mark.parametrize(
    "probabilities, momentum, error, message",
    [
        ({"a": np.ones((4, 5))}, 0.2, KeyError, "missing \\['b'\\]"),
        ({"a": np.ones((4, 4)), "b": np.ones((3, 3))}, 0.2, ValueError, "has shape \\(4, 4\\), store has \\(4, 5\\)"),
        ({"a": np.ones((4, 5)), "b": np.ones((3, 3))}, 0.0, ValueError, r"--ema_momentum: must be a number in \(0, 1\]"),
    ],
)
def test_update_errors_leave_current_generation(tmp_path, probabilities, momentum, error, message):
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    with pytest.raises(error, match=message):
        store.update(probabilities, momentum)
    assert store.generation == 0


def test_sharded_update_equals_single_update(tmp_path):
    """Data-parallel refresh: each rank writes its share, then one commit; same maps as one update."""
    probabilities = {"a": np.full((4, 5), 0.9, np.float32), "b": np.full((3, 3), 0.3, np.float32)}
    single = PseudoLabelStore(tmp_path / "single", SHAPES)
    single.update(probabilities, 0.2)
    sharded = PseudoLabelStore(tmp_path / "sharded", SHAPES)
    state = sharded.state
    sharded.begin_update(state)
    for shard in (["a"], ["b"]):  # rank 0, rank 1
        sharded.write_update(state, {k: probabilities[k] for k in shard}, 0.2)
    assert sharded.generation == 0  # invisible until committed
    sharded.commit_update(state)
    assert sharded.state == single.state == {"generation": 1, "updates": 1}
    for image_id in SHAPES:
        np.testing.assert_array_equal(sharded.get(image_id), single.get(image_id))


def test_commit_with_a_missing_shard_is_refused(tmp_path):
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    state = store.state
    store.begin_update(state)
    store.write_update(state, {"a": np.ones((4, 5), np.float32)}, 0.2)
    with pytest.raises(KeyError, match=r"missing \['b'\] \(1 in all\)"):
        store.commit_update(state)
    assert store.state == {"generation": 0, "updates": 0}
    with pytest.raises(KeyError, match=r"no EMA map for images \['zz'\]"):
        store.write_update(state, {"zz": np.ones((2, 2), np.float32)}, 0.2)


def test_missing_store_and_id(tmp_path):
    with pytest.raises(FileNotFoundError, match="no pseudo-label store here"):
        PseudoLabelStore(tmp_path / "nothing")
    store = PseudoLabelStore(tmp_path / "ema", SHAPES)
    with pytest.raises(KeyError, match="no EMA map for image 'zz'"):
        store.get("zz")
