"""Policy models (GR00T N1.5 architecture under ``rlinf_isaac.models.gr00t``)."""

__all__ = ["gr00t"]
