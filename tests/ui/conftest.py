"""One launched Vigil UI per test session (temp bank + media dir), shared by the client and browser tests."""
from __future__ import annotations

import os
import types

import pytest

from tests.conftest import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "artifacts")
UPLOAD_CAP_MB = 8


@pytest.fixture(scope="session")
def ui_media(tmp_path_factory):
    """A media dir with a generated video (and a meeting when espeak-ng is there), plus a file outside it."""
    from tests.fixtures.video import make_video

    d = tmp_path_factory.mktemp("ui")
    media = d / "media"
    media.mkdir()
    make_video(str(media / "scenes.mp4"), seconds=12, scenes=(4.0, 8.0))
    meeting = truth = None
    try:
        from tests.fixtures.meeting import make_meeting

        truth = make_meeting(media / "meeting.mp4", duration_s=36, n_slides=2, size=(640, 360), seed=3)
        meeting = "meeting.mp4"
    except RuntimeError:  # no espeak-ng: the browser test falls back to the generated video
        pass
    (d / "secret.txt").write_text("not for the browser\n")
    os.symlink(str(d / "secret.txt"), str(media / "link.mp4"))
    return types.SimpleNamespace(root=d, media=str(media), video="scenes.mp4", meeting=meeting, truth=truth,
                                 secret=str(d / "secret.txt"))


@pytest.fixture(scope="session")
def ui_app(ui_media):
    from ui.app import create

    os.environ["VIGIL_MAX_UPLOAD_MB"] = str(UPLOAD_CAP_MB)
    port = free_port()
    args = types.SimpleNamespace(bank=str(ui_media.root / "bank"), host="127.0.0.1", port=port, auth=None,
                                 media_dir=ui_media.media, model=None, device="cpu", trust_remote_code=False)
    demo, ctl, kw = create(args)
    demo.launch(prevent_thread_lock=True, quiet=True, **kw)
    os.makedirs(ARTIFACTS, exist_ok=True)
    app = types.SimpleNamespace(url=f"http://127.0.0.1:{port}/", ctl=ctl, demo=demo, media=ui_media, bank=args.bank)
    ctl.profile()  # wait for the models once, so per-test timings are about the UI
    yield app
    demo.close()
    ctl.close()


