"""Lightning's user-facing helpers under Lightning's module paths: ``from ember.utilities import rank_zero_only``.

Code that imports from ``lightning.pytorch.utilities`` (or its modules
``rank_zero``, ``exceptions``, ``types``, ``model_helpers``,
``model_summary``, ``seed``, ``parsing``, ``enums``, ``data``, ``warnings``,
``signature_utils``, ``apply_func``) ports by changing the package name.
Each helper reuses what ember already has; this package imports its modules
on first use, so ``import ember.utilities`` stays free of torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Public name -> module under ember.utilities that defines it.
HELPERS: dict[str, str] = {
    "AttributeDict": "parsing",
    "GradClipAlgorithmType": "enums",
    "LightningDeprecationWarning": "rank_zero",
    "LightningEnum": "enums",
    "MisconfigurationException": "exceptions",
    "apply_to_collection": "apply_func",
    "apply_to_collections": "apply_func",
    "disable_possible_user_warnings": "warnings",
    "grad_norm": "grads",
    "is_overridden": "model_helpers",
    "is_param_in_hook_signature": "signature_utils",
    "is_picklable": "parsing",
    "measure_flops": "flops",
    "move_data_to_device": "apply_func",
    "rank_prefixed_message": "rank_zero",
    "rank_zero_debug": "rank_zero",
    "rank_zero_deprecation": "rank_zero",
    "rank_zero_info": "rank_zero",
    "rank_zero_only": "rank_zero",
    "rank_zero_warn": "rank_zero",
    "suggested_max_num_workers": "data",
}

#: Modules reachable as attributes, as in Lightning (``ember.utilities.model_summary.summarize``).
MODULES = frozenset(
    (
        "apply_func",
        "data",
        "enums",
        "exceptions",
        "flops",
        "grads",
        "model_helpers",
        "model_summary",
        "parsing",
        "rank_zero",
        "seed",
        "signature_utils",
        "types",
        "warnings",
    )
)

__all__ = sorted(HELPERS)


def __getattr__(name: str) -> Any:
    if name in MODULES:
        return import_module(f"ember.utilities.{name}")
    module = HELPERS.get(name)
    if module is None:
        raise AttributeError(
            f"module 'ember.utilities' has no attribute {name!r}; it has {', '.join(__all__)} "
            f"and the modules {', '.join(sorted(MODULES))} (docs/porting.md lists where Lightning's names live)"
        )
    value = getattr(import_module(f"ember.utilities.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | MODULES)
