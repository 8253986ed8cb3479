"""Browser libraries from the npm registry (src/corral/web/assets/package.json + lock), installed by
scripts/setup.sh with `npm ci` and served as static files under /ui/vendor/. Nothing of them is in the repository and
no node process runs: Node.js is needed only at set-up time.
"""

from __future__ import annotations

import os
from pathlib import Path

ASSETS_DIR = Path(__file__).parent / "assets"

# URL name -> path inside node_modules; only these files are served.
VENDOR_FILES = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "xterm.js": "@xterm/xterm/lib/xterm.js",
    "xterm.css": "@xterm/xterm/css/xterm.css",
    "addon-fit.js": "@xterm/addon-fit/lib/addon-fit.js",
}


def node_modules_dir() -> Path:
    override = os.environ.get("CORRAL_UI_ASSETS")
    return Path(override) if override else ASSETS_DIR / "node_modules"


def vendor_path(name: str) -> Path | None:
    relative = VENDOR_FILES.get(name)
    if relative is None:
        return None
    path = node_modules_dir() / relative
    return path if path.is_file() else None
