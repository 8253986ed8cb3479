"""`make screenshots`: PNGs of the web UI's main pages in docs/screenshots/, taken by headless Chromium.

What it does: starts a Corral server on a free port with a temporary data directory, creates three local hosts
(network namespaces with their own dockerd and agent), brings up the demo stack (examples/demo, as `make demo`
does), logs in with the admin key and photographs the hosts page, the stack page, a container with its logs,
the catalog's launch form, a stack's compose files, a host with its usage, the registries and the API keys pages
at 1280x800. Everything it started is removed at the end, also when a step fails.

Why it borrows the integration tests' server harness: that harness already knows how to start a server on its own
bridge and subnet and how to sweep every host, namespace and bridge away afterwards.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, log_in  # noqa: E402
from tests.integration.servers import ServerProcess, wait_until  # noqa: E402

OUT_DIR = ROOT / "docs" / "screenshots"
HOSTS = ("host1", "host2", "host3")
DEMO = ROOT / "examples" / "demo"
STATS_SECONDS = 6


def _all_running(server: ServerProcess, stack: str, count: int) -> Callable[[], bool]:
    def check() -> bool:
        containers = server.client().stacks.containers("default", stack)
        return len(containers) >= count and all(c["state"] == "running" for c in containers)

    return check


def set_up(server: ServerProcess) -> dict[str, Any]:
    """Three active hosts and the demo stack running; returns the stack."""
    for name in HOSTS:
        server.cli("hosts", "create", "--driver", "local", "--label", "demo=true", name)
    wait_until(
        "three active hosts",
        lambda: len([h for h in server.client().list_hosts() if h["state"] == "active"]) == len(HOSTS),
        timeout=180,
    )
    client = server.client()
    stack = client.stacks.up(
        "default",
        "demo",
        (DEMO / "docker-compose.yml").read_text(),
        rancher_compose=(DEMO / "rancher-compose.yml").read_text(),
    )
    wait_until("the demo stack's containers to run", _all_running(server, "demo", 4), timeout=180)
    return stack


def take(page: Any, name: str) -> None:
    path = OUT_DIR / f"{name}.png"
    page.screenshot(path=str(path))
    print(f"screenshots: wrote {path.relative_to(ROOT)}")


def photograph(server: ServerProcess, stack: dict[str, Any]) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    worker = next(c for c in server.client().stacks.containers("default", "demo") if c["service"] == "worker")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # the server's own CA is not in Chromium's store: trust this one local server's certificate
            context = browser.new_context(base_url=server.url, viewport=VIEWPORT, ignore_https_errors=True)
            context.set_default_timeout(60_000)
            page = context.new_page()
            log_in(page, server)

            page.goto("/ui/hosts")
            expect(page.get_by_text("host3").first).to_be_visible()
            take(page, "hosts")

            page.goto(f"/ui/stacks/{stack['id']}")
            expect(page.locator("#containers tr[data-state=running]")).to_have_count(4)
            take(page, "stack")

            page.goto(f"/ui/containers/{worker['id']}")
            page.wait_for_function(
                "() => [...document.querySelectorAll('.logbox, .xterm-rows')].some(e => e.textContent.trim())"
            )
            with contextlib.suppress(PlaywrightError):  # a page without live stats is still worth a picture
                expect(page.locator("#stats-status")).to_have_text("live", timeout=20_000)
                page.wait_for_timeout(STATS_SECONDS * 1000)  # a few samples, so that the charts show lines
            take(page, "container")

            page.goto("/ui/catalog")
            expect(page.locator(".template-card").first).to_be_visible()
            take(page, "catalog")

            page.goto("/ui/catalog/library/hello-web")
            page.fill("#launch-stack", "hello")
            take(page, "catalog-launch")

            page.goto(f"/ui/stacks/{stack['id']}/compose")
            expect(page.locator(".compose-file").first).to_be_visible()
            take(page, "stack-compose")

            host = next(h for h in server.client().list_hosts() if h["name"] == HOSTS[0])
            page.goto(f"/ui/hosts/{host['id']}")
            expect(page.locator("#host-usage [data-usage=cpu]")).to_contain_text("%")
            take(page, "host")

            server.client().add_registry("default", "registry.example.com:5000", "deployer", "not-shown-anywhere")
            page.goto("/ui/registries")
            take(page, "registries")

            page.goto("/ui/keys")
            page.fill("#environment-key-form input[name=description]", "CI deploys")
            page.click("#environment-key-form button[type=submit]")
            expect(page.locator("#new-key")).to_be_visible()
            take(page, "keys")

            page.goto("/ui/events")
            expect(page.locator("#event-rows tr").first).to_be_visible()  # the history, on first load
            take(page, "events")

            client = server.client()
            client.volumes.create("default", "shared-data")
            page.goto("/ui/volumes")
            expect(page.get_by_text("shared-data").first).to_be_visible()
            take(page, "volumes")

            page.goto("/ui/images")
            expect(page.get_by_text("corral/busybox").first).to_be_visible()
            take(page, "images")

            client.standalone.run("default", "corral/busybox:latest", name="toolbox", command=["sleep", "1d"])
            deadline = time.monotonic() + 60  # the page does not follow the event stream: show it running
            while client.standalone.find("default", "toolbox")["state"] != "running" and time.monotonic() < deadline:
                time.sleep(0.5)
            page.goto("/ui/containers")
            expect(page.get_by_text("toolbox").first).to_be_visible()
            take(page, "containers")
        finally:
            browser.close()


def main() -> int:
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is not installed (run `make setup`)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="corral-screens-") as temp:
        data_dir = Path(temp) / "data"
        data_dir.mkdir()
        server = ServerProcess(data_dir)
        try:
            server.start()
            print(f"screenshots: server on {server.url}; creating {len(HOSTS)} local hosts and the demo stack")
            photograph(server, set_up(server))
        except Exception:
            print(f"screenshots: failed; the server's log ends with:\n{server.log()}", file=sys.stderr)
            raise
        finally:
            server.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
