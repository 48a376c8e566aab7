"""Ray cluster start/attach and worker groups: one Ray actor per placed process.

Each process is pinned to its node (node-affinity scheduling) and to its GPUs (an explicit
``CUDA_VISIBLE_DEVICES``; Ray's own GPU assignment is switched off so that two components
can share a GPU). Every call through a group is bounded by ``timeout_s``: a worker that
dies or hangs stops the run with an error naming the group, the rank and the last lines
of that worker's log file.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from rlinf_isaac.cluster import tensor_transport as tensor_transport_module
from rlinf_isaac.cluster.placement import Placement, ProcessPlacement
from rlinf_isaac.tempdirs import RUN_TMP_ENV, make_run_tmp_root

__all__ = ["WorkerBase", "WorkerError", "WorkerGroup", "alive_nodes", "ray_auth", "session_dir", "start_ray",
           "setup_worker_logging", "tail"]

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """A worker died, raised, or did not answer within the timeout."""


def tail(path: Path | str, n: int = 20) -> str:
    """The last ``n`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(deque(f, maxlen=n))
    except OSError:
        return ""


def start_ray(address: str | None, num_cpus: int | None = None, tensor_transport: str | None = None) -> list[dict]:
    """Attach to a running cluster (``address``: "auto" or host:port) or start a local one.

    tensor_transport: ``cluster.tensor_transport`` ("bytes" or "pickle"), installed in this
    process and handed to every worker started afterwards. Returns ``ray.nodes()`` of the
    alive nodes, head first (node index 0 of the placement), then in the order they joined.
    An explicit address is attached to with Ray's token authentication when a token is
    available (see :func:`ray_auth`).
    """
    import ray

    if tensor_transport is not None:
        os.environ[tensor_transport_module.MODE_ENV] = tensor_transport  # workers read it at start
    if not ray.is_initialized():
        env = {"RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1"}
        os.environ.update(env)
        kwargs: dict[str, Any] = dict(log_to_driver=True, include_dashboard=False,
                                      runtime_env={"env_vars": env})
        tmp_root = make_run_tmp_root()
        if address:
            ray_auth(address)
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, **kwargs)
        _reap_when_driver_dies(None if address else session_dir(), tmp_root)
    tensor_transport_module.register()
    return alive_nodes(ray.nodes())


def session_dir() -> str | None:
    """The session folder of the Ray instance this process started (None if Ray hides it)."""
    import ray

    try:
        return ray._private.worker.global_worker.node.get_session_dir_path()
    except AttributeError:  # pragma: no cover - another Ray layout: Ray's own clean-up only
        return None


def _reap_when_driver_dies(session_dir: str | None, tmp_root: str) -> None:
    """When this driver exits, killed or not, stop the local Ray instance it started (if any)
    and remove the run's temporary folders (reaper.py)."""
    import atexit
    import shutil

    from rlinf_isaac.cluster.reaper import spawn_reaper

    atexit.register(shutil.rmtree, tmp_root, True)  # a normal exit, also where there is no reaper
    spawn_reaper(session_dir or "", tmp_root=tmp_root)


def alive_nodes(nodes: list[dict]) -> list[dict]:
    """The alive entries of ``ray.nodes()``: the head first, then by join order (their listing order)."""
    alive = [n for n in nodes if n.get("Alive")]
    return sorted(alive, key=lambda n: "node:__internal_head__" not in n.get("Resources", {}))


_TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def ray_auth(address: str | None) -> str:
    """How this process authenticates to the Ray cluster at ``address``, as one phrase.

    Ray (2.60) turns token authentication on by itself only for a cluster it starts or finds
    locally; with an explicit address it uses the saved token only when ``RAY_AUTH_MODE=token``.
    This sets that mode when ``RAY_AUTH_MODE`` is unset and a token is available
    (``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, the file ``ray start``
    uses), so attaching to a cluster started with ``ray start --head`` works.
    """
    mode = os.environ.get("RAY_AUTH_MODE")
    if os.environ.get("RAY_AUTH_TOKEN"):
        source = "RAY_AUTH_TOKEN"
    else:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or _TOKEN_FILE).expanduser()
        source = str(path) if path.is_file() else None
    if mode is None and address not in (None, "auto") and source:
        os.environ["RAY_AUTH_MODE"] = mode = "token"
        try:  # Ray caches its config at import: refresh it, as Ray does when it enables the mode itself
            from ray._raylet import Config

            Config.initialize("")
        except ImportError:  # pragma: no cover - a Ray without token authentication
            pass
    if (mode or "").lower() == "token":
        return f"token authentication ({source or 'no token found'})"
    if (mode or "").lower() == "disabled":
        return "no authentication (RAY_AUTH_MODE=disabled)"
    return "no authentication token found"


def setup_worker_logging(log_file: str | None) -> None:
    """Send this process's logging and stdout/stderr to ``log_file`` (kept for failure reports)."""
    if not log_file:
        return
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    f = open(log_file, "a", buffering=1)
    sys.stdout = sys.stderr = f  # plain prints of simulators land in the file too
    logging.basicConfig(level=logging.INFO, stream=f, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@dataclass
class _Member:
    rank: int
    handle: Any
    log_file: str


class WorkerGroup:
    """Ray actors of one component, rank order; calls are bounded by ``timeout_s``."""

    def __init__(self, name: str, cls: type, placement: Placement, component: str,
                 init_kwargs: Sequence[dict], log_dir: Path, timeout_s: float, nodes: list[dict],
                 start_timeout_s: float = 900.0):
        """Start one actor of ``cls`` (a :class:`WorkerBase`) per process of ``component``.

        init_kwargs: constructor keyword arguments, one dict per rank.
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.name, self.timeout_s, self.worker_class = name, timeout_s, cls
        self.members: list[_Member] = []
        # ref id -> rank computing it. Keyed by id, not by the ObjectRef: holding a ref would
        # keep its object alive in the object store (weight-sync refs are never waited here).
        self._rank_of: dict[str, int] = {}
        procs = placement.processes(component)
        for p, kwargs in zip(procs, init_kwargs):
            log_file = str(log_dir / f"{name}-{p.rank}.log")
            env = _process_env(p, placement.device_type, log_file)
            if p.node >= len(nodes):
                raise WorkerError(f"worker {name} rank {p.rank} is placed on node {p.node}, but only "
                                  f"{len(nodes)} Ray node(s) are alive")
            opts: dict[str, Any] = dict(num_cpus=0, num_gpus=0, name=None, max_concurrency=1,
                                        runtime_env={"env_vars": env},
                                        scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[p.node]["NodeID"],
                                                                                           soft=False))
            handle = ray.remote(cls).options(**opts).remote(**kwargs)
            self.members.append(_Member(p.rank, handle, log_file))
        # Construction errors surface here, with the worker's log; building a simulator or
        # loading a multi-GB checkpoint may take longer than one step, hence the floor.
        self.wait(self.call(WorkerBase.ready), what="start", timeout_s=max(timeout_s, start_timeout_s))

    def __len__(self) -> int:
        return len(self.members)

    def handle(self, rank: int) -> Any:
        """The Ray handle of one rank (for worker-to-worker calls)."""
        return self.members[rank].handle

    def call(self, method: Callable, *args, ranks: Sequence[int] | None = None, per_rank_args=None,
             num_returns: int = 1, **kwargs) -> list:
        """Call ``method`` (a method of the worker class, e.g. ``ActorWorker.update``) on ranks
        (default: all); returns object refs in rank order (a list of ``num_returns`` refs per
        rank when ``num_returns`` > 1).

        per_rank_args: optional list (one tuple of positional args per called rank),
        appended after ``args``.
        """
        name = self._method_name(method)
        ranks = list(range(len(self.members))) if ranks is None else list(ranks)
        refs = []
        for i, r in enumerate(ranks):
            extra = tuple(per_rank_args[i]) if per_rank_args is not None else ()
            remote = getattr(self.members[r].handle, name)
            if num_returns != 1:
                remote = remote.options(num_returns=num_returns)
            ref = remote.remote(*args, *extra, **kwargs)
            for one in (ref if num_returns != 1 else [ref]):
                self._rank_of[one.hex()] = r
            refs.append(ref)
        while len(self._rank_of) > 4096:  # forget the oldest unawaited calls
            self._rank_of.pop(next(iter(self._rank_of)))
        return refs

    def _method_name(self, method: Callable) -> str:
        """The name of ``method``, checked to be the worker class's own (not another class's)."""
        name = getattr(method, "__name__", None)
        if name is None or getattr(self.worker_class, name, None) is not method:
            raise TypeError(f"worker group {self.name!r}: {method!r} is not a method of "
                            f"{self.worker_class.__name__}")
        return name

    def wait(self, refs: list, what: str = "call", timeout_s: float | None = None) -> list:
        """Results of ``refs`` (rank order); a failure or timeout raises :class:`WorkerError`."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        pending = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        while pending:
            left = deadline - time.monotonic()
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, left))
            if not ready:
                ranks = sorted(self._rank_of.get(r.hex(), i) for r, i in pending.items())
                raise self._error(ranks[0], f"did not finish '{what}' within {timeout_s:.0f} s "
                                            f"(cluster.worker_timeout_s); ranks still running: {ranks}")
            ref = ready[0]
            i = pending.pop(ref)
            rank = self._rank_of.pop(ref.hex(), i)
            try:
                results[i] = ray.get(ref)
            except RayTaskError as e:
                raise self._error(rank, f"raised during '{what}': {e.cause!r}" if e.cause else str(e)) from None
            except RayActorError as e:
                raise self._error(rank, f"died during '{what}' ({type(e).__name__}: {str(e).splitlines()[0]})") from None
        return results

    def run(self, method: Callable, *args, **kwargs) -> list:
        """call + wait: the results of ``method`` on every called rank."""
        return self.wait(self.call(method, *args, **kwargs), what=method.__name__)

    def _error(self, i: int, msg: str) -> WorkerError:
        m = self.members[i]
        last = tail(m.log_file, 20).rstrip()
        if last:
            body = f"\n--- last lines of {m.log_file} ---\n{last}"
        elif Path(m.log_file).is_file():
            body = f"\n(its log {m.log_file} is empty: the worker wrote nothing before it stopped)"
        else:
            body = f"\n(no log at {m.log_file}: the worker stopped before it opened its log)"
        return WorkerError(f"worker {self.name} rank {m.rank} {msg}{body}")

    def kill(self) -> None:
        import ray

        for m in self.members:
            try:
                ray.kill(m.handle, no_restart=True)
            except Exception:  # already dead
                pass
        self.members = []


def _process_env(p: ProcessPlacement, device_type: str, log_file: str) -> dict[str, str]:
    env = {"RLINF_WORKER_LOG": log_file, "RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES": "1",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    if device_type == "cuda":
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in p.local_gpus)
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""
    for k in ("MUJOCO_GL", "PYOPENGL_PLATFORM", "LP_NUM_THREADS", "NCCL_NVLS_ENABLE", "RLINF_TENSOR_TRANSPORT",
              "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS", RUN_TMP_ENV):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


class WorkerBase:
    """Base of every worker class: log file set-up, thread count, a ``ready`` probe."""

    def __init__(self) -> None:
        setup_worker_logging(os.environ.get("RLINF_WORKER_LOG"))
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        tensor_transport_module.register()  # tensors this worker sends travel as raw bytes

    def ready(self) -> bool:
        return True

    def node_id(self) -> str:
        """The Ray node this worker runs on (its ``NodeID``)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def start_memory_count(self) -> None:
        """Count peak memory (:meth:`memory_stats`) from here: a worker calls it once its model is
        built, so the one-off float32 copy that building makes before the cast to bf16 is not counted."""
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()

    def memory_stats(self) -> dict[str, float]:
        """Peak CUDA memory of this worker's process in GiB since the model was built (0 without CUDA)."""
        import torch

        used = torch.cuda.is_available() and torch.cuda.is_initialized()
        return {"peak_gib": torch.cuda.max_memory_allocated() / 2**30 if used else 0.0}
