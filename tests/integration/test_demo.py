"""`make demo`'s main job (scripts/demo.sh) on its own bridge, subnet and data dir: three hosts, the demo stack's
web service on three different hosts, with `HOST=0.0.0.0` the command that adds another machine (the server's
advertised URL, not loopback, and the CA pin in the token), and Ctrl-C removes the hosts it created."""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from corral.model.join_token import ca_digest_of_pem
from corral.server.shared.advertise import primary_address
from tests.integration.demo_run import demo_run

pytestmark = pytest.mark.integration


def test_demo_runs_the_web_service_on_three_hosts_and_cleans_up(prerequisites: None, tmp_path: Path) -> None:
    with demo_run(tmp_path / "data", "d", CORRAL_DEMO_HOST="0.0.0.0") as run:  # `make demo HOST=0.0.0.0`
        env, demo, text = run.env, run.process, run.started
        assert "Press Ctrl-C" in text, text
        web_hosts = set(re.findall(r"demo\s+web\s+demo-web-\d\s+(host\d)\s+running", text))
        assert web_hosts == {"host1", "host2", "host3"}, text
        assert re.search(r"demo\s+worker\s+demo-worker-1\s+host\d\s+running", text), text
        assert "default: allows all" in text  # make demo's environment allows the dangerous settings (warned)
        assert f"https://127.0.0.1:{env['CORRAL_PORT']}" in text
        ui_url = f"https://127.0.0.1:{env['CORRAL_PORT']}/ui/"
        assert f"Web UI:      {ui_url}" in text
        trust = ssl.create_default_context(cafile=str(tmp_path / "data" / "tls" / "ca.pem"))
        with urllib.request.urlopen(ui_url + "login", timeout=10, context=trust) as login_page:  # the UI answers
            assert "Log in to Corral" in login_page.read().decode()
        advertised = primary_address() or "127.0.0.1"  # what other machines are told (server/shared/advertise.py)
        digest = ca_digest_of_pem((tmp_path / "data" / "tls" / "ca.pem").read_text()).removeprefix("sha256:")
        agent = f"corral agent --url https://{advertised}:{env['CORRAL_PORT']} --token CORRAL1-{digest}-"
        assert re.search(r"Add a host: .*\n\s+" + re.escape(agent), text), text
        keys = dict(line.split("=", 1) for line in (tmp_path / "data" / "admin.env").read_text().split())
        assert f"CORRAL_ACCESS_KEY={keys['CORRAL_ACCESS_KEY']}" in text
        assert keys["CORRAL_SECRET_KEY"] not in text  # never printed: it is in admin.env (0600)

        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=120)
        assert "removing the hosts this run created" in rest
        assert run.driver.records() == []
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert env["CORRAL_LOCAL_PREFIX"] not in netns
