from __future__ import annotations

import pytest

from monai_scribble.errors import ArgumentError
from monai_scribble.utils.arguments import as_bool, integer_at_least, number_in, one_of


@pytest.mark.parametrize("value, expected", [(True, True), ("true", True), ("True", True), ("1", True), (False, False), ("false", False), ("no", False), (0, False)])
def test_command_line_flags(value, expected):
    assert as_bool(value) is expected


@pytest.mark.parametrize("check, message", [
    (lambda: as_bool("maybe", "resume"), "--resume: must be true or false, got 'maybe'"),
    (lambda: integer_at_least("max_epochs", "ten", 1), "--max_epochs: must be an integer >= 1, got 'ten'"),
    (lambda: integer_at_least("fold", -1, 0), "--fold: must be an integer >= 0, got -1"),
    (lambda: number_in("ema_momentum", 0, 0.0, 1.0), "--ema_momentum: must be a number in (0, 1], got 0"),
    (lambda: number_in("ema_threshold", "x", 0.5, 1.0, high_open=True), "--ema_threshold: must be a number in (0.5, 1), got 'x'"),
    (lambda: one_of("split", "holdout", ["test", "validation"]), "--split: unknown value 'holdout'; choose one of test, validation"),
])  # fmt: skip
def test_bad_values_name_the_argument(check, message):
    with pytest.raises(ArgumentError) as caught:
        check()
    assert str(caught.value) == message


def test_good_values_come_back_converted():
    assert (integer_at_least("seed", "3", 0), number_in("scribble_ratio", "0.3", 0.0, 1.0), one_of("split", "test", ["test"])) == (3, 0.3, "test")
