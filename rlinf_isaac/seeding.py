"""Every random stream of a run, derived by one function from one root seed.

A training run has one root, ``runner.seed``; an evaluation set has its own, ``env.eval.seed``
(so that runs with different seeds are evaluated on the same episodes). Each stream is named
and indexed, and :func:`derive_seed` turns (root, stream, indices) into an independent 31-bit
seed through :class:`numpy.random.SeedSequence` (no ad-hoc arithmetic, so streams never
collide). The streams:

=================  ==========================  ==============================================
stream             indices                     seeds
=================  ==========================  ==============================================
``init``           ()                          random policy / value-head initialisation
``env``            (env rank, stage)           a training stage env at construction
``rollout``        (global step, epoch)        the env resets of one rollout epoch
``stage``          (env rank, stage)           one stage's resets (derived from ``rollout``)
``policy_noise``   (global step, rollout rank) a rollout worker's sampling noise for a step
``update``         (global step, actor rank)   an actor rank's minibatch order and draws
``eval``           (global step,)              the root of an evaluation during training
``eval_episodes``  (env rank, round)           an evaluation round's env resets
``eval_noise``     (rollout rank,)             a rollout worker's noise for an evaluation
=================  ==========================  ==============================================
"""

from __future__ import annotations

import zlib

import numpy as np

__all__ = ["STREAMS", "derive_seed"]

STREAMS = ("init", "env", "rollout", "stage", "policy_noise", "update", "eval", "eval_episodes", "eval_noise")


def derive_seed(root: int, stream: str, *indices: int) -> int:
    """An integer seed in [0, 2**31) for ``stream`` at ``indices`` under ``root``.

    root, indices: non-negative integers. The same arguments always give the same seed; any
    other root, stream or index gives an independent one.
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown seed stream {stream!r}; streams: {', '.join(STREAMS)}")
    words = [root, zlib.crc32(stream.encode()), *indices]
    if any(not isinstance(w, (int, np.integer)) or w < 0 for w in words):
        raise ValueError(f"seeds and indices must be non-negative integers, got root={root!r}, indices={indices!r}")
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0] & 0x7FFF_FFFF)
