"""Errors of the grounding package, and the check point that raises `CheckCancelled`."""

from __future__ import annotations

from collections.abc import Callable

ShouldStop = Callable[[], bool]


class GroundingError(RuntimeError):
    """The checker could not finish a check."""


class CheckCancelled(GroundingError):
    """The caller's `should_stop()` returned True, so the check stopped at its next check point.

    Nothing partial is returned: a half-checked answer would show sentences nobody checked.
    """


def check_point(should_stop: ShouldStop | None) -> Callable[[], None]:
    """The function a loop calls at each check point: it raises CheckCancelled once should_stop() is true.

    check_point(None)() -> None (never stops); check_point(lambda: True)() raises CheckCancelled.
    """
    if should_stop is None:
        return _go_on

    def check() -> None:
        if should_stop():
            raise CheckCancelled("the grounding check was cancelled: should_stop() returned True")

    return check


def _go_on() -> None:
    return None
