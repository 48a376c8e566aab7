"""ChunkStepper (the Isaac Lab adapter core) against the manager-based fake, in-process."""

import math

import pytest
import torch

from rlinf_isaac.envs.isaaclab.sim.stepper import (
    ChunkStepper,
    StepperCfg,
    binarize_gripper,
    layer_seed,
    quat_to_axis_angle,
    seed_layers,
    to_wxyz,
)
from tests.envs.isaaclab.fake_isaaclab import CUBE, build_fake_env

TASK = "IsaacContrib-Stack-Cube-Franka-IK-Rel-Visuomotor"


def make(num_envs=3, steps=40, reward="sparse", quat_order="wxyz", auto_reset=True, hw=(24, 24),
         reset_seeding="batched"):
    built = build_fake_env(TASK, num_envs, hw, steps, reward, quat_order=quat_order)
    cfg = StepperCfg(instruction="stack", image_size=hw, quat_order=quat_order,
                     max_episode_steps=steps, auto_reset=auto_reset, reset_seeding=reset_seeding)
    return ChunkStepper(built["env"], cfg), built["env"]


def toward(env, e, target, grip, scale=0.5):
    """One action row moving env e's ee toward ``target`` (moves scale * a per step, |a| <= 1)."""
    a = torch.zeros(7)
    a[:3] = ((torch.as_tensor(target) - env.ee_pos[e]) / scale).clamp(-1, 1)
    a[6] = grip
    return a


def test_quaternion_orders_and_axis_angle():
    # 90 deg about z: q = (cos 45, 0, 0, sin 45) -> axis-angle (0, 0, pi/2)
    c = math.cos(math.pi / 4)
    wxyz = torch.tensor([[c, 0.0, 0.0, c]])
    xyzw = torch.tensor([[0.0, 0.0, c, c]])
    assert torch.allclose(to_wxyz(xyzw, "xyzw"), wxyz)
    assert torch.allclose(quat_to_axis_angle(wxyz), torch.tensor([[0, 0, math.pi / 2]]), atol=1e-6)
    # -q, the same rotation, is read as 2 pi - 90 deg = 270 deg about -z (robosuite's quat2axisangle)
    assert torch.allclose(quat_to_axis_angle(-wxyz), torch.tensor([[0, 0, -3 * math.pi / 2]]), atol=1e-5)
    # 180 deg about x -> (pi, 0, 0); identity -> 0
    q = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert torch.allclose(quat_to_axis_angle(q), torch.tensor([[math.pi, 0, 0], [0, 0, 0]]), atol=1e-6)
    # a hand tilting through pointing down: q = (sin e, cos e, 0, 0) for e = -0.01 .. 0.01 rotates by
    # pi - 2e about x, a path through w = 0; its axis-angle (pi - 2e, 0, 0) has no jump
    e = torch.linspace(-0.01, 0.01, 5)
    path = torch.stack([torch.sin(e), torch.cos(e), torch.zeros(5), torch.zeros(5)], dim=-1)
    expect = torch.stack([math.pi - 2 * e, torch.zeros(5), torch.zeros(5)], dim=-1)
    assert torch.allclose(quat_to_axis_angle(path), expect, atol=1e-5)
    with pytest.raises(ValueError, match="quaternion order"):
        to_wxyz(wxyz, "zyxw")


def test_binarize_gripper():
    a = torch.tensor([[0.3, 0, 0, 0, 0, 0, -0.01], [0.3, 0, 0, 0, 0, 0, 0.0]])
    out = binarize_gripper(a)
    assert out[:, 6].tolist() == [-1.0, 1.0] and torch.equal(out[:, :6], a[:, :6])


@pytest.mark.parametrize("order", ["wxyz", "xyzw"])
def test_obs_contract_and_quat_order_normalised(order):
    stepper, env = make(quat_order=order, hw=(20, 28))
    obs = stepper.reset(seed=0)
    assert obs["main_images"].shape == (3, 20, 28, 3) and obs["main_images"].dtype == torch.uint8
    assert obs["wrist_images"].shape == (3, 20, 28, 3) and obs["states"].shape == (3, 8)
    assert obs["task_descriptions"] == ["stack"] * 3
    # the fake starts pointing down: q = (0, 1, 0, 0) WXYZ -> axis-angle (pi, 0, 0), either order
    assert torch.allclose(obs["states"][:, 3:6], torch.tensor([math.pi, 0, 0]).expand(3, 3), atol=1e-5)
    assert torch.allclose(obs["states"][:, :3], env.ee_pos)
    assert torch.allclose(obs["states"][:, 6:], torch.tensor([0.04, -0.04]).expand(3, 2))


