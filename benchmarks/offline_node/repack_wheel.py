"""Shrink a wheel for a size-limited transfer: members over 200 kB are recompressed with LZMA.

pip installs such a wheel unchanged (it unpacks with ``zipfile``, which reads LZMA members);
file contents, names, permissions and RECORD hashes stay as they were. ``--drop PREFIX`` also
leaves out every member under PREFIX (and its RECORD line), for parts of a package that are
never imported. Ray 2.60 without its Java jars, RLlib, Data, Serve, Tune, Train, LLM, AIR,
the dashboard's web client and the runtime-env agent's vendored aiohttp (what
``build_wheelhouse.sh --trim-ray`` drops): 36.4 -> 26.2 MB; mujoco-core 4.0.0: 9.7 -> 7.3 MB.

    python benchmarks/offline_node/repack_wheel.py WHEELHOUSE/mujoco_core-4.0.0-*.whl
    python benchmarks/offline_node/repack_wheel.py WHEELHOUSE/ray-2.60.0-*.whl --drop ray/rllib/ --drop ray/data/
"""

from __future__ import annotations

import argparse
import os
import zipfile

LARGE = 200_000  # bytes: smaller members stay deflated (LZMA gains little there)


def repack(path: str, drop: tuple[str, ...] = ()) -> tuple[int, int]:
    """Rewrite ``path`` in place (through a temporary file) without the members under the
    ``drop`` prefixes; returns (old, new) sizes in bytes."""
    tmp = path + ".tmp"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            if info.filename.startswith(drop):
                continue
            data = src.read(info)
            if drop and info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if not line.startswith(drop)).encode()
            method = zipfile.ZIP_LZMA if info.file_size > LARGE else zipfile.ZIP_DEFLATED
            dst.writestr(info, data, compress_type=method)
    old = os.path.getsize(path)
    os.replace(tmp, path)
    return old, os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="+")
    ap.add_argument("--drop", action="append", default=[], metavar="PREFIX",
                    help="leave out members whose path starts with PREFIX (repeatable)")
    args = ap.parse_args()
    for path in args.wheels:
        old, new = repack(path, tuple(args.drop))
        print(f"{path}: {old / 1e6:.1f} -> {new / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
