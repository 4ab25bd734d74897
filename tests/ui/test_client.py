"""The launched UI driven through its API with gradio_client: ingest, ask with citations, bad inputs, exposure."""
from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from tests.ui.conftest import UPLOAD_CAP_MB, wait_for


@pytest.fixture(scope="module")
def client(ui_app):
    from gradio_client import Client

    return Client(ui_app.url, verbose=False)


def rows(client):
    """The sources table from the /poll endpoint: {stream: row}."""
    out = client.predict(None, api_name="/poll")
    table = out[2]
    data = table["data"] if isinstance(table, dict) else table
    return {r[0]: r for r in data}


def test_ingest_ask_and_citations(client, ui_app):
    msg, _ = client.predict(None, ui_app.media.video, "client-scenes", "fast", 0, False, api_name="/start_file")
    assert msg.startswith("OK:") and "client-scenes" in msg, msg
    row = wait_for(lambda: (r := rows(client).get("client-scenes")) and r[2] in ("finished", "error") and r,
                   timeout=90, what="the file to finish")
    assert row[2] == "finished", row
    assert row[7] >= 5  # 12 s at 2 s clips (scene cuts may add some)
    history, gallery, question = client.predict("what is in the picture?", [], 5, ["client-scenes"], False, None,
                                                 api_name="/ask")
    assert question == ""
    assert history[-1]["role"] == "assistant"
    answer = history[-1]["content"]
    answer = answer if isinstance(answer, str) else " ".join(p.get("text", "") for p in answer)
    assert answer.strip() and not answer.startswith("Error:"), answer
    assert gallery, "an answer comes with its citations"
    captions = [g["caption"] for g in gallery]
    assert all(c.startswith("client-scenes · 00:00:") for c in captions), captions
    assert all(os.path.isfile(g["image"] if isinstance(g["image"], str) else g["image"]["path"]) for g in gallery)


def test_ask_edge_cases_are_clean(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):  # the UI validates stream filters
        client.predict("what happened?", [], 5, ["no-such-stream"], False, None, api_name="/ask")
    history, gallery, _ = client.predict("", [], 5, [], False, None, api_name="/ask")
    assert history == []  # nothing asked, nothing answered


def test_bad_upload_gets_a_clean_error(client, ui_app, tmp_path):
    from gradio_client import handle_file

    fake = tmp_path / "holiday.mp4"
    fake.write_text("this is not a video\n" * 100)
    msg, _ = client.predict(handle_file(str(fake)), None, "", "fast", 0, False, api_name="/start_file")
    assert msg.startswith("Error:") and "not a" in msg and "video" in msg, msg
    assert str(tmp_path) not in msg and "/tmp" not in msg  # no server paths in errors
    png = tmp_path / "still.mp4"  # an image renamed: checked by content, not extension
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 10, 10)).save(png, format="PNG")
    msg, _ = client.predict(handle_file(str(png)), None, "", "fast", 0, False, api_name="/start_file")
    assert msg.startswith("Error:") and "not a supported video" in msg, msg
    assert not os.path.exists(os.path.join(ui_app.media.media, "uploads", "holiday.mp4"))


def test_upload_size_cap(client, tmp_path):
    from gradio_client import handle_file

    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(1024) * (UPLOAD_CAP_MB * 1024 + 10))
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(big)), None, "", "fast", 0, False, api_name="/start_file")
    assert "size" in str(e.value).lower() or "large" in str(e.value).lower() or "413" in str(e.value)


def test_good_upload_is_replayed_from_the_media_dir(client, ui_app):
    from gradio_client import handle_file

    src = os.path.join(ui_app.media.media, ui_app.media.video)
    msg, _ = client.predict(handle_file(src), None, "uploaded", "fast", 2.0, False, api_name="/start_file")
    assert msg.startswith("OK:") and "uploaded" in msg and "00:00:02" in msg, msg
    row = wait_for(lambda: (r := rows(client).get("uploaded")) and r[2] in ("finished", "error") and r, timeout=90,
                   what="the upload to finish")
    assert row[2] == "finished", row
    assert os.listdir(os.path.join(ui_app.media.media, "uploads"))
    first = ui_app.ctl.bank.list(stream="uploaded")[0]
    assert first.t0 >= 1.9  # started 2 s in: media times stay the file's own


@pytest.mark.parametrize("name", ["../secret.txt", "/etc/passwd", "link.mp4", "", "nope.mp4"])
def test_server_paths_are_allow_listed(client, name):
    msg, _ = client.predict(None, name, "", "fast", 0, False, api_name="/start_file")
    assert msg.startswith("Error:"), msg


def test_file_route_serves_only_thumbs_and_media(ui_app):
    base = ui_app.url + "gradio_api/file="
    thumb = ui_app.ctl.bank.thumbnail_path(ui_app.ctl.bank.list(limit=1)[0].id)
    assert urllib.request.urlopen(base + thumb).status == 200
    assert urllib.request.urlopen(base + os.path.join(ui_app.media.media, ui_app.media.video)).status == 200
    for path in (os.path.join(ui_app.bank, "bank.sqlite"), ui_app.media.secret, "/etc/passwd",
                 os.path.abspath("app.py"), os.path.join(ui_app.media.media, "..", "secret.txt")):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path)
        assert e.value.code in (403, 404), path


def test_settings_are_saved_per_bank(client, ui_app):
    old = dict(ui_app.ctl.settings)
    try:
        msg = client.predict("lite", "tome", 24, 3.0, 2.0, api_name="/save_settings")
        assert msg.startswith("OK:"), msg
        assert ui_app.ctl.bank.get_meta("ui.settings")["reducer"] == "tome"
        assert ui_app.ctl.bank.get_meta("ui.settings")["budget"] == 24
        from gradio_client.exceptions import AppError

        with pytest.raises(AppError):
            client.predict("lite", "no-such-reducer", 24, 3.0, 2.0, api_name="/save_settings")
        msg = client.predict("lite", "pool2d", -1, 3.0, 2.0, api_name="/save_settings")
        assert msg.startswith("Error:")
    finally:
        ui_app.ctl.save_settings(**old)


def test_stop_and_errors_for_sources(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError):
        client.predict("nope", api_name="/stop")
    assert client.predict(None, api_name="/stop").startswith("Error:")
    assert client.predict("http://example.com/x", "", False, api_name="/start_rtsp").startswith("Error:")


def test_exposure_rules(capsys):
    from ui.app import check_exposure

    assert check_exposure("127.0.0.1", None) is None
    with pytest.raises(SystemExit):
        check_exposure("0.0.0.0", None)
    assert check_exposure("0.0.0.0", "ann:secret") == ("ann", "secret")
    assert "warning" in capsys.readouterr().err


def test_rtsp_camera_starts_and_stops_independently(client, rtsp_server):
    msg = client.predict(rtsp_server.url, "cam1", False, api_name="/start_rtsp")
    assert msg.startswith("OK:") and "cam1" in msg, msg
    wait_for(lambda: (r := rows(client).get("cam1")) and r[7] >= 1, timeout=60, what="a camera memory")
    msg = client.predict(rtsp_server.url, "cam1", False, api_name="/start_rtsp")
    assert msg.startswith("Error:") and "already running" in msg
    msg = client.predict("cam1", api_name="/stop")
    assert msg.startswith("OK:") and "stopped" in msg, msg
    assert rows(client)["cam1"][2] == "stopped"
