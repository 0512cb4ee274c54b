"""WeightAveraging and EMAWeightAveraging: an averaged copy of the model beside the live one.

Averaged weights often generalise better than the last ones, but training
must go on from the live weights. So the average lives in a
``torch.optim.swa_utils.AveragedModel``; it replaces the live weights while
validation runs (they are put back afterwards, even when validation fails)
and when training ends, and checkpoints hold it as their ``state_dict`` with
the live weights beside it, as Lightning lays them out.

Importing this module does not import torch.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING, Any

from ember.callback import Callback
from ember.errors import EmberWarning, MisconfigurationError

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch.optim.swa_utils import AveragedModel

    from ember.core.module import Module
    from ember.core.trainer import Trainer

_AVERAGED_MODEL_OPTIONS = ("avg_fn", "multi_avg_fn")


class WeightAveraging(Callback):
    """Keep an average of the model's weights, updated after optimizer steps or epochs.

    :param device: where the average lives; by default where the model trains.
        ``"cpu"`` saves accelerator memory.
    :param use_buffers: average the buffers (batch-norm statistics) too; with
        False they are copied from the model at each update.
    :param kwargs: passed to :class:`torch.optim.swa_utils.AveragedModel`:
        ``avg_fn`` or ``multi_avg_fn``. Without either, every update has the same
        weight (stochastic weight averaging).

    Override :meth:`should_update` to choose when the average is updated; by
    default it is after every optimizer step.

    Checkpoints hold the averaged weights as ``state_dict``, the live weights
    as ``current_model_state`` and the average's bookkeeping (``n_averaged``)
    as ``averaging_state``; resuming from one restores both models.
    """

    def __init__(self, device: torch.device | str | int | None = None, use_buffers: bool = True, **kwargs: Any) -> None:
        import torch

        unknown = sorted(set(kwargs) - set(_AVERAGED_MODEL_OPTIONS))
        if unknown:
            raise MisconfigurationError(
                f"{type(self).__name__} got unknown keyword arguments {unknown}; accepted are the AveragedModel "
                f"options {list(_AVERAGED_MODEL_OPTIONS)}"
            )
        if all(kwargs.get(name) is not None for name in _AVERAGED_MODEL_OPTIONS):
            raise MisconfigurationError(f"{type(self).__name__}: pass avg_fn or multi_avg_fn, not both")
        for name in _AVERAGED_MODEL_OPTIONS:
            if kwargs.get(name) is not None and not callable(kwargs[name]):
                raise MisconfigurationError(f"{type(self).__name__}({name}={kwargs[name]!r}): accepted is a callable")
        self._device: torch.device | int | None = torch.device(device) if isinstance(device, str) else device
        self._use_buffers = use_buffers
        self._kwargs = kwargs
        self._average_model: AveragedModel | None = None
        # global_step at the last update: the first call comes after the first optimizer step
        self._latest_update_step = 0
        self._latest_update_epoch = -1
        # True between the validation swap and the swap back: the model then holds the average
        self._swapped = False

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        """Whether to update the average after optimizer step ``step_idx`` or epoch ``epoch_idx`` (zero-based).

        Exactly one of the two is given. The default updates after every step.
        """
        return step_idx is not None

    @property
    def average_model(self) -> AveragedModel | None:
        """The :class:`~torch.optim.swa_utils.AveragedModel`, once fit has set it up."""
        return self._average_model

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Trainer, pl_module: Module, stage: str) -> None:
        if stage != "fit":
            return
        import torch
        from torch.optim.swa_utils import AveragedModel

        from ember.core.loops.dispatch import module_overrides

        if "configure_model" in module_overrides(pl_module):
            warnings.warn(
                f"{type(self).__name__} calls configure_model() now, before the Trainer does, to average every "
                "layer; configure_model must create layers only once, and sharded layers are not supported",
                EmberWarning,
                stacklevel=2,
            )
            pl_module.configure_model()
        device = self._device if self._device is not None else trainer.strategy.root_device
        # AveragedModel deep-copies what it is given: give it an empty module, then the copy made without the Trainer
        average = AveragedModel(torch.nn.Module(), device=device, use_buffers=self._use_buffers, **self._kwargs)
        average.module = copy.deepcopy(pl_module, {id(trainer): None}).to(device)
        self._average_model = average
        self._swapped = False

    def on_train_batch_end(self, trainer: Trainer, pl_module: Module, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step > self._latest_update_step and self.should_update(step_idx=step - 1):
            self._update(pl_module)
            self._latest_update_step = step

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        epoch = trainer.current_epoch
        if epoch > self._latest_update_epoch and self.should_update(epoch_idx=epoch):
            self._update(pl_module)
            self._latest_update_epoch = epoch

    def on_train_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._average_model is not None:
            _copy_into(_tensors(pl_module), _tensors(self._average_model.module))

    def on_validation_epoch_start(self, trainer: Trainer, pl_module: Module) -> None:
        if self._average_model is not None and not self._swapped:
            self._swap(pl_module)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: Module) -> None:
        if self._swapped:
            self._swap(pl_module)

    def on_exception(self, trainer: Trainer, pl_module: Module, exception: BaseException) -> None:
        if self._swapped:
            self._swap(pl_module)

    # ------------------------------------------------------------ checkpoints
    @property
    def state_key(self) -> str:
        return self._generate_state_key(use_buffers=self._use_buffers, **self._kwargs, **self._schedule())

    def _schedule(self) -> dict[str, Any]:
        """Settings of a subclass that tell its instances apart in checkpoints."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"latest_update_step": self._latest_update_step, "latest_update_epoch": self._latest_update_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._latest_update_step = state_dict["latest_update_step"]
        self._latest_update_epoch = state_dict.get("latest_update_epoch", -1)

    def on_save_checkpoint(self, trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
        if self._average_model is None:
            return
        state = self._average_model.state_dict()
        held = {name[len("module.") :]: value for name, value in state.items() if name.startswith("module.")}
        if self._swapped:  # saved during validation: the model holds the average, the average model the live weights
            checkpoint["current_model_state"] = held
        else:
            checkpoint["current_model_state"] = checkpoint["state_dict"]
            checkpoint["state_dict"] = held
        checkpoint["averaging_state"] = {name: value for name, value in state.items() if not name.startswith("module.")}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: Module, checkpoint: dict[str, Any]) -> None:
        if self._average_model is None:
            warnings.warn(
                f"{type(self).__name__} cannot restore its average outside fit; the model gets the checkpoint's "
                "state_dict, which holds the averaged weights when the checkpoint was saved with weight averaging",
                EmberWarning,
                stacklevel=2,
            )
        elif "current_model_state" in checkpoint and "averaging_state" in checkpoint:
            state = {f"module.{name}": value for name, value in checkpoint["state_dict"].items()}
            state.update(checkpoint["averaging_state"])
            self._average_model.load_state_dict(state)
            pl_module.load_state_dict(checkpoint["current_model_state"])
        else:
            warnings.warn(
                f"the checkpoint was not saved with {type(self).__name__}: the live and the averaged model both "
                "start from its state_dict",
                EmberWarning,
                stacklevel=2,
            )
            self._average_model.module.load_state_dict(copy.deepcopy(checkpoint["state_dict"]), strict=False)

    # --------------------------------------------------------------- helpers
    def _update(self, pl_module: Module) -> None:
        assert self._average_model is not None, "the average is created in setup('fit')"
        self._average_model.update_parameters(pl_module)

    def _swap(self, pl_module: Module) -> None:
        """Exchange the model's weights with the average's; the second call puts everything back."""
        import torch

        assert self._average_model is not None
        with torch.no_grad():
            for held, live in zip(_tensors(self._average_model.module), _tensors(pl_module)):
                kept = held.detach().clone()
                held.detach().copy_(live.detach())
                live.detach().copy_(kept)
        self._swapped = not self._swapped


