"""End-to-end runs through Ray on CPU: tiny GR00T, two pipeline stages, PPO and GRPO.

Each run is small (4 envs, 2 chunk steps of 16 actions, 2 global steps) but goes through
every real part: placement, Ray workers, MuJoCo envs, the policy, advantages, PPO
updates, TensorBoard, checkpoints, evaluation and resume.
"""

import json
import math

import pytest

from rlinf_isaac.config import load_config
from rlinf_isaac.runners.eval_runner import run_eval
from rlinf_isaac.runners.train_runner import TrainRunner
from rlinf_isaac.sft.dataset import decode_video

pytest.importorskip("ray")

SMALL = [  # the checkpoint of cpu_quickstart unless a test names it
    "actor.model.checkpoint_path=null",
    "env.train.total_num_envs=4",
    "env.eval.total_num_envs=4",
    "env.train.max_episode_steps=32",
    "env.eval.max_episode_steps=32",
    "actor.global_batch_size=8",
    "actor.micro_batch_size=4",
    "algorithm.update_epochs=1",
    "rollout.pipeline_stage_num=2",
    "runner.eval_episodes=4",
]


def _train(config, tmp_path, extra=()):
    cfg = load_config(config, SMALL + [f"runner.logger.log_path={tmp_path}"] + list(extra))
    runner = TrainRunner(cfg)
    try:
        last = runner.run()
    finally:
        runner.close()
    return cfg, last


