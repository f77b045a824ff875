"""RFC 3339 and RFC 1123 timestamps as Kraken writes them, to and from Unix seconds.

Kraken's WebSocket v2 stamps every ledger entry and response with UTC RFC 3339
text at microsecond precision, ``2023-09-22T10:23:42.925034Z`` (docs/kraken.md,
'Message shapes'); REST ``SystemStatus`` omits the fraction and REST ``Time``
gives an RFC 1123 string with a two-digit year (docs/kraken.md, 'Time and
SystemStatus'). These helpers run once per ledger
entry on the hot path: parsing uses :meth:`datetime.datetime.fromisoformat`
(C code, faster than slicing in Python) and formatting caches the
``YYYY-MM-DDTHH:MM:`` prefix per minute.

No clock is read here: these functions only convert values they are given.
"""

from __future__ import annotations

import datetime as _dt

from balance_manager.exceptions import ProtocolError

__all__ = ["format_rfc1123", "format_rfc3339", "parse_rfc3339"]

_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
_SECONDS_PER_DAY = 86_400
_MICROS_PER_SECOND = 1_000_000
_MICROS_PER_MINUTE = 60 * _MICROS_PER_SECOND

_fromisoformat = _dt.datetime.fromisoformat

# Formatting cache: a stream's timestamps share a handful of minutes, so the
# "2023-09-22T10:23:" prefix is built once per minute and reused. Bounded so a
# long-running simulator does not grow memory.
_CACHE_LIMIT = 4096
_minute_text: dict[int, str] = {}

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _bad(text: str) -> ProtocolError:
    return ProtocolError(f"not an RFC 3339 timestamp: {text[:40]!r}", path="$")


def parse_rfc3339(text: str) -> float:
    """Unix seconds (UTC) of an RFC 3339 timestamp, at microsecond precision.

    >>> parse_rfc3339("2023-09-22T10:23:42.925034Z")
    1695378222.925034
    >>> parse_rfc3339("2021-03-22T17:18:03Z")
    1616433483.0

    Digits beyond the microsecond are truncated (as :mod:`datetime` does).

    Raises:
        ProtocolError: ``text`` is not a date-time with a time zone.
    """
    # datetime's C parser (Python >= 3.11 reads "Z" and any fraction length) is
    # several times faster here than slicing in Python; this runs per ledger entry.
    try:
        moment = _fromisoformat(text)
    except (TypeError, ValueError):
        raise _bad(str(text)) from None
    # A zone-less time would have to be guessed (local? UTC?): refuse it instead.
    if moment.tzinfo is None or len(text) < 20:
        raise _bad(text)
    # timestamp() of an aware datetime is (moment - epoch) as exact integers
    # divided once: correctly rounded, and no local clock or zone is consulted.
    return moment.timestamp()


def _minute_prefix(minute: int) -> str:
    text = _minute_text.get(minute)
    if text is None:
        days, minutes = divmod(minute, 24 * 60)
        hours, minutes = divmod(minutes, 60)
        date = _dt.date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
        text = f"{date}T{hours:02d}:{minutes:02d}:"
        if len(_minute_text) >= _CACHE_LIMIT:
            _minute_text.clear()
        _minute_text[minute] = text
    return text


def format_rfc3339(ts: float, *, fraction: bool = True) -> str:
    """Kraken's RFC 3339 text for Unix seconds ``ts``, rounded to the microsecond.

    >>> format_rfc3339(1695378222.925034)
    '2023-09-22T10:23:42.925034Z'
    >>> format_rfc3339(1616433483, fraction=False)
    '2021-03-22T17:18:03Z'

    Args:
        ts: Unix seconds (UTC).
        fraction: write the six fractional digits (WebSocket style); without it
            the value is truncated to the second (REST ``SystemStatus`` style).
    """
    micros = round(ts * _MICROS_PER_SECOND)
    minute, within = divmod(micros, _MICROS_PER_MINUTE)
    digits = f"{within:08d}"  # SSffffff
    if fraction:
        return f"{_minute_prefix(minute)}{digits[:2]}.{digits[2:]}Z"
    return f"{_minute_prefix(minute)}{digits[:2]}Z"


def format_rfc1123(ts: float) -> str:
    """REST ``Time.rfc1123`` text: ``Thu, 06 Jul 23 18:50:48 +0000`` (two-digit year).

    >>> format_rfc1123(1688669448)
    'Thu, 06 Jul 23 18:50:48 +0000'
    """
    whole = int(ts // 1)
    days, seconds = divmod(whole, _SECONDS_PER_DAY)
    day = _dt.date.fromordinal(days + _EPOCH_ORDINAL)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return (
        f"{_WEEKDAYS[day.weekday()]}, {day.day:02d} {_MONTHS[day.month - 1]} "
        f"{day.year % 100:02d} {hours:02d}:{minutes:02d}:{seconds:02d} +0000"
    )
