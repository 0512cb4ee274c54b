"""Lightning's module path ``callbacks.model_checkpoint``: the very module :mod:`ember.plugins.model_checkpoint`, under a second name."""

import sys

from ember.plugins import model_checkpoint as _module

sys.modules[__name__] = _module
