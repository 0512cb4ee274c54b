"""Walk nested collections: ``apply_to_collection`` (from lightning-utilities) and ``move_data_to_device``.

``apply_to_collection`` and ``apply_to_collections`` are lightning-utilities'
own, so dataclasses, namedtuples and ordered or default dicts are handled
exactly as in Lightning; moving a batch uses the same code as a Module's
default ``transfer_batch_to_device``.
"""

from __future__ import annotations

from typing import Any

from lightning_utilities.core.apply_func import apply_to_collection, apply_to_collections

__all__ = ["apply_to_collection", "apply_to_collections", "move_data_to_device"]


def move_data_to_device(batch: Any, device: Any) -> Any:
    """``batch`` with every tensor (and anything with a ``.to``) in it moved to ``device``.

    :param device: a ``torch.device``, a string such as ``"cuda:0"`` or a CUDA index.
    """
    import torch

    from ember.core.module_hooks import move_to_device

    if isinstance(device, int) and not isinstance(device, bool):
        device = torch.device("cuda", device)
    elif isinstance(device, str):
        device = torch.device(device)
    elif not isinstance(device, torch.device):
        raise TypeError(
            f"move_data_to_device(device={device!r}); accepted are a torch.device, a string or a CUDA index"
        )
    return move_to_device(batch, device)
