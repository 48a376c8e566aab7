"""SFT trainer: sampler order, LR schedule, checkpoint layout, exact resume, loss decreases."""

import json

import numpy as np
import pytest
import torch

from rlinf_isaac.sft.trainer import (
    EpisodeWindowSampler,
    SFTConfig,
    SFTTrainer,
    _lr_factor,
    find_latest_checkpoint,
)


def test_sampler_covers_each_frame_once_per_epoch_and_respects_windows():
    lengths = [3, 5, 2, 4]  # offsets 0, 3, 8, 10; N = 14
    s = EpisodeWindowSampler(lengths, batch_size=7, window=2, seed=1)
    epoch0 = torch.cat([s.batch(0), s.batch(1)])
    assert sorted(epoch0.tolist()) == list(range(14))
    order = s.epoch_order(0)
    assert torch.equal(order, epoch0)
    episode_of = torch.repeat_interleave(torch.arange(4), torch.tensor(lengths))[order].tolist()
    # windows of 2 episodes: the first window's frames come from exactly 2 episodes and are
    # followed by all frames of the other 2
    firsts = list(dict.fromkeys(episode_of))  # episodes in order of first appearance
    window_a = set(firsts[:2])
    boundary = sum(lengths[e] for e in window_a)
    assert set(episode_of[:boundary]) == window_a and set(episode_of[boundary:]) == set(firsts[2:])
    # deterministic and resumable: a fresh sampler gives the same batch for a given step
    assert torch.equal(EpisodeWindowSampler(lengths, 7, 2, 1).batch(5), s.batch(5))
    assert not torch.equal(EpisodeWindowSampler(lengths, 7, 2, 2).epoch_order(0), order)


