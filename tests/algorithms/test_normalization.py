"""Advantage normalisation: single process by hand, and across a 2-process gloo group."""

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rlinf_isaac.algorithms.normalization import global_mean_std, normalize_advantages


def test_single_process_hand_example():
    # x = [1, 2, 3, 4]: mean 2.5, population var (2.25+0.25+0.25+2.25)/4 = 1.25, std 1.118034
    out = normalize_advantages(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), eps=0.0)
    expected = torch.tensor([[-1.341641, -0.447214], [0.447214, 1.341641]])
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_mask_excludes_entries_and_zeroes_them():
    # Kept entries [1, 3]: mean 2, std 1 -> [-1, 1]; the 100 is ignored and returned as 0.
    adv = torch.tensor([[1.0, 100.0, 3.0]])
    mask = torch.tensor([[1.0, 0.0, 1.0]])
    out = normalize_advantages(adv, mask, eps=0.0)
    torch.testing.assert_close(out, torch.tensor([[-1.0, 0.0, 1.0]]))
    mean, std, n = global_mean_std(adv, mask)
    assert (float(mean), float(std), float(n)) == (2.0, 1.0, 2.0)


def _shards():
    """Two ranks' (adv [T, B, C], mask [T, B]) shards of different sizes."""
    g = torch.Generator().manual_seed(123)
    a0 = torch.randn(3, 4, 2, generator=g) * 3 + 1
    m0 = (torch.rand(3, 4, generator=g) < 0.7).float()
    a1 = torch.randn(5, 4, 2, generator=g) * 0.5 - 2
    m1 = (torch.rand(5, 4, generator=g) < 0.7).float()
    return [(a0, m0), (a1, m1)]


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        adv, mask = _shards()[rank]
        torch.save(normalize_advantages(adv, mask), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_rank_gloo_equals_concatenated_normalisation(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    shards = _shards()
    # Reference: normalise the data of both ranks concatenated along T.
    adv = torch.cat([a for a, _ in shards])  # [3+5, B, C]
    mask = torch.cat([m for _, m in shards])  # [3+5, B]
    ref = normalize_advantages(adv, mask)
    got = torch.cat([torch.load(tmp_path / f"rank{r}.pt") for r in range(2)])
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    # A per-shard normalisation would differ (different means): guards against a no-op reduce.
    local = torch.cat([normalize_advantages(a, m) for a, m in shards])
    assert (local - ref).abs().max() > 0.1
    kept = got[mask.bool()]
    assert abs(float(kept.mean())) < 1e-5 and abs(float(kept.std(unbiased=False)) - 1) < 1e-5
