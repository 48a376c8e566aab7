"""The env worker's side of the Isaac Lab simulator process: start it, send requests, bound them.

The simulator (Isaac Sim / Isaac Lab) runs in its own process (``sim/server.py``, run by any
interpreter: the env worker's, or Isaac Lab's own ``python.sh``), with the EULA accepted
through the environment. The env worker never imports Isaac Lab.

Fault handling (a dead or stuck simulator is never a silent hang):

* every request waits at most a configurable timeout, polling the process while it waits;
  a process that exits is reported at once with its exit code and the last lines of its
  log, a process that does not answer in time is killed and reported the same way;
* the simulator runs in its own process group, so closing kills Kit's helpers too;
* the simulator watches its parent and exits if the parent dies (no orphans).
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import time
from multiprocessing.connection import Client
from typing import Any

from rlinf_isaac.envs.isaaclab.sim import server
from rlinf_isaac.tempdirs import make_tempdir

__all__ = ["SimulatorError", "SimulatorProcess", "EULA_ENV"]

# Isaac Sim / Omniverse Kit refuse to start headless until their EULA is accepted.
EULA_ENV = {"OMNI_KIT_ACCEPT_EULA": "yes", "ACCEPT_EULA": "Y", "PRIVACY_CONSENT": "Y"}
_POLL_S = 0.2
# The simulator process runs sim/server.py as a standalone module, not as part of the package:
# importing ``rlinf_isaac.envs`` imports torch, and Isaac Sim 5 (Isaac Lab 2.3) must start
# its app before torch is imported. The package is imported only after the app launch.
_BOOTSTRAP = (
    "import importlib.util, sys\n"
    "spec = importlib.util.spec_from_file_location('rlinf_isaac_simulator_server', {path!r})\n"
    "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
    "sys.exit(mod.main(sys.argv[1:]))\n"
)


def _torch_version() -> str:
    import torch

    return torch.__version__


class SimulatorError(RuntimeError):
    """The simulator process died, hung past its timeout, or raised; message has its log tail."""


def _log_tail(path: str, lines: int) -> str:
    try:
        with open(path, "r", errors="replace") as f:
            tail = collections.deque(f, maxlen=lines)
    except OSError:
        return "(no log)"
    return "".join(tail).rstrip() or "(log is empty)"


class SimulatorProcess:
    """Client side: starts the simulator process and sends it requests with timeouts.

    builder: ``"module:function"`` run in the simulator, ``function(**builder_kwargs)``
        returns ``{"env": ManagerBasedRLEnv, "stepper": dict of StepperCfg overrides,
        "info": dict, "close": callable or None}``.
    stepper: the :class:`~rlinf_isaac.envs.isaaclab.sim.stepper.StepperCfg` fields, as a dict.
    prelaunch_app: AppLauncher kwargs; with Isaac Lab < 3 the app is started before the
        builder is imported and passed to it as ``app``.
    obs_transport: "cuda_ipc" or "pipe" (``IsaacLabEnvCfg.obs_transport``); the simulator
        decides and says which in ``info["obs_transport"]``.
    """

    def __init__(
        self,
        builder: str,
        builder_kwargs: dict[str, Any],
        stepper: dict[str, Any],
        prelaunch_app: dict[str, Any] | None = None,
        python: str | None = None,
        startup_timeout_s: float = 900.0,
        log_path: str | None = None,
        log_tail_lines: int = 40,
        extra_env: dict[str, str] | None = None,
        obs_transport: str = "pipe",
    ):
        self.log_tail_lines = log_tail_lines
        self._failed = False  # the simulator failed: close() keeps its log
        self._dir = make_tempdir("rlinf_isaac_sim_")
        self.log_path = log_path or os.path.join(self._dir, "simulator.log")
        self.address = os.path.join(self._dir, "sock")
        self.proc: subprocess.Popen | None = None
        self.conn = None
        self.info: dict[str, Any] = {}
        self._start(python or sys.executable, extra_env or {})
        try:
            self._connect(startup_timeout_s)
            init = {"builder": builder, "builder_kwargs": builder_kwargs, "stepper": stepper,
                    "prelaunch_app": prelaunch_app, "obs_transport": obs_transport,
                    "torch_version": _torch_version()}
            self.info = self.call("init", init, startup_timeout_s)
        except BaseException:
            self.close()
            raise

    def _start(self, python: str, extra_env: dict[str, str]) -> None:
        authkey = os.urandom(32)
        self._authkey = authkey
        env = {**os.environ, **EULA_ENV, **extra_env, server.AUTHKEY_ENV: authkey.hex()}
        cmd = [python, "-u", "-c", _BOOTSTRAP.format(path=os.path.abspath(server.__file__)),
               "--address", self.address, "--parent-pid", str(os.getpid())]
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def _connect(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive("starting")
            try:
                self.conn = Client(self.address, family="AF_UNIX", authkey=self._authkey)
                return
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    self._fail(f"did not open its socket within {timeout_s:.0f} s", kill=True)
                time.sleep(0.05)

    def _check_alive(self, doing: str) -> None:
        code = self.proc.poll() if self.proc is not None else -1
        if code is not None:
            self._fail(f"exited with code {code} while {doing}", kill=False)

    def _fail(self, what: str, kill: bool) -> None:
        pid = self.proc.pid if self.proc is not None else None
        self._failed = True
        if kill:
            self._kill()
        tail = _log_tail(self.log_path, self.log_tail_lines)
        raise SimulatorError(
            f"Isaac Lab simulator process (pid {pid}) {what}.\n"
            f"Log: {self.log_path}\n--- last {self.log_tail_lines} log lines ---\n{tail}"
        )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call(self, cmd: str, payload: Any = None, timeout_s: float = 300.0) -> Any:
        """Send one request and wait for its answer, at most ``timeout_s`` seconds."""
        self.send(cmd, payload)
        return self.receive(cmd, timeout_s)

    def send(self, cmd: str, payload: Any = None) -> None:
        """Send one request and return at once; :meth:`receive` waits for its answer."""
        if self.conn is None:
            raise SimulatorError(f"simulator process is closed; cannot run {cmd!r}")
        self._check_alive(f"idle before {cmd!r}")
        try:
            self.conn.send((cmd, payload))
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._fail(f"closed the connection before {cmd!r}", kill=True)

    def ready(self) -> bool:
        """True when an answer (or the end of the connection) is waiting to be received."""
        return self.conn is not None and self.conn.poll(0)

    def receive(self, cmd: str, timeout_s: float = 300.0) -> Any:
        """The answer to the request ``cmd`` sent last, waiting at most ``timeout_s`` seconds."""
        if self.conn is None:
            raise SimulatorError(f"simulator process is closed; cannot receive {cmd!r}")
        deadline = time.monotonic() + timeout_s
        while not self.conn.poll(_POLL_S):
            self._check_alive(f"running {cmd!r}")
            if time.monotonic() > deadline:
                self._fail(f"did not answer {cmd!r} within {timeout_s:.0f} s (killed)", kill=True)
        try:
            status, result = self.conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            try:  # the connection drops when the process dies: report its exit code
                self.proc.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._fail(f"closed the connection while running {cmd!r} (killed)", kill=True)
            self._check_alive(f"running {cmd!r}")
        if status == "error":
            raise SimulatorError(f"simulator raised while running {cmd!r}:\n{result}")
        return result

    def _kill(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=5.0)
                return
            except subprocess.TimeoutExpired:
                continue

    def close(self, timeout_s: float = 30.0) -> None:
        """Ask the simulator to shut down, then terminate its process group, then remove the
        temporary folder (socket, default log) unless the simulator failed. Idempotent."""
        if self.conn is not None and self.alive:
            try:
                self.call("close", None, timeout_s)
            except SimulatorError:
                pass
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout_s if self.proc.poll() is None else 0)
            except subprocess.TimeoutExpired:
                pass
            self._kill()
            try:  # Kit helpers left in the group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None
        try:
            os.unlink(self.address)
        except OSError:
            pass
        if not self._failed:
            shutil.rmtree(self._dir, ignore_errors=True)
