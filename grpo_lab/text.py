"""Text shown to a person, from wherever it came (a flag, a file, a store an older grpo-lab wrote): printed so that
no control character reaches a terminal or a document as itself. ``ESC]0;...BEL`` retitles a terminal window and
``ESC[2J`` clears it; here they are shown as the escapes ``\\x1b]0;...\\x07``. Standard library only."""

from __future__ import annotations

import unicodedata

from .errors import ConfigError


def printable(value: object, keep: str = "") -> str:
    """``value`` as text, every control character (Unicode category Cc: C0, DEL, C1) but those in ``keep``
    written as its escape, e.g. ``\\x1b``."""
    text = str(value)
    if text.isprintable() and not keep:  # the common case: nothing to look at twice
        return text
    return "".join(
        c if c in keep or unicodedata.category(c) != "Cc" else c.encode("unicode_escape").decode("ascii") for c in text
    )


def check_text(option: str, text: str, one_line: bool = False) -> str:
    """Text a person gave: no control characters (escape sequences would reach terminals and the journal) and no
    unpaired surrogates (which cannot be written as UTF-8), and for names and paths no line breaks either.
    Returns the text."""
    if text.isprintable():  # the common case (no Cc or Cs character is printable): a suite checks millions of them
        return text
    allowed = "" if one_line else "\t\n"
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs") and c not in allowed), None)
    if bad is not None:
        if bad in "\r\n":
            what = "a line break"
        elif unicodedata.category(bad) == "Cs":  # not text at all: no file, store or tokenizer can take it
            what = f"the unpaired surrogate U+{ord(bad):04X}"
        else:
            what = f"the control character U+{ord(bad):04X}"
        raise ConfigError(f"{option} holds {what}; remove it")
    return text


def count(n: int, word: str, plural: str | None = None) -> str:
    """``n`` and the word, singular for one: ``count(1, "run")`` -> ``1 run``, ``count(2, "run")`` -> ``2 runs``."""
    return f"{n:,} {word if n == 1 else plural or word + 's'}"