def test_same_reset_state_id_gives_identical_start_in_any_env():
    stepper, env = make(num_envs=4)
    obs = stepper.reset(reset_state_ids=[7, 7, 9, 7])
    for k in ("main_images", "wrist_images", "states"):
        assert torch.equal(obs[k][0], obs[k][1]) and torch.equal(obs[k][0], obs[k][3])
    assert not torch.equal(obs["states"][0], obs["states"][2])
    cubes = env.cube_pos.clone()
    # id 7 again, now in env 2 only: same state as before, whatever the batch
    obs2 = stepper.reset(reset_state_ids=[7], env_ids=[2])
    assert torch.equal(obs2["states"][2], obs["states"][0]) and torch.equal(env.cube_pos[2], cubes[0])
    # global RNG streams are left alone by the per-env seeding
    torch.manual_seed(123)
    expect = torch.rand(1)
    torch.manual_seed(123)
    stepper.reset(reset_state_ids=[1, 2, 3, 4])
    assert torch.equal(torch.rand(1), expect)


def test_seed_layers_put_each_shared_id_once_per_layer_with_one_id_sequence():
    # 9 once: one layer; 7 and 3 twice: two layers, both with the id sequence (7, 3)
    assert seed_layers([7, 3, 7, 3, 9]) == [[4], [0, 1], [2, 3]]
    assert seed_layers([7, 3, 7, 3, 9], per_env=True) == [[0], [1], [2], [3], [4]]
    assert seed_layers([4, 5, 6]) == [[0, 1, 2]]  # distinct ids: one call for the whole reset
    groups = [11] * 8 + [12] * 8 + [13] * 8  # GRPO: 3 groups of 8 -> 8 layers of ids (11, 12, 13)
    layers = seed_layers(groups)
    assert len(layers) == 8 and all([groups[p] for p in layer] == [11, 12, 13] for layer in layers)


def test_layer_seed_folds_the_ids_and_matches_the_per_env_seed_for_one_id():
    m, p = 1_000_003, 2**31 - 1
    assert layer_seed([5], 0) == 5 * m % p and layer_seed([5], 2) == (5 * m + 2 * 7919) % p
    assert layer_seed([5, 6], 1) == ((5 * m + 6) * m + 7919) % p
    assert layer_seed([5, 6], 1) != layer_seed([6, 5], 1)


def _term_calls(env) -> list[int]:
    """Count the calls of every reset event term (wrapped below the stepper's seeding)."""
    calls = []
    for term in env.event_manager._mode_term_cfgs["reset"]:
        inner = term.func.__wrapped__

        def counted(env_, ids, *a, _inner=inner, **kw):
            calls.append(len(ids))
            return _inner(env_, ids, *a, **kw)

        term.func.__wrapped__ = counted
    return calls


@pytest.mark.parametrize("seeding", ["batched", "per_env"])
def test_groups_sharing_an_id_start_identically_and_resets_reproduce(seeding):
    stepper, env = make(num_envs=6, reset_seeding=seeding)
    calls = _term_calls(env)
    ids = [5, 6, 5, 6, 5, 6]
    obs = stepper.reset(reset_state_ids=ids)
    n_terms = len(env.event_manager._mode_term_cfgs["reset"])
    # batched: 3 layers of (5, 6) per term; per_env: one call per env
    assert calls == ([2] * 3 * n_terms if seeding == "batched" else [1] * 6 * n_terms)
    for a, b in ((0, 2), (0, 4), (1, 3), (1, 5)):
        assert torch.equal(obs["states"][a], obs["states"][b]) and torch.equal(env.cube_pos[a], env.cube_pos[b])
    assert not torch.equal(env.cube_pos[0], env.cube_pos[1])
    cubes = env.cube_pos.clone()
    again = stepper.reset(reset_state_ids=ids)  # the same ids in the same order: the same starts
    assert torch.equal(again["states"], obs["states"]) and torch.equal(env.cube_pos, cubes)


def test_per_env_seeding_makes_an_id_one_start_whatever_is_reset_with_it():
    alone, env_a = make(num_envs=1, reset_seeding="per_env")
    mixed, env_m = make(num_envs=2, reset_seeding="per_env")
    alone.reset(reset_state_ids=[5])
    mixed.reset(reset_state_ids=[6, 5])
    assert torch.equal(env_m.cube_pos[1], env_a.cube_pos[0])
    batched, env_b = make(num_envs=2)  # batched: 5 after 6 in one call draws other numbers
    batched.reset(reset_state_ids=[6, 5])
    assert not torch.equal(env_b.cube_pos[1], env_a.cube_pos[0])
    with pytest.raises(ValueError, match="reset_seeding"):
        StepperCfg(instruction="stack", reset_seeding="per_batch")


