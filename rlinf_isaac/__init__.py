"""rlinf_isaac: RLinf-style RL finetuning of GR00T N1.5 policies on Franka cube stacking (Isaac Lab and MuJoCo)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
