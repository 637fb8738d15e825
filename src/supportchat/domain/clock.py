"""Time as the API shows it: UTC, millisecond precision, ISO 8601 with a trailing Z."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time truncated to milliseconds, so what is stored is what is shown."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
