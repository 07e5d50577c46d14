"""Regenerate docs/report-screenshot.png: the HTML report of the embedded simulated cluster's default plan.

    python docs/report_screenshot.py          # needs Debian's chromium (tests/run.sh installs it)

It runs `balancer recommend --format html` (no config: the embedded cluster), opens the file in
headless Chromium and keeps the page down to the end of its content.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

OUT = Path(__file__).resolve().parent / "report-screenshot.png"
WIDTH, HEIGHT = 1200, 3000


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="balancer-shot-") as tmp:
        html = Path(tmp) / "report.html"
        png = Path(tmp) / "page.png"
        subprocess.run([sys.executable, "-m", "balancer", "recommend", "--format", "html", "--out", str(html)],
                       check=True)
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={tmp}/profile", f"--window-size={WIDTH},{HEIGHT}",
                        f"--screenshot={png}", html.as_uri()],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        img = Image.open(png).convert("RGB")
        box = ImageChops.difference(img, Image.new("RGB", img.size, "white")).getbbox()
        bottom = min(img.height, (box[3] if box else img.height) + 24)
        img.crop((0, 0, img.width, bottom)).save(OUT, optimize=True)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
