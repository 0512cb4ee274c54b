"""ember's built-in callbacks, one module each, registered exactly as a third party's plugins are.

Modules here import torch only inside functions, so listing plugins stays fast.
"""
