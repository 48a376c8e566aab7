"""The action head's sinusoidal timestep encoding, in GR00T N1.5's rounding order."""

import math

import torch

from rlinf_isaac.models.gr00t.action_head import LOG_10000_F32, sinusoidal_encoding


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


def test_the_host_float_step_is_the_float32_quotient():
    """``sinusoidal_encoding`` divides log(10000) by dim/2 as Python floats (a host constant,
    invisible to CUDA graph capture and torch.compile); cast to float32 by the multiply, that
    quotient equals the float32 division GR00T N1.5 does, for every dim/2 up to 8192."""
    log32 = torch.log(torch.tensor(10000.0))
    assert LOG_10000_F32 == float(log32)
    halves = torch.arange(1, 8193)
    want = log32 / halves  # float32 division
    got = torch.tensor([LOG_10000_F32 / h for h in range(1, 8193)], dtype=torch.float64).float()
    assert torch.equal(got, want)
    for half in (16, 64, 768, 1024):  # and the encoding at several widths, bit for bit
        freqs = torch.exp(-torch.arange(half, dtype=torch.float32) * (log32 / half))
        angles = torch.tensor([[3.0, 250.0]])[..., None] * freqs
        assert torch.equal(sinusoidal_encoding(torch.tensor([[3, 250]]), 2 * half),
                           torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1))
