"""Rotation helpers and the damped-least-squares IK step used by the IK-Rel action.

Conventions: quaternions are (w, x, y, z); axis-angle vectors are ``angle * unit_axis`` with
angle in [0, pi]; rotation matrices are row-major 3x3.
"""

from __future__ import annotations

import numpy as np

__all__ = ["R_DOWN", "axis_angle_to_matrix", "matrix_to_axis_angle", "matrix_to_quat", "dls_step"]

# TCP orientation pointing straight down with the hand's x axis along world x (a pi turn about x).
R_DOWN = np.diag([1.0, -1.0, -1.0])
R_DOWN.flags.writeable = False


def axis_angle_to_matrix(v: np.ndarray) -> np.ndarray:
    """Rodrigues: R = I + sin(t) K + (1 - cos(t)) K^2, K = skew(v / t), t = |v|. v: [3] -> [3, 3]."""
    t = float(np.linalg.norm(v))
    if t < 1e-12:
        return np.eye(3)
    kx, ky, kz = v / t
    k = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.eye(3) + np.sin(t) * k + (1.0 - np.cos(t)) * (k @ k)


def matrix_to_quat(r: np.ndarray) -> np.ndarray:
    """Rotation matrix [3, 3] -> unit quaternion (w, x, y, z) [4] with w >= 0 (Shepperd's method)."""
    m = r
    tr = m[0, 0] + m[1, 1] + m[2, 2]
    if tr > 0:
        s = 2.0 * np.sqrt(tr + 1.0)
        q = np.array([0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s])
    else:
        i = int(np.argmax([m[0, 0], m[1, 1], m[2, 2]]))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = np.empty(4)
        q[0] = (m[k, j] - m[j, k]) / s
        q[1 + i] = 0.25 * s
        q[1 + j] = (m[j, i] + m[i, j]) / s
        q[1 + k] = (m[k, i] + m[i, k]) / s
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


def matrix_to_axis_angle(r: np.ndarray) -> np.ndarray:
    """Rotation matrix [3, 3] -> axis-angle [3]: angle = 2 atan2(|q_xyz|, q_w), axis = q_xyz / |q_xyz|."""
    q = matrix_to_quat(r)
    n = float(np.linalg.norm(q[1:]))
    if n < 1e-12:
        return np.zeros(3)
    return q[1:] / n * (2.0 * np.arctan2(n, q[0]))


def dls_step(jac: np.ndarray, err: np.ndarray, damping: float) -> np.ndarray:
    """Damped least squares: dq = J^T (J J^T + lambda^2 I)^-1 e.

    jac: [6, n] stacked (translational; rotational) Jacobian; err: [6] (position error;
    axis-angle error), both in the world frame. Returns dq [n].
    """
    jjt = jac @ jac.T + (damping**2) * np.eye(jac.shape[0])  # J J^T + lambda^2 I
    return jac.T @ np.linalg.solve(jjt, err)  # J^T (J J^T + lambda^2 I)^-1 e
