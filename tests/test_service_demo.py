"""`vagus demo --json`: the first stdout line's links work; Ctrl-C ends and saves."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path

from service_helpers import WAIT_S, check_server_frame, client
from vagus.store.base import PacketRecord
from vagus.store.open import open_store


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_demo_json_links_work_and_ctrl_c_saves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vagus",
        "demo",
        "--json",
        "--no-browser",
        "--port",
        "0",
        "--data-dir",
        str(data),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), WAIT_S * 3)
        links = json.loads(line)
        assert set(links) >= {"session", "urls", "ws"}
        assert set(links["urls"]) >= {"participant", "practitioner", "viewer"}
        assert set(links["ws"]) == {"participant", "practitioner", "viewer"}
        for role, url in links["urls"].items():
            assert url.startswith("http://127.0.0.1:") and "token=" in url
            if role != "review":
                assert await asyncio.to_thread(fetch, url) == 200, role
            assert await asyncio.to_thread(fetch, url.split("?")[0]) == 403
        async with client(links["ws"]["participant"]) as me:
            hello = await me.recv()
            check_server_frame(hello)
            assert hello["role"] == "participant" and hello["recording"] is True
            assert hello["state"]["pacer"]["rate_bpm"] == 6.0
            beat = await me.until(lambda f: f["type"] == "beat")  # the simulated subject
            check_server_frame(beat)
        async with client(links["ws"]["practitioner"]) as pr:
            assert (await pr.recv())["role"] == "practitioner"
    finally:
        proc.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(proc.wait(), WAIT_S * 2)
    stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert code == 130, stderr
    assert "Traceback" not in stderr
    with open_store(data) as store:
        info = store.get_session(links["session"])
        assert info.status == "ended"
        assert any(isinstance(r, PacketRecord) for r in store.iter_input(info.id))


def test_non_loopback_bind_needs_tls_or_insecure() -> None:
    import pytest

    from vagus.exceptions import InvalidInput
    from vagus.service.server import check_bind

    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        check_bind(host, tls=False, insecure=False)
    for host in ("0.0.0.0", "192.168.1.5", "::", "example.org"):
        with pytest.raises(InvalidInput, match="--tls-cert"):
            check_bind(host, tls=False, insecure=False)
        check_bind(host, tls=True, insecure=False)
        check_bind(host, tls=False, insecure=True)


def test_demo_refuses_an_open_bind_with_a_clear_error(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vagus",
            "demo",
            "--host",
            "0.0.0.0",
            "--no-browser",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=WAIT_S * 3,
    )
    assert done.returncode == 1
    assert "--tls-cert" in done.stderr and "--insecure" in done.stderr
    assert "Traceback" not in done.stderr


async def test_tls_serves_https_and_wss(tmp_path: Path) -> None:
    import shutil
    import ssl
    import subprocess

    import pytest

    from service_helpers import service

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (Debian package openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with service(tmp_path / "data", record=False, tls=server_ctx) as svc:
        hosted = await svc.create_session([("ann", "relay")], record=False)
        links = svc.links[hosted.id]
        assert links["urls"]["viewer"].startswith("https://")
        assert links["ws"]["viewer"].startswith("wss://")
        async with client(links["ws"]["viewer"], ssl=client_ctx) as v:
            assert (await v.recv())["type"] == "hello"

        def fetch_tls(url: str) -> int:
            try:
                with urllib.request.urlopen(url, timeout=WAIT_S, context=client_ctx) as r:
                    return int(r.status)
            except urllib.error.HTTPError as exc:
                return exc.code

        assert await asyncio.to_thread(fetch_tls, links["urls"]["viewer"].split("?")[0]) == 403
