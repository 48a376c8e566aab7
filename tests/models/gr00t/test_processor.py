"""GR00TProcessor: shapes, fixed prompt length, image/state/action transforms, normalisation modes."""

import json

import numpy as np
import pytest
import torch

from rlinf_isaac.models.gr00t.processor import (
    GR00TProcessor,
    Normalizer,
    compute_statistics,
    load_metadata,
)
from rlinf_isaac.models.gr00t.tokenizer import build_tiny_tokenizer

SHORT = "Stack the red cube on the blue cube."
LONG = "Stack the red cube on the blue cube, then the green cube on the red cube."


def stats(lo, hi, mean=None, std=None, q01=None, q99=None):
    d = len(lo)
    return {"min": lo, "max": hi, "mean": mean or [0.0] * d, "std": std or [1.0] * d,
            "q01": q01 or lo, "q99": q99 or hi}


STATE_STATS = {"eef_position": stats([0.0, -1.0, 0.0], [1.0, 1.0, 0.5]),
               "eef_rotation": stats([-3.0] * 3, [3.0] * 3),
               "gripper": stats([0.0, 0.0], [0.04, 0.04])}
ACTION_STATS = {"eef_position_delta": stats([-0.5] * 3, [0.5] * 3),
                "eef_rotation_delta": stats([-1.0] * 3, [1.0] * 3),
                "gripper": stats([-1.0], [1.0])}


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


def make(tok, **kw):
    cfg = dict(image_size=56, num_image_tokens=16, max_length=80, image_token_index=6)
    return GR00TProcessor(tok, STATE_STATS, ACTION_STATS, **{**cfg, **kw})


def obs(b=3, h=84):
    g = torch.Generator().manual_seed(0)
    return {"main_images": torch.randint(0, 256, (b, h, h, 3), dtype=torch.uint8, generator=g),
            "wrist_images": torch.randint(0, 256, (b, h, h, 3), dtype=torch.uint8, generator=g),
            "states": torch.rand(b, 8, generator=g), "task_descriptions": [SHORT, LONG, SHORT][:b]}


def test_output_shapes_and_fixed_length(tok):
    p = make(tok)
    out = p(obs())
    assert out["pixel_values"].shape == (3, 2, 3, 56, 56) and out["pixel_values"].dtype == torch.float32
    assert out["input_ids"].shape == (3, 80) and out["input_ids"].dtype == torch.int64
    assert out["attention_mask"].shape == (3, 80)
    assert out["state"].shape == (3, 1, 64) and out["state_mask"].shape == (3, 1, 64)
    assert out["state_mask"][:, 0, :8].all() and not out["state_mask"][:, 0, 8:].any()
    assert out["embodiment_id"].tolist() == [31, 31, 31]
    n_tokens = out["attention_mask"].sum(1)
    assert n_tokens[0] == n_tokens[2] < n_tokens[1]  # LONG needs more tokens, same padded L
    ids = out["input_ids"][1]
    assert (ids == 6).sum() == 2 * 16 and (ids == 4).sum() == 2 and (ids == 5).sum() == 2
    first = int((ids == 4).nonzero()[0])
    assert ids[first + 1: first + 17].eq(6).all() and ids[first + 17] == 5  # <img> 16 x ctx </img>
    assert (ids[n_tokens[1]:] == 0).all()  # right padding with pad id 0
    # same instruction -> identical rows (rollout and training see the same tokens)
    assert torch.equal(out["input_ids"][0], out["input_ids"][2])


def test_prompt_too_long_names_needed_length(tok):
    p = make(tok, max_length=40)
    need = len(tok(p.prompt(LONG), add_special_tokens=False)["input_ids"])
    with pytest.raises(ValueError, match=f"needs {need} tokens.*max_length >= {need}"):
        p(obs())


def test_batch_tokenization_equals_each_instruction_alone_and_leaves_the_cache_intact(tok):
    p = make(tok, padding_side="left")
    texts = [SHORT, LONG, SHORT, SHORT, LONG]
    ids, mask = p.tokenize(texts)
    for b, text in enumerate(texts):
        alone = tok(p.prompt(text), add_special_tokens=False)["input_ids"]
        n = len(alone)
        assert ids[b, -n:].tolist() == alone and (ids[b, :-n] == p.pad_token_id).all()
        assert mask[b].tolist() == [0] * (80 - n) + [1] * n
    ids[:] = -1  # the caller owns its copy: the cached rows are untouched
    again, _ = p.tokenize([SHORT, LONG])
    assert torch.equal(again, p.tokenize([SHORT, LONG])[0]) and (again >= 0).all()
    assert p.tokenize([])[0].shape == (0, 80)


