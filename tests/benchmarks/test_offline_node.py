"""benchmarks/offline_node/: wheelhouse build (dry run), split and join, offline install, detached jobs,
the benchmark set's commands. Offline, CPU only, seconds."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "benchmarks" / "offline_node"
ENV = {**os.environ, "PYTHON": sys.executable, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

sys.path.insert(0, str(TOOLS))
import pick_start  # noqa: E402
import wheelhouse  # noqa: E402


def _bash(script, *args, cwd=ROOT, env=None, timeout=60):
    return subprocess.run(["bash", str(script), *args], cwd=cwd, capture_output=True, text=True,
                          env={**ENV, **(env or {})}, timeout=timeout)


def _random_wheelhouse(path: Path) -> Path:
    """Files with the names of a wheelhouse and random bytes, plus its manifest."""
    (path / "gl").mkdir(parents=True)
    for i, size in enumerate((70_000, 1, 0, 33_333)):
        (path / f"pkg{i}-1.0-py3-none-any.whl").write_bytes(os.urandom(size))
    (path / "gl" / "libegl1_1.0_amd64.deb").write_bytes(os.urandom(5_000))
    wheelhouse.main(["manifest", str(path), "--python", "3.12"])
    return path


def _files(path: Path) -> dict:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_split_and_gather_round_trip_is_byte_identical(tmp_path):
    """Parts of at most N bytes, uploaded one per command into the same folder (each upload
    replacing the last): gather keeps them, waits while some are missing, then joins a
    wheelhouse with the very same bytes; parts that were tampered with are refused."""
    wh = _random_wheelhouse(tmp_path / "wh")
    parts = wheelhouse.split(wh, tmp_path / "parts", part_bytes=20_000)
    assert len(parts) > 3 and all(p.stat().st_size <= 20_000 for p in parts)
    sums = next((tmp_path / "parts").glob("*.sha256"))
    spool = tmp_path / "spool"
    for i, part in enumerate(reversed(parts)):  # any order
        upload = tmp_path / "upload"
        shutil.rmtree(upload, ignore_errors=True)
        upload.mkdir()
        shutil.copy(part, upload)
        shutil.copy(sums, upload)
        state, wid, have, n = wheelhouse.gather(upload, spool)
        assert wid == wheelhouse.wheelhouse_id(wh) and n == len(parts)
        assert state == ("complete" if i == len(parts) - 1 else "waiting") and len(have) == i + 1
    joined = spool / wid / "wheelhouse"
    assert _files(joined) == _files(wh)
    assert wheelhouse.wheelhouse_id(joined) == wheelhouse.wheelhouse_id(wh) and not wheelhouse.verify(joined)
    # the same wheelhouse splits into the same bytes (fixed tar metadata)
    again = wheelhouse.split(wh, tmp_path / "again", part_bytes=20_000)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in parts]
    # a corrupted part does not match the .sha256 that came with it
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(sums, bad)
    (bad / parts[0].name).write_bytes(b"x" + parts[0].read_bytes()[1:])
    with pytest.raises(SystemExit, match="does not match"):
        wheelhouse.gather(bad, tmp_path / "spool2")


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory):
    """A wheel of a trivial package, built offline with this Python's setuptools."""
    tmp = tmp_path_factory.mktemp("tinywheel")
    src = tmp / "src"
    (src / "tinypkg").mkdir(parents=True)
    (src / "tinypkg" / "__init__.py").write_text("VALUE = 42\n")
    (src / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools"]\nbuild-backend = '
                                        '"setuptools.build_meta"\n[project]\nname = "tinypkg"\nversion = "0.1"\n')
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "--no-index", "-w", str(tmp / "wh"), str(src)], capture_output=True, text=True,
                         env=ENV, timeout=120)
    wheels = list((tmp / "wh").glob("tinypkg-0.1-*.whl"))
    if out.returncode or not wheels:
        pytest.skip(f"cannot build a wheel offline here: {out.stderr[-500:]}")
    return wheels[0]


