"""A failed step's own error, read out of the Dagster event that reports it (for sync summaries and alerts)."""

from __future__ import annotations

import re

import dagster as dg
from dagster_shared.error import SerializableErrorInfo


def failure_message(event: dg.DagsterEvent) -> str:
    """A failed step's own error in one line: `<step>: <message>`."""
    error = _asset_error(event)
    message = error.message.strip() if error else "failed"
    return f"{event.step_key}: {message.splitlines()[0] if message else 'failed'}"


def failure_cause(event: dg.DagsterEvent) -> str:
    """The asset's own error message, first line, without the exception's class name."""
    error = _asset_error(event)
    lines = error.message.strip().splitlines() if error else []
    if not lines or error is None:
        return "failed"
    qualified = re.match(rf"[\w.]*\b{re.escape(error.cls_name or '')}: ", lines[0]) if error.cls_name else None
    return lines[0][qualified.end() :] if qualified else lines[0]


def _asset_error(event: dg.DagsterEvent) -> SerializableErrorInfo | None:
    data = event.step_failure_data
    error = data.error if data else None
    # Dagster wraps the asset's own exception; that one, not what it was raised from, says what happened.
    while error is not None and error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error