def test_a_batch_of_more_distinct_instructions_than_the_cache_holds(tok):
    p = make(tok)
    texts = [f"task {i}" for i in range(1030)]  # more than the 1,024 rows kept
    ids, mask = p.tokenize(texts)
    assert ids.shape == (1030, 80) and len(p._prompt_cache) == 1024
    for b in (0, 1029):
        n = int(mask[b].sum())
        assert ids[b, :n].tolist() == tok(p.prompt(texts[b]), add_special_tokens=False)["input_ids"]


def test_images_resized_and_siglip_normalised(tok):
    p = make(tok)
    o = obs(1)
    o["main_images"] = torch.full((1, 84, 84, 3), 255, dtype=torch.uint8)
    o["wrist_images"] = torch.zeros((1, 84, 84, 3), dtype=torch.uint8)
    px = p(o)["pixel_values"]
    # constant images stay constant through resize; (255/255 - 0.5)/0.5 = 1, (0 - 0.5)/0.5 = -1
    torch.testing.assert_close(px[0, 0], torch.ones(3, 56, 56))
    torch.testing.assert_close(px[0, 1], -torch.ones(3, 56, 56))
    # crop 0.5 of a left-black/right-white image keeps the centre: columns 21..62 of 84
    img = torch.zeros((1, 84, 84, 3), dtype=torch.uint8)
    img[:, :, 42:] = 255
    crop = make(tok, crop_scale=0.5, image_size=42).images(img)
    assert crop.shape == (1, 3, 42, 42)
    assert crop[0, 0, 0, 0] == -1 and crop[0, 0, 0, -1] == 1  # centre crop, no resize needed


