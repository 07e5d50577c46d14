"""How user text appears in an error line: one harmless line, a name quoted and clipped.

The command line prints every error through ``clip_line``: one line of at most ``MAX_LINE`` characters,
whatever the message holds; an error message quotes a name the user gave through ``quote``. Kept apart
from ``limits`` (which builds pydantic types) so that ``balancer --help`` imports no pydantic.
"""

from __future__ import annotations

import re

MAX_LINE = 300  # an error line, "error: " included
QUOTE_MAX = 60  # a name quoted in an error message, its escapes included

# C0 controls, DEL, C1 controls (ESC's 8-bit form CSI among them), the Unicode line and paragraph
# separators and the bidirectional overrides and isolates: what could break a log line in two or rewrite
# what a terminal shows.
CONTROL = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{CONTROL}]")
# the same for JSON Schema (ECMA-262 regular expressions)
NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$"


def quote(value: object, limit: int = QUOTE_MAX) -> str:
    """``value`` (a name the user gave) as ``repr`` shows it, for an error message: quoted, a control character
    escaped (``\\n``, ``\\x1b``), at most ``limit`` characters between the quotes, ``…`` where cut."""
    text = repr(value)
    if len(text) > limit + 2:
        text = text[:limit + 1] + "…" + (text[-1] if isinstance(value, str) else "")
    return text


def clip(name: str, limit: int = QUOTE_MAX) -> str:
    """``name`` unquoted, for an error message: as it is when at most ``limit`` characters, else cut (``…``);
    a control character escaped."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], name)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clip_line(text: str, limit: int = MAX_LINE) -> str:
    """``text`` as one harmless line of at most ``limit`` characters: control characters escaped, and a
    long text cut in the middle (``…``), so that both the item it names and what is wrong with it stay."""
    text = _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
    if len(text) > limit:
        head = (limit - 1) * 2 // 3
        text = text[:head] + "…" + text[len(text) - (limit - 1 - head):]
    return text


def no_control(value: str) -> str:
    """``value`` unchanged; ValueError when it holds a control character (a pydantic validator's body)."""
    m = _CONTROL.search(value)
    if m:
        raise ValueError(f"control character {m.group()!r} at character {m.start() + 1} "
                         f"(names and text may not hold control characters)")
    return value
