"""Lightning's module path ``callbacks.progress.progress_bar``: the very module :mod:`ember.plugins.progress_bar`, under a second name."""

import sys

from ember.plugins import progress_bar as _module

sys.modules[__name__] = _module
