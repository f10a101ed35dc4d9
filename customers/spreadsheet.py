"""Cells that a spreadsheet would run as a formula: the one rule our CSV export protects them by and
our CSV import reads them back with.

A cell starting with = + - @ (after any leading spaces or line breaks, which spreadsheets skip) or
with a tab or carriage return is a formula to a spreadsheet (OWASP's CSV injection). The export puts
a single quote before such a cell, which makes spreadsheets show it as text; Shopify's customer
export does the same before long numbers (its Customer ID column), so that they are not rounded.
The import takes that quote off again, so a file exported here, or from Shopify, imports as it was.
"""

from __future__ import annotations

QUOTE = "'"
FORMULA_STARTS = ("=", "+", "-", "@")
CONTROL_STARTS = ("\t", "\r")
LEADING_SPACE = " \t\n\r"


def needs_quote(text: str) -> bool:
    """Whether the export puts a quote before this cell."""
    return text.lstrip(LEADING_SPACE).startswith(FORMULA_STARTS) or text.startswith(CONTROL_STARTS)


def unquote(text: str) -> str:
    """The cell without the quote an export put before a formula or a number; any other text as it is
    (a name such as 'Tis keeps its apostrophe)."""
    if not text.startswith(QUOTE):
        return text
    rest = text[len(QUOTE) :]
    if needs_quote(rest) or (rest.isascii() and rest.isdigit()):
        return rest
    return text