def test_seed_makes_drawn_ids_reproducible():
    s1, _ = make()
    s2, _ = make()
    o1, o2 = s1.reset(seed=5), s2.reset(seed=5)
    assert torch.equal(s1.state_ids, s2.state_ids) and torch.equal(o1["states"], o2["states"])
    s2.reset(seed=6)
    assert not torch.equal(s1.state_ids, s2.state_ids)


def test_truncation_masks_rest_of_chunk_and_auto_resets_to_pending_id():
    stepper, env = make(num_envs=2, steps=5)
    stepper.reset(seed=0)
    pending = stepper.pending_ids.clone()
    r = stepper.chunk_step(torch.zeros(2, 8, 7))
    # episode of 5 steps inside a chunk of 8: sub-step 4 truncated, 5..7 invalid and zero
    assert r["truncated"][:, 4].all() and r["truncated"].sum() == 2 and not r["terminated"].any()
    assert r["info"]["valid"][:, :5].all() and not r["info"]["valid"][:, 5:].any()
    ep = r["info"]["episode"]
    assert ep.done.all() and ep.episode_len.tolist() == [5, 5]
    assert torch.equal(r["info"]["reset_state_ids"], pending)
    # the returned obs is the first obs of the new episode: reset again to the same id
    fresh = stepper.reset(reset_state_ids=pending, env_ids=[0, 1])
    assert torch.equal(r["obs"]["states"], fresh["states"])
    assert torch.equal(r["obs"]["main_images"], fresh["main_images"])
    assert r["info"]["final_obs"] is not None and not torch.equal(r["info"]["final_obs"]["states"], r["obs"]["states"])


def _stack_script(env, e):
    """Scripted actions (list of [7]) that stack cube_2 on cube_1 then cube_3 on cube_2."""
    c = env.cube_pos[e].clone()
    acts = []

    def go(target, grip, n=8):
        for _ in range(n):
            acts.append((tuple(target.tolist()), grip))

    for k, base in ((1, 0), (2, 1)):
        go(c[k] + torch.tensor([0, 0, 0.1]), 1.0)
        go(c[k], 1.0)
        go(c[k], -1.0, 1)
        go(c[base] + torch.tensor([0, 0, CUBE + 0.05]), -1.0)
        go(c[base] + torch.tensor([0, 0, CUBE]), -1.0)
        go(c[base] + torch.tensor([0, 0, CUBE]), 1.0, 1)
        if k == 2:
            break
        c[1] = c[0] + torch.tensor([0, 0, CUBE])
    return acts


def _run_script(stepper, env, script_env, steps_per_chunk=16, extra=4):
    """Drive env ``script_env`` with the stacking script (others hold still); returns results."""
    script = _stack_script(env, script_env)
    script += [script[-1]] * extra
    return [
        _step_closed_loop(stepper, env, script_env, script[s:s + steps_per_chunk], stepper.B)
        for s in range(0, len(script), steps_per_chunk)
    ]


def _step_closed_loop(stepper, env, e, segment, B):
    # one chunk where each sub-step's action for env e is computed on the fly (scripted expert)
    orig_step = env.step

    def step(action):
        i = step.i
        step.i += 1
        if i < len(segment):
            target, grip = segment[i]
            action = action.clone()
            action[e] = toward(env, e, target, grip)
        return orig_step(action)

    step.i = 0
    env.step = step
    try:
        chunk = torch.zeros(B, max(len(segment), 1), 7)
        chunk[:, :, 6] = 1.0
        return stepper.chunk_step(chunk)
    finally:
        env.step = orig_step


