"""Screenshots of written reports for the docs: headless Chromium, top of the page, small PNGs.

Run::

    python -m ppx.explain.screenshots REPORT.html [...] --out docs/explanations

Each report is rendered by :func:`ppx.explain.browser.render` (which also checks that
every image decoded and nothing was fetched), the top of the page — the guide, the model,
the sentences and the drivers table — is kept, and the image is reduced to a palette PNG
under ``--max-kb`` so the docs stay light.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path


def shrink(png: bytes, height: int, width: int, max_kb: int) -> bytes:
    """Crop to ``height`` CSS pixels, scale to ``width``, palette-encode under ``max_kb``."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.crop((0, 0, img.width, min(img.height, height)))
    while True:
        scaled = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
        buf = io.BytesIO()
        scaled.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(
            buf, format="PNG", optimize=True
        )
        if buf.tell() <= max_kb * 1024 or width <= 400:
            return buf.getvalue()
        width = int(width * 0.85)


def screenshot(report: Path, out_dir: Path, height: int, width: int, max_kb: int) -> Path:
    """Render one report and write ``<out_dir>/<report stem>.png``; fails on a broken page."""
    from ppx.explain.browser import render

    seen = render(report, width=1000, height=height)
    problems = []
    if seen.images_loaded != seen.images_total:
        problems.append(f"{seen.images_total - seen.images_loaded} image(s) did not load")
    if seen.console_errors:
        problems.append(f"console errors: {seen.console_errors[:3]}")
    if seen.external_requests:
        problems.append(f"fetched {seen.external_requests[:3]}")
    if problems:
        raise RuntimeError(f"{report}: " + "; ".join(problems))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{report.stem}.png"
    path.write_bytes(shrink(seen.screenshot, height, width, max_kb))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/explanations"))
    parser.add_argument("--height", type=int, default=2600, help="CSS pixels kept from the top.")
    parser.add_argument("--width", type=int, default=760, help="Width of the PNG.")
    parser.add_argument("--max-kb", type=int, default=290)
    args = parser.parse_args(argv)
    for report in args.reports:
        path = screenshot(report, args.out, args.height, args.width, args.max_kb)
        print(f"{path} ({path.stat().st_size // 1024} KB)", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
