"""monai_scribble.visualize: overlays, probability-map view, learning curves from TensorBoard logs."""

from __future__ import annotations

import numpy as np
import pytest

from monai_scribble.visualize import contour_overlay, learning_curves, plot_learning_curves, probability_map_view, scribble_overlay, to_rgb_uint8


@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3), (3, 6, 5), (1, 6, 5)])
def test_to_rgb_uint8_layouts(shape):
    out = to_rgb_uint8(np.full(shape, 0.5, np.float32))
    assert out.shape == (6, 5, 3) and out.dtype == np.uint8 and int(out[0, 0, 0]) == 128


def test_scribble_overlay_colours_strokes_only():
    scribble = np.full((6, 6), 250, np.uint8)
    scribble[1, :] = 0
    scribble[4, :] = 1
    out = scribble_overlay(np.zeros((6, 6)), scribble)
    assert tuple(out[1, 0]) == (0, 160, 255) and tuple(out[4, 0]) == (255, 40, 40) and tuple(out[2, 0]) == (0, 0, 0)
    assert (scribble_overlay(np.zeros((6, 6)), scribble, thickness=3)[2, 0] != 0).any()  # dilated stroke


def test_contour_overlay_draws_boundaries_only():
    instances = np.zeros((8, 8), np.int32)
    instances[2:6, 2:6] = 1
    out = contour_overlay(np.zeros((8, 8, 3), np.uint8), instances)
    assert tuple(out[2, 2]) == (255, 255, 0) and tuple(out[3, 3]) == (0, 0, 0) and tuple(out[0, 0]) == (0, 0, 0)


def test_probability_map_view_colours_and_pseudo_label_gaps():
    view = probability_map_view(np.array([[0.0, 0.5, 1.0, 0.7]]))
    assert tuple(view[0, 0]) == (0, 0, 255) and tuple(view[0, 1]) == (255, 255, 255) and tuple(view[0, 2]) == (255, 0, 0)
    gated = probability_map_view(np.array([[0.0, 0.7, 0.9]]), threshold=0.8)
    assert tuple(gated[0, 1]) == (128, 128, 128) and tuple(gated[0, 2]) != (128, 128, 128)


def test_learning_curves_from_tensorboard(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step, value in enumerate([1.0, 0.5, 0.25], start=1):
        writer.add_scalar("loss", value, step)  # the bundle's training tags: one point per iteration
    writer.add_scalar("val_iou", 0.4, 1)  # validation: one point per epoch
    writer.close()
    steps, values = learning_curves(tmp_path)["loss"]
    assert steps.tolist() == [1, 2, 3] and values.tolist() == pytest.approx([1.0, 0.5, 0.25])
    pytest.importorskip("matplotlib", reason="plotting needs matplotlib (pip install -e '.[test]')")
    figure = plot_learning_curves(tmp_path, path=tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert [(ax.get_title(), ax.get_xlabel()) for ax in figure.axes] == [("loss", "iteration"), ("val_iou", "epoch")]
    with pytest.raises(KeyError, match=r"tags \['pseudo_ce'\] not logged"):
        plot_learning_curves(tmp_path, tags=["pseudo_ce"])


def test_learning_curves_of_a_resumed_run_keep_one_value_per_step(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    interrupted = SummaryWriter(str(tmp_path))
    for step in range(1, 6):  # steps 1-5 logged, then killed after the checkpoint of step 3
        interrupted.add_scalar("loss", float(step), step)
    interrupted.close()
    resumed = SummaryWriter(str(tmp_path))  # a second event file, written later
    for step in range(4, 7):
        resumed.add_scalar("loss", 10.0 * step, step)
    resumed.close()
    steps, values = learning_curves(tmp_path)["loss"]
    assert steps.tolist() == [1, 2, 3, 4, 5, 6]  # steps 4 and 5 once each, ...
    assert values.tolist() == pytest.approx([1.0, 2.0, 3.0, 40.0, 50.0, 60.0])  # ... with the resumed run's values


def test_learning_curves_without_logs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        learning_curves(tmp_path)


def test_training_summary_reports_the_method_at_work(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    from monai_scribble.visualize import training_summary

    writer = SummaryWriter(str(tmp_path))
    for epoch, iou in ((5, 0.4), (10, 0.6), (15, 0.55)):
        writer.add_scalar("val_iou", iou, epoch)
    for step in range(1, 11):  # warm-up iterations 1-6 log no pseudo-label share; main stage 7-10
        writer.add_scalar("scribble_ce", 1.0, step)
        if step > 6:
            writer.add_scalar("pseudo_fg_share", 0.1 * (step - 6), step)
            writer.add_scalar("pseudo_bg_share", 0.0 if step < 9 else 0.5, step)
            writer.add_scalar("contrastive_d5_delta1", 0.3, step)
            writer.add_scalar("contrastive_d3_delta4", 0.0 if step < 9 else 0.2, step)
    writer.add_scalar("pseudo_bg_precision", 0.9, 10)
    writer.close()
    summary = training_summary(tmp_path)
    assert summary["val_iou"] == {5: 0.4, 10: 0.6, 15: 0.55}
    assert (summary["best_val_iou"], summary["best_epoch"], summary["main_stage_iterations"]) == (0.6, 10, 4)
    assert (summary["r1_nonzero_share"], summary["r1_first_nonzero_iteration"]) == (1.0, 7)
    assert (summary["r4_nonzero_share"], summary["r4_first_nonzero_iteration"]) == (0.5, 9)
    assert summary["mean_pseudo_fg_share"] == pytest.approx(0.25) and summary["last_pseudo_bg_share"] == 0.5
    assert summary["last_pseudo_bg_precision"] == pytest.approx(0.9) and "last_pseudo_fg_precision" not in summary
