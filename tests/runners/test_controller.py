"""Controller helpers that need no Ray cluster."""

import logging

from rlinf_isaac.runners.controller import Controller
from rlinf_isaac.workers.rollout_worker import RolloutWorker


def _bare_controller() -> Controller:
    c = Controller.__new__(Controller)  # no workers: only the reporting state
    c._graph_warnings = set()
    return c


def test_graph_fallbacks_warn_once_per_reason_and_count_the_ranks(caplog):
    c = _bare_controller()
    assert c._graph_fallbacks((None, None)) == {}  # graphs captured (or off): no metric, no warning
    why = "RuntimeError: Cannot copy between CPU and CUDA tensors during CUDA graph capture"
    with caplog.at_level(logging.WARNING, logger="rlinf_isaac.runners.controller"):
        assert c._graph_fallbacks((why, None, why)) == {"rollout/cuda_graph_eager": 2.0}
        assert c._graph_fallbacks((why, None, why)) == {"rollout/cuda_graph_eager": 2.0}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1  # once per reason, not per step or rank
    assert "rank 0" in warnings[0] and why in warnings[0] and "actor.model.cuda_graph=false" in warnings[0]


class _Policy:
    cuda_graph_fallback = "RuntimeError: capture failed"


def test_rollout_timing_reports_seconds_and_the_fallback_then_resets():
    w = RolloutWorker.__new__(RolloutWorker)  # the counters only, no policy built
    w.infer_seconds, w.policy = 1.5, _Policy()
    assert w.timing() == (1.5, "RuntimeError: capture failed")
    assert w.timing() == (0.0, "RuntimeError: capture failed")
    w.policy = object()  # a policy without CUDA graphs
    assert w.timing() == (0.0, None)
