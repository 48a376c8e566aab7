"""The simulator process of the Isaac Lab backend: serves reset / chunk requests of one env.

Started by :class:`rlinf_isaac.envs.isaaclab.process.SimulatorProcess` (any interpreter: the
env worker's, or Isaac Lab's own ``python.sh``), which loads this file by path, not as part of
the package: importing ``rlinf_isaac`` imports torch, and Isaac Sim 5 (Isaac Lab 2.3) must
start its app before torch is imported. Only the standard library is imported at top level;
the builder runs first, then the package is imported. The simulator watches its parent and
exits if the parent dies (no orphans).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Listener
from typing import Any, Callable

__all__ = ["AUTHKEY_ENV", "load_callable", "main"]

AUTHKEY_ENV = "RLINF_ISAAC_SIM_AUTHKEY"  # the connection key, handed over by the client


def load_callable(spec: str) -> Callable:
    """``"package.module:function"`` -> the function (errors name the spec)."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"builder must look like 'package.module:function', got {spec!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load builder {spec!r}: {exc}") from exc


def _watch_parent(parent_pid: int) -> None:
    """Exit when the env worker dies, so the simulator is never orphaned."""
    try:  # Linux: also ask the kernel to kill us with the parent
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass

    def loop():
        while True:
            if os.getppid() != parent_pid:
                os._exit(3)
            time.sleep(1.0)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def _prelaunch_app(app_kwargs: dict) -> Any:
    """Isaac Lab < 3: start Isaac Sim's AppLauncher before anything imports torch."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("isaaclab")
    except importlib.metadata.PackageNotFoundError:
        return None  # the builder reports the missing package
    if int(version.split(".")[0]) >= 3:
        return None  # 3.0: launch_simulation(env_cfg) starts what the config needs
    from isaaclab.app import AppLauncher

    return AppLauncher(**app_kwargs).app


def obs_transport(asked: str, sim_device: str, client_torch: str | None) -> tuple[bool, str]:
    """Whether observations go by CUDA IPC handle, and the words for the start-up line.

    ``asked``: "cuda_ipc" (the env worker can open handles) or "pipe"; IPC needs the simulator on
    a GPU and the same torch build on both ends (the handle format is torch's)."""
    if asked != "cuda_ipc":
        return False, "observations through a pipe"
    if not sim_device.startswith("cuda"):
        return False, f"observations through a pipe (simulator on {sim_device})"
    import torch

    if client_torch != torch.__version__:
        return False, (f"observations through a pipe (torch {torch.__version__} here, {client_torch} in the env "
                       f"worker: CUDA IPC needs the same build)")
    return True, "observations by CUDA IPC"


class _Server:
    def __init__(self, conn):
        self.conn = conn
        self.stepper = None
        self.closer: Callable | None = None
        self.ipc = False  # observations as CUDA IPC handles (see obs_transport)

    def init(self, msg: dict) -> dict:
        kwargs = dict(msg["builder_kwargs"])
        if msg.get("prelaunch_app") is not None:
            app = _prelaunch_app(msg["prelaunch_app"])
            if app is not None:
                kwargs["app"] = app
        built = load_callable(msg["builder"])(**kwargs)
        # torch is imported only now, after the builder has launched the simulator app.
        from rlinf_isaac.envs.isaaclab.sim.stepper import ChunkStepper, StepperCfg

        stepper_kwargs = {**msg["stepper"], **built.get("stepper", {})}
        for key in ("image_size", "camera_terms", "state_terms"):
            if key in stepper_kwargs:
                stepper_kwargs[key] = tuple(stepper_kwargs[key])
        self.ipc, transport = obs_transport(msg.get("obs_transport", "pipe"), str(built["env"].device),
                                            msg.get("torch_version"))
        stepper_kwargs["obs_on_sim_device"] = self.ipc
        self.stepper = ChunkStepper(built["env"], StepperCfg(**stepper_kwargs), refresh=built.get("refresh"))
        self.closer = built.get("close")
        return {**built.get("info", {}), "num_envs": self.stepper.B, "quat_order": self.stepper.cfg.quat_order,
                "obs_transport": transport}

    def handle(self, cmd: str, payload: Any) -> Any:
        from rlinf_isaac.envs.isaaclab.wire import from_wire

        if cmd == "init":
            return self.init(payload)
        if cmd == "reset":
            return self._reply(self.stepper.reset(**from_wire(payload)))
        if cmd == "chunk_step":  # {"actions": float [B, C, A], "final_obs": bool}
            return self._reply(self.stepper.chunk_step(**from_wire(payload)))
        if cmd == "privileged":
            return self.stepper.privileged_state()
        if cmd == "ping":
            return "pong"
        raise ValueError(f"unknown simulator command {cmd!r}")

    def _reply(self, result: Any) -> Any:
        from rlinf_isaac.envs.isaaclab.wire import to_wire

        if self.ipc:  # free the memory of earlier replies that the env worker has copied
            import torch

            torch.cuda.ipc_collect()
        return to_wire(result, ipc=self.ipc)

    def close(self) -> None:
        env = getattr(self.stepper, "env", None)
        if env is not None and hasattr(env, "close"):
            env.close()
        if self.closer is not None:
            self.closer()


def main(argv: list[str] | None = None) -> int:
    """Simulator process entry point: serve requests until "close" or EOF."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--parent-pid", type=int, required=True)
    args = p.parse_args(argv)
    _watch_parent(args.parent_pid)
    authkey = bytes.fromhex(os.environ.pop(AUTHKEY_ENV))
    with Listener(args.address, family="AF_UNIX", authkey=authkey) as listener:
        conn = listener.accept()
    server = _Server(conn)
    while True:
        try:
            cmd, payload = conn.recv()
        except EOFError:
            break
        if cmd == "close":
            conn.send(("ok", None))  # answer first: closing Kit may end the process
            server.close()
            break
        try:
            conn.send(("ok", server.handle(cmd, payload)))
        except Exception:
            conn.send(("error", traceback.format_exc()))
            if cmd == "init":
                return 1
    print("[rlinf_isaac simulator] closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
