"""``slfm deploy web``: the browser demo (``web_demo/``) built with the chosen ``.tflite`` artifacts into a folder,
and served from it on request. The folder is static: any web server (or a phone, over HTTPS) can host it."""

from __future__ import annotations

import time
from pathlib import Path

import click

from slfm.errors import SlfmError


@click.command()
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/web"), show_default=True, help="page folder")
@click.option("--serve", is_flag=True, help="serve the folder until Ctrl-C")
@click.option("--host", default="127.0.0.1", show_default=True, help="0.0.0.0: reachable from a phone on the network")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--https", "https", is_flag=True, help="serve over HTTPS with a self-signed certificate (phones)")
@click.option("--cert", type=click.Path(path_type=Path, dir_okay=False), default=None, help="your own TLS certificate")
@click.option("--key", type=click.Path(path_type=Path, dir_okay=False), default=None, help="its private key")
def web(artifacts, out, serve, host, port, https, cert, key):
    """Build the browser demo with ARTIFACTS (.tflite files with their .json sidecars; fp32 and int8 both go in
    the page's model selector) into OUT, and serve it with --serve."""
    from slfm.web_build import build
    from slfm.web_serve import WebServer, lan_addresses, self_signed_cert

    if (cert is None) != (key is None):
        raise SlfmError("--cert and --key go together")
    made = build(out, list(artifacts))
    click.echo(f"built: {made['out']} ({made['files']} files; models: {', '.join(m['file'] for m in made['models'])})")
    if not serve:
        click.echo(f"serve it: slfm deploy web {' '.join(map(str, artifacts))} --out {out} --serve")
        return
    lan = lan_addresses() if host in ("0.0.0.0", "") else []
    tls = (cert, key) if cert else None
    if https and tls is None:
        tls = self_signed_cert(out.parent / f"{out.name}-tls", lan or [host])  # outside the served folder
    with WebServer(out, host, port, tls=tls, quiet=False) as srv:
        click.echo(f"serving {out} at {srv.url}/ (Ctrl-C stops)")
        for ip in lan:
            click.echo(f"  from a phone on this network: {srv.scheme}://{ip}:{srv.port}/")
        if lan and srv.scheme == "http":
            click.echo("  (phones allow the camera on https only: add --https, or use an image / video file)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("stopped")
