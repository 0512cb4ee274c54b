"""``grad_norm``: the norm of each parameter's gradient and of them all, ready for ``self.log_dict``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["grad_norm"]


def grad_norm(
    module: torch.nn.Module, norm_type: float | int | str, group_separator: str = "/"
) -> dict[str, torch.Tensor]:
    """``{"grad_2.0_norm/<name>": ..., "grad_2.0_norm_total": ...}`` over the parameters that have a gradient.

    :param norm_type: the p of the p-norm, a number > 0 or ``"inf"``.
    :param group_separator: between the key's prefix and the parameter name, so loggers group the curves.
    """
    import torch

    try:
        norm = float(norm_type)
    except (TypeError, ValueError):
        norm = -1.0
    if not norm > 0:
        raise ValueError(f"grad_norm(norm_type={norm_type!r}); accepted is a number > 0 or 'inf'")
    norms = {
        f"grad_{norm}_norm{group_separator}{name}": parameter.grad.detach().norm(norm)
        for name, parameter in module.named_parameters()
        if parameter.grad is not None
    }
    if norms:
        norms[f"grad_{norm}_norm_total"] = torch.stack(list(norms.values())).norm(norm)
    return norms
