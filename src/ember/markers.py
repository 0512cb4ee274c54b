"""The hookspec and hookimpl markers of the ``ember`` project.

Kept apart from everything else so that plugins can import ``ember.hookimpl``
without pulling in torch or the Trainer.
"""

from __future__ import annotations

from typing import Final

import pluggy

PROJECT_NAME: Final = "ember"

hookspec: Final = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl: Final = pluggy.HookimplMarker(PROJECT_NAME)
