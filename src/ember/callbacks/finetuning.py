"""Lightning's module path ``callbacks.finetuning``: the very module :mod:`ember.plugins.finetuning`, under a second name."""

import sys

from ember.plugins import finetuning as _module

sys.modules[__name__] = _module
