"""Remote devices reached by ssh (a Raspberry Pi) or adb (an Android phone): push files, run a command,
pull files back. Commands are built with shlex quoting (paths with spaces or shell metacharacters are
safe); every call is bounded in time and fails with one line naming the host and what timed out.

ssh uses the user's own keys, config and known_hosts (``BatchMode=yes``: never a password or host-key
prompt that could hang); host-key checking is never turned off.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from slfm.errors import SlfmError

SSH_RE = re.compile(
    r"^ssh://(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d+))?/?$"
)


def _last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


def _tar_bytes(files: dict[str, Path]) -> bytes:
    """A tar archive (in memory) holding ``files`` (name in archive -> local file or folder)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, path in files.items():
            tar.add(str(path), arcname=name)
    return buf.getvalue()


def _run(
    cmd: list[str], timeout: float, what: str, where: str, data: bytes | None = None
) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise SlfmError(f"{where}: {what} did not finish within {timeout:.0f} s (target hung or unreachable)") from None
    except FileNotFoundError:
        raise SlfmError(f"{cmd[0]} not found on PATH (needed for {where})") from None


@dataclass
class SshRemote:
    """``ssh://user@host[:port]``. ``ssh_config`` (``-F``) and ``identity`` (``-i``) are optional: by default
    ssh reads ~/.ssh/config, the user's keys and ~/.ssh/known_hosts as for any ssh command."""

    host: str
    user: str | None = None
    port: int | None = None
    ssh_config: Path | None = None
    identity: Path | None = None
    connect_timeout: int = 15
    options: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str, **kw) -> SshRemote:
        m = SSH_RE.match(spec)
        if not m:
            raise SlfmError(f"target {spec!r} is not ssh://[user@]host[:port]")
        if m["host"].startswith("-") or (m["user"] or "").startswith("-"):
            raise SlfmError(f"target {spec!r}: a host or user starting with '-' would be read by ssh as an option")
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise SlfmError(f"target {spec!r}: port {port} out of range")
        return cls(host=m["host"].strip("[]"), user=m["user"], port=port, **kw)

    @property
    def name(self) -> str:
        return f"ssh://{self.user + '@' if self.user else ''}{self.host}{':' + str(self.port) if self.port else ''}"

    def ssh_args(self) -> list[str]:
        args = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        args += ["-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3"]
        if self.ssh_config:
            args += ["-F", str(self.ssh_config)]
        if self.identity:
            args += ["-i", str(self.identity)]
        if self.port:
            args += ["-p", str(self.port)]
        for opt in self.options:
            args += ["-o", opt]
        args.append(f"{self.user}@{self.host}" if self.user else self.host)
        return args

    def command(self, remote_cmd: str) -> list[str]:
        """The local argv running ``remote_cmd`` (one shell string, already quoted) on the host."""
        return [*self.ssh_args(), "--", remote_cmd]

    def run(self, remote_cmd: str, timeout: float, what: str = "command", data: bytes | None = None) -> bytes:
        r = _run(self.command(remote_cmd), timeout, what, self.name, data)
        if r.returncode == 255:
            raise SlfmError(f"{self.name}: ssh failed ({what}): {_last_line(r.stderr) or 'exit 255'}")
        if r.returncode != 0:
            msg = _last_line(r.stderr) or _last_line(r.stdout) or f"exit status {r.returncode}"
            raise SlfmError(f"{self.name}: {what} failed: {msg}")
        return r.stdout

    def stream(self, remote_cmd: str, timeout: float, on_line, what: str = "command") -> None:
        """Run ``remote_cmd``, handing each output line (stdout and stderr) to ``on_line`` as it comes."""
        proc = subprocess.Popen(
            self.command(remote_cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            os.killpg(proc.pid, signal.SIGTERM)

        timer = threading.Timer(timeout, kill)
        timer.start()
        last = ""
        try:
            for raw in proc.stdout:
                last = raw.decode(errors="replace").rstrip("\n")
                on_line(last)
            rc = proc.wait()
        finally:
            timer.cancel()
        timed_out = fired.is_set()
        if timed_out:
            raise SlfmError(f"{self.name}: {what} did not finish within {timeout:.0f} s (target hung or unreachable)")
        if rc == 255:
            raise SlfmError(f"{self.name}: ssh failed ({what}): {last or 'exit 255'}")
        if rc != 0:
            raise SlfmError(f"{self.name}: {what} failed: {last or f'exit status {rc}'}")

    def check(self, timeout: float = 60) -> str:
        """Reachability and login check; returns the remote ``uname -m``."""
        return self.run("uname -m", timeout, "connection check").decode().strip()

    def push(self, files: dict[str, Path], remote_dir: str, timeout: float) -> None:
        """Copy local files/folders into ``remote_dir`` (created) as the given names, via tar over ssh."""
        d = shlex.quote(remote_dir)
        self.run(f"mkdir -p {d} && tar -C {d} -xf -", timeout, f"copy to {remote_dir}", data=_tar_bytes(files))

    def pull(self, remote_dir: str, names: list[str], local_dir: Path, timeout: float) -> None:
        """Copy ``names`` (relative to ``remote_dir``) back into ``local_dir``."""
        quoted = " ".join(shlex.quote(n) for n in names)
        data = self.run(f"tar -C {shlex.quote(remote_dir)} -cf - {quoted}", timeout, f"copy back from {remote_dir}")
        local_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(local_dir, filter="data")

    def remove(self, remote_dir: str, timeout: float = 60) -> None:
        self.run(f"rm -rf {shlex.quote(remote_dir)}", timeout, f"clean-up of {remote_dir}")


def adb_path() -> str:
    adb = os.environ.get("ADB") or shutil.which("adb")
    if not adb:
        raise SlfmError(
            "target adb: adb not found on PATH (install Android platform-tools, e.g. apt-get install adb, or set $ADB)"
        )
    return adb


def parse_adb_devices(text: str) -> list[tuple[str, str]]:
    """(serial, state) pairs from ``adb devices`` output."""
    out = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and not line.startswith("*"):
            out.append((parts[0], parts[1]))
    return out


@dataclass
class AdbRemote:
    """``adb`` or ``adb:SERIAL``: an Android device with USB debugging. Files go to /data/local/tmp."""

    serial: str | None = None
    timeout_devices: float = 20

    @classmethod
    def parse(cls, spec: str) -> AdbRemote:
        if spec == "adb":
            return cls()
        if spec.startswith("adb:") and re.fullmatch(r"[A-Za-z0-9._:-]+", spec[4:]):
            return cls(serial=spec[4:])
        raise SlfmError(f"target {spec!r} is not adb or adb:SERIAL")

    @property
    def name(self) -> str:
        return f"adb:{self.serial}" if self.serial else "adb"

    def resolve(self) -> str:
        """The serial to use: checks adb exists and the device is connected (clear error otherwise)."""
        r = _run([adb_path(), "devices"], self.timeout_devices, "adb devices", self.name)
        devices = parse_adb_devices(r.stdout.decode(errors="replace"))
        ready = [s for s, state in devices if state == "device"]
        if self.serial:
            state = dict(devices).get(self.serial)
            if state != "device":
                listed = ", ".join(f"{s} ({st})" for s, st in devices) or "none"
                raise SlfmError(
                    f"target {self.name}: device {self.serial} is not connected (adb devices lists: {listed})"
                )
            return self.serial
        if not ready:
            raise SlfmError(
                "target adb: no Android device connected (adb devices lists none ready); "
                "connect one with USB debugging enabled"
            )
        if len(ready) > 1:
            raise SlfmError(f"target adb: several devices connected ({', '.join(ready)}): name one as adb:SERIAL")
        self.serial = ready[0]
        return self.serial

    def base(self) -> list[str]:
        return [adb_path(), "-s", self.serial] if self.serial else [adb_path()]

    def command(self, remote_cmd: str) -> list[str]:
        # adb joins its arguments with spaces for the device's sh: pass one already-quoted string.
        return [*self.base(), "shell", remote_cmd]

    def run(self, remote_cmd: str, timeout: float, what: str = "command", data: bytes | None = None) -> bytes:
        r = _run(self.command(remote_cmd), timeout, what, self.name, data)
        if r.returncode != 0:
            msg = _last_line(r.stderr) or _last_line(r.stdout) or f"exit status {r.returncode}"
            raise SlfmError(f"{self.name}: {what} failed: {msg}")
        return r.stdout

    def check(self, timeout: float = 60) -> str:
        self.resolve()
        return self.run("uname -m", timeout, "connection check").decode().strip()

    def push(self, files: dict[str, Path], remote_dir: str, timeout: float) -> None:
        self.run(f"mkdir -p {shlex.quote(remote_dir)}", timeout, f"mkdir {remote_dir}")
        for name, path in files.items():
            r = _run([*self.base(), "push", str(path), f"{remote_dir}/{name}"], timeout, f"adb push {path}", self.name)
            if r.returncode != 0:
                raise SlfmError(f"{self.name}: adb push {path} failed: {_last_line(r.stderr)}")

    def pull(self, remote_dir: str, names: list[str], local_dir: Path, timeout: float) -> None:
        local_dir.mkdir(parents=True, exist_ok=True)
        for n in names:
            r = _run(
                [*self.base(), "pull", f"{remote_dir}/{n}", str(local_dir / n)], timeout, f"adb pull {n}", self.name
            )
            if r.returncode != 0:
                raise SlfmError(f"{self.name}: adb pull {remote_dir}/{n} failed: {_last_line(r.stderr)}")

    def remove(self, remote_dir: str, timeout: float = 60) -> None:
        self.run(f"rm -rf {shlex.quote(remote_dir)}", timeout, f"clean-up of {remote_dir}")


def run_dir(base: str) -> str:
    """A fresh per-run folder under ``base`` on the device."""
    return f"{base.rstrip('/')}/run-{uuid.uuid4().hex[:10]}"
