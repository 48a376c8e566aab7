"""Typed task specs for the MuJoCo stack-cube tasks (the data lives in ``rlinf_isaac/tasks/stack_cube.py``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CubeSpec", "SuccessSpec", "SpawnSpec", "StackTaskSpec"]


@dataclass(frozen=True)
class CubeSpec:
    """One cube: body/geom name prefix and RGBA colour."""

    name: str
    rgba: tuple[float, float, float, float]

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"CubeSpec.name must be an identifier, got {self.name!r}")
        if len(self.rgba) != 4 or not all(0.0 <= c <= 1.0 for c in self.rgba):
            raise ValueError(f"CubeSpec.rgba must be 4 values in [0, 1], got {self.rgba!r}")


@dataclass(frozen=True)
class SuccessSpec:
    """Stacking test in the style of Isaac Lab's ``cubes_stacked``.

    A pair (top on bottom) is stacked when the xy offset is below ``xy_threshold`` and the
    height gap equals the cube edge within ``height_tolerance``; the task succeeds when all
    pairs are stacked, both fingers are open at least ``min_finger_opening`` (m each) and
    every cube moves slower than ``max_cube_speed`` (m/s).
    """

    xy_threshold: float = 0.04
    height_tolerance: float = 0.005
    min_finger_opening: float = 0.03
    max_cube_speed: float = 0.05

    def __post_init__(self) -> None:
        for key in ("xy_threshold", "height_tolerance", "min_finger_opening", "max_cube_speed"):
            if getattr(self, key) <= 0:
                raise ValueError(f"SuccessSpec.{key} must be > 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class SpawnSpec:
    """Cube spawn box (robot base frame, metres / radians) and minimum pairwise distance."""

    x_range: tuple[float, float] = (0.4, 0.6)
    y_range: tuple[float, float] = (-0.1, 0.1)
    yaw_range: tuple[float, float] = (-1.0, 1.0)
    min_distance: float = 0.1
    joint_noise: float = 0.02  # uniform +- noise (rad) on the arm's home joint angles

    def __post_init__(self) -> None:
        for key in ("x_range", "y_range", "yaw_range"):
            lo, hi = getattr(self, key)
            if not lo <= hi:
                raise ValueError(f"SpawnSpec.{key} must be (low, high) with low <= high, got {(lo, hi)}")
        if self.min_distance < 0 or self.joint_noise < 0:
            raise ValueError(
                f"SpawnSpec.min_distance and joint_noise must be >= 0, got "
                f"{self.min_distance}, {self.joint_noise}"
            )


@dataclass(frozen=True)
class StackTaskSpec:
    """A stack-cube task: cubes, the stacking order (pairs of cube names, top on bottom),
    the instruction, spawn and success rules."""

    task_id: str
    instruction: str
    cubes: tuple[CubeSpec, ...]
    stack_pairs: tuple[tuple[str, str], ...]  # (top, bottom), in the order they are built
    cube_size: float = 0.047  # edge length (m)
    spawn: SpawnSpec = SpawnSpec()
    success: SuccessSpec = SuccessSpec()

    def __post_init__(self) -> None:
        names = [c.name for c in self.cubes]
        if len(set(names)) != len(names) or len(names) < 2:
            raise ValueError(f"StackTaskSpec.cubes must hold >= 2 uniquely named cubes, got {names}")
        for top, bottom in self.stack_pairs:
            if top not in names or bottom not in names or top == bottom:
                raise ValueError(
                    f"StackTaskSpec.stack_pairs entry {(top, bottom)} must name two different "
                    f"cubes of {names}"
                )
        if not self.stack_pairs:
            raise ValueError("StackTaskSpec.stack_pairs must not be empty")
        if not 0.01 <= self.cube_size <= 0.07:
            raise ValueError(f"StackTaskSpec.cube_size must be in [0.01, 0.07] m, got {self.cube_size}")

    def cube_index(self, name: str) -> int:
        return [c.name for c in self.cubes].index(name)

    def pairs_stacked(self, cube_pos: np.ndarray) -> np.ndarray:
        """Per stacking pair, whether its top sits on its bottom by the success rule (xy offset
        below ``success.xy_threshold``, height gap one cube edge within ``success.height_tolerance``).

        cube_pos: float [..., N, 3] in this spec's cube order -> bool [..., P].
        """
        top = [self.cube_index(t) for t, _ in self.stack_pairs]
        bottom = [self.cube_index(u) for _, u in self.stack_pairs]
        d = np.asarray(cube_pos)[..., top, :] - np.asarray(cube_pos)[..., bottom, :]  # [..., P, 3]
        near = np.linalg.norm(d[..., :2], axis=-1) < self.success.xy_threshold
        return near & (np.abs(d[..., 2] - self.cube_size) < self.success.height_tolerance)
