"""Person names: one visible name is one person.

Every place a person name enters faceprint (the CLI, :class:`~faceprint.engine.Engine`, the REST
service and both gallery backends, for writes and for every lookup) passes it through
:func:`normalise_name`, so names that print the same are the same person:

* Unicode NFC: "José" typed with a precomposed "é" (U+00E9) and with "e" + combining acute accent
  (U+0065 U+0301, as macOS file names arrive) become the same string;
* whitespace: leading and trailing whitespace (a trailing newline included) is stripped and every
  inner run of spaces (no-break spaces and the other Unicode spaces too) becomes one space;
* refused, with :class:`~faceprint.errors.InvalidNameError`: a name that is not a string, is empty
  after stripping, is longer than :data:`MAX_NAME_LENGTH` characters, or holds inside it a
  character of Unicode category C* (control, format, surrogate, private use, unassigned: newline,
  tab, NUL, bidirectional overrides, zero-width spaces ...) or a line or paragraph separator
  (U+2028, U+2029). The zero-width non-joiner and joiner (U+200C, U+200D) are kept: Persian and
  several Indic scripts need them to spell names correctly.

Case is kept: "ada" and "Ada" are two names.
"""

from __future__ import annotations

import unicodedata

from ..errors import InvalidNameError

#: The longest name accepted, in characters (after normalisation).
MAX_NAME_LENGTH = 200
#: Format characters (category Cf) that are part of correct spelling in some scripts.
SPELLING_JOINERS = frozenset({"\u200c", "\u200d"})


def _hidden(ch: str) -> bool:
    """True for a character of Unicode category C* (control, format, surrogate, private, unassigned)
    or a line or paragraph separator (Zl, Zp)."""
    if ch in SPELLING_JOINERS:
        return False
    category = unicodedata.category(ch)
    return category.startswith("C") or category in ("Zl", "Zp")


def normalise_name(name: object) -> str:
    """The canonical form of the person name ``name`` (NFC, whitespace stripped and collapsed).

    Raises :class:`~faceprint.errors.InvalidNameError` for a non-string, an empty name, one over
    :data:`MAX_NAME_LENGTH` characters, or one holding (after stripping) a character of Unicode
    category C* or a line or paragraph separator.
    """
    if not isinstance(name, str):
        raise InvalidNameError(f"a person name must be a string, not {type(name).__name__}")
    text = unicodedata.normalize("NFC", name).strip()
    bad = sorted({f"U+{ord(ch):04X} ({unicodedata.name(ch, unicodedata.category(ch))})"
                  for ch in text if _hidden(ch)})
    if bad:
        raise InvalidNameError(f"person name {name!r} holds control or invisible character(s) {', '.join(bad)}; "
                               f"give the name as plain printable text")
    text = " ".join(text.split())  # only spaces are left to collapse: every other whitespace is refused
    if not text:
        raise InvalidNameError(f"person name {name!r} is empty; give the person's name")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"person name of {len(text)} characters is over the limit of {MAX_NAME_LENGTH}; "
                               f"give a shorter name")
    return text


def repair_name(name: str) -> str:
    """A stored name brought to the canonical form, for migrating existing galleries.

    Like :func:`normalise_name`, but the characters it refuses become spaces and no length limit
    applies; the result is ``""`` when nothing printable is left.
    Idempotent: ``repair_name(repair_name(x)) == repair_name(x)``.
    """
    text = unicodedata.normalize("NFC", name)
    text = "".join(" " if _hidden(ch) else ch for ch in text)
    return " ".join(unicodedata.normalize("NFC", text).split())