def _imports(site: Path) -> str:
    out = subprocess.run([sys.executable, "-c", "import tinypkg; print(tinypkg.VALUE, tinypkg.__file__)"],
                         capture_output=True, text=True, env={**ENV, "PYTHONPATH": str(site)}, timeout=30)
    return out.stdout


def test_install_wheelhouse_installs_offline_and_is_idempotent(tmp_path, tiny_wheel):
    wh = tmp_path / "wh"
    wh.mkdir()
    shutil.copy(tiny_wheel, wh)
    site = tmp_path / "site"
    out = _bash(TOOLS / "install_wheelhouse.sh", "--wheelhouse", str(wh), "--target", str(site))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"export PYTHONPATH={site}" in out.stdout and "installed 1 wheels" in out.stdout
    assert _imports(site).startswith(f"42 {site}")
    assert (site / "env.sh").read_text().count("export PYTHONPATH=") == 1
    stamp = (site / ".wheelhouse-id").read_text()
    marker = site / "tinypkg" / "__init__.py"
    mtime = marker.stat().st_mtime_ns
    again = _bash(TOOLS / "install_wheelhouse.sh", "--wheelhouse", str(wh), "--target", str(site))
    assert again.returncode == 0 and "already installed" in again.stdout
    assert f"export PYTHONPATH={site}" in again.stdout
    assert marker.stat().st_mtime_ns == mtime and (site / ".wheelhouse-id").read_text() == stamp
    # no wheelhouse uploaded this time: the installed one is still reported
    gone = _bash(TOOLS / "install_wheelhouse.sh", "--wheelhouse", str(tmp_path / "none"), "--target", str(site))
    assert gone.returncode == 0 and f"export PYTHONPATH={site}" in gone.stdout


def _wheel_with_a_pth_import_line(out: Path) -> Path:
    """A wheel laid out as nvidia-cutlass-dsl's: its module ``hidden`` sits in a folder that only
    its .pth file's import line puts on sys.path."""
    import base64
    import hashlib
    import zipfile

    files = {
        "pthpkg/__init__.py": "",
        "pthpkg/extra/hidden.py": "VALUE = 7\n",
        "pthpkg.pth": "import sys, os, pthpkg; sys.path.insert(0, os.path.join(pthpkg.__path__[0], 'extra'))\n",
        "pthpkg-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: pthpkg\nVersion: 0.1\n",
        "pthpkg-0.1.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(text.encode())}" for name, text in files.items()]
    files["pthpkg-0.1.dist-info/RECORD"] = "\n".join(record + ["pthpkg-0.1.dist-info/RECORD,,"]) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    wheel = out / "pthpkg-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return wheel


def test_install_wheelhouse_puts_the_folders_of_pth_files_on_the_path(tmp_path):
    """Python reads .pth files only in site folders: env.sh names what they add, so a package
    found through one (FlashAttention 4's cutlass) imports from the target on PYTHONPATH."""
    wh = tmp_path / "wh"
    _wheel_with_a_pth_import_line(wh)
    site = tmp_path / "site"
    out = _bash(TOOLS / "install_wheelhouse.sh", "--wheelhouse", str(wh), "--target", str(site))
    assert out.returncode == 0, out.stdout + out.stderr
    extra = site / "pthpkg" / "extra"
    assert f"export PYTHONPATH={site}:{extra}" in out.stdout
    probe = f"{sys.executable} -c 'import hidden; print(hidden.VALUE)'"
    plain = subprocess.run(["bash", "-c", f"PYTHONPATH={site} {probe}"], capture_output=True, text=True, env=ENV,
                           timeout=30)
    assert plain.returncode != 0 and "No module named 'hidden'" in plain.stderr  # what the export fixes
    loaded = subprocess.run(["bash", "-c", f"source {site}/env.sh && {probe}"],
                            capture_output=True, text=True, env=ENV, timeout=30)
    assert loaded.stdout.strip() == "7", loaded.stderr
    assert wheelhouse.pth_paths(tmp_path / "nothing-here") == []


