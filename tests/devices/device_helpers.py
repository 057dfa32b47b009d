"""What the device tests share: a small two-input, two-output ONNX model, a real sshd on
127.0.0.1 with its own keys, and a fake `adb` that implements push/shell/pull on this machine
and logs every command line it is given."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

RTOL, ATOL = 1e-3, 1e-4
SSH_HINT = (
    "install OpenSSH with `apt-get install openssh-server openssh-client` (or run scripts/setup.sh)"
)


def two_io_model(path: Path, hw: int = 8) -> Path:
    """x -> conv3x3+relu -> "y"; y + skip -> "z/sum": two inputs and two outputs, one of them
    with a name that is not a file name, so that order and naming are both exercised."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
        helper.make_node("Add", ["y", "skip"], ["z/sum"], name="add"),
    ]
    g = helper.make_graph(
        nodes,
        "two_io",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, hw, hw]),
            helper.make_tensor_value_info("skip", TensorProto.FLOAT, [1, 4, hw, hw]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, hw, hw]),
            helper.make_tensor_value_info("z/sum", TensorProto.FLOAT, [1, 4, hw, hw]),
        ],
        [w, b],
    )
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def feeds(seed: int = 0, hw: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((1, 3, hw, hw), dtype=np.float32),
        "skip": rng.standard_normal((1, 4, hw, hw), dtype=np.float32),
    }


def onnxruntime_outputs(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, inputs), strict=True))


def assert_outputs_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name, ref in want.items():
        np.testing.assert_allclose(got[name], ref, rtol=RTOL, atol=ATOL, err_msg=name)


def npasc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "npas.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


# --------------------------------------------------------------------------------------------
# sshd
# --------------------------------------------------------------------------------------------


@dataclass
class SshServer:
    port: int
    user: str
    key: Path
    known_hosts: Path
    log: Path

    @property
    def device(self) -> str:
        return f"ssh:{self.user}@127.0.0.1:{self.port}"

    def env(self, remote_dir: Path) -> dict[str, str]:
        """The environment that points npas at this server: its key, its host key (checked
        strictly), and a working directory inside the test's temp dir."""
        return {
            "NPAS_SSH_IDENTITY": str(self.key),
            "NPAS_SSH_OPTIONS": (
                f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
                "-o LogLevel=ERROR"
            ),
            "NPAS_DEVICE_DIR": str(remote_dir),
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if os.access(p, os.X_OK)),
        None,
    )
    if found is None:
        pytest.fail(f"the ssh device tests need {name}; {SSH_HINT}", pytrace=False)
    return os.path.abspath(found)


@contextlib.contextmanager
def run_sshd(workdir: Path) -> Iterator[SshServer]:
    """A real sshd on 127.0.0.1 for the current user, with keys generated here."""
    sshd, keygen = _tool("sshd"), _tool("ssh-keygen")
    _tool("ssh"), _tool("scp")
    # sshd refuses to start without its privilege-separation directory.
    privsep = Path("/run/sshd")
    if not privsep.is_dir():
        if os.geteuid() != 0:
            pytest.fail("sshd needs /run/sshd: create it with `sudo mkdir -p /run/sshd`")
        privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        subprocess.run(
            [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(workdir / name)], check=True
        )
    shutil.copy(workdir / "user_key.pub", workdir / "authorized_keys")
    (workdir / "authorized_keys").chmod(0o600)
    port = free_port()
    host_pub = (workdir / "host_key.pub").read_text().split()
    (workdir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    config = workdir / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {workdir / 'host_key'}\n"
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}\nPidFile {workdir / 'sshd.pid'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n"
    )
    log = workdir / "sshd.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=logf)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited at start:\n{log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                pytest.fail(f"sshd did not listen on port {port}:\n{log.read_text()}")
            time.sleep(0.05)
        yield SshServer(port, getpass.getuser(), workdir / "user_key", workdir / "known_hosts",
                        log)  # fmt: skip
    finally:
        from npas.runtime.devices.transport import SshTransport

        # Connections shared between commands outlive sshd's listener: end them too.
        SshTransport(f"127.0.0.1:{port}").close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------------------------
# A fake adb
# --------------------------------------------------------------------------------------------

FAKE_ADB = r'''#!{python}
"""adb for tests: push/shell/pull on this machine. Device paths under /data/local/tmp live
under $FAKE_ADB_ROOT; every command line is appended to $FAKE_ADB_LOG as JSON."""
import json, os, shutil, subprocess, sys

args = sys.argv[1:]
with open(os.environ["FAKE_ADB_LOG"], "a") as f:
    f.write(json.dumps(args) + "\n")
root = os.environ["FAKE_ADB_ROOT"]
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
want = os.environ.get("FAKE_ADB_SERIAL") or None
if serial != want:
    sys.exit(f"adb: device '{{serial}}' not found" if serial else "adb: more than one device")


def dev(path):
    return path.replace("/data/local/tmp", root + "/data/local/tmp")


cmd, rest = args[0], args[1:]
if cmd == "push":
    *srcs, dest = rest
    if not dest.endswith("/") or not os.path.isdir(dev(dest)):
        sys.exit(f"adb: error: remote directory {{dest}} does not exist")
    for s in srcs:
        shutil.copy(s, dev(dest))
    print(f"{{len(srcs)}} files pushed")
elif cmd == "shell" and len(rest) == 1:
    r = subprocess.run(["sh", "-c", dev(rest[0])], capture_output=True, text=True)
    sys.stdout.write(r.stdout.replace(root, ""))  # paths as the device would print them
    sys.stderr.write(r.stderr.replace(root, ""))
    sys.exit(r.returncode)
elif cmd == "pull" and len(rest) == 2:
    if not os.path.isfile(dev(rest[0])):
        sys.exit(f"adb: error: remote object '{{rest[0]}}' does not exist")
    shutil.copy(dev(rest[0]), rest[1])
else:
    sys.exit(f"adb: unknown command {{args}}")
'''


@dataclass
class FakeAdb:
    bin_dir: Path
    root: Path
    log: Path

    def env(self, serial: str | None) -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "FAKE_ADB_ROOT": str(self.root),
            "FAKE_ADB_LOG": str(self.log),
            "FAKE_ADB_SERIAL": serial or "",
        }

    def calls(self) -> list[list[str]]:
        if not self.log.is_file():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def make_fake_adb(workdir: Path) -> FakeAdb:
    bin_dir = workdir / "bin"
    bin_dir.mkdir()
    adb = bin_dir / "adb"
    adb.write_text(FAKE_ADB.format(python=sys.executable))
    adb.chmod(0o755)
    root = workdir / "device"
    (root / "data" / "local" / "tmp").mkdir(parents=True)
    return FakeAdb(bin_dir, root, workdir / "adb.log")
