"""``ember.cli_lightning_logo``: the small banner Lightning scripts print at start, ember's flame instead."""

from __future__ import annotations

_LOGO = r"""
     )
    ) \
   / ) (
   \(_)/   ember
"""


def cli_lightning_logo() -> None:
    """Print ember's logo (``pytorch_lightning.cli_lightning_logo`` prints Lightning's)."""
    print(_LOGO)