def test_install_wheelhouse_joins_parts_uploaded_over_several_commands(tmp_path, tiny_wheel):
    wh = tmp_path / "wh"
    wh.mkdir()
    shutil.copy(tiny_wheel, wh)
    (wh / "padding-0.0-py3-none-any.whl.txt").write_bytes(os.urandom(30_000))  # not installed, makes parts
    wheelhouse.main(["manifest", str(wh), "--python", "3.12"])
    parts = wheelhouse.split(wh, tmp_path / "parts", part_bytes=10_000)
    assert len(parts) >= 3
    site, upload = tmp_path / "site", tmp_path / "upload"
    for i, part in enumerate(parts):
        shutil.rmtree(upload, ignore_errors=True)
        upload.mkdir()
        shutil.copy(part, upload)
        out = _bash(TOOLS / "install_wheelhouse.sh", "--wheelhouse", str(upload), "--target", str(site))
        if i < len(parts) - 1:
            assert out.returncode == 3 and f"still missing {i + 2}" in out.stdout, out.stdout + out.stderr
            assert not (site / "tinypkg").exists()
    assert out.returncode == 0 and "all parts are here" in out.stdout, out.stdout + out.stderr
    assert _imports(site).startswith("42 ")
    assert not Path(f"{site}.parts").exists()  # joined and installed: the parts are gone
    again = _bash(TOOLS / "install_wheelhouse.sh", "--wheelhouse", str(upload), "--target", str(site))
    assert again.returncode == 0 and "already installed" in again.stdout


def test_build_wheelhouse_dry_run_lists_pyproject_requirements_minus_excludes():
    out = _bash(TOOLS / "build_wheelhouse.sh", "--dry-run", "--python", "3.12", "--with-gl", "--split-mib", "40")
    assert out.returncode == 0, out.stdout + out.stderr
    listed = re.findall(r"^  ([A-Za-z0-9_.-]+)[=<>]", out.stdout, flags=re.M)
    assert {"mujoco", "diffusers", "hydra-core", "omegaconf", "ray"} <= set(listed)
    assert not {"torch", "numpy", "transformers"} & set(listed)  # the default excludes
    assert "excluded (expected on the node): torch" in out.stdout
    assert "manylinux_2_17_x86_64" in out.stdout and "manylinux2014_x86_64" in out.stdout
    assert "libegl1" in out.stdout and "parts of at most 40 MiB" in out.stdout
    # --exclude replaces the default list ('default' keeps it); extras come from pyproject
    out = _bash(TOOLS / "build_wheelhouse.sh", "--dry-run", "--exclude", "default,ray,mujoco", "--extras", "dev")
    listed = set(re.findall(r"^  ([A-Za-z0-9_.-]+)[=<>]", out.stdout, flags=re.M))
    assert out.returncode == 0 and "pytest" in listed and not {"ray", "mujoco", "torch"} & listed
    out = _bash(TOOLS / "build_wheelhouse.sh", "--dry-run", "--exclude", "none")
    assert {"torch", "numpy", "ray"} <= set(re.findall(r"^  ([A-Za-z0-9_.-]+)[=<>]", out.stdout, flags=re.M))


