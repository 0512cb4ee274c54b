"""What every ``ember`` command shares: exit codes and plain-text tables."""

from __future__ import annotations

OK, FAILED, USAGE = 0, 1, 2


def table(rows: list[tuple[str, ...]]) -> str:
    """Rows as left-aligned columns two spaces apart, trailing spaces trimmed."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
