"""Lightning's module path ``callbacks.prediction_writer``: the very module :mod:`ember.plugins.prediction_writer`, under a second name."""

import sys

from ember.plugins import prediction_writer as _module

sys.modules[__name__] = _module
