"""Which episodes the evaluations during training play (runner.val_fixed_seed)."""

from rlinf_isaac.config import load_config
from rlinf_isaac.data.episodes import EpisodeLog
from rlinf_isaac.runners.train_runner import TrainRunner
from rlinf_isaac.seeding import derive_seed


class _RecordingController:
    """Stands in for the worker cluster where only the seeds of evaluations matter."""

    def __init__(self):
        self.seeds = []

    def sync_weights(self, version):
        pass

    def evaluate(self, episodes, seed, record_video=False):
        self.seeds.append(seed)
        return EpisodeLog(success_once=[1.0, 0.0], returns=[1.0, 0.0], episode_len=[10.0, 32.0]), None


def _eval_seeds(tmp_path, fixed):
    cfg = load_config("cpu_quickstart", [f"runner.logger.log_path={tmp_path}", f"runner.val_fixed_seed={fixed}",
                                         "env.eval.seed=4242", "runner.seed=7"])
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
    # env.eval.seed (env resets and policy noise): as eval_embodiment.sh
    assert _eval_seeds(tmp_path / "fixed", True) == [4242, 4242]
    # new episodes each step, drawn from the run seed
    fresh = _eval_seeds(tmp_path / "fresh", False)
    assert fresh == [derive_seed(7, "eval", 10), derive_seed(7, "eval", 20)] and fresh[0] != fresh[1]


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
