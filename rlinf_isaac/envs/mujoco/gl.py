"""Choose MuJoCo's OpenGL backend (EGL on NVIDIA machines, OSMesa otherwise) before ``import mujoco``.

MuJoCo reads ``MUJOCO_GL`` once, when the ``mujoco`` package is first imported, so the
choice must happen before that import. Precedence: the ``render_backend`` argument, then an
existing ``MUJOCO_GL`` environment variable, then auto-detection (EGL where an NVIDIA GPU
is visible, OSMesa otherwise).
"""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys

__all__ = ["GL_BACKENDS", "select_gl_backend", "import_mujoco", "route_mujoco_warnings"]

log = logging.getLogger("rlinf_isaac.envs.mujoco")

# backend -> (shared library name for ctypes.util.find_library, Debian package providing it)
GL_BACKENDS: dict[str, tuple[str, str]] = {
    "egl": ("EGL", "libegl1"),
    "osmesa": ("OSMesa", "libosmesa6"),
}


def _has_nvidia_gpu() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0")


def _library_present(backend: str) -> bool:
    lib, _ = GL_BACKENDS[backend]
    return ctypes.util.find_library(lib) is not None


def select_gl_backend(render_backend: str | None = None) -> str:
    """Set ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) and return the chosen backend name.

    render_backend: "egl", "osmesa" or None (use ``$MUJOCO_GL`` if set, else auto-detect).
    Raises RuntimeError naming the missing system library and its Debian package when the
    backend cannot work, or when ``mujoco`` was already imported with another backend.
    """
    if render_backend is not None and render_backend not in GL_BACKENDS:
        raise ValueError(
            f"render_backend must be one of {sorted(GL_BACKENDS)} or None, got {render_backend!r}"
        )
    env_choice = os.environ.get("MUJOCO_GL", "").strip().lower() or None
    if render_backend is not None:
        backend = render_backend
    elif env_choice is not None:
        backend = env_choice
    else:
        backend = "egl" if _has_nvidia_gpu() and _library_present("egl") else "osmesa"
    if backend not in GL_BACKENDS:  # e.g. MUJOCO_GL=glfw set by the user: respect it
        return backend
    if "mujoco" in sys.modules and env_choice != backend:
        raise RuntimeError(
            f"render_backend={backend!r} requested but mujoco was already imported with "
            f"MUJOCO_GL={env_choice or '<unset> (glfw, needs a display)'}; build the env before "
            f"any other `import mujoco`, or set MUJOCO_GL={backend} in the environment"
        )
    _check_library(backend)
    os.environ["MUJOCO_GL"] = backend
    os.environ["PYOPENGL_PLATFORM"] = backend
    return backend


def _check_library(backend: str) -> None:
    lib, pkg = GL_BACKENDS[backend]
    if not _library_present(backend):
        other = "osmesa" if backend == "egl" else "egl"
        raise RuntimeError(
            f"MuJoCo rendering backend {backend!r} needs the system library lib{lib} which "
            f"was not found; install it (Debian/Ubuntu: apt-get install {pkg}) or choose "
            f"render_backend={other!r} (package {GL_BACKENDS[other][1]})"
        )


def import_mujoco(render_backend: str | None = None):
    """Select the GL backend, import ``mujoco``, route its warnings to logging; return the module."""
    select_gl_backend(render_backend)
    import mujoco

    route_mujoco_warnings(mujoco)
    return mujoco


def _log_mujoco_warning(message: str) -> None:
    log.warning("MuJoCo: %s", message.strip())


def route_mujoco_warnings(mujoco) -> None:
    """Send MuJoCo's C warnings to the ``rlinf_isaac.envs.mujoco`` logger instead of stderr and
    ``MUJOCO_LOG.TXT`` in the current directory.

    A warning callback the user installed earlier (``mujoco.set_mju_user_warning``) is kept;
    the default handler's log file is switched off either way. Idempotent.
    """
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_log_mujoco_warning)
    if not hasattr(mujoco, "MjLogConfig"):  # before MuJoCo 4's log config the callback alone suffices
        return
    config = mujoco.MjLogConfig.get()
    if config.logto_file:
        config.logto_file = False
        config.set()