class EMAWeightAveraging(WeightAveraging):
    """An exponential moving average of the weights: ``average = decay * average + (1 - decay) * weights``.

    :param decay: the weight of the past average at each update, in [0, 1].
    :param update_every_n_steps: update after optimizer steps whose zero-based
        index is a multiple of this; 0 turns step updates off.
    :param update_starting_at_step: no step update before this step index.
    :param update_starting_at_epoch: also update at the end of every epoch from this one on.

    ``device`` and ``use_buffers`` are as in :class:`WeightAveraging`.
    """

    def __init__(
        self,
        device: torch.device | str | int | None = None,
        use_buffers: bool = True,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        **kwargs: Any,
    ) -> None:
        from torch.optim.swa_utils import get_ema_avg_fn

        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay <= 1.0:
            raise MisconfigurationError(f"EMAWeightAveraging(decay={decay!r}): accepted is a number in [0, 1]")
        _check_count("update_every_n_steps", update_every_n_steps, optional=False)
        _check_count("update_starting_at_step", update_starting_at_step, optional=True)
        _check_count("update_starting_at_epoch", update_starting_at_epoch, optional=True)
        super().__init__(device=device, use_buffers=use_buffers, **kwargs, avg_fn=get_ema_avg_fn(decay=decay))
        self.decay = decay
        self.update_every_n_steps = update_every_n_steps
        self.update_starting_at_step = update_starting_at_step
        self.update_starting_at_epoch = update_starting_at_epoch

    def _schedule(self) -> dict[str, Any]:
        return {
            "decay": self.decay,
            "update_every_n_steps": self.update_every_n_steps,
            "update_starting_at_step": self.update_starting_at_step,
            "update_starting_at_epoch": self.update_starting_at_epoch,
        }

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        if step_idx is not None:
            started = self.update_starting_at_step is None or step_idx >= self.update_starting_at_step
            every = self.update_every_n_steps
            if started and every > 0 and step_idx % every == 0:
                return True
        if epoch_idx is not None:
            start = self.update_starting_at_epoch
            if start is not None and epoch_idx >= start:
                return True
        return False


def _tensors(module: torch.nn.Module) -> list[torch.Tensor]:
    """Parameters then buffers, the order AveragedModel averages them in."""
    return [*module.parameters(), *module.buffers()]


def _copy_into(targets: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    import torch

    with torch.no_grad():
        for target, source in zip(targets, sources):
            target.detach().copy_(source.detach())


def _check_count(name: str, value: Any, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        accepted = "None or an int >= 0" if optional else "an int >= 0"
        raise MisconfigurationError(f"EMAWeightAveraging({name}={value!r}): accepted is {accepted}")
