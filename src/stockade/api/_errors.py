"""Errors of the control API part."""

from __future__ import annotations

from stockade.errors import StockadeError

__all__ = ["ApiError", "BadRequestError"]


class ApiError(StockadeError):
    """The control API could not start or serve as configured."""


class BadRequestError(ApiError):
    """A request was malformed (answered 400)."""