def test_lr_schedule_hand_computed():
    # warm-up 4 steps: (s+1)/4 -> 0.25, 0.5, 0.75, 1.0; then cosine over 8 steps to 12.
    assert [_lr_factor(s, 4, 12) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert _lr_factor(8, 4, 12) == pytest.approx(0.5)  # progress 0.5: (1 + cos(pi/2)) / 2
    assert _lr_factor(12, 4, 12) == pytest.approx(0.0)


def test_lr_schedule_follows_time_when_it_is_further_along():
    # 100 steps, warm-up 4, budget 10 s: at step 8 the steps say progress 4/96 but 5 s of 10
    # have passed, so the decay is half way: (1 + cos(pi/2)) / 2 = 0.5
    assert _lr_factor(8, 4, 100, elapsed_s=5.0, max_seconds=10.0) == pytest.approx(0.5)
    # the steps further along than the time: they decide ((1 + cos(3 pi / 4)) / 2 at step 76)
    assert _lr_factor(76, 4, 100, elapsed_s=1.0, max_seconds=10.0) == pytest.approx((1 + np.cos(0.75 * np.pi)) / 2)
    assert _lr_factor(2, 4, 100, elapsed_s=1.0, max_seconds=10.0) == 0.75  # still warming up
    assert _lr_factor(2, 4, 100, elapsed_s=12.0, max_seconds=10.0) == 0.0  # out of time during warm-up
    assert _lr_factor(8, 4, 100, elapsed_s=99.0) == _lr_factor(8, 4, 100)  # no budget: steps only
    with pytest.raises(ValueError, match="sft.max_seconds"):
        SFTConfig(dataset="d", out="o", max_seconds=0)


class _FakeClock:
    """Each reading is ``tick`` seconds after the previous one."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_cli_flags_map_to_config():
    from rlinf_isaac.sft.__main__ import build_parser

    args = build_parser().parse_args(["--dataset", "D", "--out", "O", "--steps", "7", "--no-tune-llm",
                                      "--init-from", "ckpt", "--lr", "1e-4"])
    cfg = SFTConfig(**vars(args))
    assert (cfg.dataset, cfg.out, cfg.steps, cfg.tune_llm, cfg.tune_visual) == ("D", "O", 7, False, True)
    assert cfg.init_from == "ckpt" and cfg.lr == 1e-4 and cfg.config == "gr00t_tiny"


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="sft.batch_size"):
        SFTConfig(dataset="d", out="o", batch_size=0)
    with pytest.raises(ValueError, match="sft.lr"):
        SFTConfig(dataset="d", out="o", lr=0.0)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """A 3-episode LeRobot dataset (39 frames) written by the project's writer."""
    from rlinf_isaac.demos.dataset import LeRobotDatasetWriter

    root = tmp_path_factory.mktemp("demo") / "ds"
    rng = np.random.default_rng(0)
    with LeRobotDatasetWriter(root, fps=20) as writer:
        for ep in range(3):
            t = 12 + ep
            # the state rotates by 0.3 rad a step; the action is the next state scaled by 0.5,
            # so the whole chunk is predictable from the state
            ang = rng.uniform(0.0, 6.28) + 0.3 * np.arange(t)
            states = np.zeros((t, 8), np.float32)
            states[:, 0], states[:, 1] = np.cos(ang), np.sin(ang)
            actions = np.zeros((t, 7), np.float32)
            actions[:, 0], actions[:, 1] = 0.5 * np.cos(ang + 0.3), 0.5 * np.sin(ang + 0.3)
            actions[:, 6] = np.sign(np.cos(ang))
            img = np.zeros((t, 32, 32, 3), np.uint8)
            img[..., 0] = (np.arange(t) * 10)[:, None, None]
            writer.add_episode(main_images=img, wrist_images=img[..., ::-1].copy(), states=states,
                               actions=actions, instruction="Stack the red cube on the blue cube.",
                               success=True)
    return root


def _cfg(dataset_dir, out, steps, **kw):
    return SFTConfig(dataset=str(dataset_dir), out=str(out), steps=steps, batch_size=4, save_every=2,
                     warmup_steps=1, log_every=1, progress=False, keep_checkpoints=10, **kw)


@pytest.fixture
def deterministic():
    """Deterministic kernels: with several CPU threads the gradient of the embodiment-indexed
    weights (``W[category]``, every sample on one slot) is accumulated in a varying order."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(before)


def test_fit_writes_checkpoints_and_resumes_exactly(dataset_dir, tmp_path, deterministic):
    from rlinf_isaac.models.gr00t.checkpoint import load_pretrained
    from rlinf_isaac.models.gr00t.processor import GR00TProcessor

    full = SFTTrainer(_cfg(dataset_dir, tmp_path / "full", 4))
    metrics = full.fit()
    assert np.isfinite(metrics["sft/loss"]) and full.step == 4
    final = tmp_path / "full" / "final"
    for rel in ("config.json", "experiment_cfg/metadata.json", "tokenizer.json", "sft_config.json"):
        assert (final / rel).is_file(), rel
    assert find_latest_checkpoint(tmp_path / "full").name == "checkpoint-4"
    assert list((tmp_path / "full" / "tensorboard").glob("events.out.tfevents.*"))
    assert not [p for p in (tmp_path / "full").iterdir() if ".tmp" in p.name]
    meta = json.loads((final / "experiment_cfg/metadata.json").read_text())
    stats = meta["new_embodiment"]["statistics"]["action"]
    lo = min(v for s in stats.values() for v in s["min"])
    assert lo >= -1.0  # actions of the fixture lie in [-1, 1]
    # the saved checkpoint loads with its processor and reproduces the trained weights
    model, metadata = load_pretrained(final)
    GR00TProcessor.from_pretrained(final, model.config, metadata)
    for (k, v), (k2, v2) in zip(sorted(model.state_dict().items()), sorted(full.model.state_dict().items())):
        assert k == k2 and torch.equal(v, v2)

    # resume: a run of 4 steps interrupted after step 2, a new trainer continues -> bit-identical
    interrupted = SFTTrainer(_cfg(dataset_dir, tmp_path / "resumed", 4))
    interrupted.train_step()
    interrupted.train_step()
    interrupted.save_checkpoint("checkpoint-2")
    del interrupted
    resumed = SFTTrainer(_cfg(dataset_dir, tmp_path / "resumed", 4))
    resumed.fit()
    assert resumed.step == 4
    for (k, v), (_, v2) in zip(sorted(resumed.model.state_dict().items()), sorted(full.model.state_dict().items())):
        assert torch.equal(v, v2), k


def test_time_budget_ends_training_annealed_and_resumes_with_the_time_spent(dataset_dir, tmp_path):
    # every step takes 1 s on the fake clock (read before and after it); budget 3 s of 100 steps
    trainer = SFTTrainer(_cfg(dataset_dir, tmp_path / "t", 100, max_seconds=3.0), clock=_FakeClock(1.0))
    metrics = trainer.fit()
    assert trainer.step == 3 and trainer.elapsed_s == pytest.approx(3.0)
    # warm-up step 0 at lr0 * 1; step 1 after 1 s: (1 + cos(pi / 3)) / 2 = 0.75; step 2: 0.25
    assert metrics["sft/lr"] == pytest.approx(3e-4 * 0.25)
    assert metrics["sft/progress"] == pytest.approx(2 / 3)
    assert trainer.progress() == 1.0
    assert find_latest_checkpoint(tmp_path / "t").name == "checkpoint-3"
    assert (tmp_path / "t" / "final" / "config.json").is_file()
    # checkpoint-2 holds the 2 s spent by then; a resumed run spends the last second only
    resumed = SFTTrainer(_cfg(dataset_dir, tmp_path / "t", 100, max_seconds=3.0), clock=_FakeClock(1.0))
    resumed.load_checkpoint(tmp_path / "t" / "checkpoint-2")
    assert (resumed.step, resumed.elapsed_s) == (2, pytest.approx(2.0))
    resumed.fit()  # resumes from checkpoint-3: nothing left to do
    assert resumed.step == 3


def _fixed_loss(trainer) -> float:
    """Loss on a fixed batch with fixed times/noise (dropout off)."""
    trainer.model.eval()
    inputs, actions, mask = trainer.batch_inputs(0)
    torch.manual_seed(123)
    with torch.no_grad():
        return trainer.loss(inputs, actions, mask).item()


def test_loss_decreases_when_overfitting(dataset_dir, tmp_path):
    trainer = SFTTrainer(SFTConfig(dataset=str(dataset_dir), out=str(tmp_path), steps=60, batch_size=8,
                                   lr=1e-3, warmup_steps=2, progress=False, save_every=1000,
                                   tune_visual=False, tune_llm=False))
    before = _fixed_loss(trainer)
    for _ in range(60):
        trainer.train_step()
    after = _fixed_loss(trainer)
    print(before, after)
    assert after < 0.9 * before


def test_train_dropout_switch(dataset_dir, tmp_path):
    # gr00t_tiny configures p = 0.2 in the DiT and the VL self-attention; --no-train-dropout
    # trains with every nn.Dropout at p = 0 (what RL and evaluation use anyway)
    def rates(trainer):
        return {m.p for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout)}

    assert 0.2 in rates(SFTTrainer(_cfg(dataset_dir, tmp_path / "on", 1)))
    off = SFTTrainer(_cfg(dataset_dir, tmp_path / "off", 1, train_dropout=False))
    assert rates(off) == {0.0}
    off.model.train()
    inputs, actions, mask = off.batch_inputs(0)
    # with p = 0 the training loss is a deterministic function of the RNG state (same times/noise)
    torch.manual_seed(7)
    first = off.loss(inputs, actions, mask).item()
    torch.manual_seed(7)
    assert off.loss(inputs, actions, mask).item() == first


def test_evaluate_cli_reports_success_rate_json(dataset_dir, tmp_path, capsys):
    from rlinf_isaac.sft.evaluate import main

    SFTTrainer(_cfg(dataset_dir, tmp_path / "run", 1)).fit()
    with pytest.raises(SystemExit):  # not a checkpoint directory: named
        main([str(tmp_path), "--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0"])
    assert "not a checkpoint directory" in capsys.readouterr().err
    rc = main([str(tmp_path / "run" / "final"), "--task", "MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0",
               "--episodes", "3", "--num-envs", "2", "--max-episode-steps", "16", "--json", str(tmp_path / "e.jsonl"),
               "--stages"])
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and line["episodes"] == 3 and 0.0 <= line["success_rate"] <= 1.0
    assert line["wilson95"][0] <= line["success_rate"] <= line["wilson95"][1]
    assert list(line["stages"]) == ["cube_red_on_cube_blue"]
    assert line["success_rate"] <= line["stages"]["cube_red_on_cube_blue"] <= 1.0
    assert json.loads((tmp_path / "e.jsonl").read_text()) == line


def test_stage_tracker_counts_each_pair_built_once_per_episode():
    from rlinf_isaac.sft.evaluate import StageTracker
    from rlinf_isaac.tasks.stack_cube import STACK_THREE

    s = STACK_THREE.cube_size
    blue, red, green = (STACK_THREE.cube_index(f"cube_{c}") for c in ("blue", "red", "green"))
    pos = np.zeros((3, 3, 3))  # [B, N, 3]: cubes apart on the table
    pos[:, :, 0] = [0.4, 0.5, 0.6]
    pos[:, :, 2] = s / 2
    tracker = StageTracker(STACK_THREE, 3)
    assert tracker.names == ["cube_red_on_cube_blue", "cube_green_on_cube_red"]
    pos[0, red] = pos[0, blue] + [s / 3, 0, s]  # env 0: red on blue, 1.6 cm off centre (< the 4 cm of the success rule)
    pos[1, red] = pos[1, blue] + [0, 0, s + 0.015]  # env 1: 1.5 cm too high (> the 5 mm tolerance)
    tracker.see(pos)
    pos[0, red] = [0.5, 0.2, s / 2]  # env 0's red falls off: built once stays built
    tracker.see(pos)
    tracker.end(np.array([0, 1, 2]), np.array([0, 1]), np.array([False, False, True]))  # env 2 past the count
    assert tracker.counts.tolist() == [1, 0] and not tracker.built.any()
    tracker.end(np.array([2]), np.array([2]), np.array([False, False, True]))  # a success counts every pair
    assert tracker.counts.tolist() == [2, 1] and tracker.rates(4) == {"cube_red_on_cube_blue": 0.5, "cube_green_on_cube_red": 0.25}


def test_evaluate_cli_keeps_the_simulation_device_apart_from_the_policys(dataset_dir, tmp_path, capsys, monkeypatch):
    """An Isaac Lab task: --sim-device goes to the env as its device, --device to the policy."""
    import rlinf_isaac.envs.registry as registry
    from rlinf_isaac.sft.evaluate import main

    SFTTrainer(_cfg(dataset_dir, tmp_path / "run", 1)).fit()
    seen = {}
    real = registry.make_env

    def recording_make_env(task_id, **kwargs):  # the Isaac task's arguments, played on the MuJoCo task
        seen.update(task=task_id, **kwargs)
        keep = {k: v for k, v in kwargs.items() if k not in ("device", "stack", "python")}
        return real("MuJoCo-Stack-Two-Cube-Franka-IK-Rel-Visuomotor-v0", **keep)

    monkeypatch.setattr(registry, "make_env", recording_make_env)
    rc = main([str(tmp_path / "run" / "final"), "--task", "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor",
               "--episodes", "2", "--num-envs", "2", "--max-episode-steps", "8", "--device", "cpu",
               "--sim-device", "cuda:3", "--isaaclab-stack", "newton"])
    assert rc == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 2
    assert seen["device"] == "cuda:3" and seen["stack"] == "newton" and seen["python"] is None


def test_shift_images_moves_content_by_at_most_pad_pixels():
    from rlinf_isaac.sft.trainer import shift_images

    img = torch.zeros(8, 12, 12, 3, dtype=torch.uint8)
    img[:, 5, 6] = 255  # one bright pixel at (5, 6), far from the edges
    assert torch.equal(shift_images(img, 0, torch.Generator()), img)
    out = shift_images(img, 3, torch.Generator().manual_seed(0))
    assert out.shape == img.shape and out.dtype == torch.uint8
    moves = set()
    for b in range(8):
        (y, x), = (out[b, :, :, 0] == 255).nonzero().tolist()  # exactly one bright pixel survives
        assert abs(y - 5) <= 3 and abs(x - 6) <= 3
        moves.add((y, x))
    assert len(moves) > 1  # images of a batch get different shifts
    again = shift_images(img, 3, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # a seeded generator reproduces the batch (exact resume)


def test_sampler_restricted_to_chosen_episodes_and_unchanged_by_default():
    lengths = [3, 2, 4]
    full = EpisodeWindowSampler(lengths, batch_size=2, window=3, seed=0)
    same = EpisodeWindowSampler(lengths, batch_size=2, window=3, seed=0, episodes=[0, 1, 2])
    assert torch.equal(full.epoch_order(0), same.epoch_order(0))  # default = every episode
    sub = EpisodeWindowSampler(lengths, batch_size=2, window=3, seed=0, episodes=[0, 2])
    assert sub.num_frames == 7 and sorted(sub.epoch_order(0).tolist()) == [0, 1, 2, 5, 6, 7, 8]
    with pytest.raises(ValueError, match="no episodes"):
        EpisodeWindowSampler(lengths, batch_size=2, window=3, seed=0, episodes=[])
