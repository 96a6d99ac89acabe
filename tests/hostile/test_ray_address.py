"""Issue 28, defect 11: Ray with an unreachable ``--address`` retried forever. The address is
tried once (a TCP connect with a timeout) before ``ray.init``; one line names it. Real ``ray``,
real closed ports."""
from __future__ import annotations

import socket
import time

import pytest

from .conftest import time_limit

pytest.importorskip("ray")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("form", ["127.0.0.1:1", "ray://127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_unreachable_address_fails_fast_with_one_line(form):
    import ray

    from wordsight.features.engines.ray_engine import RayAddressError, init_ray

    address = form.format(port=_closed_port())
    was = ray.is_initialized()  # earlier tests of the session may have started a local Ray
    start = time.monotonic()
    with time_limit(60), pytest.raises(RayAddressError) as err:
        init_ray(address)
    assert time.monotonic() - start < 15
    assert ray.is_initialized() == was  # neither started nor connected to anything
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"--address {address}: cannot reach a Ray cluster there")
    assert "connect timeout 10 s" in msg


def test_the_cli_says_it_in_one_line(tmp_path, capsys):
    from PIL import Image

    from wordsight.cli import main

    Image.new("RGB", (40, 30), (200, 20, 20)).save(tmp_path / "a.png")
    start = time.monotonic()
    with time_limit(60):
        rc = main(["embed", str(tmp_path / "a.png"), "--out", str(tmp_path / "shards"), "--engine", "ray",
                   "--address", "127.0.0.1:1", "--model", "pixels-32"])
    err = capsys.readouterr().err
    assert rc != 0 and time.monotonic() - start < 15
    assert "--address 127.0.0.1:1: cannot reach a Ray cluster there" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_reachable_and_named_addresses_pass_the_check():
    from wordsight.features.engines.ray_engine import _host_port, check_reachable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        check_reachable(f"127.0.0.1:{s.getsockname()[1]}", timeout=2)  # a port that accepts: no error
        check_reachable(f"ray://127.0.0.1:{s.getsockname()[1]}", timeout=2)
    assert _host_port("auto") is None and _host_port("local") is None and _host_port("ray://head") is None
    assert _host_port("ray://10.0.0.5:10001") == ("10.0.0.5", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)
