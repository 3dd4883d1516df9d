"""``agricare detect-rows IMAGE_OR_DIR... --json OUT.json [--overlay DIR] [--labels DIR] [--method M]``.

OUT.json maps each image path to ``{"rows": [[[x, y], ...], ...], "offset": ..., "heading": ...,
"confidence": ..., "ms": ...}`` (rows bottom-up, pixels; offset in row spacings and heading in radians,
normalised as no camera geometry is given). Overlays draw the rows on the image. ``--method``: vp (default),
fourier (the previous detector) or learned (the bundled ONNX row-line network).

With ``--labels DIR`` (label images of the same name, any image extension: every crop row a white line on
black) each entry also holds ``crda`` (see :mod:`agricare.core.perception.crop_row_score`), ``pos_err`` and
``ang_err_deg``, the overlays show the label lines in blue, and the mean CRDA is printed.
"""

from __future__ import annotations

import json
import math
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
    parser.add_argument("--labels", metavar="DIR", help="label images (same file names): report CRDA")
    parser.add_argument("--method", choices=("vp", "fourier", "learned"), default="vp",
                        help="row model (default vp; learned needs the bundled ONNX model)")


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
    import numpy as np

    from agricare.core.perception.crop_rows import CropRowParams, detect_rows, draw_rows

    from agricare.core.perception.crop_row_score import crda_image, label_lines

    kw = {"method": args.method}
    if args.work_width:
        kw["work_width_px"] = args.work_width
    try:
        params = CropRowParams(**kw)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    labels = pathlib.Path(args.labels) if args.labels else None
    if labels is not None and not labels.is_dir():
        raise CliError(f"labels directory not found: {labels}")
    files = _collect(args.inputs)
    crdas = []
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
        lab_lines = []
        if labels is not None:
            lab_path = next((q for q in sorted(labels.glob(f"{f.stem}.*")) if q.suffix.lower() in _EXT), None)
            lab = cv2.imread(str(lab_path), cv2.IMREAD_GRAYSCALE) if lab_path is not None else None
            if lab is None or lab.shape[:2] != img.shape[:2]:
                out[str(f)]["crda_error"] = "no label image of the same size"
            else:
                sc = crda_image(r.rows, lab)
                if math.isfinite(sc["crda"]):
                    out[str(f)].update(crda=sc["crda"], pos_err=sc["pos_err"], ang_err_deg=sc["ang_err_deg"])
                    crdas.append(sc["crda"])
                else:
                    out[str(f)]["crda_error"] = "fewer than two label rows"
                lab_lines = label_lines(lab)
        if overlay:
            name = f"{f.stem}_rows.png"
            ov = draw_rows(img, r)
            for g in lab_lines:
                cv2.polylines(ov, [np.round(g[::8]).astype(np.int32).reshape(-1, 1, 2)], False, (255, 0, 0), 1)
            if "crda" in out[str(f)]:
                cv2.putText(ov, f"CRDA {out[str(f)]['crda']:.2f}", (5, ov.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX,
                            0.5, (255, 255, 255), 1, cv2.LINE_AA)
            cv2.imwrite(str(overlay / name), ov)
    dest = pathlib.Path(args.json)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))
    ok = len(files) - failed
    conf = [v["confidence"] for v in out.values() if "confidence" in v]
    print(f"{ok}/{len(files)} images, mean confidence {sum(conf) / max(len(conf), 1):.2f} -> {dest}")
    if labels is not None:
        if crdas:
            print(f"CRDA {sum(crdas) / len(crdas):.3f} over {len(crdas)} labelled images")
        else:
            print("CRDA: no image had a usable label")
    return 0 if ok else 1