def test_state_min_max_hand_values(tok):
    p = make(tok)
    st = torch.tensor([[0.5, 0.0, 0.5, 3.0, -3.0, 0.0, 0.02, 0.04]])
    out, _ = p.normalize_state(st)
    # eef_position: 2 * (0.5 - 0) / 1 - 1 = 0; 2 * (0 + 1) / 2 - 1 = 0; 2 * 0.5 / 0.5 - 1 = 1
    # eef_rotation: +-3 -> +-1, 0 -> 0; gripper: 0.02 / 0.04 -> 0, 0.04 -> 1
    expected = torch.tensor([0.0, 0.0, 1.0, 1.0, -1.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(out[0, 0, :8], expected)
    assert (out[0, 0, 8:] == 0).all()


@pytest.mark.parametrize("mode", ["min_max", "q99", "mean_std"])
def test_round_trip_each_mode(mode):
    rng = np.random.default_rng(0)
    lo, hi = rng.uniform(-2, -1, 4), rng.uniform(1, 3, 4)
    st = {"x": {"min": lo.tolist(), "max": hi.tolist(), "mean": [0.3, -0.2, 0.1, 0.0],
                "std": [0.5, 2.0, 1.5, 0.7], "q01": (lo * 0.9).tolist(), "q99": (hi * 0.9).tolist()}}
    n = Normalizer(st, {"x": mode})
    # inside [q01, q99] (so q99 does not clip): u in [0.05, 0.95] of the q01..q99 span
    u = torch.from_numpy(rng.uniform(0.05, 0.95, (5, 16, 4)))
    x = (torch.from_numpy(lo * 0.9) + u * torch.from_numpy((hi - lo) * 0.9)).float()
    y = n.forward(x)
    if mode != "mean_std":
        assert y.abs().max() <= 1.0
    torch.testing.assert_close(n.inverse(y), x, rtol=0, atol=1e-6)


def test_q99_clips_and_degenerate_dims_follow_gr00t():
    st = {"a": stats([0.0, 5.0], [10.0, 5.0], mean=[1.0, 2.0], std=[2.0, 0.0],
                     q01=[1.0, 5.0], q99=[9.0, 5.0])}
    x = torch.tensor([[0.0, 5.0], [10.0, 0.3], [5.0, 7.0]])
    q = Normalizer(st, {"a": "q99"}).forward(x)
    # dim 0: 2 (x - 1) / 8 - 1 -> 0 -> -1.25 clipped to -1; 10 -> 1.25 clipped to 1; 5 -> 0
    # dim 1: q01 == q99 -> the raw value, clipped: 5 -> 1, 0.3 -> 0.3, 7 -> 1
    torch.testing.assert_close(q, torch.tensor([[-1.0, 1.0], [1.0, 0.3], [0.0, 1.0]]))
    inv = Normalizer(st, {"a": "q99"}).inverse(q)
    assert inv[0, 0] == 1.0 and inv[1, 0] == 9.0  # clipped values come back as q01 / q99
    mm = Normalizer(st, {"a": "min_max"}).forward(x)
    assert (mm[:, 1] == 0).all()  # max == min -> 0
    ms = Normalizer(st, {"a": "mean_std"})
    torch.testing.assert_close(ms.forward(x)[:, 1], x[:, 1])  # std == 0 -> passed through
    torch.testing.assert_close(ms.forward(x)[:, 0], (x[:, 0] - 1) / 2)
    with pytest.raises(ValueError, match="statistics.a: normalisation mode 'q95'"):
        Normalizer(st, {"a": "q95"})


def test_actions_pad_mask_and_gripper_binarised(tok):
    p = make(tok)
    a = torch.zeros(2, 16, 7)
    a[..., :3] = 0.25
    a[0, :, 6], a[1, :, 6] = -1.0, 1.0
    step_mask = torch.ones(2, 16, dtype=torch.bool)
    step_mask[1, 10:] = False
    norm, mask = p.normalize_actions(a, step_mask)
    assert norm.shape == (2, 16, 32) and mask.shape == (2, 16, 32)
    torch.testing.assert_close(norm[0, 0, :3], torch.full((3,), 0.5))  # 2 * 0.75 - 1
    assert (norm[..., 7:] == 0).all() and not mask[..., 7:].any()
    assert mask[0, :, :7].all() and mask[1, :10, :7].all() and not mask[1, 10:].any()
    back = p.unnormalize_actions(norm)
    torch.testing.assert_close(back, a)
    model_out = norm.clone()
    model_out[0, :4, 6] = torch.tensor([-0.3, 0.2, 0.0, -1e-4])
    env = p.unnormalize_actions(model_out)
    assert env[0, :4, 6].tolist() == [-1.0, 1.0, 1.0, -1.0]  # < 0 closes, >= 0 opens
    assert env.shape == (2, 16, 7)


def test_metadata_errors_and_file_loading(tok, tmp_path):
    meta = {"new_embodiment": {"statistics": {"state": STATE_STATS, "action": ACTION_STATS}}}
    kw = dict(image_size=56, num_image_tokens=16, max_length=80)
    with pytest.raises(KeyError, match="no embodiment tag 'gr1'.*new_embodiment"):
        GR00TProcessor.from_metadata(meta, "gr1", tok, **kw)
    with pytest.raises(ValueError, match="image_token_index=151669.*maps '<IMG_CONTEXT>' to 6"):
        GR00TProcessor.from_metadata(meta, "new_embodiment", tok, image_token_index=151669, **kw)
    short = {"eef_position": STATE_STATS["eef_position"]}
    with pytest.raises(ValueError, match="statistics.state covers 3 dims"):
        GR00TProcessor(tok, short, ACTION_STATS, **kw)
    (tmp_path / "ckpt" / "experiment_cfg").mkdir(parents=True)
    (tmp_path / "ckpt" / "experiment_cfg" / "metadata.json").write_text(json.dumps(meta))
    p = GR00TProcessor.from_metadata(tmp_path / "ckpt", "new_embodiment", tok, **kw)
    assert p.state_norm.dim == 8 and p.cfg.embodiment_id == 31
    with pytest.raises(FileNotFoundError, match="experiment_cfg/metadata.json"):
        load_metadata(tmp_path / "nothing")


def test_compute_statistics_from_dataset_and_for_model(tmp_path):
    from rlinf_isaac.demos.dataset import LeRobotDatasetWriter
    from rlinf_isaac.models.gr00t.config import load_config
    from rlinf_isaac.sft import LeRobotDataset
    from tests.demos.test_dataset import episode

    with LeRobotDatasetWriter(tmp_path / "ds") as w:
        eps = [episode(6, 0), episode(5, 1)]
        for ep in eps:
            w.add_episode(**ep, success=True)
    meta = compute_statistics(LeRobotDataset(tmp_path / "ds"))
    emb = meta["new_embodiment"]
    assert list(emb["statistics"]["state"]) == ["eef_position", "eef_rotation", "gripper"]
    assert list(emb["statistics"]["action"]) == ["eef_position_delta", "eef_rotation_delta", "gripper"]
    grip = np.concatenate([e["states"][:, 6:8] for e in eps]).astype(np.float64)
    np.testing.assert_allclose(emb["statistics"]["state"]["gripper"]["q99"],
                               np.quantile(grip, 0.99, axis=0), rtol=1e-6)
    assert emb["modalities"]["state"]["eef_rotation"] == {
        "absolute": True, "rotation_type": "axis_angle", "shape": [3], "continuous": True}
    assert emb["modalities"]["action"]["eef_position_delta"]["absolute"] is False
    assert emb["modalities"]["video"]["table"] == {"resolution": [84, 84], "channels": 3, "fps": 20.0}
    p = GR00TProcessor.for_model(load_config("gr00t_tiny"), meta)
    assert p.cfg.image_size == 56 and p.image_token_index == 6
    assert p.cfg.max_length == 2 * (p.cfg.num_image_tokens + 2) + 96
    out = p(obs(2))
    assert out["input_ids"].shape == (2, p.cfg.max_length)
    with pytest.raises(ValueError, match="pass the checkpoint's tokenizer"):
        GR00TProcessor.for_model(load_config("gr00t_n1_5"))
