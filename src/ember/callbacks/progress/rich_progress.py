"""Lightning's module path ``callbacks.progress.rich_progress``: the very module :mod:`ember.plugins.rich_progress`, under a second name."""

import sys

from ember.plugins import rich_progress as _module

sys.modules[__name__] = _module
