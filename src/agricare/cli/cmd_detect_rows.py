"""``agricare detect-rows IMAGE_OR_DIR... --json OUT.json [--overlay DIR]``.

OUT.json maps each image path to ``{"rows": [[[x, y], ...], ...], "offset": ..., "heading": ...,
"confidence": ..., "ms": ...}`` (rows bottom-up, pixels; offset in row spacings and heading in radians,
normalised as no camera geometry is given). Overlays draw the rows on the image.
"""

from __future__ import annotations

import json
import pathlib
import time

from agricare.cli import CliError

COMMAND = "detect-rows"
HELP = "detect crop rows in images (JSON result, optional overlays)"

_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files or directories")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="where to write the results")
    parser.add_argument("--overlay", metavar="DIR", help="write images with the rows drawn into DIR")
    parser.add_argument("--work-width", type=int, default=None, help="internal processing width, px")


def _collect(inputs) -> list[pathlib.Path]:
    files = []
    for s in inputs:
        p = pathlib.Path(s)
        if p.is_dir():
            files += sorted(q for q in p.rglob("*") if q.suffix.lower() in _EXT and q.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise CliError(f"no such file or directory: {s}")
    if not files:
        raise CliError("no images found in " + ", ".join(inputs))
    return files


def run(args) -> int:
    import cv2

    from agricare.core.perception.crop_rows import CropRowParams, detect_rows, draw_rows

    try:
        params = CropRowParams(work_width_px=args.work_width) if args.work_width else CropRowParams()
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    files = _collect(args.inputs)
    out: dict = {}
    overlay = pathlib.Path(args.overlay) if args.overlay else None
    if overlay:
        overlay.mkdir(parents=True, exist_ok=True)
    failed = 0
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            out[str(f)] = {"error": "cannot read image"}
            failed += 1
            continue
        t0 = time.perf_counter()
        try:
            r = detect_rows(img, params)
        except ValueError as exc:
            out[str(f)] = {"error": str(exc)}
            failed += 1
            continue
        ms = (time.perf_counter() - t0) * 1e3
        out[str(f)] = {"rows": [[[round(float(x), 2), round(float(y), 2)] for x, y in row] for row in r.rows],
                       "offset": r.offset, "heading": r.heading, "confidence": r.confidence, "ms": round(ms, 3),
                       "center_index": r.center_index, "reason": r.reason}
        if overlay:
            name = f"{f.stem}_rows.png"
            cv2.imwrite(str(overlay / name), draw_rows(img, r))
    dest = pathlib.Path(args.json)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))
    ok = len(files) - failed
    conf = [v["confidence"] for v in out.values() if "confidence" in v]
    print(f"{ok}/{len(files)} images, mean confidence {sum(conf) / max(len(conf), 1):.2f} -> {dest}")
    return 0 if ok else 1
