"""An advantage estimator registered from outside the package (used by the algorithm-seam tests):
REINFORCE with a value baseline, written as a plain loop over chunk steps."""

import torch

from rlinf_isaac.algorithms import AdvantageOutput, register_advantage


@register_advantage("mc_return", algorithm="ppo")
def mc_return(rewards, values, terminated, truncated, final_values=None, *, gamma, gae_lambda):
    """rewards, terminated, truncated [T, B]; values [T+1, B]; final_values [T, B] or None.

    G_t = r_t + gamma * (G_{t+1} if the episode goes on, V(final obs) if it was truncated, 0 if
    it terminated); G_T = V(s_T). A_t = G_t - V(s_t). ``gae_lambda`` is ignored (this is GAE at
    lambda = 1).
    """
    if rewards.ndim != 2:
        raise ValueError("mc_return works on chunk-level rewards [T, B] (algorithm.reward_type=chunk_level)")
    g = values[-1].float()
    out = torch.zeros_like(rewards, dtype=torch.float32)
    for t in reversed(range(rewards.shape[0])):
        cut = truncated[t] & ~terminated[t]
        boot = final_values[t].float() if final_values is not None else torch.zeros_like(g)
        nxt = torch.where(terminated[t], torch.zeros_like(g), torch.where(cut, boot, g))
        g = rewards[t].float() + gamma * nxt  # G_t = r_t + gamma * G_{t+1}
        out[t] = g
    return AdvantageOutput(advantages=out - values[:-1], returns=out)