def test_success_only_from_success_term_and_staged_rewards():
    stepper, env = make(num_envs=2, steps=200, reward="staged")
    stepper.reset(reset_state_ids=[3, 3])
    results = _run_script(stepper, env, script_env=0)
    success = torch.cat([r["info"]["success"] for r in results], dim=1)
    term = torch.cat([r["terminated"] for r in results], dim=1)
    reward = torch.cat([r["reward"] for r in results], dim=1)
    hit = success[0].nonzero().flatten()
    assert hit.numel() == 1 and bool(term[0, hit[0]])  # success ends the episode once
    assert not success[1].any() and not term[1].any()  # env 1 held still
    # staged: 0.002 per grasp_1 step, 0.005 per stack_1 step, 0.002 per grasp_2 step, and
    # 1.0 for success. At the success step both cubes rest (no grasp) and cube_2 sits on
    # cube_1 (stack_1 holds): 1.0 + 0.005 = 1.005
    assert reward[0, hit[0]] == pytest.approx(1.005, abs=1e-5)
    shaped = reward[0, : hit[0]]
    assert shaped.max() <= 0.002 + 0.005 + 1e-6 and shaped.sum() > 0.01
    assert reward[1].abs().sum() == 0
    done_stats = [r["info"]["episode"] for r in results if r["info"]["episode"].done[0]]
    assert len(done_stats) == 1 and bool(done_stats[0].success_once[0])
    assert done_stats[0].returns[0] == pytest.approx(float(reward[0].sum()), abs=1e-5)
    assert int(done_stats[0].episode_len[0]) == int(hit[0]) + 1


def test_dropped_cube_terminates_without_success():
    stepper, env = make(num_envs=1, steps=100, reward="sparse")
    stepper.reset(reset_state_ids=[11])
    c1 = env.cube_pos[0, 0].clone()
    edge = torch.tensor([0.5, 0.49, 0.2])  # past the table's edge (|y| > 0.45)
    segment = [(tuple(c1 + torch.tensor([0, 0, 0.1])), 1.0)] * 8 + [(tuple(c1), 1.0)] * 8
    segment += [(tuple(c1), -1.0)] + [(tuple(edge), -1.0)] * 14 + [(tuple(edge), 1.0)]
    r = _step_closed_loop(stepper, env, 0, segment, 1)
    assert r["terminated"][0].sum() == 1
    assert not r["info"]["success"].any() and r["reward"].abs().sum() == 0
    assert not bool(r["info"]["episode"].success_once[0]) and bool(r["info"]["episode"].done[0])
    # final obs was captured before Isaac Lab's internal reset: cube 1 was gone from the table
    assert r["info"]["final_obs"] is not None
    assert not torch.equal(r["info"]["final_obs"]["main_images"], r["obs"]["main_images"])


@pytest.mark.parametrize("isaac_resets", [True, False])
def test_final_obs_rows_are_each_envs_last_observation(isaac_resets):
    """Envs ending at different sub-steps of one chunk, by Isaac Lab's time-out (reset inside the
    step: the hook's rows) or by our step limit (the step's own rows): each env's final row is its
    observation after its episode's last step, as a twin that never ends sees it."""

    def build(isaac_limit, our_limit):
        built = build_fake_env(TASK, 3, (24, 24), isaac_limit, "sparse")  # the fake times out after isaac_limit + 1
        cfg = StepperCfg(instruction="stack", image_size=(24, 24), max_episode_steps=our_limit)
        return ChunkStepper(built["env"], cfg)

    stepper = build(5, 50) if isaac_resets else build(40, 6)  # episodes of 6 steps either way
    twin = build(40, 50)
    acts = torch.rand(3, 9, 7, generator=torch.Generator().manual_seed(0)) - 0.5
    for s in (stepper, twin):
        s.reset(reset_state_ids=[3, 4, 5])
        s.chunk_step(acts[:, :1])
        s.reset(reset_state_ids=[4], env_ids=[1])  # env 1 starts over: it ends one sub-step later
    r = stepper.chunk_step(acts[:, 1:])
    seen = [twin.chunk_step(acts[:, 1 + c:2 + c])["obs"] for c in range(8)]  # after each sub-step
    ep = r["info"]["episode"]
    assert ep.done.all() and ep.episode_len.tolist() == [6, 6, 6]
    final = r["info"]["final_obs"]
    for e, last in ((0, 4), (1, 5), (2, 4)):
        for k in ("main_images", "wrist_images", "states"):
            assert torch.equal(final[k][e], seen[last][k][e]), (e, k)
        assert not torch.equal(final["states"][e], r["obs"]["states"][e])  # the new episode's start differs


