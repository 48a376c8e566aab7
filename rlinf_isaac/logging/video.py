"""Rollout videos for people: per env the table and wrist views side by side, annotated.

One renderer serves training videos, evaluation videos and the scripted expert's ``--video``:
:class:`VideoRecorder` takes the env's video views chunk by chunk (``info["video_frames"]``,
see ``rlinf_isaac/envs/base.py``), composes one annotated frame per env step and streams it
into an H.264/yuv420p mp4 (imageio-ffmpeg), so a long video never sits in memory; ``finish``
returns a :class:`RolloutVideo` (the mp4's bytes and a downscaled copy of the frames for
TensorBoard). :func:`write_rollout_video` does the same for frames already in memory.

Layout of a frame (:func:`frame_shape`): each env is a tile of its views side by side,
``[table | wrist]``, each ``S x S`` (``S = env.*.video_cfg.frame_size``, 256 px by default,
independent of the policy's image size). ``n = min(B, max_envs)`` tiles sit row-major in a
grid of ``cols = ceil(sqrt(n / V))`` columns (V = 2 views: a near-square picture of 2:1
tiles) and ``rows = ceil(n / cols)``, ``GAP`` px of dark grey between tiles.
With the overlay on and an instruction given, a header band above the grid holds the
instruction, wrapped to the frame's width. Width ``cols * V * S + (cols - 1) * GAP``, height
``header + rows * S + (rows - 1) * GAP``, each padded by one black pixel if odd (yuv420p).

Overlay, per tile (Pillow's built-in font, no font file: FreeType's ``load_default(size)``
scaled to the view size, the bitmap font where Pillow lacks FreeType): ``#i t=.. r=..`` at the
top left of the table view, i the env index, t the env steps since the video began, r the
step's reward. When an episode succeeds, its tile gets a green border and "SUCCESS" from that
step on, for at least ``fps`` frames (one second: an env that succeeds ends its episode and is
reset at the end of the chunk) and for as long as the env stays frozen on its final state
(``auto_reset=False``, evaluation). Different instructions per env go to the bottom of each
tile instead of the header.
"""

from __future__ import annotations

import math
import os
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "VIEW_KEYS", "GAP", "RolloutVideo", "VideoRecorder", "frame_shape", "make_grid",
    "grid_video_tensor", "write_rollout_video",
]

VIEW_KEYS = ("main_images", "wrist_images")  # the views of a tile, left to right: table, wrist
GAP = 4  # px between env tiles
PREVIEW_MAX_SIDE = 512  # TensorBoard gets the frames box-downscaled by an integer factor to fit this
_GREEN = np.array([40, 220, 60], np.uint8)
_GAP_GREY = np.array([40, 40, 40], np.uint8)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _grid_shape(n: int, views: int = 1) -> tuple[int, int]:
    """(rows, cols) of n tiles of ``views`` square-ish views side by side, a near-square picture:
    cols = ceil(sqrt(n / views)), rows = ceil(n / cols)."""
    cols = max(1, min(n, math.ceil(math.sqrt(n / views) - 1e-9)))
    return math.ceil(n / cols), cols


