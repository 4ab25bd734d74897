"""Media files the UI and the API may use: names resolve inside the media directory only (symlinks out of it
and `../` are refused), files are checked by their content (FFmpeg's demuxer), uploads are capped and copied in.
The CLI runs as its user on their own files: an engine without a media directory takes any path."""
from __future__ import annotations

import hashlib
import os
import re
import shutil

from .errors import EngineError

DEFAULT_MAX_UPLOAD = 1024 * 1024 * 1024  # 1 GiB
# Containers accepted from users, by the demuxer FFmpeg detects from the bytes (not the file name).
VIDEO_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "flv",
                 "ogg", "asf", "h264", "hevc", "mjpeg", "m4v", "nut", "mxf", "gif", "yuv4mpegpipe"}
MEDIA_EXTS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".mpg", ".mpeg", ".flv", ".ogv",
              ".wmv", ".asf", ".3gp", ".y4m", ".gif", ".mxf", ".h264", ".264", ".hevc", ".265"}


def resolve_media_path(media_dir: str, name: str) -> str:
    """A server path chosen by the user -> its real path, only if it is a regular file inside media_dir.

    Relative names are taken inside media_dir; absolute ones must already point inside it. Symlinks are
    resolved first, so a link out of the directory is refused like `../`.
    """
    if not name or not str(name).strip():
        raise EngineError("choose a file from the media directory")
    name = str(name).strip()
    if "\x00" in name:
        raise EngineError("invalid file name")
    root = os.path.realpath(media_dir)
    cand = os.path.realpath(name if os.path.isabs(name) else os.path.join(root, name))
    if os.path.commonpath([root, cand]) != root or cand == root:
        raise EngineError(f"{os.path.basename(name)!r} is outside the media directory; only files in it can be "
                          "replayed")
    if not os.path.isfile(cand):
        raise EngineError(f"no such file in the media directory: {name!r}", "not_found")
    return cand


def list_media(media_dir: str, limit: int = 500) -> list[str]:
    """Video files under media_dir (relative paths, sorted), skipping hidden entries and symlinks out of it."""
    root = os.path.realpath(media_dir)
    out: list[str] = []
    if not os.path.isdir(root):
        return out
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if not x.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or os.path.splitext(f)[1].lower() not in MEDIA_EXTS:
                continue
            rel = os.path.relpath(os.path.join(d, f), root)
            try:
                resolve_media_path(root, rel)
            except EngineError:
                continue
            out.append(rel)
            if len(out) >= limit:
                return out
    return out


def probe_video(path: str) -> dict:
    """Check a file by its content: FFmpeg must recognise a video container we accept, with a video stream."""
    import av

    av.logging.set_level(None)
    try:
        size = os.path.getsize(path)
    except OSError:
        raise EngineError("the uploaded file is missing", "not_found") from None
    if size == 0:
        raise EngineError("the file is empty")
    try:
        with av.open(path, mode="r", timeout=10.0) as c:
            fmts = set(c.format.name.split(","))
            if not fmts & VIDEO_FORMATS:
                raise EngineError(f"not a supported video (detected {c.format.name!r} content)")
            if not c.streams.video:
                raise EngineError("the file has no video stream")
            dur = c.duration / 1e6 if c.duration else None
            return {"format": c.format.name, "duration": dur, "size": size}
    except EngineError:
        raise
    except Exception as e:  # noqa: BLE001  (any decoder complaint: not a video we can read)
        why = getattr(e, "strerror", None) or type(e).__name__  # never echo server paths back
        raise EngineError(f"not a readable video ({why})") from None


def accept_upload(media_dir: str, tmp_path: str, orig_name: str = "", max_bytes: int = DEFAULT_MAX_UPLOAD) -> str:
    """An uploaded file: size cap, content check, then copied into <media>/uploads (named by its content hash, so
    the same upload is stored once). Returns its name relative to the media directory."""
    if not tmp_path or not os.path.isfile(tmp_path):
        raise EngineError("no file was uploaded")
    size = os.path.getsize(tmp_path)
    if size > max_bytes:
        raise EngineError(f"the upload is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    info = probe_video(tmp_path)
    base = os.path.basename(orig_name or tmp_path)
    stem, ext = os.path.splitext(re.sub(r"[^A-Za-z0-9_.-]", "_", base))
    stem = stem.strip("._") or "upload"
    fmt_ext = {"mov": ".mp4", "matroska": ".mkv", "avi": ".avi", "mpegts": ".ts", "flv": ".flv", "ogg": ".ogv",
               "yuv4mpegpipe": ".y4m"}
    ext = ext.lower() if ext.lower() in MEDIA_EXTS else next(
        (v for k, v in fmt_ext.items() if k in info["format"].split(",")), ".mp4")
    h = hashlib.sha256()
    with open(tmp_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    root = os.path.realpath(media_dir)
    dest_dir = os.path.join(root, "uploads")
    os.makedirs(dest_dir, exist_ok=True)
    dest = os.path.join(dest_dir, f"{stem[:60]}-{h.hexdigest()[:8]}{ext}")
    if not os.path.exists(dest):
        shutil.copyfile(tmp_path, dest + ".part")
        os.replace(dest + ".part", dest)
    return os.path.relpath(dest, root)
