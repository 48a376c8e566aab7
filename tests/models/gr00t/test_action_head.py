"""The action head's sinusoidal timestep encoding, in GR00T N1.5's rounding order."""

import math

import torch

from rlinf_isaac.models.gr00t.action_head import sinusoidal_encoding


def test_sinusoidal_encoding_rounds_as_published():
    half = 768  # GR00T N1.5's action encoder: width 1536
    t = torch.tensor([[0, 1, 7, 250, 999]])  # [B=1, C=5] timestep buckets
    # published order: exp(-arange(half) * (log(10000) / half)), all float32
    freqs = torch.exp(-torch.arange(half, dtype=torch.float32) * (torch.log(torch.tensor(10000.0)) / half))
    angles = t.float()[..., None] * freqs  # [1, 5, 768]
    want = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    got = sinusoidal_encoding(t, 2 * half)
    assert got.dtype == torch.float32 and got.shape == (1, 5, 1536)
    assert torch.equal(got, want)  # bit for bit
    # the other association rounds differently at 248 of the 768 frequencies (by one ulp), which
    # reaches ~6e-5 in the encoding at bucket 999: the bit-exact check above would see it
    other = torch.exp(-math.log(10000.0) * torch.arange(half) / half)
    assert int((other != freqs).sum()) == 248
    # hand values: bucket 0 -> sin 0, cos 1; frequency 0 is 1 -> channel 0 = sin(t), channel 768 = cos(t)
    assert torch.equal(got[0, 0, :half], torch.zeros(half)) and torch.equal(got[0, 0, half:], torch.ones(half))
    torch.testing.assert_close(got[0, :, 0], torch.sin(t[0].float()), rtol=0, atol=0)
    torch.testing.assert_close(got[0, 3, half], torch.cos(torch.tensor(250.0)), rtol=0, atol=0)
