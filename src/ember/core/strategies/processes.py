"""``ddp_spawn``, ``ddp_fork`` and ``ddp_notebook``: every rank in a child process, results handed back to the caller.

As with Lightning's multiprocessing launcher, the calling process trains
nothing itself: it starts one process per local device (fresh interpreters
with ``spawn``; copies of itself with ``fork``), waits for them, and then
takes rank 0's outcome back: the trained weights into the caller's model,
each callback's state into the caller's callbacks (by ``state_key``), the
progress counters and metrics into the caller's Trainer, and what the Trainer
method returns. A rank that fails ends the others, and its exception is
raised in the caller, which keeps running and finds ``os.environ`` as it was.

With ``spawn`` the model, datamodule, dataloaders and the Trainer's
arguments (callbacks, loggers) are pickled to the children, so they must be
picklable and defined in an importable module (or the ``__main__`` script,
behind ``if __name__ == "__main__":``).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

_RESULT = "rank0-result.pt"


def launch_processes(
    strategy: Any, start_method: str, env: dict[str, str], function: Callable[..., Any], args: tuple[Any, ...]
) -> Any:
    """Run ``function(*args)`` (a Trainer's ``_run_guarded``) on every local rank; return rank 0's result."""
    trainer = function.__self__  # type: ignore[attr-defined]
    context: Any = multiprocessing.get_context(start_method)
    with tempfile.TemporaryDirectory(prefix="ember-ranks-") as folder:
        if start_method == "spawn":
            work: Any = (type(trainer), trainer._init_kwargs, args)
        else:
            work = (function, args)
        processes = []
        first = strategy.node_rank * strategy.num_processes
        for local_rank in range(strategy.num_processes):
            rank_env = {**env, "RANK": str(first + local_rank), "LOCAL_RANK": str(local_rank)}
            process = context.Process(
                target=_run_rank, args=(rank_env, folder, work), name=f"ember-rank-{local_rank}", daemon=False
            )
            process.start()
            processes.append(process)
        _wait(processes, folder)
        outcome = torch.load(Path(folder, _RESULT), weights_only=False)
    return _hand_back(trainer, args, outcome)


def _wait(processes: list[Any], folder: str) -> None:
    """Wait for every rank; when one fails, stop the rest and raise its exception here."""
    try:
        while True:
            codes = [process.exitcode for process in processes]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
            if failed or all(code == 0 for code in codes):
                break
            time.sleep(0.05)
    except BaseException:
        _stop(processes)
        raise
    if failed:
        time.sleep(0.5)  # let ranks that failed at the same moment write their errors
        _stop(processes)
        raise _rank_error(folder, failed[0], processes)


def _stop(processes: list[Any]) -> None:
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        process.join(max(deadline - time.monotonic(), 0.1))
        if process.exitcode is None:
            process.kill()
            process.join()


def _rank_error(folder: str, first_failed: int, processes: list[Any]) -> BaseException:
    """The exception written first (the others are usually ranks losing their peer); else the rank that died."""
    written = [Path(folder, f"error-{rank}.pkl") for rank in range(len(processes))]
    for path in sorted((p for p in written if p.exists()), key=lambda p: p.stat().st_mtime_ns):
        rank = written.index(path)
        exception, text = pickle.loads(path.read_bytes())
        if exception is None:
            exception = RuntimeError(f"rank {rank} failed:\n{text}")
        if hasattr(exception, "add_note"):
            exception.add_note(f"ember: raised on rank {rank}")
        return exception  # type: ignore[no-any-return]
    code = processes[first_failed].exitcode
    return RuntimeError(f"ember: rank {first_failed} exited with code {code} without raising an exception")


def _run_rank(env: dict[str, str], folder: str, work: tuple[Any, ...]) -> None:
    """A child's whole life: its rank's environment, the run, and rank 0's outcome written for the caller."""
    os.environ.update(env)
    rank = int(env["LOCAL_RANK"])
    code, spawned = 0, len(work) == 3
    try:
        if spawned:  # spawn: a fresh interpreter builds its own Trainer from the caller's arguments
            trainer_class, init_kwargs, args = work
            trainer = trainer_class(**init_kwargs)
            result = trainer._run_guarded(*args)
        else:  # fork: the Trainer was copied with the process
            function, args = work
            trainer = function.__self__
            result = function(*args)
        if rank == 0:  # each node's local rank 0 hands back (the replicas are identical)
            torch.save(_outcome(trainer, result), Path(folder, _RESULT))
    except BaseException as exception:
        text = traceback.format_exc()
        sys.stderr.write(text)
        try:
            payload = pickle.dumps((exception, text))
        except Exception:  # noqa: BLE001 - an exception that does not pickle travels as its traceback
            payload = pickle.dumps((None, text))
        Path(folder, f"error-{rank}.pkl").write_bytes(payload)
        code = 1
    if spawned:  # ended as a script-launched rank is: torch's leaked process group can abort the teardown
        from ember.core.script_rank import end_process

        end_process(code)
    elif code:
        sys.stderr.flush()
        raise SystemExit(code)  # multiprocessing ends a forked child with os._exit, without the parent's exit handlers


def _outcome(trainer: Any, result: Any) -> dict[str, Any]:
    """What the caller takes back from rank 0, on the CPU."""
    from ember.core.checkpoint import collect_callback_states

    module = trainer.lightning_module
    return {
        "result": result,
        "state_dict": {key: value.detach().cpu() for key, value in module.state_dict().items()},
        "callbacks": collect_callback_states(trainer),
        "progress": trainer.fit_progress.state_dict(),
        "callback_metrics": _cpu(dict(trainer.callback_metrics)),
        "logged_metrics": _cpu(dict(trainer.logged_metrics)),
    }


def _cpu(metrics: dict[str, Any]) -> dict[str, Any]:
    return {key: value.detach().cpu() if isinstance(value, torch.Tensor) else value for key, value in metrics.items()}


def _hand_back(trainer: Any, args: tuple[Any, ...], outcome: dict[str, Any]) -> Any:
    """Put rank 0's outcome into the caller's model, callbacks and Trainer; return what the method returns."""
    from ember.core.state import TrainerStatus

    fn, model, _, datamodule = args[:4]
    model.load_state_dict(outcome["state_dict"])
    trainer.state.fn, trainer.state.status, trainer.state.stage = fn, TrainerStatus.FINISHED, None
    trainer.lightning_module = trainer.model = model
    model.trainer = trainer
    trainer.datamodule = datamodule
    states = outcome["callbacks"]
    for callback in trainer.callbacks:
        state = states.get(callback.state_key)
        if state is None:
            continue
        if getattr(callback, "dirpath", "") is None and "dirpath" in state:
            callback.dirpath = state["dirpath"]  # resolved on rank 0 (from the logger or the root dir)
        callback.load_state_dict(state)
    trainer.fit_progress.load_state_dict(outcome["progress"])
    trainer._metrics.callback.update(outcome["callback_metrics"])
    trainer._metrics.logged.update(outcome["logged_metrics"])
    return outcome["result"]
