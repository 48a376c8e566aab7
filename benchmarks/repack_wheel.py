"""Shrink a wheel for the GPU box's 64 MiB carry limit: members over 200 kB are recompressed with LZMA.

pip installs such a wheel unchanged (it unpacks with ``zipfile``, which reads LZMA members);
file contents, names, permissions and RECORD hashes stay as they were. ``--drop PREFIX`` also
leaves out every member under PREFIX (and its RECORD line), for parts of a package the
benchmarks never import. Ray's 2.60 wheel, trimmed as benchmarks/make_carry.sh does: 36.4 ->
26.2 MB; mujoco-core 4.0.0: 9.7 -> 7.3 MB.

    python benchmarks/repack_wheel.py .whl/mujoco_core-4.0.0-*.whl
    python benchmarks/repack_wheel.py .whlray2/ray-2.60.0-*.whl --drop ray/rllib/ --drop ray/data/
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
