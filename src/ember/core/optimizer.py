"""Lightning's path ``core.optimizer``: ``LightningOptimizer`` is ember's SteppingOptimizer.

What ``self.optimizers()`` returns: ``step()`` runs ember's step path, and
``.optimizer`` is the torch optimizer, as on Lightning's class.
"""

from __future__ import annotations

from ember.core.optimizers import SteppingOptimizer

LightningOptimizer = SteppingOptimizer

__all__ = ["LightningOptimizer"]
