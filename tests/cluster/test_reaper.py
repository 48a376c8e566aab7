"""A run's driver, killed or exiting, leaves no Ray process and no temporary folder behind."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlinf_isaac.cluster.reaper import session_processes

pytest.importorskip("ray")
if not Path("/proc").is_dir():
    pytest.skip("the reaper reads /proc", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
# a driver as a run has one: a local Ray instance, a worker holding a simulator process tree
# (SubprocVectorEnv: its logs under the run's temporary folder), then it waits
DRIVER = """
import os, sys
import ray
from rlinf_isaac.cluster.worker_group import session_dir, start_ray

start_ray(None, num_cpus=2)

@ray.remote(num_cpus=0)
class Worker:
    def start(self):
        from rlinf_isaac.envs.registry import make_env
        self.env = make_env("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", num_envs=2, num_workers=2,
                            image_size=16)
        return os.environ["RLINF_TMPDIR"]

w = Worker.options(runtime_env={"env_vars": {"RLINF_TMPDIR": os.environ["RLINF_TMPDIR"]}}).remote()
tmp = ray.get(w.start.remote())
print("ready", session_dir(), tmp, flush=True)
sys.stdin.readline()  # the test looks first, then lets it exit (or kills it)
"""


def _start():
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline().split()
    assert line[:1] == ["ready"], line
    session, tmp = line[1], line[2]
    assert session_processes(session) and any(Path(tmp).glob("rlinf_envs_*/worker*.log"))
    return proc, session, tmp


def _gone_within(session, tmp, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not session_processes(session) and not Path(tmp).exists():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.parametrize("ending", ["killed", "exits"])
def test_no_ray_process_or_temporary_folder_outlives_the_driver(ending):
    proc, session, tmp = _start()
    if ending == "killed":
        proc.send_signal(signal.SIGKILL)
    else:
        proc.stdin.write("\n")
        proc.stdin.flush()
    proc.wait(timeout=120)
    # Ray alone leaves its agents for about a minute after a kill -9 of the driver
    assert _gone_within(session, tmp, 15), (session_processes(session), Path(tmp).exists())
