"""Lightning's module path ``callbacks.early_stopping``: the very module :mod:`ember.plugins.early_stopping`, under a second name."""

import sys

from ember.plugins import early_stopping as _module

sys.modules[__name__] = _module
