"""Distributed data parallel on torch.distributed: gloo on CPU, NCCL on CUDA.

Started as a plain script, rank 0 launches the other local processes itself
by re-running the script with the rank in its environment, as Lightning's
subprocess launcher does; under torchrun (RANK, LOCAL_RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT set) nothing is launched. ``ddp_spawn`` (fresh
interpreters) and ``ddp_fork``/``ddp_notebook`` (forked copies) run every rank
in a child process and hand rank 0's results back (see processes.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import torch

from ember.core.strategies.collective_failure import collective_error, is_communication_failure
from ember.core.strategies.single import Strategy
from ember.errors import MisconfigurationError, RankFailedError

_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
#: How long rank 0 gives its main thread to end after another rank failed, before it exits without cleaning up.
STOP_GRACE_SECONDS = 60.0


class DDPStrategy(Strategy):
    """One process per device, gradients averaged by DistributedDataParallel.

    :param device_type: ``"cpu"`` or ``"cuda"``.
    :param parallel_devices: device indices on this node, one process each.
    :param num_nodes: machines taking part; each runs ``len(parallel_devices)`` processes.
    :param start_method: ``"popen"`` (re-run the script, the ``ddp`` strategy), ``"spawn"`` (``ddp_spawn``)
        or ``"fork"`` (``ddp_fork``, ``ddp_notebook``).
    :param timeout: how long a rank waits in a collective (a barrier, a gradient all-reduce) for the others
        before it raises :class:`~ember.errors.CollectiveTimeoutError` instead of hanging: a ``timedelta``
        or seconds. Default: ``EMBER_DDP_TIMEOUT`` seconds when set, else 30 minutes.

    ``DDPStrategy(timeout=timedelta(minutes=5))`` without devices takes them from the Trainer's
    ``accelerator``, ``devices`` and ``num_nodes``.
    """

    #: What backward waits for, as a CollectiveTimeoutError names it.
    backward_collective = "DDP's gradient all-reduce in backward"

    def __init__(
        self,
        device_type: str | None = None,
        parallel_devices: list[int] | None = None,
        num_nodes: int = 1,
        start_method: str = "popen",
        timeout: timedelta | float | None = None,
    ) -> None:
        #: True until the Trainer's flags name the devices (an instance built without them)
        self.awaits_devices = device_type is None or parallel_devices is None
        self.device_type = device_type or "cpu"
        self.parallel_devices = parallel_devices if parallel_devices is not None else [0]
        self.num_nodes = num_nodes
        self.start_method = start_method
        self.timeout = _timeout(timeout)
        if start_method == "fork" and device_type == "cuda":
            raise MisconfigurationError(
                "strategy='ddp_fork' (or 'ddp_notebook') forks processes, which CUDA does not survive; "
                "use strategy='ddp' or 'ddp_spawn' on GPUs"
            )
        self._local_rank = _int_env("LOCAL_RANK", 0)
        self._node_rank = _int_env("NODE_RANK", _int_env("GROUP_RANK", _int_env("SLURM_NODEID", 0)))
        self._children: list[Any] = []  # subprocess.Popen, or a forked rank with the same methods
        self._watchdog: threading.Thread | None = None
        self._stop_watching = threading.Event()
        self._interrupt = _Interrupt()
        self.model: torch.nn.Module | None = None
        super().__init__(self._device_for(self._local_rank))

    def take_devices(self, device_type: str, parallel_devices: list[int], num_nodes: int) -> None:
        """Run on the Trainer's ``accelerator``, ``devices`` and ``num_nodes`` (for an instance that named none)."""
        self.device_type, self.parallel_devices, self.num_nodes = device_type, parallel_devices, num_nodes
        self.awaits_devices = False
        self.root_device = self._device_for(self._local_rank)

    # ------------------------------------------------------------- topology
    @property
    def local_rank(self) -> int:
        return self._local_rank

    @property
    def node_rank(self) -> int:
        return self._node_rank

    @property
    def world_size(self) -> int:
        return _int_env("WORLD_SIZE", len(self.parallel_devices) * self.num_nodes)

    @property
    def global_rank(self) -> int:
        return _int_env("RANK", self._node_rank * len(self.parallel_devices) + self._local_rank)

    @property
    def num_processes(self) -> int:
        return len(self.parallel_devices)

    def _device_for(self, local_rank: int) -> torch.device:
        if self.device_type == "cuda":
            return torch.device("cuda", self.parallel_devices[local_rank % len(self.parallel_devices)])
        return torch.device("cpu")

    # -------------------------------------------------------------- launching
    def launch(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Start the other processes unless torchrun (or an earlier launch) did, then run ``function`` as this rank."""
        if all(key in os.environ for key in _ENV) or self.world_size == 1:
            return function(*args, **kwargs)
        if self.start_method in ("spawn", "fork"):
            from ember.core.strategies.processes import launch_processes

            return launch_processes(self, self.start_method, {**os.environ, **self._rank_env()}, function, args)
        try:
            self._start_children(function, args, kwargs)
            result = function(*args, **kwargs)
            self._interrupt.disarm()
        except BaseException:
            self._stop_children()
            raise
        self._wait_for_children()
        return result

    def _start_children(self, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Start ranks 1..N-1 of this node by re-running the script (ddp); this process becomes rank 0."""
        common = self._rank_env()
        first = self._node_rank * len(self.parallel_devices)
        command = _script_command()
        for local_rank in range(1, len(self.parallel_devices)):
            env = {**os.environ, **common, "RANK": str(first + local_rank), "LOCAL_RANK": str(local_rank)}
            self._children.append(subprocess.Popen(command, env=env))
        os.environ.update(common, RANK=str(first), LOCAL_RANK="0")
        self._interrupt.arm(getattr(function, "__self__", None))  # function is a Trainer's _run_guarded
        self._watchdog = threading.Thread(target=self._watch_children, name="ember-ddp-watchdog", daemon=True)
        self._watchdog.start()

    def _rank_env(self) -> dict[str, str]:
        """The variables every rank of this node shares: rendezvous address, world size, node."""
        return {
            "MASTER_ADDR": os.environ.get("MASTER_ADDR", "127.0.0.1"),
            "MASTER_PORT": os.environ.get("MASTER_PORT") or str(_free_port()),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_WORLD_SIZE": str(len(self.parallel_devices)),
            "NODE_RANK": str(self._node_rank),
        }

    def __getstate__(self) -> dict[str, Any]:
        """Picklable for ddp_spawn: the launch's processes, watchdog and wrapped model stay behind."""
        state = dict(self.__dict__)
        state.update(_children=[], _watchdog=None, _stop_watching=None, _interrupt=None, model=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._stop_watching = threading.Event()
        self._interrupt = _Interrupt()

    def _child_ranks(self) -> list[tuple[int, Any]]:
        """``(global rank, process)`` for each rank this process launched."""
        first = self._node_rank * len(self.parallel_devices)
        return [(first + local_rank, child) for local_rank, child in enumerate(self._children, 1)]

    def _exit_codes(self) -> dict[int, int]:
        """Exit codes of the ranks this process launched that have ended, by global rank."""
        return {rank: code for rank, child in self._child_ranks() if (code := child.poll()) is not None}

    def _watch_children(self) -> None:
        """If another rank dies with an error, end this rank through its exception path instead of hanging.

        The main thread gets a RankFailedError (unless it is already ending on an error of its own),
        so on_exception runs and the loggers are flushed. If it has not stopped the launched ranks
        (the strategy's on_exception) within STOP_GRACE_SECONDS, the process exits without cleaning up.
        """
        while not self._stop_watching.wait(0.2):
            failed = [(rank, code) for rank, code in self._exit_codes().items() if code != 0]
            if not failed:
                continue
            rank, code = failed[0]
            print(f"ember: rank {rank} exited with code {code}; stopping every rank", file=sys.stderr, flush=True)
            self._interrupt.fire(rank, code)
            if self._stop_watching.wait(STOP_GRACE_SECONDS):
                return
            print(
                f"ember: this rank did not stop within {STOP_GRACE_SECONDS:.0f} s of rank {rank} failing; "
                "exiting without cleaning up",
                file=sys.stderr,
                flush=True,
            )
            self._stop_children()
            os._exit(code if code > 0 else 1)

    def _wait_for_children(self) -> None:
        """After this rank's run: wait for the others; a failure now is reported here (nothing to interrupt)."""
        self._stop_watching.set()
        if self._watchdog is not None:
            self._watchdog.join()
        failed = []
        for rank, child in self._child_ranks():
            if child.wait() != 0:
                failed.append((rank, child.returncode))
        self._children = []
        if failed:
            raise RuntimeError(f"ember: ranks exited with errors (rank, exit code): {failed}")

    def _stop_children(self) -> None:
        self._stop_watching.set()
        for child in self._children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child in self._children:
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join()
        self._children = []

    # ------------------------------------------------------------------ setup
    def setup_environment(self) -> None:
        import torch.distributed as dist

        from ember.core.rank import rank_zero_only

        self._local_rank = _int_env("LOCAL_RANK", self._local_rank)
        self.root_device = self._device_for(self._local_rank)
        if self.root_device.type == "cuda":
            torch.cuda.set_device(self.root_device)
        rank_zero_only.rank = self.global_rank  # type: ignore[attr-defined]
        if not dist.is_initialized():
            if self.world_size == 1:  # nothing was launched; a group of one still needs an address
                os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
                os.environ.setdefault("MASTER_PORT", str(_free_port()))
            backend = "nccl" if self.device_type == "cuda" else "gloo"
            store = _elastic_store(self.global_rank, self.world_size, self.timeout)
            dist.init_process_group(
                backend, store=store, rank=self.global_rank, world_size=self.world_size, timeout=self.timeout
            )

    def setup_module(self, module: torch.nn.Module) -> torch.nn.Module:
        """Move the model to this rank's device and wrap it for gradient averaging."""
        from torch.nn.parallel import DistributedDataParallel

        module.to(self.root_device)
        if not any(p.requires_grad for p in module.parameters()):
            self.model = module
            return module
        device_ids = [self.root_device.index] if self.root_device.type == "cuda" else None
        self.model = DistributedDataParallel(_StepRouter(module), device_ids=device_ids)
        return self.model

    def training_step_function(self, module: Any) -> Callable[..., Any]:
        """Run training_step through the DDP wrapper, which is what arms its gradient averaging."""
        if self.model is None or self.model is module:
            return module.training_step  # type: ignore[no-any-return]
        return self.model  # type: ignore[return-value]

    def process_dataloader(self, loader: Any, kind: str, use_distributed_sampler: bool) -> Any:
        """Give each rank its shard: a DistributedSampler (shuffled for training only if the loader shuffled)."""
        from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
        from torch.utils.data.distributed import DistributedSampler

        from ember.core.data import with_sampler

        if not use_distributed_sampler or type(loader) is not DataLoader or self.world_size == 1:
            return loader
        sampler = loader.sampler
        if isinstance(sampler, DistributedSampler) or type(sampler) not in (RandomSampler, SequentialSampler):
            return loader
        shuffle = kind == "train" and isinstance(sampler, RandomSampler)
        seed = int(os.environ.get("EMBER_GLOBAL_SEED", "0"))
        share = self.distributed_sampler_kwargs
        distributed: DistributedSampler[Any] = DistributedSampler(
            loader.dataset, num_replicas=share["num_replicas"], rank=share["rank"], shuffle=shuffle, seed=seed
        )
        return with_sampler(loader, distributed)

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        """Which share of the data this rank reads: ranks that hold parts of one model replica read the same."""
        return {"num_replicas": self.world_size, "rank": self.global_rank}

    # ---------------------------------------------------------- communication
    def barrier(self, name: str | None = None) -> None:
        """Wait for every rank; after ``timeout`` raise CollectiveTimeoutError naming the ranks that did not come.

        On gloo this is ``monitored_barrier``; NCCL's own watchdog ends a barrier that outlives
        the timeout given to ``init_process_group``.
        """
        import torch.distributed as dist

        if not dist.is_initialized():
            return
        if dist.get_backend() != "gloo":
            dist.barrier()
            return
        try:
            dist.monitored_barrier(timeout=self.timeout, wait_all_ranks=True)
        except RuntimeError as error:
            raise self._collective_error(f"barrier {name!r}" if name else "a barrier", error) from error

    def collective_failed(self, what: str, error: BaseException) -> None:
        """Raise CollectiveTimeoutError for ``error`` if another rank not answering in ``what`` caused it."""
        import torch.distributed as dist

        if dist.is_initialized() and self.world_size > 1 and is_communication_failure(error):
            raise self._collective_error(what, error) from error

    @contextlib.contextmanager
    def _naming_failures(self, what: str) -> Iterator[None]:
        """Around one of ember's collectives: a peer not answering in it becomes CollectiveTimeoutError."""
        try:
            yield
        except RuntimeError as error:
            self.collective_failed(what, error)
            raise

    def _collective_error(self, what: str, error: BaseException) -> BaseException:
        self._interrupt.disarm()  # this thread is ending on its own error: the watchdog leaves it to
        return collective_error(what, self.global_rank, self.world_size, self.timeout, error, self._exit_codes)

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        import torch.distributed as dist

        if not dist.is_initialized():
            return obj
        holder = [obj]
        with self._naming_failures("trainer.strategy.broadcast"):
            dist.broadcast_object_list(holder, src=src)
        return holder[0]

    def reduce(self, tensor: torch.Tensor, reduce_op: str = "mean") -> torch.Tensor:
        import torch.distributed as dist

        if not dist.is_initialized():
            return tensor
        ops = {"mean": dist.ReduceOp.SUM, "sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}
        if reduce_op not in ops:
            raise MisconfigurationError(f"reduce_op={reduce_op!r}; accepted are {sorted(ops)}")
        result = tensor.detach().clone().float().to(self.root_device)
        with self._naming_failures("trainer.strategy.reduce"):
            dist.all_reduce(result, op=ops[reduce_op])
        if reduce_op == "mean":
            result /= self.world_size
        return result

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002
        votes = self.reduce(torch.tensor(int(bool(decision))), "sum")
        return bool(votes >= self.world_size) if all else bool(votes > 0)

    def all_gather(self, tensor: torch.Tensor, sync_grads: bool = False) -> torch.Tensor:
        import torch.distributed as dist

        if not dist.is_initialized():
            return tensor
        tensor = tensor.to(self.root_device)
        with self._naming_failures("trainer.strategy.all_gather"):
            if sync_grads:
                return torch.stack(dist.nn.functional.all_gather(tensor))  # type: ignore[attr-defined]
            gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
            dist.all_gather(gathered, tensor.contiguous())
        return torch.stack(gathered)

    # ------------------------------------------------------------ end of run
    def on_exception(self, exception: BaseException) -> None:
        """Stop the processes this rank launched; they would wait for it forever."""
        if self._children:
            self._stop_children()

    def teardown(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        if self.model is not None and self.root_device.type == "cuda":
            self.model.to("cpu")
        self.model = None


class _Interrupt:
    """Raises RankFailedError once in the thread that runs the Trainer, while that thread may be interrupted.

    CPython raises it at the thread's next Python instruction, so a thread blocked in one
    long C call (a collective, a sleep) gets it when the call returns. It takes an exception
    class, not an instance: the rank and exit code ride on a subclass made for the failure.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: int | None = None
        self._armed = False
        self._trainer: Any = None

    def arm(self, trainer: Any) -> None:
        """Let ``fire`` interrupt the calling thread (running ``trainer``, which may be None)."""
        with self._lock:
            self._thread, self._armed, self._trainer = threading.get_ident(), True, trainer

    def disarm(self) -> None:
        """From the armed thread: no interruption from now on; one fired but not yet raised is withdrawn."""
        with self._lock:
            if self._thread == threading.get_ident():
                self._armed = False
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), None)

    def fire(self, rank: int, exit_code: int) -> None:
        """Raise RankFailedError in the armed thread, unless its Trainer is already ending on an exception."""
        with self._lock:
            if not self._armed or self._thread is None or getattr(self._trainer, "interrupted", False):
                return
            self._armed = False
            failure = type(
                "RankFailedError",
                (RankFailedError,),
                {
                    "__init__": lambda error: RankFailedError.__init__(error, rank, exit_code),
                    "__module__": "ember.errors",
                },
            )
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), ctypes.py_object(failure))


class _StepRouter(torch.nn.Module):
    """Makes ``forward`` call the wrapped Module's ``training_step``, so DDP sees the step as its forward."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module.training_step(*args, **kwargs)  # type: ignore[operator]


def _elastic_store(rank: int, world_size: int, timeout: timedelta) -> Any:
    """Under torchrun, a rendezvous store whose keys are this restart's own; None (env://) otherwise.

    torchrun restarts a failed group in place (``--max-restarts``); when its agent
    keeps one store for all attempts, a restarted rank that rendezvoused the plain
    env:// way could read the previous attempt's addresses and hang, so every
    attempt gets its own key prefix (``TORCHELASTIC_RESTART_COUNT``).
    """
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or world_size == 1 or "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        return None
    import torch.distributed as dist

    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        world_size,
        is_master=not agent_hosts_it and rank == 0,
        timeout=timeout,
        multi_tenant=True,
    )
    return dist.PrefixStore(f"ember/attempt-{attempt}", store)


def _timeout(value: timedelta | float | None) -> timedelta:
    """``timeout`` as a timedelta: the value given, else ``EMBER_DDP_TIMEOUT`` seconds, else 30 minutes."""
    source = "timeout"
    if value is None:
        text, source = os.environ.get("EMBER_DDP_TIMEOUT", "1800"), "EMBER_DDP_TIMEOUT"
        try:
            value = float(text)
        except ValueError:
            raise MisconfigurationError(f"EMBER_DDP_TIMEOUT={text!r}; accepted is a number of seconds > 0") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = timedelta(seconds=value)
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise MisconfigurationError(f"{source}={value!r}; accepted is a timedelta or a number of seconds > 0")
    return value


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value is not None and value.strip().lstrip("-").isdigit() else default


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _script_command() -> list[str]:
    """The command that starts another rank: this process's script (or ``python -m`` module) run again.

    It runs through ``ember.core.script_rank``, which ends the rank once the script is done without the
    interpreter's final teardown, where torch's leaked gloo threads can abort a finished rank.
    """
    from ember.core.script_rank import command

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        name = spec.name[: -len(".__main__")] if spec.name.endswith(".__main__") else spec.name
        return command(sys.executable, ["-m", name], sys.argv[1:])
    if not sys.argv or not sys.argv[0] or sys.argv[0] == "-c":
        raise MisconfigurationError(
            "strategy='ddp' re-runs your script for the other ranks, but this process was not started from a "
            "script; run a script file, use torchrun, or strategy='ddp_spawn'"
        )
    return command(sys.executable, [os.path.abspath(sys.argv[0])], sys.argv[1:])
