"""Durations, sizes and times as users write them (30d, 12h, 20GB) and as we print them."""

from __future__ import annotations

import datetime as dt
import re

_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION_RE = re.compile(r"(\d+)([smhdw])")
# Longer is a typo (or an attack on the date arithmetic: now - 10**14 days overflows datetime).
MAX_DURATION = dt.timedelta(days=36500)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_duration(text: str) -> dt.timedelta:
    """`30d`, `12h`, `90m`, `2w`, `45s` or a sum such as `1d12h`. Raises ValueError."""
    value = text.strip()
    if not value:
        raise ValueError("empty duration")
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(value):
        if m.start() != pos:
            break
        if len(m.group(1)) > 12:  # before int(): Python refuses to convert very long digit strings
            total = MAX_DURATION.days * 86400 + 1
        else:
            total += int(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(value):
        raise ValueError(f"bad duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 30d, 12h)")
    if total > MAX_DURATION.total_seconds():
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"duration {shown!r} is too long (at most {MAX_DURATION.days}d, 100 years)")
    return dt.timedelta(seconds=total)


def parse_size(text: str) -> int:
    """`20GB` (decimal), `20GiB` (binary), `500M`, plain bytes. Raises ValueError."""
    m = _SIZE_RE.match(text)
    unit = m.group(2).lower() if m else None
    number = float(m.group(1)) * _SIZE_UNITS[unit] if m and unit in _SIZE_UNITS else None
    if number is None or not number < 2**63:  # also inf, from a few hundred digits
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ValueError(f"bad size {shown!r}: use a number and B, KB, MB, GB, TB, KiB, MiB, GiB")
    return int(number)


def format_bytes(n: int) -> str:
    """Decimal units, as docker prints sizes."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def format_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_time(value: object) -> dt.datetime | None:
    """RFC 3339 (with nanoseconds, as Go writes it) or unix seconds, to an aware UTC datetime.
    Image configs are untrusted: anything else (a dict, a bool, 1e30, a year past 9999 once in
    UTC) is None, "unknown", never an exception."""
    if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
        return None
    if isinstance(value, int | float):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = value.strip()
    m = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$", text)
    if not m:
        return None
    frac = (m.group(3) or "")[:7].ljust(7, "0") if m.group(3) else ""
    tz = m.group(4) or "Z"
    tz = "+00:00" if tz == "Z" else tz
    try:
        parsed = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{frac}{tz}")
    except ValueError:
        return None
    if parsed.year <= 1:  # Go's zero time: unknown
        return None
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        return None
