"""Bundle arguments as they arrive from the command line (``--resume true`` is the string ``"true"``)."""

from __future__ import annotations

from typing import Any

from monai_scribble.errors import ArgumentError

__all__ = ["as_bool", "integer_at_least", "number_in", "one_of"]


def as_bool(value: bool | str | int, name: str = "value") -> bool:
    """A bundle flag given on the command line: ``--resume true`` arrives as the string ``"true"``.

    Raises:
        ArgumentError: anything but a bool, 0/1 or true/false/yes/no (any case).
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ArgumentError(name, f"must be true or false, got {value!r}")


def integer_at_least(name: str, value: Any, minimum: int, hint: str = "") -> int:
    """``value`` as an int ``>= minimum`` (``"5"`` from the command line included); else :class:`ArgumentError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise ArgumentError(name, f"must be an integer >= {minimum}, got {value!r}", hint)
    number = int(value)
    if number < minimum:
        raise ArgumentError(name, f"must be an integer >= {minimum}, got {number}", hint)
    return number


def number_in(name: str, value: Any, low: float, high: float, low_open: bool = True, high_open: bool = False) -> float:
    """``value`` as a float in the interval ``low``..``high`` (open or closed at each end); else :class:`ArgumentError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if number != number or below or above:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ArgumentError(name, f"must be a number in {interval}, got {value!r}")
    return number


def one_of(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    """``value`` if it is one of ``choices``; else :class:`ArgumentError` naming ``name`` and listing them."""
    if value not in choices:
        raise ArgumentError(name, f"unknown value {value!r}", f"choose one of {', '.join(choices)}")
    return str(value)
