"""Lightning's module path ``callbacks.lr_monitor``: the very module :mod:`ember.plugins.lr_monitor`, under a second name."""

import sys

from ember.plugins import lr_monitor as _module

sys.modules[__name__] = _module
