"""Lightning's module path ``callbacks.progress.tqdm_progress``: the very module :mod:`ember.plugins.tqdm_progress`, under a second name."""

import sys

from ember.plugins import tqdm_progress as _module

sys.modules[__name__] = _module
