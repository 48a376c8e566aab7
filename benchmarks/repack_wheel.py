"""Shrink a wheel for the GPU box's 64 MiB carry limit: members over 200 kB are recompressed with LZMA.

pip installs such a wheel unchanged (it unpacks with ``zipfile``, which reads LZMA members);
file contents, names, permissions and RECORD hashes stay as they were. Ray's 2.60 wheel, already
trimmed (benchmarks/README.md): 36.4 -> 26.2 MB; mujoco-core 4.0.0: 9.7 -> 7.3 MB.

    python benchmarks/repack_wheel.py .whlray2/ray-2.60.0-*.whl .whl/mujoco_core-4.0.0-*.whl
"""

from __future__ import annotations

import argparse
import os
import zipfile

LARGE = 200_000  # bytes: smaller members stay deflated (LZMA gains little there)


def repack(path: str) -> tuple[int, int]:
    """Rewrite ``path`` in place (through a temporary file); returns (old, new) sizes in bytes."""
    tmp = path + ".tmp"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            method = zipfile.ZIP_LZMA if info.file_size > LARGE else zipfile.ZIP_DEFLATED
            dst.writestr(info, src.read(info), compress_type=method)
    old = os.path.getsize(path)
    os.replace(tmp, path)
    return old, os.path.getsize(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="+")
    for path in ap.parse_args().wheels:
        old, new = repack(path)
        print(f"{path}: {old / 1e6:.1f} -> {new / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
