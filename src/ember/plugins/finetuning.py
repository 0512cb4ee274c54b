"""Finetuning callbacks: freeze part of a model before training, unfreeze it later into its own param group.

Transfer learning trains a new head on a frozen pretrained backbone first,
then lets the backbone learn too, at a smaller learning rate. The optimizer
must learn about the newly trainable parameters mid-run, so the callback adds
a param group; those groups are remembered (by parameter name) in the
callback's state, together with which parameters were trainable, so a resumed
run rebuilds the same groups, learning rates and ``requires_grad`` flags
before the optimizer state is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, TypeGuard

from ember.callback import Callback
from ember.core.messages import info
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    from ember.core.module import Module
    from ember.core.trainer import Trainer

    Modules = torch.nn.Module | Iterable[Any]


def multiplicative(epoch: int) -> float:
    """The default ``lambda_func`` of :class:`BackboneFinetuning`: double the backbone LR every epoch."""
    return 2.0


def _is_batch_norm(module: Any) -> TypeGuard[_BatchNorm]:
    from torch.nn.modules.batchnorm import _BatchNorm

    return isinstance(module, _BatchNorm)


class BaseFinetuning(Callback):
    """Base class for finetuning callbacks: override :meth:`freeze_before_training` and :meth:`finetune_function`.

    ``freeze_before_training(pl_module)`` runs at ``setup``, before
    ``configure_optimizers``, so build the optimizer from the trainable
    parameters only, e.g. ``SGD(filter(lambda p: p.requires_grad, self.parameters()), lr=0.1)``.
    ``finetune_function(pl_module, epoch, optimizer)`` runs at every training
    epoch start, for each optimizer; unfreeze there with
    :meth:`unfreeze_and_add_param_group`.
    """

    def __init__(self) -> None:
        self._internal_optimizer_metadata: dict[int, list[dict[str, Any]]] = {}
        self._frozen: list[str] | None = None
        self._untracked_norms: list[str] = []
        self._restarting = False

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"internal_optimizer_metadata": self._internal_optimizer_metadata}
        if self._frozen is not None:
            state["frozen_parameters"] = list(self._frozen)
            state["untracked_norms"] = list(self._untracked_norms)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._restarting = True
        self._internal_optimizer_metadata = dict(state_dict.get("internal_optimizer_metadata", {}))
        frozen = state_dict.get("frozen_parameters")
        self._frozen = None if frozen is None else list(frozen)
        self._untracked_norms = list(state_dict.get("untracked_norms", []))

    # ------------------------------------------------------------- hooks
    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        self.freeze_before_training(pl_module)

    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        """On resume: put back the param groups this callback added and which parameters were trainable."""
        if not self._restarting:
            return
        self._restarting = False
        named = dict(pl_module.named_parameters())
        for index, optimizer in enumerate(trainer.optimizers):
            groups = self._internal_optimizer_metadata.get(index)
            if groups:
                optimizer.param_groups = self._apply_mapping_to_param_groups(groups, named)
        if self._frozen is not None:
            frozen = set(self._frozen)
            for name, parameter in named.items():
                parameter.requires_grad = name not in frozen
            untracked = set(self._untracked_norms)
            for name, module in pl_module.named_modules():
                if _is_batch_norm(module):
                    module.track_running_stats = name not in untracked

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        for index, optimizer in enumerate(trainer.optimizers):
            groups_before = len(optimizer.param_groups)
            self.finetune_function(pl_module, trainer.current_epoch, optimizer)
            self._store(pl_module, index, groups_before, optimizer.param_groups)
        self._frozen = [name for name, p in pl_module.named_parameters() if not p.requires_grad]
        self._untracked_norms = [
            name for name, m in pl_module.named_modules() if _is_batch_norm(m) and not m.track_running_stats
        ]

    # ------------------------------------------------------ to override
    def freeze_before_training(self, pl_module: Module) -> None:
        """Freeze what should not train at first (runs at setup, before configure_optimizers)."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement freeze_before_training(pl_module)")

    def finetune_function(self, pl_module: Module, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        """Unfreeze modules and add their parameters to ``optimizer`` (runs at each training epoch start)."""
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement finetune_function(pl_module, epoch, optimizer)"
        )

    # ----------------------------------------------------------- helpers
    @staticmethod
    def flatten_modules(modules: Modules) -> list[torch.nn.Module]:
        """The leaf modules of ``modules`` (a module, or an iterable of modules), plus parents holding parameters."""
        import torch

        if isinstance(modules, torch.nn.ModuleDict):
            modules = modules.values()
        if isinstance(modules, Iterable):
            found: list[torch.nn.Module] = []
            for module in modules:
                found.extend(BaseFinetuning.flatten_modules(module))
            candidates: Iterable[torch.nn.Module] = found
        else:
            candidates = modules.modules()
        return [m for m in candidates if not list(m.children()) or m._parameters]

    @staticmethod
    def filter_params(
        modules: Modules, train_bn: bool = True, requires_grad: bool = True
    ) -> Generator[torch.nn.Parameter, None, None]:
        """The parameters of ``modules`` whose ``requires_grad`` equals ``requires_grad``; batch norms skipped unless ``train_bn``."""
        for module in BaseFinetuning.flatten_modules(modules):
            if _is_batch_norm(module) and not train_bn:
                continue
            for parameter in module.parameters(recurse=False):
                if parameter.requires_grad == requires_grad:
                    yield parameter

    @staticmethod
    def make_trainable(modules: Modules) -> None:
        """Unfreeze every parameter of ``modules``; batch norms track running statistics again."""
        for module in BaseFinetuning.flatten_modules(modules):
            if _is_batch_norm(module):
                module.track_running_stats = True
            for parameter in module.parameters(recurse=False):
                parameter.requires_grad = True

    @staticmethod
    def freeze_module(module: torch.nn.Module) -> None:
        """Freeze the parameters ``module`` holds itself; a batch norm also stops tracking running statistics."""
        if _is_batch_norm(module):
            module.track_running_stats = False
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad = False

    @staticmethod
    def freeze(modules: Modules, train_bn: bool = True) -> None:
        """Freeze ``modules``; with ``train_bn`` their batch-norm layers stay trainable."""
        for module in BaseFinetuning.flatten_modules(modules):
            if _is_batch_norm(module) and train_bn:
                BaseFinetuning.make_trainable(module)
            else:
                BaseFinetuning.freeze_module(module)

    @staticmethod
    def filter_on_optimizer(optimizer: torch.optim.Optimizer, params: Iterable[torch.nn.Parameter]) -> list[Any]:
        """``params`` without those ``optimizer`` already holds (with a warning naming the fix)."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        kept, skipped = [], 0
        for parameter in params:
            if id(parameter) in held:
                skipped += 1
            else:
                kept.append(parameter)
        if skipped:
            warnings.warn(
                f"{skipped} parameter(s) to unfreeze are already in a param group of {type(optimizer).__name__} and "
                "were skipped; build the optimizer from the trainable parameters only, e.g. "
                f"{type(optimizer).__name__}(filter(lambda p: p.requires_grad, self.parameters()), ...)",
                EmberWarning,
                stacklevel=2,
            )
        return kept

    @staticmethod
    def unfreeze_and_add_param_group(
        modules: Modules,
        optimizer: torch.optim.Optimizer,
        lr: float | None = None,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
    ) -> None:
        """Unfreeze ``modules`` and add their parameters to ``optimizer`` as a new param group.

        :param lr: the group's learning rate; without it, the first group's LR divided by ``initial_denom_lr``.
        :param initial_denom_lr: see ``lr``.
        :param train_bn: whether batch-norm parameters join the group.
        """
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        # trainable all along (batch norms kept trainable by freeze) and already optimized: not a mistake
        already = {id(p) for p in BaseFinetuning.filter_params(modules, requires_grad=True) if id(p) in held}
        BaseFinetuning.make_trainable(modules)
        group_lr = optimizer.param_groups[0]["lr"] / initial_denom_lr if lr is None else float(lr)
        candidates = BaseFinetuning.filter_params(modules, train_bn=train_bn, requires_grad=True)
        params = BaseFinetuning.filter_on_optimizer(optimizer, [p for p in candidates if id(p) not in already])
        if params:
            optimizer.add_param_group({"params": params, "lr": group_lr})

    # -------------------------------------------------------- bookkeeping
    @staticmethod
    def _apply_mapping_to_param_groups(groups: list[dict[str, Any]], mapping: dict[Any, Any]) -> list[dict[str, Any]]:
        """The groups with each entry of ``params`` mapped (parameter to name, or name to parameter)."""
        return [
            {**{k: v for k, v in group.items() if k != "params"}, "params": [mapping[p] for p in group["params"]]}
            for group in groups
        ]

    def _store(self, pl_module: Module, index: int, groups_before: int, groups: list[dict[str, Any]]) -> None:
        names = {p: name for name, p in pl_module.named_parameters()}
        if index not in self._internal_optimizer_metadata:
            self._internal_optimizer_metadata[index] = self._apply_mapping_to_param_groups(groups, names)
        elif groups_before != len(groups):
            self._internal_optimizer_metadata[index].extend(
                self._apply_mapping_to_param_groups(groups[groups_before:], names)
            )


class BackboneFinetuning(BaseFinetuning):
    """Train ``pl_module.backbone`` from ``unfreeze_backbone_at_epoch`` on, at a learning rate that grows.

    The backbone is frozen at setup. At the unfreeze epoch it joins the
    optimizer as a new param group with LR ``backbone_initial_lr``, or the
    first group's LR times ``backbone_initial_ratio_lr``; each later epoch
    multiplies it by ``lambda_func(epoch + 1)``, and with ``should_align`` it
    never exceeds the first group's LR.

    :param unfreeze_backbone_at_epoch: the (0-based) epoch the backbone starts training.
    :param lambda_func: epoch -> factor applied to the backbone LR after the unfreeze epoch.
    :param backbone_initial_ratio_lr: the backbone's initial LR as a fraction of the first group's.
    :param backbone_initial_lr: the backbone's initial LR; overrides the ratio.
    :param should_align: cap the backbone LR at the first group's LR.
    :param initial_denom_lr: passed to :meth:`unfreeze_and_add_param_group`.
    :param train_bn: whether the backbone's batch norms train while it is frozen and join its group.
    :param verbose: log both LRs at each epoch from the unfreeze on.
    :param rounding: decimals printed with ``verbose``.
    """

    def __init__(
        self,
        unfreeze_backbone_at_epoch: int = 10,
        lambda_func: Callable[[int], float] = multiplicative,
        backbone_initial_ratio_lr: float = 10e-2,
        backbone_initial_lr: float | None = None,
        should_align: bool = True,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
        verbose: bool = False,
        rounding: int = 12,
    ) -> None:
        super().__init__()
        self.unfreeze_backbone_at_epoch = unfreeze_backbone_at_epoch
        self.lambda_func = lambda_func
        self.backbone_initial_ratio_lr = backbone_initial_ratio_lr
        self.backbone_initial_lr = backbone_initial_lr
        self.should_align = should_align
        self.initial_denom_lr = initial_denom_lr
        self.train_bn = train_bn
        self.verbose = verbose
        self.rounding = rounding
        self.previous_backbone_lr: float | None = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            unfreeze_backbone_at_epoch=self.unfreeze_backbone_at_epoch,
            lambda_func=self.lambda_func,
            backbone_initial_ratio_lr=self.backbone_initial_ratio_lr,
            backbone_initial_lr=self.backbone_initial_lr,
        )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "previous_backbone_lr": self.previous_backbone_lr}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.previous_backbone_lr = state_dict.get("previous_backbone_lr")
        super().load_state_dict(state_dict)

    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        import torch

        if not isinstance(getattr(pl_module, "backbone", None), torch.nn.Module):
            raise MisconfigurationError(
                f"BackboneFinetuning needs the model to have a torch.nn.Module attribute `backbone`; "
                f"{type(pl_module).__qualname__}.backbone is {type(getattr(pl_module, 'backbone', None)).__name__}"
            )
        super().setup(trainer, pl_module, stage)

    def freeze_before_training(self, pl_module: Module) -> None:
        self.freeze(pl_module.backbone, train_bn=self.train_bn)

    def finetune_function(self, pl_module: Module, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        if epoch < self.unfreeze_backbone_at_epoch:
            return
        current_lr = optimizer.param_groups[0]["lr"]
        if epoch == self.unfreeze_backbone_at_epoch:
            backbone_lr = (
                self.backbone_initial_lr
                if self.backbone_initial_lr is not None
                else current_lr * self.backbone_initial_ratio_lr
            )
            self.unfreeze_and_add_param_group(
                pl_module.backbone,
                optimizer,
                backbone_lr,
                initial_denom_lr=self.initial_denom_lr,
                train_bn=self.train_bn,
            )
        else:
            assert self.previous_backbone_lr is not None
            backbone_lr = self.lambda_func(epoch + 1) * self.previous_backbone_lr
            if self.should_align and backbone_lr > current_lr:
                backbone_lr = current_lr
            optimizer.param_groups[-1]["lr"] = backbone_lr
        self.previous_backbone_lr = backbone_lr
        if self.verbose:
            info(
                f"Current lr: {round(current_lr, self.rounding)}, Backbone lr: {round(backbone_lr, self.rounding)}",
                name=__name__,
            )
