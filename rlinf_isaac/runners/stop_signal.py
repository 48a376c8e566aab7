"""Stopping a training run from outside without losing it: SIGTERM (``timeout``, batch
schedulers before they kill a job) or SIGINT (Ctrl-C).

The first signal asks the run to stop: the global step in progress finishes, skips its
evaluation, checkpoints, and the run exits with code 128 + the signal's number. A second signal
stops at once (``KeyboardInterrupt``): the newest checkpoint is then the last one saved. Signals
within ``REPEAT_AFTER_S`` of the first count as the first: a signal sent to a process group
(Ctrl-C, a scheduler) reaches the run both directly and forwarded by ``run_embodiment.sh``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator

__all__ = ["StopRequest", "stop_on_signals", "restore_interrupt"]

DEFAULT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
REPEAT_AFTER_S = 2.0  # a signal sooner than this after the first is the same request


class StopRequest:
    """Whether, and by which signal, the run was asked to stop; false until a signal arrives."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.at = 0.0  # time.monotonic() of the first signal

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process ended by that signal."""
        return 128 + self.signum if self.signum is not None else 0


def _say(text: str) -> None:
    """Write to stderr from a signal handler: ``os.write`` is safe where ``print`` may reenter
    a buffered stream that the interrupted code was writing to."""
    try:
        os.write(2, text.encode())
    except OSError:  # stderr closed: the request still holds
        pass


@contextmanager
def stop_on_signals(signals: tuple[int, ...] = DEFAULT_SIGNALS,
                    repeat_after_s: float = REPEAT_AFTER_S) -> Iterator[StopRequest]:
    """Within the block, the first of ``signals`` sets the yielded :class:`StopRequest` and the
    second (``repeat_after_s`` or more later) raises ``KeyboardInterrupt``; the previous handlers
    come back afterwards. Outside the main thread (where Python cannot install handlers) the
    request never fires."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum, _frame):
        name = signal.Signals(signum).name
        if request:
            if time.monotonic() - request.at < repeat_after_s:
                return  # the same request, delivered twice
            raise KeyboardInterrupt(f"{name} after {request.name}: stopping at once")
        request.signum, request.at = signum, time.monotonic()
        _say(f"\n{name} received: the run stops after the global step in progress (no evaluation, "
             f"a checkpoint); send it again {repeat_after_s:g} s or more later to stop at once\n")

    previous = {s: signal.signal(s, handle) for s in signals}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def restore_interrupt() -> None:
    """Make Ctrl-C raise ``KeyboardInterrupt`` again where the process started with SIGINT
    ignored, as a shell script's background commands do (``run_embodiment.sh``)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
