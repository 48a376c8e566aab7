"""Policies: the registry of policy configs and builders, and the GR00T N1.5 architecture (``models.gr00t``)."""

from rlinf_isaac.models.registry import PolicyConfig, build_policy, get_policy, list_policies, register_policy

__all__ = ["PolicyConfig", "build_policy", "get_policy", "list_policies", "register_policy", "gr00t"]
