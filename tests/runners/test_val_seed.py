"""Which episodes the evaluations during training play (runner.val_fixed_seed)."""

from rlinf_isaac.config import load_config
from rlinf_isaac.runners.train_runner import TrainRunner
from rlinf_isaac.data.episodes import EpisodeLog


class _RecordingController:
    """Stands in for the worker cluster where only the seeds of evaluations matter."""

    def __init__(self):
        self.seeds = []

    def sync_weights(self, version):
        pass

    def evaluate(self, episodes, seed, record_video=False, policy_seed=None):
        self.seeds.append((seed, policy_seed))
        return EpisodeLog(success_once=[1.0, 0.0], returns=[1.0, 0.0], episode_len=[10.0, 32.0]), None


def _eval_seeds(tmp_path, fixed):
    cfg = load_config("cpu_quickstart", [f"runner.logger.log_path={tmp_path}", f"runner.val_fixed_seed={fixed}",
                                         "env.eval.seed=4242", "actor.seed=7"])
    cluster = _RecordingController()
    runner = TrainRunner(cfg, controller=cluster)
    try:
        m10, m20 = runner.evaluate(10), runner.evaluate(20)
    finally:
        runner.progress.close()
        runner.logger.close()
    assert m10["eval/success_rate"] == m20["eval/success_rate"] == 0.5
    return cluster.seeds


def test_fixed_seed_evaluations_play_eval_embodiments_episodes_every_time(tmp_path):
    # env.eval.seed, and the policy noise restarted from actor.seed: as eval_embodiment.sh
    assert _eval_seeds(tmp_path / "fixed", True) == [(4242, 7), (4242, 7)]
    fresh = _eval_seeds(tmp_path / "fresh", False)
    assert fresh[0] != fresh[1] and {p for _, p in fresh} == {None} and 4242 not in {s for s, _ in fresh}


def test_val_before_train_logs_the_starting_policy_at_step_0(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config("cpu_quickstart", [f"runner.logger.log_path={tmp_path}", "runner.val_before_train=true",
                                         "runner.max_steps=0"])
    cluster = _RecordingController()
    runner = TrainRunner(cfg, controller=cluster)
    try:
        runner.run()  # max_steps 0: only the evaluation before training
    finally:
        runner.progress.close()
        runner.logger.close()
    assert len(cluster.seeds) == 1
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("eval/success_rate")] == [(0, 0.5)]
    assert acc.Scalars("train/wall_time_s")[0].value > 0