def test_build_wheelhouse_for_the_isaaclab_simulator_takes_the_lanes_pins():
    out = _bash(TOOLS / "build_wheelhouse.sh", "--dry-run", "--lane", "isaaclab", "--exclude", "default,scipy")
    assert out.returncode == 0, out.stdout + out.stderr
    resolved, nodeps = out.stdout.split("taken without their dependencies:")
    lane = ROOT / "scripts" / "isaaclab_lane"
    pins = [ln for ln in (lane / "requirements-nodeps.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert re.findall(r"^  (\S+)$", nodeps.split("excluded")[0], flags=re.M) == pins  # exactly the lane's pins
    listed = set(re.findall(r"^  ([A-Za-z0-9_.-]+)==", resolved, flags=re.M))
    assert {"gymnasium", "hydra-core", "prettytable"} <= listed and not {"scipy", "numpy", "ray"} & listed
    assert "/.wheelhouse-isaaclab" in out.stdout
    out = _bash(TOOLS / "build_wheelhouse.sh", "--dry-run", "--lane", "gym")
    assert out.returncode == 2 and "unknown --lane gym" in out.stderr


def test_build_wheelhouse_never_empties_a_folder_that_is_not_a_wheelhouse(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    out = _bash(TOOLS / "build_wheelhouse.sh", "--out", str(tmp_path))  # refused before any network use
    assert out.returncode == 2 and "not a wheelhouse" in out.stderr
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_node_packages_and_closure_selection(tmp_path):
    """--node-packages excludes what the node lists; the closure keeps what a kept package
    needs and drops what only an excluded one needs."""
    node = tmp_path / "freeze.txt"
    node.write_text("Ray==2.0\nfoo_bar==1\n# comment\n")
    assert {"ray", "foo-bar", "torch"} <= set(wheelhouse.expand_excludes("default", str(node)))
    assert wheelhouse.expand_excludes("none") == []

    def item(name, requires=()):
        return {"metadata": {"name": name, "version": "1.0", "requires_dist": list(requires)}}

    report = {"environment": {}, "install": [
        item("app", ["shared", "torch>=2", "old; python_version < '3.12'", "plot; extra == 'viz'", "nvidia-cublas"]),
        item("torch", ["only-torch", "shared", "nvidia-cublas"]), item("only-torch"), item("shared"), item("old"),
        item("plot"), item("nvidia-cublas")]}
    pats = wheelhouse.expand_excludes("torch,nvidia-*")
    chosen = [i["metadata"]["name"] for i in wheelhouse.select(report, ["app"], pats, "3.12", "manylinux_2_28_x86_64")]
    assert chosen == ["app", "shared"]
    chosen = [i["metadata"]["name"] for i in wheelhouse.select(report, ["app[viz]"], pats, "3.11", "manylinux_2_28_x86_64")]
    assert chosen == ["app", "old", "plot", "shared"]


def test_detached_job_runs_across_commands(tmp_path):
    """detached.sh: start launches a detached job from a copy of the repository (without .venv),
    status reports it running, a second start is refused, collect waits for it, shows its
    progress and copies its $OUT, or packs it into one archive in parts of bounded size."""
    repo = tmp_path / "repo"
    shutil.copytree(TOOLS, repo / "benchmarks" / "offline_node")
    (repo / ".venv").mkdir()
    (repo / "job.sh").write_text('mkdir -p "$WORK/run1"; for i in 1 2 3; do echo "step $i/3" >> "$WORK/run1/console.log";'
                                 ' sleep 2; done; echo "$GREETING" > "$OUT/result.txt"\n')
    env = {"DETACHED_DIR": str(tmp_path / "bg"), "WATCH_S": "1", "GREETING": "hello",
           "SITE": str(tmp_path / "site"), "WHEELHOUSE": str(tmp_path / "no_wheelhouse")}

    def call(*args, **extra):
        return _bash("benchmarks/offline_node/detached.sh", *args, cwd=repo, env={**env, **extra})

    out = call("start", "job.sh")
    assert out.returncode == 0 and "started bash job.sh" in out.stdout, out.stdout + out.stderr
    copy = tmp_path / "bg" / "repo"
    assert not (copy / ".venv").exists() and (copy / "job.sh").exists()
    status = call("status")
    assert status.returncode == 0 and "job running" in status.stdout
    assert "a job is already running" in call("start", "job.sh").stdout
    done = call("collect", OUT=str(tmp_path / "out"), WATCH_S="30")
    assert done.returncode == 0 and "job finished with exit code 0" in done.stdout, done.stdout
    assert "run1: step 3/3" in done.stdout
    assert (tmp_path / "out" / "result.txt").read_text().strip() == "hello"
    assert (tmp_path / "out" / "job.log").exists()
    assert call("status").returncode == 1
    (tmp_path / "bg" / "out" / "big.bin").write_bytes(os.urandom(2_500_000))  # 2.4 MiB: three 1 MiB parts
    packed = call("collect", OUT=str(tmp_path / "packed"), COLLECT_PART_MIB="1")
    parts = sorted((tmp_path / "packed").glob("results.tar.part*"))
    assert packed.returncode == 0 and [p.name for p in parts] == [f"results.tar.part0{i}" for i in range(3)]
    assert max(p.stat().st_size for p in parts) <= 2**20 and not (tmp_path / "packed" / "result.txt").exists()
    joined = tmp_path / "joined"
    joined.mkdir()
    subprocess.run(["tar", "-x", "-C", joined], input=b"".join(p.read_bytes() for p in parts), check=True)
    assert (joined / "result.txt").read_text().strip() == "hello"
    assert (joined / "big.bin").read_bytes() == (tmp_path / "bg" / "out" / "big.bin").read_bytes()


def test_detached_watch_leaves_a_snapshot_to_resume_from(tmp_path):
    """detached.sh watch with OUT set: the job's results so far come back as one archive in parts,
    holding each run's console.log, tensorboard/ and newest checkpoint (not the older ones), so a
    node lost mid-job keeps what the last watch saw."""
    repo = tmp_path / "repo"
    shutil.copytree(TOOLS, repo / "benchmarks" / "offline_node")
    (repo / "job.sh").write_text(
        'r="$WORK/grpo"; mkdir -p "$r/tensorboard" "$r/checkpoints/global_step_10" "$r/checkpoints/global_step_20"\n'
        'echo "step 20" > "$r/console.log"; echo events > "$r/tensorboard/events.out"\n'
        'head -c 1500000 /dev/urandom > "$r/checkpoints/global_step_20/model.safetensors"\n'
        'echo old > "$r/checkpoints/global_step_10/model.safetensors"; echo global_step_20 > "$r/checkpoints/latest"\n'
        'echo partial > "$OUT/summary.txt"; touch "$WORK/ready"; sleep 30\n')
    env = {"DETACHED_DIR": str(tmp_path / "bg"), "WATCH_S": "1", "SNAPSHOT_PART_MIB": "1",
           "SITE": str(tmp_path / "site"), "WHEELHOUSE": str(tmp_path / "no_wheelhouse")}

    def call(*args, **extra):
        return _bash("benchmarks/offline_node/detached.sh", *args, cwd=repo, env={**env, **extra})

    assert call("start", "job.sh").returncode == 0
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "bg" / "work" / "ready").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        seen = call("watch", OUT=str(tmp_path / "out"))
    finally:
        call("stop")
    parts = sorted((tmp_path / "out").glob("snapshot.tar.part*"))
    assert seen.returncode == 0 and [p.name for p in parts] == ["snapshot.tar.part00", "snapshot.tar.part01"], seen.stdout
    assert max(p.stat().st_size for p in parts) <= 2**20
    joined = tmp_path / "joined"
    joined.mkdir()
    subprocess.run(["tar", "-x", "-C", joined], input=b"".join(p.read_bytes() for p in parts), check=True)
    run, original = joined / "work" / "grpo", tmp_path / "bg" / "work" / "grpo"
    assert (run / "console.log").read_text() == "step 20\n" and (run / "tensorboard" / "events.out").exists()
    assert (run / "checkpoints" / "latest").read_text() == "global_step_20\n"
    ckpt = "checkpoints/global_step_20/model.safetensors"
    assert (run / ckpt).read_bytes() == (original / ckpt).read_bytes()
    assert not (run / "checkpoints" / "global_step_10").exists()
    assert (joined / "out" / "summary.txt").read_text() == "partial\n" and (joined / "job.log").exists()


def test_benchmark_set_commands_use_options_the_scripts_have():
    """Every command of both sets names a benchmark script that exists and only options its
    argparse defines (before `--`, after which come Hydra overrides)."""
    for s, least in (("smoke", 6), ("full", 16), ("isaaclab", 4), ("levers", 4)):
        out = _bash(TOOLS / "run_benchmarks.sh", "--list", "--set", s, env={"NGPU": "8"})
        assert out.returncode == 0, out.stderr
        lines = [ln for ln in out.stdout.splitlines() if " benchmarks/" in ln]
        assert len(lines) >= least
        for line in lines:
            name, cmd = line.split(": ", 1)
            script = ROOT / cmd.split()[1]
            assert script.is_file(), line
            source = script.read_text()
            flags = re.findall(r"(--[a-z][a-z-]*)", cmd.split(" -- ")[0])
            for flag in flags:
                assert f'"{flag}"' in source, f"{name}: {script.name} has no {flag}"
            if "pipeline.py" in cmd:
                cluster = re.search(r"cluster=(\S+)", cmd)[1]
                assert (ROOT / "config" / "cluster" / f"{cluster}.yaml").is_file()
    out = _bash(TOOLS / "run_benchmarks.sh", "--list", "--only", "env,pipeline")
    assert [ln.split(":")[0] for ln in out.stdout.splitlines()] == ["env", "pipeline"]


def test_benchmark_results_from_both_trees(tmp_path):
    """--baseline-tree: each benchmark runs from the current tree and from the baseline tree,
    into NAME.json and NAME.base.json; a script without --json has its last JSON line kept."""
    tree = tmp_path / "tree"
    shutil.copytree(TOOLS, tree / "benchmarks" / "offline_node")
    fake = ('import json, os, sys\nargs = sys.argv[1:]\nres = {"cwd": os.getcwd(), "args": args}\n'
            'if "--json" in args:\n    json.dump(res, open(args[args.index("--json") + 1], "w"))\n'
            'print("table"); print(json.dumps(res))\n')
    for name in ("env_throughput", "policy_throughput", "predict_latency", "weight_sync", "ray_transfer", "pipeline"):
        (tree / "benchmarks" / f"{name}.py").write_text(fake.replace("--json", "--json" if name != "env_throughput"
                                                                      else "--no-such-option"))
    base = tmp_path / "base"
    shutil.copytree(tree / "benchmarks", base / "benchmarks")
    (base / "benchmarks" / "ray_transfer.py").unlink()  # an older tree without this benchmark
    out = _bash(tree / "benchmarks" / "offline_node" / "run_benchmarks.sh", "--out", str(tmp_path / "out"),
                "--baseline-tree", str(base), "--device", "cpu", cwd=tree,
                env={"SITE": str(tmp_path / "site"), "WHEELHOUSE": str(tmp_path / "none"), "NGPU": "0"})
    assert out.returncode == 0, out.stdout + out.stderr
    res = tmp_path / "out"
    assert json.loads((res / "pipeline.json").read_text())["cwd"] == str(tree)
    assert json.loads((res / "pipeline.base.json").read_text())["cwd"] == str(base)
    assert "--json" not in json.loads((res / "env.json").read_text())["args"]  # from its last output line
    assert (res / "env.base.json").is_file() and not (res / "ray_transfer.base.json").exists()
    rows = [json.loads(ln) for ln in (res / "summary.jsonl").read_text().splitlines()]
    assert {(r["name"], r["tree"]) for r in rows if r["rc"] == 0} >= {("pipeline", "current"), ("pipeline", "baseline")}
    assert any(r["name"] == "ray_transfer" and r.get("skipped") for r in rows)
    assert (res / "node.txt").is_file()


def test_pick_start_prefers_the_best_inside_the_range_else_the_nearest():
    rows = [{"c": "a", "success_rate": 0.1}, {"c": "b", "success_rate": 0.3},
            {"c": "d", "success_rate": 0.5}, {"c": "e", "success_rate": 0.9}]
    assert pick_start.pick(rows, 0.2, 0.7)["c"] == "d"  # inside: the most successful
    assert pick_start.pick([rows[0], rows[3]], 0.2, 0.7)["c"] == "a"  # 0.1 from the range vs 0.2
    assert pick_start.pick([rows[3]], 0.2, 0.7)["c"] == "e" and pick_start.pick([], 0.2, 0.7) is None


def test_sft_then_rl_records_sweeps_and_picks_from_every_variant(tmp_path):
    """sft_then_rl.sh on the two-cube task, tiny: the expert records the demos once, both SFT
    variants train on them (TASK and DEMOS substituted), every checkpoint is evaluated, the
    pick is the evaluated checkpoint nearest [PICK_LOW, PICK_HIGH], packed with its config, and
    the RL stage evaluates it (a base run) without sweeping again."""
    out, work = tmp_path / "out", tmp_path / "work"
    env = {"OUT": str(out), "WORK": str(work), "TASK": "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0",
           "DEMO_EPISODES": "2", "DEMO_ENVS": "2", "MAX_EPISODE_STEPS": "40", "SWEEP_EVAL_EPISODES": "1",
           "EVAL_ENVS": "1", "WHEELHOUSE": str(tmp_path / "none"), "ISAACLAB_WHEELHOUSE": str(tmp_path / "none"),
           "SITE": str(tmp_path / "site"), "ISAACLAB_SITE": str(tmp_path / "isite"), "MUJOCO_GL": "osmesa",
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "VARIANTS": "a:TASK:DEMOS:2:INIT_FROM=checkpoints/gr00t_tiny_sft_stack2,SAVE_EVERY=1,BATCH_SIZE=4 "
                       "b:TASK:DEMOS:2:INIT_FROM=checkpoints/gr00t_tiny_sft_stack2,SAVE_EVERY=1,BATCH_SIZE=4,LR=1e-5",
           "RUNS": "base:mujoco_stack2_ppo_gr00t_tiny", "EVAL_EPISODES": "1", "SIM_PROCS": "0", "EVAL_PROCS": "0",
           "SFT_SECONDS": "900"}
    res = _bash(TOOLS / "sft_then_rl.sh", env=env, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    demos = json.loads((out / "demos.json").read_text())
    assert demos["episodes"] == 2
    assert json.loads((work / "demos" / "meta" / "info.json").read_text())["total_episodes"] == 2
    rows = [json.loads(line) for line in (out / "sweep" / "sweep.jsonl").read_text().splitlines()]
    assert sorted(Path(r["checkpoint"]).relative_to(work / "sweep").as_posix() for r in rows) == [
        f"{v}/sft/checkpoint-{s}" for v in "ab" for s in (1, 2)]
    assert all(list(r["stages"]) == ["cube_red_on_cube_blue"] for r in rows)  # evaluated with --stages
    # SFT_SECONDS is every variant's training-time budget; the shuffling window holds the whole
    # dataset (its videos decoded once, not once per epoch)
    sft_cfgs = [json.loads((Path(r["checkpoint"]) / "sft_config.json").read_text()) for r in rows]
    assert all(c["max_seconds"] == 900 and c["window_episodes"] == 2 for c in sft_cfgs)
    pick = json.loads((out / "pick.json").read_text())
    distance = [max(0.2 - r["success_rate"], r["success_rate"] - 0.7, 0) for r in rows]
    assert pick in rows and max(0.2 - pick["success_rate"], pick["success_rate"] - 0.7, 0) == min(distance)
    names = subprocess.run(["tar", "-tzf", out / "sft_pick.tgz"], capture_output=True, text=True).stdout.split()
    ckpt = Path(pick["checkpoint"]).name
    assert f"{ckpt}/config.json" in names and f"{ckpt}/trainer_state.pt" not in names
    base = subprocess.run(["tar", "-xzOf", out / "base.tgz", "eval.json"], capture_output=True, text=True).stdout
    assert json.loads(base)["episodes"] == 1
    assert not (work / "rl" / "sweep").exists()  # the variants were trained once, not again beside RL
