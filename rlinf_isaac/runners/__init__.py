"""Runners: the training loop, evaluation, the controller that drives the worker groups, checkpoints."""

__all__ = [
    "TrainRunner", "Controller", "run_eval", "save_checkpoint", "load_checkpoint",
    "capture_rng_states", "restore_rng_states", "CheckpointError", "Checkpoint", "list_checkpoints",
]

_HOME = {
    "TrainRunner": "train_runner", "Controller": "controller", "run_eval": "eval_runner",
    **{n: "checkpoint" for n in ("save_checkpoint", "load_checkpoint", "capture_rng_states",
                                 "restore_rng_states", "CheckpointError", "Checkpoint", "list_checkpoints")},
}


def __getattr__(name):  # lazy: importing the package must not start Ray or load models
    if name in _HOME:
        import importlib

        return getattr(importlib.import_module(f"rlinf_isaac.runners.{_HOME[name]}"), name)
    raise AttributeError(name)
