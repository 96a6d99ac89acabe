"""``wordsight serve`` as a real process, the request timeout, and the worker-process factory."""
from __future__ import annotations

import os
import time

import httpx

from wordsight.serve.process import ServeProcess


def test_cli_defaults_bind_loopback_and_match_the_issue():
    from wordsight.cli import build_parser

    args = build_parser().parse_args(["serve", "some-model"])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 8000, 1)
    assert (args.max_upload_mb, args.max_megapixels, args.max_images, args.timeout) == (20, 40, 32, 30)
    from wordsight.cli.serve import settings_from_args

    s = settings_from_args(args)
    assert s.limits.max_upload_bytes == 20 * 2**20 and s.limits.max_pixels == 40_000_000


def test_cli_refuses_a_missing_model_and_an_unset_key_variable(tmp_path, capsys):
    from wordsight.cli import main

    assert main(["serve", str(tmp_path / "nothing-here")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"wordsight serve: error: {tmp_path / 'nothing-here'}: not a folder (a saved model is a folder with config.json)"]
    os.environ.pop("WORDSIGHT_TEST_UNSET_KEY", None)
    assert main(["serve", "--api-key-env", "WORDSIGHT_TEST_UNSET_KEY"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "wordsight serve: error: --api-key-env WORDSIGHT_TEST_UNSET_KEY: the environment variable "
        "WORDSIGHT_TEST_UNSET_KEY is unset or empty"]


def test_wordsight_serve_process_with_api_key(model_dir, images, api_key):
    args = [str(model_dir), "--api-key-env", "WS_TEST_KEY", "--max-batch", "4", "--log-level", "warning"]
    with ServeProcess(args, env={"WS_TEST_KEY": api_key}, start_timeout=240) as server:
        url = server.url
        files = [("files", ("cat.jpg", images["cat"], "image/jpeg"))]
        assert httpx.post(url + "/v1/predict", files=files, timeout=60).status_code == 401
        r = httpx.post(url + "/v1/predict", files=files, headers={"X-API-Key": api_key}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["results"][0]["predicted"] == "cat"
        info = httpx.get(url + "/v1/model", headers={"X-API-Key": api_key}).json()
        assert info["batching"]["max_batch"] == 4


def test_slow_requests_time_out_with_a_json_504():
    """A client that trickles its upload is cut off at the timeout (no model needed for that)."""
    from wordsight.serve import BackgroundServer, Limits, ServeSettings

    settings = ServeSettings(limits=Limits(timeout_s=1.0), warm_up=False)
    boundary = "wsboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode()

    def trickle():
        yield head
        for _ in range(6):
            time.sleep(0.5)
            yield b"\0" * 10

    with BackgroundServer(settings) as server:
        t = time.monotonic()
        r = httpx.post(server.url + "/v1/zeroshot", content=trickle(), timeout=30,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 504, r.text
        assert r.json()["error"] == "timeout" and "1 s" in r.json()["detail"]
        assert time.monotonic() - t < 10
        assert httpx.get(server.url + "/healthz").status_code == 200  # the server carries on


def test_worker_factory_reads_settings_from_the_environment(monkeypatch):
    from wordsight.serve import ServeSettings
    from wordsight.serve.app import SETTINGS_ENV, app_from_env

    monkeypatch.setenv(SETTINGS_ENV, ServeSettings(top_k=3, api_key_env="WS_FACTORY_KEY").to_json())
    monkeypatch.setenv("WS_FACTORY_KEY", "k")
    app = app_from_env()
    assert app.state.wordsight.settings.top_k == 3
    assert app.state.wordsight.api_key == "k"
