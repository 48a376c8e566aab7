"""Wheelhouse helper for GPU nodes without a package index (standard library only, Python >= 3.8).

Used by build_wheelhouse.sh (on a machine with PyPI) and install_wheelhouse.sh (on the node);
each subcommand can also be run by hand:

    requirements  the project's requirements (pyproject.toml) minus the excluded packages
    platforms     the pip --platform tags a manylinux tag stands for (pip matches tags exactly)
    select        the dependency closure to download, from a `pip install --dry-run --report`
    trim          drop members from wheels and recompress large ones (repack_wheel.py)
    manifest      write WHEELHOUSE/wheelhouse.json: what was built for what, with sha256 of each file
    id            verify a wheelhouse against its manifest and print its id
    split         cut a wheelhouse into parts of at most N MiB, one per transfer
    gather        collect parts that arrived (one or several per command) and reassemble them
    check-node    after installing: which requirements the node still lacks or has in another version
    pth-paths     the folders that an installed target's .pth files add to sys.path

A wheelhouse is a folder of wheels, optionally gl/*.deb (GL loader packages) and wheelhouse.json.
Its id is the start of the sha256 of wheelhouse.json (of the sorted file names and sizes when
there is no manifest); install_wheelhouse.sh stamps the target folder with it.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MANIFEST = "wheelhouse.json"
MIB = 1024 * 1024

# Packages a typical GPU node's Python already has: a PyTorch image (torch with its CUDA
# libraries and Triton) with Hugging Face transformers and the usual scientific stack. They are
# left out of the wheelhouse together with whatever only they need. Installing them again
# would shadow the node's own builds (PYTHONPATH comes first). `--exclude default,NAME` adds
# to this list, `--exclude NAME,...` replaces it, `--exclude none` takes everything, and
# `--node-packages FILE` (the node's `python3 -m pip list --format=freeze`) adds exactly what
# the node has.
DEFAULT_EXCLUDE = (
    "torch", "torchvision", "torchaudio", "triton", "nvidia-*", "cuda-*",
    "numpy", "transformers", "tokenizers", "safetensors", "huggingface-hub", "hf-xet",
    "pillow", "tqdm", "pyyaml", "requests", "urllib3", "certifi", "idna", "charset-normalizer",
    "packaging", "filelock", "fsspec", "typing-extensions", "regex", "jinja2", "markupsafe",
    "sympy", "mpmath", "networkx", "setuptools", "protobuf", "tensorboard",
)

# Parts of Ray the project never imports (Java jars, RLlib, Data, Serve, Tune, Train, LLM, AIR,
# the dashboard's web client, the runtime-env agent's vendored aiohttp): --trim-ray drops them.
RAY_UNUSED = tuple(f"ray/{p}/" for p in (
    "jars", "rllib", "data", "serve", "tune", "train", "llm", "air", "dashboard/client/build",
    "_private/runtime_env/agent/thirdparty_files"))

PART_RE = re.compile(r"^wheelhouse-(?P<id>[0-9a-f]{16})\.part(?P<k>\d+)of(?P<n>\d+)$")


def norm(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _packaging():
    """``packaging`` (pip's vendored copy first: every Python with pip has it)."""
    try:
        from pip._vendor.packaging import markers, requirements, version  # type: ignore
    except ImportError:  # pragma: no cover - pip without its vendored copy
        from packaging import markers, requirements, version  # type: ignore
    return markers, requirements, version


# ----------------------------------------------------------------------------- requirements

def load_pyproject(path: Path) -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # pragma: no cover - older Pythons
        try:
            import tomli as tomllib  # type: ignore
        except ImportError:
            from pip._vendor import tomli as tomllib  # type: ignore
    with open(path, "rb") as f:
        return tomllib.load(f)


def expand_excludes(spec: str | None, node_packages: str | None = None) -> list[str]:
    """The exclude patterns: ``spec`` is a comma list where ``default`` stands for
    DEFAULT_EXCLUDE and ``none`` (or an empty string) for nothing; None means the default."""
    pats: list[str] = []
    for item in (DEFAULT_EXCLUDE if spec is None else [s.strip() for s in spec.split(",")]):
        if item == "default":
            pats += DEFAULT_EXCLUDE
        elif item and item != "none":
            pats.append(item)
    if node_packages:
        for line in Path(node_packages).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            name = re.split(r"[\s=<>!~;@\[]", line, maxsplit=1)[0]
            if name and not set(name) <= set("-"):  # `pip list` header rule lines
                pats.append(name)
    return sorted({norm(p) for p in pats})


def excluded(name: str, patterns: list[str]) -> bool:
    n = norm(name)
    return any(fnmatch.fnmatchcase(n, p) for p in patterns)


def target_env(python: str, platform: str, base: dict | None = None) -> dict:
    """Marker environment of the node: ``python`` as X.Y, machine from the platform tag."""
    env = dict(base or {})
    machine = "aarch64" if "aarch64" in platform else "x86_64" if "x86_64" in platform else env.get(
        "platform_machine", "x86_64")
    env.update(python_version=python, python_full_version=f"{python}.0", implementation_name="cpython",
               platform_python_implementation="CPython", sys_platform="linux", platform_system="Linux",
               os_name="posix", platform_machine=machine)
    return env


def _marker_ok(marker, env: dict, extras=("",)) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": e}) for e in extras)


def project_requirements(pyproject: Path, extras: list[str], python: str, platform: str) -> list[str]:
    """``[project].dependencies`` plus the named extras, markers evaluated for the node."""
    _, requirements, _ = _packaging()
    project = load_pyproject(pyproject)["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for e in extras:
        if e not in optional:
            raise SystemExit(f"unknown extra {e!r}: {pyproject} has {sorted(optional)}")
        reqs += optional[e]
    env = target_env(python, platform)
    return [r for r in reqs if _marker_ok(requirements.Requirement(r).marker, env)]


def cmd_requirements(a: argparse.Namespace) -> None:
    _, requirements, _ = _packaging()
    pats = expand_excludes(a.exclude, a.node_packages)
    if a.from_file:
        env = target_env(a.python, a.platform)
        reqs = [r for r in _read_lines(a.from_file) if _marker_ok(requirements.Requirement(r).marker, env)]
    else:
        reqs = project_requirements(Path(a.pyproject), _split(a.extras), a.python, a.platform)
    for r in reqs:
        name = requirements.Requirement(r).name
        if excluded(name, pats):
            if a.show_excluded:
                print(f"# excluded (expected on the node): {r}")
        else:
            print(r)


def _split(s: str | None) -> list[str]:
    return [x.strip() for x in (s or "").split(",") if x.strip()]


# ----------------------------------------------------------------------------- platforms

def platform_tags(platform: str) -> list[str]:
    """All tags a wheel installable on ``platform`` may have. pip's --platform matches exactly, so
    manylinux_2_28_x86_64 becomes manylinux_2_28 ... manylinux_2_5 plus the legacy aliases
    (manylinux2014 = 2_17, manylinux2010 = 2_12, manylinux1 = 2_5)."""
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", platform)
    if not m:
        return [platform]
    major, minor, arch = int(m[1]), int(m[2]), m[3]
    tags = [f"manylinux_{major}_{n}_{arch}" for n in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    for n, alias in legacy.items():
        if major == 2 and minor >= n and (arch in ("x86_64", "i686") or alias == "manylinux2014"):
            tags.append(f"{alias}_{arch}")
    return tags


def cmd_platforms(a: argparse.Namespace) -> None:
    print("\n".join(platform_tags(a.platform)))


# ----------------------------------------------------------------------------- select

def select(report: dict, roots: list[str], patterns: list[str], python: str, platform: str) -> list[dict]:
    """The packages of a pip resolution report reachable from ``roots`` without passing
    through an excluded package: what the node lacks. One entry per package (pip's resolver
    picks one version of each)."""
    _, requirements, _ = _packaging()
    items = {norm(i["metadata"]["name"]): i for i in report["install"]}
    env = target_env(python, platform, report.get("environment"))
    keep: dict[str, dict] = {}
    seen: set[tuple[str, frozenset]] = set()
    todo = [(requirements.Requirement(r), None) for r in roots]
    while todo:
        req, parent = todo.pop()
        name = norm(req.name)
        if excluded(name, patterns):
            continue
        item = items.get(name)
        if item is None:
            print(f"warning: {req} (needed by {parent or 'the project'}) is not in the resolution: "
                  "its marker was false for the resolving Python", file=sys.stderr)
            continue
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        keep[name] = item
        extras = ("",) + tuple(req.extras)
        for dep in item["metadata"].get("requires_dist", []) or []:
            d = requirements.Requirement(dep)
            if _marker_ok(d.marker, env, extras):
                todo.append((d, item["metadata"]["name"]))
    return [keep[n] for n in sorted(keep)]


def cmd_select(a: argparse.Namespace) -> None:
    _, requirements, _ = _packaging()
    report = json.loads(Path(a.report).read_text())
    pats = expand_excludes(a.exclude, a.node_packages)
    roots = [r for r in Path(a.roots).read_text().split("\n") if r.strip() and not r.startswith("#")]
    chosen = select(report, roots, pats, a.python, a.platform)
    for item in chosen:
        md = item["metadata"]
        url = item.get("download_info", {}).get("url", "")
        print(f"{md['name']}=={md['version']}" + (f"  # {url}" if a.urls else ""))


# ----------------------------------------------------------------------------- trim

def cmd_trim(a: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    import zipfile

    from repack_wheel import repack

    drop = tuple(_split(a.drop)) + (RAY_UNUSED if a.trim_ray else ())
    for whl in sorted(Path(a.wheelhouse).glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            hit = drop and any(n.startswith(drop) for n in z.namelist())
        big = a.repack_over_mib > 0 and whl.stat().st_size > a.repack_over_mib * MIB
        if hit or big:
            old, new = repack(str(whl), drop if hit else ())
            print(f"trimmed {whl.name}: {old / MIB:.1f} -> {new / MIB:.1f} MiB")


# ----------------------------------------------------------------------------- manifest, id

def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def payload_files(wh: Path) -> list[Path]:
    return sorted(p for p in [*wh.glob("*.whl"), *wh.glob("gl/*.deb")] if p.is_file())


def cmd_manifest(a: argparse.Namespace) -> None:
    wh = Path(a.wheelhouse)
    files = {str(p.relative_to(wh)): {"sha256": sha256(p), "bytes": p.stat().st_size} for p in payload_files(wh)}
    info = {"format": 1, "python": a.python, "platform": a.platform, "platform_tags": platform_tags(a.platform),
            "requirements": _read_lines(a.requirements), "excluded": expand_excludes(a.exclude, a.node_packages),
            "extras": _split(a.extras), "built_from_source": _split(a.built_from_source), "files": files}
    (wh / MANIFEST).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    total = sum(f["bytes"] for f in files.values())
    print(f"{wh}: {len(files)} files, {total / MIB:.1f} MiB, id {wheelhouse_id(wh)}")


def _read_lines(path: str | None) -> list[str]:
    if not path:
        return []
    return [s.strip() for s in Path(path).read_text().splitlines() if s.strip() and not s.startswith("#")]


def wheelhouse_id(wh: Path) -> str:
    m = wh / MANIFEST
    if m.is_file():
        return hashlib.sha256(m.read_bytes()).hexdigest()[:16]
    listing = "\n".join(f"{p.relative_to(wh)} {p.stat().st_size}" for p in payload_files(wh))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def verify(wh: Path) -> list[str]:
    """Problems of ``wh`` against its manifest (none without a manifest)."""
    m = wh / MANIFEST
    if not m.is_file():
        return []
    problems = []
    for rel, f in json.loads(m.read_text())["files"].items():
        p = wh / rel
        if not p.is_file():
            problems.append(f"missing {rel}")
        elif p.stat().st_size != f["bytes"] or sha256(p) != f["sha256"]:
            problems.append(f"corrupt {rel} (size or sha256 differs from {MANIFEST})")
    return problems


def cmd_id(a: argparse.Namespace) -> None:
    wh = Path(a.wheelhouse)
    problems = verify(wh) if a.verify else []
    if problems:
        print("\n".join(problems), file=sys.stderr)
        raise SystemExit(f"{wh} does not match its {MANIFEST}: upload it again")
    print(wheelhouse_id(wh))


# ----------------------------------------------------------------------------- split, gather

def write_tar(wh: Path, fileobj) -> None:
    """The wheelhouse as an uncompressed tar (wheels are compressed already), members sorted
    and with fixed owners and times, so the same wheelhouse gives the same bytes."""
    with tarfile.open(fileobj=fileobj, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(wh.rglob("*")):
            if not p.is_file():
                continue
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(wh)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            with open(p, "rb") as f:
                tar.addfile(info, f)


def split(wh: Path, out: Path, part_bytes: int) -> list[Path]:
    """Write ``wh`` as parts of at most ``part_bytes`` bytes into ``out``, plus a .sha256 file
    (sha256sum format) for the parts; returns the part paths."""
    wid = wheelhouse_id(wh)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("wheelhouse-*"):
        old.unlink()
    with tempfile.TemporaryFile() as tmp:
        write_tar(wh, tmp)
        size = tmp.tell()
        n = max(1, -(-size // part_bytes))
        tmp.seek(0)
        parts = []
        for k in range(n):
            p = out / f"wheelhouse-{wid}.part{k + 1:02d}of{n:02d}"
            with open(p, "wb") as f:
                left = part_bytes
                while left > 0:
                    block = tmp.read(min(left, MIB))
                    if not block:
                        break
                    f.write(block)
                    left -= len(block)
            parts.append(p)
    (out / f"wheelhouse-{wid}.sha256").write_text("".join(f"{sha256(p)}  {p.name}\n" for p in parts))
    return parts


def cmd_split(a: argparse.Namespace) -> None:
    part_bytes = a.part_bytes or int(a.part_mib * MIB)
    parts = split(Path(a.wheelhouse), Path(a.out), part_bytes)
    for p in parts:
        print(f"{p}  {p.stat().st_size / MIB:.1f} MiB")


def gather(src: Path, spool: Path, installed_id: str = "") -> tuple[str, str, list[int], int]:
    """Copy the parts found in ``src`` into ``spool/<id>/`` (checking them against the .sha256
    file when it came along) and, once all parts of an id are there, join and unpack them into
    ``spool/<id>/wheelhouse``. Returns (state, id, parts present, part count) with state
    "installed" (the stamp already names this id), "waiting" or "complete"."""
    found = {}
    for p in sorted(src.iterdir()) if src.is_dir() else []:
        m = PART_RE.match(p.name)
        if m:
            found.setdefault(m["id"], []).append((int(m["k"]), int(m["n"]), p))
    if not found:
        raise SystemExit(f"no wheelhouse parts (wheelhouse-<id>.partKKofNN) in {src}")
    if len(found) > 1:
        print(f"warning: parts of {len(found)} wheelhouses in {src}; taking the first: {sorted(found)}",
              file=sys.stderr)
    wid = sorted(found)[0]
    if wid == installed_id:
        return "installed", wid, [k for k, _, _ in found[wid]], found[wid][0][1]
    sums = {}
    sumfile = src / f"wheelhouse-{wid}.sha256"
    if sumfile.is_file():
        for line in sumfile.read_text().splitlines():
            digest, name = line.split()
            sums[name] = digest
    dest = spool / wid
    dest.mkdir(parents=True, exist_ok=True)
    for _k, _n, p in found[wid]:
        if sums and sha256(p) != sums.get(p.name):
            raise SystemExit(f"{p.name} does not match {sumfile.name}: upload it again")
        target = dest / p.name
        if not target.exists() or target.stat().st_size != p.stat().st_size:
            shutil.copyfile(p, target.with_suffix(".tmp"))
            os.replace(target.with_suffix(".tmp"), target)
    n = found[wid][0][1]
    have = sorted(int(PART_RE.match(q.name)["k"]) for q in dest.iterdir() if PART_RE.match(q.name))
    if have != list(range(1, n + 1)):
        return "waiting", wid, have, n
    out = dest / "wheelhouse"
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryFile(dir=dest) as joined:
        for k in range(1, n + 1):
            with open(dest / f"wheelhouse-{wid}.part{k:02d}of{n:02d}", "rb") as f:
                shutil.copyfileobj(f, joined)
        joined.seek(0)
        with tarfile.open(fileobj=joined, mode="r:") as tar:
            for member in tar.getmembers():  # only plain files below the folder
                if not member.isfile() or member.name.startswith(("/", "..")) or "/../" in member.name:
                    raise SystemExit(f"unexpected member {member.name!r} in the joined wheelhouse")
            tar.extractall(out)
    problems = verify(out)
    if problems:
        raise SystemExit("the joined wheelhouse does not match its manifest: " + "; ".join(problems))
    return "complete", wid, have, n


def cmd_gather(a: argparse.Namespace) -> None:
    state, wid, have, n = gather(Path(a.src), Path(a.spool), a.installed_id or "")
    if state == "waiting":
        missing = [k for k in range(1, n + 1) if k not in have]
        print(f"wheelhouse {wid}: have part(s) {','.join(map(str, have))} of {n}; "
              f"still missing {','.join(map(str, missing))} (upload the next one, run this again)")
        raise SystemExit(3)
    if state == "installed":
        print(f"wheelhouse {wid}: already installed")
        raise SystemExit(10)
    print(Path(a.spool) / wid / "wheelhouse")


# ----------------------------------------------------------------------------- check-node

def cmd_check_node(a: argparse.Namespace) -> None:
    """Report the project requirements (from the manifest) that the running Python lacks or
    has in a version outside the pin: packages left out of the wheelhouse as 'on the node'."""
    from importlib import metadata

    _, requirements, version = _packaging()
    m = Path(a.wheelhouse) / MANIFEST
    if not m.is_file():
        return
    info = json.loads(m.read_text())
    env = target_env(f"{sys.version_info[0]}.{sys.version_info[1]}", info.get("platform", ""))
    missing, other = [], []
    for r in info.get("requirements", []):
        req = requirements.Requirement(r)
        if not _marker_ok(req.marker, env):
            continue
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            missing.append(r)
            continue
        try:
            if req.specifier and not req.specifier.contains(version.Version(have), prereleases=True):
                other.append(f"{req.name} {have} (project pins {req.specifier})")
        except version.InvalidVersion:
            pass
    if missing:
        print("warning: this Python lacks " + ", ".join(missing)
              + ": build the wheelhouse again with them not excluded", file=sys.stderr)
    if other:
        print("note: other versions than the project's pins here: " + "; ".join(other), file=sys.stderr)


# ----------------------------------------------------------------------------- pth-paths

def pth_paths(target: Path) -> list[str]:
    """The folders that the ``.pth`` files in ``target`` put on ``sys.path``, in ``sys.path`` order.

    Python reads ``.pth`` files only in its site folders, and a ``pip install --target`` folder on
    PYTHONPATH is not one: a package that finds its modules through a ``.pth`` file
    (nvidia-cutlass-dsl puts its ``dsl_packages`` folder there, for FlashAttention 4) then does
    not import. install_wheelhouse.sh puts these folders on PYTHONPATH after the target.
    Runs the ``.pth`` files' import lines, as Python's start-up would."""
    import site

    target = Path(target).resolve()
    saved = list(sys.path)
    try:
        site.addsitedir(str(target))
        return [p for p in sys.path if p not in saved and Path(p).resolve() != target]
    finally:
        sys.path[:] = saved


def cmd_pth_paths(a: argparse.Namespace) -> None:
    print(os.pathsep.join(pth_paths(Path(a.target))))


# ----------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def target(p: argparse.ArgumentParser) -> None:
        p.add_argument("--python", default="3.12", help="the node's Python, X.Y")
        p.add_argument("--platform", default="manylinux_2_28_x86_64")

    def excludes(p: argparse.ArgumentParser) -> None:
        p.add_argument("--exclude", default=None, help="comma list of names/globs; 'default' = the default list")
        p.add_argument("--node-packages", default=None, help="the node's `pip list --format=freeze`: exclude those")

    p = sub.add_parser("requirements", help=cmd_requirements.__doc__)
    p.add_argument("--pyproject", default=str(ROOT / "pyproject.toml"))
    p.add_argument("--extras", default="")
    p.add_argument("--from", dest="from_file", default=None,
                   help="read the requirement lines from this file instead of pyproject.toml")
    p.add_argument("--show-excluded", action="store_true")
    target(p), excludes(p)
    p.set_defaults(fn=cmd_requirements)

    p = sub.add_parser("platforms")
    p.add_argument("--platform", default="manylinux_2_28_x86_64")
    p.set_defaults(fn=cmd_platforms)

    p = sub.add_parser("select")
    p.add_argument("--report", required=True, help="pip install --dry-run --report's JSON")
    p.add_argument("--roots", required=True, help="file with the requirements that were resolved")
    p.add_argument("--urls", action="store_true")
    target(p), excludes(p)
    p.set_defaults(fn=cmd_select)

    p = sub.add_parser("trim")
    p.add_argument("wheelhouse")
    p.add_argument("--drop", default="", help="comma list of member prefixes to leave out (e.g. ray/rllib/)")
    p.add_argument("--trim-ray", action="store_true", help="drop the parts of Ray the project never imports")
    p.add_argument("--repack-over-mib", type=float, default=0, help="also recompress wheels larger than this")
    p.set_defaults(fn=cmd_trim)

    p = sub.add_parser("manifest")
    p.add_argument("wheelhouse")
    p.add_argument("--requirements", default=None, help="file with the project's requirement lines")
    p.add_argument("--extras", default="")
    p.add_argument("--built-from-source", default="")
    target(p), excludes(p)
    p.set_defaults(fn=cmd_manifest)

    p = sub.add_parser("id")
    p.add_argument("wheelhouse")
    p.add_argument("--verify", action="store_true", help="check every file against the manifest first")
    p.set_defaults(fn=cmd_id)

    p = sub.add_parser("split")
    p.add_argument("wheelhouse")
    p.add_argument("--out", required=True)
    p.add_argument("--part-mib", type=float, default=60.0)
    p.add_argument("--part-bytes", type=int, default=0, help=argparse.SUPPRESS)
    p.set_defaults(fn=cmd_split)

    p = sub.add_parser("gather")
    p.add_argument("src", help="folder the parts were uploaded to")
    p.add_argument("--spool", required=True, help="folder kept between commands where parts collect")
    p.add_argument("--installed-id", default="")
    p.set_defaults(fn=cmd_gather)

    p = sub.add_parser("check-node")
    p.add_argument("wheelhouse")
    p.set_defaults(fn=cmd_check_node)

    p = sub.add_parser("pth-paths")
    p.add_argument("target", help="a folder that pip install --target filled")
    p.set_defaults(fn=cmd_pth_paths)

    a = ap.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