def make_grid(frames_t: Any, max_envs: int = 16, gap: int = 0) -> np.ndarray:
    """Tile one time step of env frames into one picture.

    frames_t: uint8 [B, H, W, 3] (one view per env) or [B, V, H, W, 3] (V views per env, put
    side by side into an H x V*W tile). Only the first ``min(B, max_envs)`` envs are shown,
    row-major in a grid of ``ceil(sqrt(n / V))`` columns, ``gap`` black px between tiles; empty
    cells are black.
    """
    x = _to_numpy(frames_t)
    if x.ndim not in (4, 5) or x.shape[-1] != 3 or x.dtype != np.uint8:
        raise ValueError(f"make_grid: frames_t must be uint8 [B, H, W, 3] or [B, V, H, W, 3], got "
                         f"{x.dtype} {tuple(x.shape)}")
    views = x.shape[1] if x.ndim == 5 else 1
    if x.ndim == 5:  # [B, V, H, W, 3] -> [B, H, V*W, 3]
        x = np.concatenate(list(x.transpose(1, 0, 2, 3, 4)), axis=2)
    n = min(x.shape[0], max_envs)
    _, h, w, _ = x.shape
    rows, cols = _grid_shape(n, views)
    out = np.zeros((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = x[i]
    return out


def grid_video_tensor(frames: Sequence[Any], max_envs: int = 16):
    """Frames (list over T of uint8 [B, H, W, 3]) -> torch uint8 [1, T, 3, H', W'] for
    ``SummaryWriter.add_video``."""
    import torch

    grids = np.stack([make_grid(f, max_envs) for f in frames])  # [T, H', W', 3]
    return torch.from_numpy(grids).permute(0, 3, 1, 2).unsqueeze(0)  # [1, T, 3, H', W']


# ---------------------------------------------------------------------------- text
def _font(px: int):
    from PIL import ImageFont  # lazy

    try:
        return ImageFont.load_default(size=px)  # Pillow >= 10.1 with FreeType: scalable built-in font
    except (TypeError, ImportError, OSError):  # no FreeType: the fixed bitmap font
        loader = getattr(ImageFont, "load_default_imagefont", None)
        return loader() if loader is not None else ImageFont.load_default()


def _font_px(view_h: int) -> int:
    return max(11, round(view_h / 16))  # 16 px text on 256 px views


def _line_height(font) -> int:
    box = font.getbbox("Hg|")
    return box[3] - min(box[1], 0) + 3


def _wrap(text: str, font, width_px: int, max_lines: int | None = None) -> list[str]:
    char_w = max(1.0, font.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    lines = textwrap.wrap(" ".join(text.split()), width=max(8, int((width_px - 12) / char_w))) or [""]
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(0, len(lines[-1]) - 3)] + "..."
    return lines


def frame_shape(n_envs: int, frame_size: int | tuple[int, int], num_views: int = 2,
                header_lines: int = 0, max_envs: int = 16) -> tuple[int, int]:
    """(H, W) of a composed video frame (even; see the module docstring for the layout).

    frame_size: the view size S (or (H, W) of a view); header_lines: lines of instruction text
    in the header band (0: no band; :attr:`VideoRecorder.header_lines` says how many).
    """
    vh, vw = (frame_size, frame_size) if isinstance(frame_size, int) else frame_size
    n = min(n_envs, max_envs)
    rows, cols = _grid_shape(n, num_views)
    header = _header_height(header_lines, vh)
    h = header + rows * vh + (rows - 1) * GAP
    w = cols * num_views * vw + (cols - 1) * GAP
    return h + h % 2, w + w % 2


def _header_height(lines: int, view_h: int) -> int:
    return 0 if lines == 0 else lines * _line_height(_font(_font_px(view_h))) + 8


# ---------------------------------------------------------------------------- output
@dataclass
class RolloutVideo:
    """A finished rollout video: ``mp4`` bytes (H.264, yuv420p) and ``preview`` uint8
    [T, h, w, 3], the same frames box-downscaled by an integer factor so that the longer side
    is at most ``PREVIEW_MAX_SIDE`` px (what TensorBoard's ``log_video`` gets: a GIF of the
    full-size frames would be tens of MB per video)."""

    mp4: bytes
    preview: np.ndarray
    num_frames: int
    frame_hw: tuple[int, int]  # (H, W) of the mp4's frames

    def save(self, path: str | os.PathLike) -> Path:
        """Write the mp4 to ``path`` (parents created; written to a temporary name, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(self.mp4)
        os.replace(tmp, path)
        return path


class VideoRecorder:
    """Composes annotated frames (module docstring) and streams them into an mp4.

    frame_size: S, the height of every view in the video (views of another size are resized:
        an exact integer upscale by pixel repetition, else bilinear; None keeps them as given).
    max_envs: envs shown (the first ones). fps: frame rate (the env's control rate, 20 Hz, plays
        in real time). overlay: draw the text, success marker and header. instruction: the
        header's text; None takes the ``instructions`` of the first :meth:`add_chunk`.
    """

    def __init__(self, frame_size: int | None = 256, max_envs: int = 16, fps: int = 20,
                 overlay: bool = True, instruction: str | None = None,
                 preview_max_side: int | None = PREVIEW_MAX_SIDE):
        if frame_size is not None and frame_size < 8:
            raise ValueError(f"VideoRecorder: frame_size must be >= 8 px or None, got {frame_size}")
        if max_envs < 1 or fps < 1:
            raise ValueError(f"VideoRecorder: max_envs and fps must be >= 1, got {max_envs}, {fps}")
        self.frame_size, self.max_envs, self.fps, self.overlay = frame_size, max_envs, fps, overlay
        self.instruction, self.preview_max_side = instruction, preview_max_side
        self.num_frames = 0
        self.frame_hw: tuple[int, int] | None = None
        self.header_lines = 0
        self._tile_texts: list[str] | None = None  # per-env instructions when they differ
        self._steps = 0
        self._since_success: np.ndarray | None = None  # frames since each env's last success
        self._frozen_success: np.ndarray | None = None  # succeeded, no valid step since
        self._header: np.ndarray | None = None
        self._preview: list[np.ndarray] = []
        self._writer = None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="rlinf_video_")
        self._tmp = Path(self._tmpdir.name) / "video.mp4"

    # ------------------------------------------------------------------ input
    def add_chunk(self, views: Mapping[str, Any] | Sequence[Any], rewards: Any = None, successes: Any = None,
                  valid: Any = None, instructions: Sequence[str] | str | None = None) -> None:
        """Add one chunk of F frames.

        views: ``{"main_images": uint8 [N, F, H, W, 3], "wrist_images": ...}`` (tile order of
            :data:`VIEW_KEYS`), or a sequence of such arrays (one per view, left to right).
        rewards, successes, valid: [B, C] per env step (B >= N; the first N are used), or
            None (``valid``: the step was executed, ``info["valid"]``; it ends the success
            marker of a frozen env when its next episode starts). C must be a multiple of F:
            frame f stands for steps [f C/F, (f+1) C/F) (one frame per chunk, as a backend
            without per-step rendering gives, shows the chunk's summed reward and its success
            if any step had it).
        instructions: the envs' instructions (``obs["task_descriptions"]``) or one string.
        """
        if isinstance(views, Mapping):
            views = [views[k] for k in VIEW_KEYS]
        arrs = [_to_numpy(v) for v in views]
        for a in arrs:
            if a.ndim != 5 or a.dtype != np.uint8 or a.shape[-1] != 3 or a.shape[:2] != arrs[0].shape[:2]:
                raise ValueError(f"VideoRecorder.add_chunk: views must be uint8 [N, F, H, W, 3] with one N and F, "
                                 f"got {[(str(x.dtype), tuple(x.shape)) for x in arrs]}")
        n, f = min(arrs[0].shape[0], self.max_envs), arrs[0].shape[1]
        per = {name: None if x is None else _to_numpy(x).reshape(len(x), -1)[:n]
               for name, x in (("rewards", rewards), ("successes", successes), ("valid", valid))}
        c = next((x.shape[1] for x in per.values() if x is not None), f)
        if c % f or any(x is not None and x.shape != (n, c) for x in per.values()):
            raise ValueError(f"VideoRecorder.add_chunk: rewards/successes/valid must be [B >= {n}, C] with C a "
                             f"multiple of the {f} frames, got {[None if x is None else x.shape for x in per.values()]}")
        if instructions is not None and self._tile_texts is None and self.instruction is None:
            self._set_instructions([instructions] * n if isinstance(instructions, str) else list(instructions)[:n])
        k = c // f
        for i in range(f):
            sl = slice(i * k, (i + 1) * k)
            r = None if per["rewards"] is None else per["rewards"][:, sl].astype(np.float64).sum(1)
            s = None if per["successes"] is None else per["successes"][:, sl].astype(bool).any(1)
            v = None if per["valid"] is None else per["valid"][:, sl].astype(bool).any(1)
            self._steps += k
            self._add_frame([a[:n, i] for a in arrs], r, s, v)

    def _set_instructions(self, texts: list[str]) -> None:
        if len(set(texts)) == 1:
            self.instruction = texts[0]
        elif texts:
            self._tile_texts = texts

    # ------------------------------------------------------------------ composition
    def _resize(self, x: np.ndarray) -> np.ndarray:
        """[N, h, w, 3] -> [N, S, round(S w / h), 3]: pixel repetition for integer factors, else bilinear."""
        s, (h, w) = self.frame_size, x.shape[1:3]
        if s is None or h == s:
            return x
        tw = max(1, round(s * w / h))
        if s % h == 0 and tw == w * (s // h):
            k = s // h
            return x.repeat(k, axis=1).repeat(k, axis=2)
        from PIL import Image

        return np.stack([np.asarray(Image.fromarray(v).resize((tw, s), Image.BILINEAR)) for v in x])

    def _layout(self, n: int, vh: int, vw: int, nv: int) -> None:
        width = frame_shape(n, (vh, vw), nv, 0, self.max_envs)[1]
        if self.overlay and self.instruction:
            self._header_text = _wrap(self.instruction, _font(_font_px(vh)), width)
            self.header_lines = len(self._header_text)
        self.frame_hw = frame_shape(n, (vh, vw), nv, self.header_lines if self.overlay else 0, self.max_envs)
        self._grid = _grid_shape(n, nv)
        self._view_shape = (n, vh, vw, nv)
        self._since_success = np.full(n, np.iinfo(np.int64).max // 2, np.int64)
        self._frozen_success = np.zeros(n, bool)

    def compose(self, views: Sequence[np.ndarray], rewards=None, successes=None, valid=None) -> np.ndarray:
        """One frame uint8 [H, W, 3] from views (per view uint8 [N, h, w, 3]) and per-env
        rewards / successes / valid [N] of this step; advances the success marker's state."""
        views = [self._resize(_to_numpy(v)[: self.max_envs]) for v in views]
        n, vh, vw = views[0].shape[:3]
        nv = len(views)
        if self.frame_hw is None:
            self._layout(n, vh, vw, nv)
        header = self._header_height_px(vh)
        rows, cols = self._grid
        if any(v.shape[:3] != (n, vh, vw) for v in views) or self._view_shape != (n, vh, vw, nv):
            raise ValueError(f"VideoRecorder: every frame must show the same {n} envs with views of one size "
                             f"({vh}x{vw}), got {[v.shape for v in views]}")
        out = np.zeros((*self.frame_hw, 3), np.uint8)
        tw = nv * vw
        out[header: header + rows * vh + (rows - 1) * GAP, : cols * tw + (cols - 1) * GAP] = _GAP_GREY
        origins = []
        for i in range(n):
            r, c = divmod(i, cols)
            y, x = header + r * (vh + GAP), c * (tw + GAP)
            origins.append((y, x))
            for j, v in enumerate(views):
                out[y: y + vh, x + j * vw: x + (j + 1) * vw] = v[i]
        if rows * cols > n:  # empty cells black
            for i in range(n, rows * cols):
                r, c = divmod(i, cols)
                y, x = header + r * (vh + GAP), c * (tw + GAP)
                out[y: y + vh, x: x + tw] = 0
        if not self.overlay:
            return out
        show = self._success_marker(successes, valid, n)
        bw = max(2, vh // 40)
        for i in np.flatnonzero(show):
            y, x = origins[i]
            t = out[y: y + vh, x: x + tw]
            t[:bw], t[-bw:], t[:, :bw], t[:, -bw:] = (_GREEN,) * 4
        return self._draw_text(out, origins, vh, tw, rewards, show)

    def _header_height_px(self, vh: int) -> int:
        return _header_height(self.header_lines, vh) if self.overlay else 0

    def _success_marker(self, successes, valid, n: int) -> np.ndarray:
        """Which tiles show the success marker this frame (see the module docstring)."""
        if successes is None:
            return np.zeros(n, bool)
        s = _to_numpy(successes).astype(bool).reshape(-1)[:n]
        v = np.ones(n, bool) if valid is None else _to_numpy(valid).astype(bool).reshape(-1)[:n]
        self._since_success = np.where(s, 0, self._since_success + 1)
        self._frozen_success = s | (self._frozen_success & ~v)  # cleared by the next episode's first step
        return self._frozen_success | (self._since_success < self.fps)

    def _draw_text(self, out: np.ndarray, origins, vh: int, tw: int, rewards, show) -> np.ndarray:
        from PIL import Image, ImageDraw  # lazy

        font = _font(_font_px(vh))
        lh, pad = _line_height(font), max(2, vh // 64)
        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        if self.header_lines:
            if self._header is None:
                for k, line in enumerate(self._header_text):
                    draw.text((6, 4 + k * lh), line, fill=(235, 235, 235), font=font)
                self._header = np.asarray(img)[: self._header_height_px(vh)].copy()
            else:  # the band is the same every frame: paste it
                img.paste(Image.fromarray(self._header), (0, 0))
        r = None if rewards is None else _to_numpy(rewards).reshape(-1)
        for i, (y, x) in enumerate(origins):
            text = f"#{i}  t={self._steps}" + ("" if r is None else f"  r={float(r[i]):.2f}")
            pos = (x + 2 * pad + 2, y + 2 * pad)
            box = draw.textbbox(pos, text, font=font)
            draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad), fill=(0, 0, 0))
            draw.text(pos, text, fill=(255, 255, 255), font=font)
            if show[i]:
                spos = (box[2] + 3 * pad, pos[1])
                sbox = draw.textbbox(spos, "SUCCESS", font=font)
                draw.rectangle((sbox[0] - pad, sbox[1] - pad, sbox[2] + pad, sbox[3] + pad), fill=(0, 0, 0))
                draw.text(spos, "SUCCESS", fill=tuple(int(c) for c in _GREEN), font=font)
            if self._tile_texts is not None:
                lines = _wrap(self._tile_texts[i], font, tw, max_lines=2)
                y0 = y + vh - len(lines) * lh - 2 * pad
                draw.rectangle((x, y0 - pad, x + tw - 1, y + vh - 1), fill=(0, 0, 0))
                for k, line in enumerate(lines):
                    draw.text((x + 2 * pad, y0 + k * lh), line, fill=(235, 235, 235), font=font)
        return np.asarray(img)

    # ------------------------------------------------------------------ encoding
    def _add_frame(self, views: list[np.ndarray], rewards, successes, valid) -> None:
        frame = self.compose(views, rewards, successes, valid)
        if self._writer is None:
            import imageio.v2 as iio  # lazy: ffmpeg only when a video is written

            self._writer = iio.get_writer(self._tmp, format="FFMPEG", mode="I", fps=self.fps, codec="libx264",
                                          pixelformat="yuv420p", macro_block_size=2,
                                          ffmpeg_params=["-crf", "20", "-preset", "veryfast"],
                                          ffmpeg_log_level="error")
        self._writer.append_data(frame)
        self.num_frames += 1
        if self.preview_max_side is not None:
            k = max(1, math.ceil(max(frame.shape[:2]) / self.preview_max_side))
            if k > 1:
                from PIL import Image

                frame = np.asarray(Image.fromarray(frame).reduce(k))
            self._preview.append(frame)

    def finish(self) -> RolloutVideo:
        """Close the encoder; the video's bytes and preview. Raises if no frame was added."""
        if self._writer is None:
            self.close()
            raise ValueError("VideoRecorder.finish: no frames were added")
        self._writer.close()
        self._writer = None
        try:
            data = self._tmp.read_bytes()
        finally:
            self.close()
        preview = np.stack(self._preview) if self._preview else np.zeros((0, 1, 1, 3), np.uint8)
        self._preview = []
        return RolloutVideo(data, preview, self.num_frames, self.frame_hw)

    def close(self) -> None:
        """Drop the encoder and the temporary file (after an error; :meth:`finish` calls it). Idempotent."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        self._tmpdir.cleanup()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def _column(seq, t: int):
    """Step ``t`` of a per-step sequence as a [B, 1] array (None stays None)."""
    return None if seq is None else _to_numpy(seq[t]).reshape(-1, 1)


def write_rollout_video(path: str | os.PathLike, frames: Sequence[Any],
                        rewards: Sequence[Any] | None = None,
                        successes: Sequence[Any] | None = None, fps: int = 20,
                        max_envs: int = 16, overlay: bool = True, instruction: str | None = None,
                        frame_size: int | None = None) -> Path:
    """Write a rollout video of frames already in memory (the :class:`VideoRecorder` layout)
    and return its path.

    frames: list over time T of uint8 [B, H, W, 3] (one view per env) or [B, V, H, W, 3]
    (V views per env, side by side), numpy or torch. rewards: None or list over T of float [B].
    successes: None or list over T of bool [B]. frame_size: resize the views to this height
    (None: as given). The file is written under a temporary name and renamed into place.
    """
    if len(frames) == 0:
        raise ValueError("write_rollout_video: frames is empty (need a list over time of "
                         "uint8 [B, H, W, 3])")
    for name, seq in (("rewards", rewards), ("successes", successes)):
        if seq is not None and len(seq) != len(frames):
            raise ValueError(f"write_rollout_video: {name} has {len(seq)} steps, frames has "
                             f"{len(frames)}")
    rec = VideoRecorder(frame_size, max_envs, fps, overlay, instruction, preview_max_side=None)
    try:
        for t, f in enumerate(frames):
            x = _to_numpy(f)
            if x.ndim not in (4, 5) or x.dtype != np.uint8:
                raise ValueError(f"write_rollout_video: frames[{t}] must be uint8 [B, H, W, 3] or "
                                 f"[B, V, H, W, 3], got {x.dtype} {tuple(x.shape)}")
            views = [x] if x.ndim == 4 else list(x.transpose(1, 0, 2, 3, 4))
            rec.add_chunk([v[:, None] for v in views], _column(rewards, t), _column(successes, t))
        return rec.finish().save(path)
    finally:
        rec.close()
