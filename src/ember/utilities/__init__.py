"""Lightning's user-facing helpers under Lightning's module paths: ``from ember.utilities import rank_zero_only``.

Code that imports from ``lightning.pytorch.utilities`` (or its modules
``rank_zero``, ``exceptions``, ``types``, ``model_helpers``,
``model_summary``, ``seed``, ``parsing``, ``enums``, ``data``, ``warnings``,
``signature_utils``, ``apply_func``) ports by changing the package name.
Each helper reuses what ember already has; this package imports its modules
on first use, so ``import ember.utilities`` stays free of torch.
"""

from __future__ import annotations

from ember import _lazy

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

__getattr__, __dir__ = _lazy.attributes(
    __name__,
    {name: f"ember.utilities.{module}" for name, module in HELPERS.items()},
    submodules=MODULES,
    listed=[*__all__, *MODULES],
    hint=f"; it has {', '.join(__all__)} and the modules {', '.join(sorted(MODULES))} "
    "(docs/porting.md lists where Lightning's names live)",
)
