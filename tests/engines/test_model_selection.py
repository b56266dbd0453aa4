from __future__ import annotations

import pytest

from monai_scribble.engines.model_selection import selection_metric


@pytest.mark.parametrize(
    "select_by, items, expected",
    [
        ("auto", [{"label": "a.png"}, {"label": "b.png"}], "val_iou"),
        ("auto", [{"label": "a.png"}, {}], "val_scribble_accuracy"),
        ("scribble", [{"label": "a.png"}], "val_scribble_accuracy"),
        ("iou", [{"label": "a.png"}], "val_iou"),
        ("scribble_instances", [{}], "val_scribble_instances"),
    ],
)
def test_selection_metric(select_by, items, expected):
    assert selection_metric(select_by, items) == expected


@pytest.mark.parametrize("select_by, message", [("iou", "needs a label map"), ("dice", "--select_by: unknown value 'dice'")])
def test_selection_metric_errors(select_by, message):
    with pytest.raises(ValueError, match=message):
        selection_metric(select_by, [{}])
