"""The browser demo's folder, as ``slfm deploy web`` and the parity harness's browser target build it: the page
(``web_demo/``: HTML, the JavaScript port of the pre/post-processing, the service worker), LiteRT.js and its WASM
copied from ``web_demo/node_modules`` (installed by ``web_demo/setup.sh``: ``npm ci`` on the committed lockfile),
and the chosen ``.tflite`` artifacts with their JSON contracts. Nothing is fetched at run time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from slfm.artifact import ArtifactMeta, read_sidecar, sidecar_path
from slfm.errors import SlfmError
from slfm.formats import for_deploy

REPO = Path(__file__).resolve().parents[1]
WEB_DEMO = REPO / "web_demo"
SETUP = "web_demo/setup.sh"
PAGE_FILES = ("index.html", "harness.html", "style.css", "sw.js")
MODELS = "models"
# LiteRT.js picks one of these at load time: relaxed-SIMD XNNPACK, the plain-SIMD fallback, the JSPI build (WebGPU).
WASM_BUILDS = ("litert_wasm_internal", "litert_wasm_compat_internal", "litert_wasm_jspi_internal")
VENDOR = {  # node_modules file -> where the page's import map expects it
    "@litertjs/core/dist/index.js": "vendor/litertjs/core/index.js",
    "@litertjs/core/package.json": "vendor/litertjs/core/package.json",  # version and licence (Apache-2.0)
    "@litertjs/wasm-utils/dist/index.js": "vendor/litertjs/wasm-utils/index.js",
    **{
        f"@litertjs/core/wasm/{b}{ext}": f"vendor/litertjs/wasm/{b}{ext}"
        for b in WASM_BUILDS
        for ext in (".js", ".wasm")
    },
}
MARKER = "files.json"  # written last; a folder holding it is ours to replace


def litert_version(web_demo: Path = WEB_DEMO) -> str:
    """The pinned @litertjs/core version (web_demo/package.json)."""
    return json.loads((web_demo / "package.json").read_text())["dependencies"]["@litertjs/core"]


def node_modules(web_demo: Path = WEB_DEMO) -> Path:
    """web_demo/node_modules (or $SLFM_WEB_NODE_MODULES) holding the pinned LiteRT.js, checked."""
    nm = Path(os.environ.get("SLFM_WEB_NODE_MODULES", web_demo / "node_modules"))
    pkg = nm / "@litertjs" / "core" / "package.json"
    if not pkg.is_file():
        raise SlfmError(f"LiteRT.js is not installed in {nm}: run `{SETUP}` (npm ci in web_demo/)")
    got, want = json.loads(pkg.read_text()).get("version"), litert_version(web_demo)
    if got != want:
        raise SlfmError(f"{pkg}: @litertjs/core {got}, but web_demo/package.json pins {want}: run `{SETUP}`")
    missing = [src for src in VENDOR if not (nm / src).is_file()]
    if missing:
        raise SlfmError(f"{nm}: LiteRT.js is incomplete (no {missing[0]}): run `{SETUP}`")
    return nm


def browser_artifact(path: Path) -> ArtifactMeta:
    """The sidecar of a .tflite the page can run (LiteRT.js runs TFLite only)."""
    if not path.is_file():
        raise SlfmError(f"artifact not found: {path}")
    meta = read_sidecar(path)
    if meta.format not in for_deploy("web"):
        wanted = " or ".join(f.suffix for f in for_deploy("web").values())
        raise SlfmError(f"{path}: a {meta.format} artifact; the browser (LiteRT.js) runs {wanted} only")
    return meta


def model_label(path: Path, meta: ArtifactMeta) -> str:
    kind = meta.precision + (f" {meta.quantization.split('-')[0]}" if meta.quantization else "")
    return f"{kind}, {meta.image_size} px, {path.stat().st_size / 1e6:.1f} MB ({path.name})"


def build(out: Path, artifacts: list[Path], web_demo: Path = WEB_DEMO) -> dict:
    """Write the page with ``artifacts`` (fp32 listed first) into ``out``; returns the models.json entries."""
    metas = {Path(a): browser_artifact(Path(a)) for a in artifacts}
    if not metas:
        raise SlfmError("no artifact given: the page needs at least one .tflite")
    names = [p.name for p in metas]
    if len(set(names)) != len(names):
        raise SlfmError(f"two artifacts share a file name ({', '.join(names)}): rename one")
    nm = node_modules(web_demo)
    out = Path(out)
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file()):
            raise SlfmError(f"{out} exists and is not a page built by slfm: choose another --out")
        shutil.rmtree(out)
    (out / "src").mkdir(parents=True)
    for name in PAGE_FILES:
        shutil.copy2(web_demo / name, out / name)
    for js in sorted((web_demo / "src").glob("*.js")):
        shutil.copy2(js, out / "src" / js.name)
    for src, dst in VENDOR.items():
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(nm / src, out / dst)
    (out / MODELS).mkdir()
    order = sorted(metas, key=lambda p: (metas[p].precision != "fp32", p.name))
    models = []
    for p in order:
        shutil.copy2(p, out / MODELS / p.name)
        shutil.copy2(sidecar_path(p), sidecar_path(out / MODELS / p.name))
        m = metas[p]
        models.append(
            {
                "file": f"{MODELS}/{p.name}",
                "label": model_label(p, m),
                "precision": m.precision,
                "image_size": m.image_size,
                "input_dtype": m.input_dtype,
            }
        )
    (out / "models.json").write_text(json.dumps(models, indent=1) + "\n")
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.encode() + (out / f).read_bytes())
    # "./" is the page itself (the service worker caches it under the folder's URL too)
    (out / MARKER).write_text(json.dumps({"build": digest.hexdigest()[:16], "files": ["./", *files]}, indent=1) + "\n")
    return {"out": str(out), "models": models, "files": len(files) + 1}
