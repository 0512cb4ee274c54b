"""ember-example: the smallest complete ember plugin package.

Two entry points in the group ``ember.plugins`` (see pyproject.toml):

* ``example_counter`` names a Callback subclass; every Trainer constructs its own;
* ``example_hooks`` names a module of ``@ember.hookimpl`` functions.

Neither module imports torch, so ``ember plugins list`` stays fast.
"""

__version__ = "0.1.0"
