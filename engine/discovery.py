"""How a CLI finds the engine that serves a bank on this machine: the serving process writes
<bank>/server.json ({"url", "pid", "hostname", "bank", "token_sha256", "started"}) and removes it on exit.
A file left by a process that died, or written on another machine, is ignored. Only the standard library is
used here, so a CLI that asks a running server imports nothing heavy."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from typing import Optional

SERVER_FILE = "server.json"


def server_file(bank_dir: str) -> str:
    return os.path.join(os.path.realpath(bank_dir), SERVER_FILE)


def token_hash(token: Optional[str]) -> Optional[str]:
    return hashlib.sha256(token.encode()).hexdigest() if token else None


def advertise(bank_dir: str, url: str, token: Optional[str] = None) -> str:
    """Write server.json for this process (atomically). Returns its path."""
    path = server_file(bank_dir)
    info = {"version": 1, "url": url.rstrip("/"), "pid": os.getpid(), "hostname": socket.gethostname(),
            "bank": os.path.realpath(bank_dir), "token_sha256": token_hash(token), "started": time.time()}
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def withdraw(bank_dir: str) -> None:
    """Remove server.json if this process wrote it."""
    path = server_file(bank_dir)
    try:
        with open(path, encoding="utf-8") as f:
            if json.load(f).get("pid") != os.getpid():
                return
        os.remove(path)
    except (OSError, ValueError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def find(bank_dir: str) -> Optional[dict]:
    """The live server of this bank on this machine (server.json's fields), or None when there is none or the
    file is stale (its process is gone, it names another machine or another bank, or it cannot be read)."""
    path = server_file(bank_dir)
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
        pid = int(info["pid"])
        url = str(info["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if info.get("hostname") != socket.gethostname() or not url.startswith(("http://", "https://")):
        return None
    if info.get("bank") != os.path.realpath(bank_dir) or not _alive(pid):
        return None
    return info