def _scalars(log_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_path / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_ppo_end_to_end_logs_metrics_checkpoints_and_evaluates(tmp_path):
    cfg, last = _train("cpu_quickstart", tmp_path, ["runner.max_steps=2", "runner.save_interval=1",
                                                     "runner.val_check_interval=2",
                                                     "env.train.video_cfg.save_video=true",
                                                     "env.train.video_cfg.interval=1"])
    scalars = _scalars(tmp_path)
    for name in ("actor/policy_loss", "actor/value_loss", "actor/grad_norm", "actor/approx_kl",
                 "actor/pg_clipfrac", "actor/value_clip_ratio", "actor/entropy", "rollout/returns_mean",
                 "rollout/advantages_mean", "env/success_once", "env/episode_len", "env/return",
                 "eval/success_rate", "time/rollout", "time/update", "env/steps_per_s"):
        assert name in scalars, f"{name} missing from TensorBoard (have {sorted(scalars)})"
    assert [s for s, _ in scalars["actor/policy_loss"]] == [1, 2]
    assert all(math.isfinite(v) for _, v in scalars["actor/policy_loss"])
    # Every episode lasts the 32-step limit here (random policy): env/episode_len is exact.
    assert scalars["env/episode_len"][0][1] == 32.0
    assert scalars["eval/num_episodes"][-1][1] == 4.0
    assert (tmp_path / "checkpoints" / "global_step_1").is_dir()
    assert (tmp_path / "checkpoints" / "global_step_2").is_dir()
    videos = list((tmp_path / "video" / "train").glob("*.mp4"))
    assert len(videos) == 2
    # stage 0 of the env worker holds 2 envs: 2 (table | wrist) tiles of 256 px views in one
    # column, one frame per env step (2 chunk steps x 16); TensorBoard got the same frames, box-
    # downscaled by an integer factor to at most 512 px a side
    video = decode_video(videos[0])
    assert video.shape[0] == 32 and video.shape[2] == 2 * 256 and video.shape[1] > 2 * 256
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    (first, *_) = acc.Images("train/rollout")
    assert (first.width, first.height) == (video.shape[2] // 2, video.shape[1] // 2)  # > 512 px high: halved


def test_grpo_end_to_end_and_time_limit(tmp_path):
    # max_time_s far below one step's time: the run stops after step 1 of 3, and that step
    # is treated as the last one (checkpoint written although save_interval=-1). The loss
    # averages per episode (the config's default is token-mean, covered by the PPO runs).
    _, last = _train("mujoco_stack2_grpo_gr00t_tiny", tmp_path, [
        "cluster=cpu", "algorithm.group_size=2", "runner.max_steps=3", "runner.save_interval=-1",
        "runner.val_check_interval=-1", "runner.max_time_s=0.001", "algorithm.loss_agg_func=seq-mean-token-mean"])
    scalars = _scalars(tmp_path)
    assert "actor/policy_loss" in scalars and "rollout/advantages_mean" in scalars
    assert [s for s, _ in scalars["actor/policy_loss"]] == [1]
    assert (tmp_path / "checkpoints" / "global_step_1").is_dir()
    assert scalars["train/wall_time_s"][0][1] > 0
    # GRPO has no critic: no value loss is logged.
    assert "actor/value_loss" not in scalars
    # One episode per env from shared reset states: 4 episodes, each to the 32-step limit.
    assert scalars["env/num_episodes"][0][1] == 4.0


def test_overlap_update_trains_on_the_rollout_collected_during_the_previous_update(tmp_path):
    """rollout.overlap_update: 3 steps collect 3 rollouts (the last step collects none ahead);
    step 1 trains on-policy (weights ~1), steps 2 and 3 on a rollout one update behind."""
    _train("cpu_quickstart", tmp_path, ["runner.max_steps=3", "runner.save_interval=3", "runner.val_check_interval=3",
                                        "runner.val_before_train=false", "rollout.overlap_update=true"])
    scalars = _scalars(tmp_path)
    weight, kl = dict(scalars["actor/behavior_weight_mean"]), dict(scalars["actor/behavior_kl"])
    assert sorted(weight) == [1, 2, 3]
    assert weight[1] == pytest.approx(1.0, abs=1e-3) and kl[1] < 1e-6  # same weights, other batching
    assert kl[2] > kl[1] and kl[3] > kl[1]  # one update behind
    assert [s for s, _ in scalars["time/overlap"]] == [1, 2, 3]
    # 3 rollouts of 4 envs x 2 chunk steps x 16 actions
    assert dict(scalars["train/env_steps"])[3] == 3 * 4 * 2 * 16
    assert (tmp_path / "checkpoints" / "global_step_3").is_dir() and 3 in dict(scalars["eval/success_rate"])


def _deterministic(scalars: dict) -> dict:
    """The scalars a seed fixes: all but wall-clock times and rates."""
    return {k: v for k, v in scalars.items() if "time" not in k and "per_s" not in k and not k.startswith("perf/")}


def test_same_seed_runs_and_resume_reproduce_each_other(tmp_path):
    """From the shipped SFT checkpoint (its new value head initialised from the run's seed): two
    fresh runs with one seed log identical metrics, and 1 step + resume 1 equals 2 straight."""
    # step 1 only warms the critic up; step 2 adds self-imitation (its draws come from the
    # update's seeded generator, so the resumed step draws the same)
    common = ["actor.model.checkpoint_path=checkpoints/gr00t_tiny_sft_stack2", "runner.max_steps=2",
              "runner.save_interval=1", "runner.val_check_interval=-1", "algorithm.critic_warmup_steps=1",
              "algorithm.self_imitation_coef=0.5"]
    _train("cpu_quickstart", tmp_path / "full", common)
    _train("cpu_quickstart", tmp_path / "again", common)
    _train("cpu_quickstart", tmp_path / "resumed",
           common + [f"runner.resume_dir={tmp_path / 'full' / 'checkpoints' / 'global_step_1'}"])
    full, again, resumed = (_deterministic(_scalars(tmp_path / d)) for d in ("full", "again", "resumed"))
    assert "rollout/values_mean" in full and "actor/value_loss" in full
    assert again == full  # every seeded metric of both steps, value estimates included
    for name, points in full.items():
        if 2 in dict(points):
            assert dict(resumed[name])[2] == dict(points)[2], f"{name}: resumed != uninterrupted"
    assert 1 not in dict(resumed["actor/policy_loss"])  # the resumed run starts at step 2
    # Cumulative counters continue: 2 steps x 4 envs x 2 chunk steps x 16 actions = 256 env steps.
    assert dict(full["train/env_steps"])[2] == dict(resumed["train/env_steps"])[2] == 256.0


def test_eval_report_json(tmp_path):
    cfg = load_config("cpu_quickstart", SMALL + [f"runner.logger.log_path={tmp_path}",
                                                 "env.eval.video_cfg.save_video=true"])
    line = run_eval(cfg)
    report = json.loads(line)
    assert set(report) == {"success_rate", "ci95", "episodes", "video_dir"}
    assert report["episodes"] == 4
    lo, hi = report["ci95"]
    assert 0.0 <= lo <= report["success_rate"] <= hi <= 1.0
    assert report["video_dir"] and list((tmp_path / "video" / "eval").glob("*.mp4"))


def test_two_ranks_per_component_data_parallel(tmp_path):
    """The 2-GPU shared layout on CPU slots: 2 env, 2 rollout and 2 actor ranks (gloo DDP)."""
    import torch

    cfg = load_config("cpu_quickstart", SMALL + [
        f"runner.logger.log_path={tmp_path}", "cluster=2gpu_shared", "runner.max_steps=1",
        "runner.save_interval=-1", "runner.val_check_interval=-1", "env.train.total_num_envs=8",
        "actor.global_batch_size=16"])
    runner = TrainRunner(cfg)
    try:
        assert (runner.controller.n_env, runner.controller.n_roll, runner.controller.n_act) == (2, 2, 2)
        before = runner.controller.actors.trainable_weights()
        runner.run()
        w0, w1 = runner.controller.actors.trainable_weights()
    finally:
        runner.close()
    # Each rank trained on its own env shard, yet all-reduced gradients keep the replicas equal.
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert any(not torch.equal(before[0][k], w0[k]) for k in w0)  # and they did move
    scalars = _scalars(tmp_path)
    assert dict(scalars["train/env_steps"])[1] == 256.0  # 8 envs x 2 chunk steps x 16 actions


def test_only_eval_evaluates_without_training(tmp_path):
    cfg, last = _train("cpu_quickstart", tmp_path, ["runner.only_eval=true", "runner.max_steps=5"])
    assert set(last) >= {"eval/success_rate", "eval/num_episodes"} and last["eval/num_episodes"] == 4.0
    scalars = _scalars(tmp_path)
    assert "actor/policy_loss" not in scalars and not (tmp_path / "checkpoints").exists()


def test_fsdp_matches_ddp_and_shares_its_checkpoint_format(tmp_path):
    """actor.training_backend=fsdp on 2 actor ranks (gloo): the same step as DDP gives the same
    weights and optimizer moments (FSDP's reduce-scatter average = DDP's all-reduce mean), its
    state comes out unsharded in DDP's format, and a DDP state loads into the sharded actors."""
    import torch

    def one_step(backend):
        cfg = load_config("cpu_quickstart", SMALL + [
            f"runner.logger.log_path={tmp_path / backend}", "cluster=2gpu_shared", "runner.max_steps=1",
            "runner.save_interval=-1", "runner.val_check_interval=-1", "env.train.total_num_envs=8",
            "actor.global_batch_size=16", f"actor.training_backend={backend}"])
        runner = TrainRunner(cfg)
        runner.run()
        return runner

    ddp = one_step("ddp")
    lr = ddp.cfg.actor.optim.lr
    try:
        ref = ddp.controller.actor_state()
    finally:
        ddp.close()
    fs = one_step("fsdp")
    try:
        units = fs.controller.actors.sharded_layers()
        ranks = fs.controller.actors.trainable_weights()  # gathered on every rank
        state = fs.controller.actor_state()
        fs.controller.load_actor_state(ref)  # a DDP checkpoint into sharded actors, and back out
        back = fs.controller.actor_state()
        fs.controller.sync_weights(version=5)  # packed from the gathered shards
        rollout = fs.controller.rollouts.trainable_state()
    finally:
        fs.close()
    # each transformer block is one unit (not its layers); Linear / LayerNorm layers outside blocks too
    assert units[0] == units[1] and "model.action_head.model.transformer_blocks.3" in units[0]
    assert "model.action_head.vl_self_attention.transformer_blocks.0" in units[0] and "value_head.out" in units[0]
    assert not any(".transformer_blocks.0." in u for u in units[0])
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    assert state["model"].keys() == ref["model"].keys()
    # the sharded actors' optimizer groups (sharded / replicated parts) come out in DDP's layout
    assert state["optimizer"]["param_groups"] == ref["optimizer"]["param_groups"]
    assert state["scheduler"] == ref["scheduler"] and back["scheduler"] == ref["scheduler"]
    for k, v in ref["model"].items():
        # softmax ignores a bias added to every key, so to_k.bias's gradient is rounding noise,
        # which differs between the backends; Adam turns it into steps of up to ~lr
        atol = 2 * lr if k.endswith("to_k.bias") else 1e-6
        assert torch.allclose(state["model"][k], v, atol=atol, rtol=1e-4), k
        assert torch.equal(back["model"][k], v), k
        assert torch.equal(rollout[0][k], v) and torch.equal(rollout[1][k], v), k
    assert state["optimizer"]["state"].keys() == ref["optimizer"]["state"].keys()
    for i, moments in ref["optimizer"]["state"].items():
        for name in ("exp_avg", "exp_avg_sq"):
            assert state["optimizer"]["state"][i][name].shape == moments[name].shape
            assert torch.allclose(state["optimizer"]["state"][i][name], moments[name], atol=1e-7, rtol=1e-3), (i, name)
            assert torch.equal(back["optimizer"]["state"][i][name], moments[name]), (i, name)


def test_fixed_seed_evaluations_during_training_repeat_exactly(tmp_path):
    """With runner.val_fixed_seed two evaluations of the same weights play the same episodes
    (env seeds and the flow's noise), even after a rollout has used the noise stream."""
    cfg = load_config("cpu_quickstart", SMALL + [f"runner.logger.log_path={tmp_path}", "runner.val_fixed_seed=true",
                                                 "env.eval.reward_type=shaped"])
    runner = TrainRunner(cfg)
    try:
        first = runner.evaluate(1)
        runner.controller.rollout(0)  # draws from the rollout workers' generators
        second = runner.evaluate(1)
    finally:
        runner.close()
    assert first["eval/num_episodes"] == 4
    assert first == second
