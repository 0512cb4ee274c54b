"""ModelPruning: prune weights during training with ``torch.nn.utils.prune``, as Lightning's callback does.

Pruning leaves masks and ``<name>_orig`` copies on the model so that training
goes on around the pruned weights; checkpoints, however, should load into the
plain model. So, as in Lightning, the checkpoint's ``state_dict`` holds the
masked weights without masks, and the masks (and the lottery-ticket original
weights) travel in the callback's own state, which lets a resumed run prune
exactly as an uninterrupted one.

Importing this module does not import torch.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.core.messages import info
from ember.errors import MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ember.core.module import Module
    from ember.core.trainer import Trainer

_FUNCTIONS = ("ln_structured", "l1_unstructured", "random_structured", "random_unstructured")
_METHODS = {
    "ln_structured": "LnStructured",
    "l1_unstructured": "L1Unstructured",
    "random_structured": "RandomStructured",
    "random_unstructured": "RandomUnstructured",
}


class ModelPruning(Callback):
    """Prune parameters at the end of training (or validation) epochs.

    :param pruning_fn: ``"l1_unstructured"``, ``"random_unstructured"``, ``"ln_structured"`` or
        ``"random_structured"``; a ``torch.nn.utils.prune.BasePruningMethod`` subclass (global pruning);
        or a function ``fn(module, name, amount)`` such as ``torch.nn.utils.prune.l1_unstructured``
        (local pruning).
    :param parameters_to_prune: ``(module, parameter_name)`` pairs; empty: every ``parameter_names``
        parameter of every layer.
    :param parameter_names: the parameter names to prune when ``parameters_to_prune`` is empty
        (``"weight"`` and/or ``"bias"``).
    :param use_global_unstructured: rank all the parameters together (True) or prune each on its own.
    :param amount: a fraction in [0, 1] or a number of parameters to prune (of those not pruned yet),
        or a function of the epoch returning one.
    :param apply_pruning: whether to prune, or a function of the epoch saying so.
    :param make_pruning_permanent: remove the masks when training ends, and save checkpoints without them.
    :param use_lottery_ticket_hypothesis: after pruning, reset the remaining weights to their values when
        fit began (or a function of the epoch saying whether to).
    :param resample_parameters: with the lottery ticket, reset to freshly initialised values instead.
    :param pruning_dim: the dimension structured pruning removes slices along.
    :param pruning_norm: the norm ``ln_structured`` ranks slices by.
    :param verbose: 0 quiet, 1 log the overall sparsity after each pruning, 2 also each parameter's.
    :param prune_on_train_epoch_end: prune at train-epoch end (True) or validation-epoch end (False).
    """

    PARAMETER_NAMES = ("weight", "bias")

    def __init__(
        self,
        pruning_fn: Callable[..., Any] | str,
        parameters_to_prune: Sequence[tuple[torch.nn.Module, str]] = (),
        parameter_names: list[str] | None = None,
        use_global_unstructured: bool = True,
        amount: int | float | Callable[[int], int | float] = 0.5,
        apply_pruning: bool | Callable[[int], bool] = True,
        make_pruning_permanent: bool = True,
        use_lottery_ticket_hypothesis: bool | Callable[[int], bool] = True,
        resample_parameters: bool = False,
        pruning_dim: int | None = None,
        pruning_norm: int | None = None,
        verbose: int = 0,
        prune_on_train_epoch_end: bool = True,
    ) -> None:
        self._use_global_unstructured = use_global_unstructured
        self._parameters_to_prune: Sequence[tuple[torch.nn.Module, str]] = parameters_to_prune
        self._targets = [f"{type(module).__name__}.{name}" for module, name in parameters_to_prune]
        self._use_lottery_ticket_hypothesis = use_lottery_ticket_hypothesis
        self._resample_parameters = resample_parameters
        self._prune_on_train_epoch_end = prune_on_train_epoch_end
        self._parameter_names = list(parameter_names or self.PARAMETER_NAMES)
        self._global_kwargs: dict[str, Any] = {}
        self._pruning_method_name = ""
        for name in self._parameter_names:
            if name not in self.PARAMETER_NAMES:
                raise MisconfigurationError(
                    f"ModelPruning(parameter_names={parameter_names!r}): {name!r} is not one of {self.PARAMETER_NAMES}"
                )
        self.pruning_fn = self._resolve_pruning_fn(pruning_fn, pruning_dim, pruning_norm)
        self._apply_pruning = apply_pruning
        self._make_pruning_permanent = make_pruning_permanent
        if isinstance(amount, bool) or not (isinstance(amount, (int, float)) or callable(amount)):
            raise MisconfigurationError(
                f"ModelPruning(amount={amount!r}): accepted is a float in [0, 1], an int or a function of the epoch"
            )
        self.amount = amount
        if verbose not in (0, 1, 2):
            raise MisconfigurationError(f"ModelPruning(verbose={verbose!r}): accepted are 0, 1 and 2")
        self._verbose = verbose
        # id(layer) -> its copy from when fit began (lottery ticket), and its parameters' indices and names
        self._original_layers: dict[int, tuple[torch.nn.Module, list[tuple[int, str]]]] | None = None
        self._names: list[str] = []  # qualified name of each pruned parameter, for checkpoint state
        self._pending: dict[str, Any] | None = None

    # -------------------------------------------------------------- resolving
    def _resolve_pruning_fn(self, pruning_fn: Any, dim: int | None, norm: int | None) -> Any:
        import torch.nn.utils.prune as prune

        if isinstance(pruning_fn, str):
            name = pruning_fn.lower()
            if name not in _FUNCTIONS:
                raise MisconfigurationError(
                    f"ModelPruning(pruning_fn={pruning_fn!r}) is not one of torch's pruning functions {list(_FUNCTIONS)}"
                )
            kwargs: dict[str, Any] = {}
            if name.endswith("_structured"):
                if dim is None:
                    raise MisconfigurationError(f"ModelPruning(pruning_fn={name!r}) needs pruning_dim=...")
                if name == "ln_structured":
                    if norm is None:
                        raise MisconfigurationError("ModelPruning(pruning_fn='ln_structured') needs pruning_norm=...")
                    kwargs["n"] = norm
                kwargs["dim"] = dim
            if self._use_global_unstructured:
                method = getattr(prune, _METHODS[name])
                self._global_kwargs = kwargs
                self._pruning_method_name = method.__name__
                _check_global(method)
                return method
            self._pruning_method_name = name
            return partial(getattr(prune, name), **kwargs)
        if inspect.isclass(pruning_fn) and issubclass(pruning_fn, prune.BasePruningMethod):
            if not self._use_global_unstructured:
                raise MisconfigurationError(
                    f"ModelPruning(pruning_fn={pruning_fn.__name__}): a BasePruningMethod class needs "
                    "use_global_unstructured=True; for local pruning pass a function or a name"
                )
            _check_global(pruning_fn)
            self._pruning_method_name = pruning_fn.__name__
            return pruning_fn
        if callable(pruning_fn) and not isinstance(pruning_fn, prune.BasePruningMethod):
            if self._use_global_unstructured:
                raise MisconfigurationError(
                    f"ModelPruning(pruning_fn={pruning_fn!r}): global pruning needs a name or a BasePruningMethod "
                    "subclass; pass use_global_unstructured=False to prune with a function"
                )
            self._pruning_method_name = getattr(pruning_fn, "__name__", type(pruning_fn).__name__)
            return pruning_fn
        raise MisconfigurationError(
            f"ModelPruning(pruning_fn={pruning_fn!r}): accepted are a name in {list(_FUNCTIONS)}, a BasePruningMethod "
            "subclass (the class, not an instance) or a function fn(module, name, amount)"
        )

    def filter_parameters_to_prune(
        self, parameters_to_prune: Sequence[tuple[torch.nn.Module, str]] = ()
    ) -> Sequence[tuple[torch.nn.Module, str]]:
        """Override to choose which of the parameters found in ``setup`` are pruned."""
        return parameters_to_prune

    @staticmethod
    def sanitize_parameters_to_prune(
        pl_module: torch.nn.Module,
        parameters_to_prune: Sequence[tuple[torch.nn.Module, str]] = (),
        parameter_names: Sequence[str] = (),
    ) -> Sequence[tuple[torch.nn.Module, str]]:
        """Every ``parameter_names`` parameter of every layer, or a check that the given pairs are in the model."""
        import torch

        from ember.core.module import Module

        containers = (Module, torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
        layers = [m for m in pl_module.modules() if m is not pl_module and not isinstance(m, containers)]
        if not parameters_to_prune:
            names = parameter_names or ModelPruning.PARAMETER_NAMES
            return [
                (layer, name)
                for name in names
                for layer in layers
                if isinstance(getattr(layer, name, None), torch.nn.Parameter)
            ]
        pairs = list(parameters_to_prune) if isinstance(parameters_to_prune, (list, tuple)) else None
        if not pairs or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and isinstance(p[0], torch.nn.Module) and isinstance(p[1], str)
            for p in pairs
        ):
            raise MisconfigurationError(
                f"ModelPruning(parameters_to_prune={parameters_to_prune!r}): accepted is a list of "
                "(nn.Module, parameter_name) pairs, or an empty sequence for every layer"
            )
        known = {id(layer) for layer in layers}
        missing_modules = [module for module, _ in pairs if id(module) not in known]
        missing_parameters = [name for module, name in pairs if id(module) in known and not hasattr(module, name)]
        if missing_modules or missing_parameters:
            raise MisconfigurationError(
                "some parameters_to_prune are not in the model: missing modules "
                f"{missing_modules}, missing parameters {missing_parameters}"
            )
        return [(module, name) for module, name in pairs]

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        pairs = self.sanitize_parameters_to_prune(pl_module, self._parameters_to_prune, self._parameter_names)
        self._parameters_to_prune = self.filter_parameters_to_prune(pairs)
        prefixes = {id(module): name for name, module in pl_module.named_modules()}
        self._names = [f"{prefixes[id(module)]}.{name}".lstrip(".") for module, name in self._parameters_to_prune]
        if self._use_lottery_ticket_hypothesis:
            self._original_layers = {}
            for index, (module, name) in enumerate(self._parameters_to_prune):
                entry = self._original_layers.setdefault(id(module), (copy.deepcopy(module), []))
                entry[1].append((index, name))

    def on_fit_start(self, trainer: Trainer, pl_module: Module) -> None:
        # after configure_optimizers, so the optimizer keeps the parameters in their original order
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._prune_on_train_epoch_end:
            self._run_pruning(pl_module.current_epoch)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if not trainer.sanity_checking and not self._prune_on_train_epoch_end:
            self._run_pruning(pl_module.current_epoch)

    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._make_pruning_permanent:
            self.make_pruning_permanent(pl_module)

    # ------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            pruning_fn=self._pruning_method_name,
            amount=self.amount,
            use_global_unstructured=self._use_global_unstructured,
            parameter_names=self._parameter_names,
            parameters_to_prune=self._targets,
            **self._global_kwargs,
        )

    def on_save_checkpoint(self, trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
        if self._make_pruning_permanent:
            checkpoint["state_dict"] = _permanent_state_dict(pl_module)

    def state_dict(self) -> dict[str, Any]:
        """The masks (when checkpoints hold mask-free weights) and the lottery-ticket originals."""
        state: dict[str, Any] = {}
        if self._make_pruning_permanent:
            masks = {}
            for qualified, (module, name) in zip(self._names, self._parameters_to_prune):
                mask = getattr(module, f"{name}_mask", None)
                if mask is not None:
                    masks[qualified] = mask.detach().cpu()
            if masks:
                state["masks"] = masks
        if self._original_layers:
            originals = {}
            for layer, entries in self._original_layers.values():
                for index, name in entries:
                    originals[self._names[index]] = getattr(layer, name).detach().cpu().clone()
            state["original_parameters"] = originals
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def _restore(self, state: dict[str, Any]) -> None:
        import torch
        import torch.nn.utils.prune as prune

        index_of = {name: index for index, name in enumerate(self._names)}
        for qualified, mask in state.get("masks", {}).items():
            if qualified in index_of:
                module, name = self._parameters_to_prune[index_of[qualified]]
                prune.custom_from_mask(module, name, mask.to(getattr(module, name).device))
        if self._original_layers:
            originals = state.get("original_parameters", {})
            with torch.no_grad():
                for layer, entries in self._original_layers.values():
                    for index, name in entries:
                        if self._names[index] in originals:
                            getattr(layer, name).copy_(originals[self._names[index]])

    # ---------------------------------------------------------------- pruning
    def _run_pruning(self, current_epoch: int) -> None:
        import torch

        prune = self._apply_pruning(current_epoch) if callable(self._apply_pruning) else self._apply_pruning
        amount = self.amount(current_epoch) if callable(self.amount) else self.amount
        if not prune or not amount:
            return
        # at validation-epoch end this runs under inference mode; masks made there could not train
        with torch.inference_mode(False):
            self.apply_pruning(amount)
            lottery = self._use_lottery_ticket_hypothesis
            if lottery(current_epoch) if callable(lottery) else lottery:
                self.apply_lottery_ticket_hypothesis()

    def apply_pruning(self, amount: int | float) -> None:
        """Prune ``parameters_to_prune`` by ``amount``."""
        import torch.nn.utils.prune as prune

        before = [_pruned(module, name) for module, name in self._parameters_to_prune] if self._verbose else []
        if self._use_global_unstructured:
            accepted = set(inspect.signature(self.pruning_fn).parameters) - {"self"}
            kwargs = {k: v for k, v in {**self._global_kwargs, "amount": amount}.items() if k in accepted}
            prune.global_unstructured(self._parameters_to_prune, pruning_method=self.pruning_fn, **kwargs)
        else:
            for module, name in self._parameters_to_prune:
                self.pruning_fn(module, name=name, amount=amount)
        if self._verbose:
            after = [_pruned(module, name) for module, name in self._parameters_to_prune]
            self._print_sparsity(before, after, amount)

    def apply_lottery_ticket_hypothesis(self) -> None:
        """Reset the weights that survived pruning to their values when fit began (Frankle & Carbin, 2019).

        With ``resample_parameters`` they get freshly initialised values instead.
        """
        import torch

        assert self._original_layers is not None, "set up in setup()"
        with torch.no_grad():
            for layer, entries in self._original_layers.values():
                source = layer
                if self._resample_parameters and callable(getattr(layer, "reset_parameters", None)):
                    source = copy.deepcopy(layer)
                    source.reset_parameters()  # type: ignore[operator]
                for index, name in entries:
                    module, _ = self._parameters_to_prune[index]
                    target = getattr(module, f"{name}_orig", None)
                    if target is None:
                        target = getattr(module, name)
                    value = getattr(source, name)
                    if isinstance(target, torch.Tensor) and isinstance(value, torch.Tensor):
                        target.copy_(value.to(target.device))

    def make_pruning_permanent(self, module: torch.nn.Module) -> None:
        """Fold every pruning mask into its parameter and remove the masks and hooks."""
        import torch.nn.utils.prune as prune

        for layer in module.modules():
            for key, hook in list(layer._forward_pre_hooks.items()):
                if isinstance(hook, prune.BasePruningMethod):
                    hook.remove(layer)
                    del layer._forward_pre_hooks[key]

    def _print_sparsity(self, before: list[tuple[int, int]], after: list[tuple[int, int]], amount: float) -> None:
        total = sum(size for _, size in after)
        zeros_before = sum(zeros for zeros, _ in before)
        zeros_after = sum(zeros for zeros, _ in after)
        method = self._pruning_method_name
        info(
            f"Applied `{method}`. Pruned: {zeros_before}/{total} ({zeros_before / total:.2%}) -> "
            f"{zeros_after}/{total} ({zeros_after / total:.2%})",
            name=__name__,
        )
        if self._verbose == 2:
            for (module, name), (was, size), (now, _) in zip(self._parameters_to_prune, before, after):
                info(
                    f"Applied `{method}` to `{module!r}.{name}` with amount={amount}. Pruned: "
                    f"{was} ({was / size:.2%}) -> {now} ({now / size:.2%})",
                    name=__name__,
                )


def _check_global(method: Any) -> None:
    if getattr(method, "PRUNING_TYPE", None) != "unstructured":
        raise MisconfigurationError(
            f"ModelPruning: use_global_unstructured=True needs an unstructured pruning method; "
            f"{method.__name__} is {getattr(method, 'PRUNING_TYPE', 'untyped')!r}. "
            "Pass use_global_unstructured=False to prune each parameter on its own"
        )


def _pruned(module: torch.nn.Module, name: str) -> tuple[int, int]:
    """(zeros in the mask, its size); no mask: nothing pruned yet."""
    mask = getattr(module, f"{name}_mask", None)
    if mask is None:
        return 0, getattr(module, name).numel()
    return int((mask == 0).sum().item()), mask.numel()


def _permanent_state_dict(module: torch.nn.Module) -> dict[str, Any]:
    """The module's state dict with each ``<name>_orig``/``<name>_mask`` pair folded into ``<name>``, on the CPU."""
    state = module.state_dict()
    for key in [k[: -len("_mask")] for k in state if k.endswith("_mask")]:
        original = state.pop(f"{key}_orig")
        mask = state.pop(f"{key}_mask")
        state[key] = mask.to(dtype=original.dtype) * original
    return {key: value.cpu() if hasattr(value, "cpu") else value for key, value in state.items()}