def test_final_obs_off_skips_the_capture_and_changes_nothing_else():
    """Without final observations the hook computes nothing inside the step (on a simulator that
    is one render of every camera), ``final_obs`` is None, and every other output equals the
    capturing stepper's; one call can still ask for them."""

    def build(capture):
        built = build_fake_env(TASK, 3, (24, 24), 5, "sparse")  # Isaac Lab's time-out: reset inside the step
        cfg = StepperCfg(instruction="stack", image_size=(24, 24), max_episode_steps=50, capture_final_obs=capture)
        return ChunkStepper(built["env"], cfg), built["env"]

    (off, env_off), (on, env_on) = build(False), build(True)
    calls = {id(env_off): 0, id(env_on): 0}  # observation computes, the step's own included
    for env in (env_off, env_on):
        env.observation_manager.compute_group = _counted(env.observation_manager.compute_group, calls, id(env))
    acts = torch.rand(3, 8, 7, generator=torch.Generator().manual_seed(1)) - 0.5
    for s in (off, on):
        s.reset(reset_state_ids=[3, 4, 5])
    r_off, r_on = off.chunk_step(acts), on.chunk_step(acts)
    assert r_off["info"]["episode"].done.all() and r_off["info"]["final_obs"] is None and not off.hook.rows
    assert r_on["info"]["final_obs"] is not None
    assert calls[id(env_on)] == calls[id(env_off)] + 1  # one reset inside the chunk: one capture saved
    for k in ("main_images", "wrist_images", "states"):
        assert torch.equal(r_off["obs"][k], r_on["obs"][k]), k
    for k in ("reward", "terminated", "truncated"):
        assert torch.equal(r_off[k], r_on[k]), k
    assert torch.equal(r_off["info"]["episode"].returns, r_on["info"]["episode"].returns)
    r_asked, r_on = off.chunk_step(acts, final_obs=True), on.chunk_step(acts)
    assert torch.equal(r_asked["info"]["final_obs"]["states"], r_on["info"]["final_obs"]["states"])
    assert calls[id(env_on)] == calls[id(env_off)] + 1  # both captured this time


def _counted(fn, calls, key):
    def wrapped(*args, **kwargs):
        calls[key] += 1
        return fn(*args, **kwargs)

    return wrapped


def test_without_auto_reset_final_obs_is_always_captured():
    built = build_fake_env(TASK, 2, (24, 24), 40, "sparse")
    cfg = StepperCfg(instruction="stack", image_size=(24, 24), max_episode_steps=3, auto_reset=False,
                     capture_final_obs=False)
    stepper = ChunkStepper(built["env"], cfg)
    stepper.reset(seed=0)
    r = stepper.chunk_step(torch.zeros(2, 4, 7), final_obs=False)
    assert r["info"]["final_obs"] is not None and torch.equal(r["obs"]["states"], r["info"]["final_obs"]["states"])


def test_in_place_done_buffers_are_cloned():
    stepper, env = make(num_envs=2, steps=3)
    stepper.reset(seed=0)
    r1 = stepper.chunk_step(torch.zeros(2, 3, 7))
    snapshot = r1["truncated"].clone()
    stepper.chunk_step(torch.zeros(2, 3, 7))
    assert torch.equal(r1["truncated"], snapshot) and snapshot[:, 2].all()
    assert env.reset_time_outs.data_ptr() != r1["truncated"].data_ptr()


def test_no_auto_reset_freezes_finished_envs():
    stepper, env = make(num_envs=2, steps=3, auto_reset=False)
    stepper.reset(seed=0)
    r1 = stepper.chunk_step(torch.zeros(2, 4, 7))
    assert r1["info"]["valid"][:, :3].all() and not r1["info"]["valid"][:, 3].any()
    assert torch.equal(r1["obs"]["states"], r1["info"]["final_obs"]["states"])
    r2 = stepper.chunk_step(torch.zeros(2, 4, 7))
    assert not r2["info"]["valid"].any() and not r2["info"]["episode"].done.any()
    assert torch.equal(r2["obs"]["states"], r1["obs"]["states"])
    obs = stepper.reset(env_ids=[1])
    r3 = stepper.chunk_step(torch.zeros(2, 1, 7))
    assert r3["info"]["valid"][:, 0].tolist() == [False, True]
    assert not torch.equal(obs["states"][1], r1["obs"]["states"][1])


def test_actions_reach_env_as_n_by_7_with_binary_gripper():
    stepper, env = make(num_envs=2)
    stepper.reset(seed=0)
    a = torch.zeros(2, 1, 7)
    a[:, 0, 6] = torch.tensor([-0.2, 0.7])
    stepper.chunk_step(a)
    assert env.last_action.shape == (2, 7) and env.last_action[:, 6].tolist() == [-1.0, 1.0]
    with pytest.raises(ValueError, match="shape"):
        stepper.chunk_step(torch.zeros(2, 1, 6))
