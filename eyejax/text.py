"""Wording shared by the library's reports (eyejax.sweep.analysis) and the app's console output."""
from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 configuration``, ``2 configurations``, ``1,000 configurations``."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"


def energy_unit_words(unit: str) -> str:
    """How a table's energy column is meant: ``energy in pJ`` or ``energy in normalized units``."""
    if unit == "normalized":
        return "energy in normalized units, one MAC = 1"
    return f"energy in {unit}"
