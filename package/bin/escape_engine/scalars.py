"""Reading scalar values out of events without tripping over Python's Unicode-aware number parsing.

`str.isdigit()` is True for "²", "٣", "𝟘" and fullwidth "１", yet `int("²")` raises; `\\d` in a regular expression
matches every Unicode decimal digit; `float()` accepts "inf", "nan", "1e400" (inf) and "١٢٣". Numbers in the logs
the add-on reads (pids, serials, event ids, epoch times, list positions) are ASCII, so anything else is malformed.
Every engine reads such values through this module, never through a bare isdigit() / int() / float().
"""
import math
from typing import Optional, Tuple

ASCII_DIGITS = "0123456789"
DIGITS_PATTERN = "[0-9]"        # use in regular expressions instead of \\d (which matches any Unicode digit)


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of ASCII digits 0-9 only (no sign, space, underscore or Unicode digit)."""
    return bool(text) and text.isascii() and text.isdigit()


def ascii_int(text: str, max_digits: int = 30) -> Optional[int]:
    """The value of a run of at most `max_digits` ASCII digits, else None (never raises)."""
    if not is_ascii_digits(text) or len(text) > max_digits:
        return None
    return int(text)


def numeric_key(text: str) -> Tuple[int, str]:
    """A sort key that orders runs of ASCII digits numerically without converting them (any length)."""
    digits = text.lstrip("0") or "0"
    return len(digits), digits


def finite_float(value: object) -> Optional[float]:
    """A finite number from an ASCII number text (or an int / float), else None: "inf", "nan", "1e400", "١٢٣",
    "0x10", "", lists, dicts and None are all None. Booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            return None
        return number if math.isfinite(number) else None
    if not isinstance(value, str) or not value.isascii():
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def first_text(value: object) -> str:
    """A Splunk field value as text: the string, or the first value of a multivalue field; anything else is ""."""
    if isinstance(value, list):
        value = value[0] if value else ""
    return value if isinstance(value, str) else ""
