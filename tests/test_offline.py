"""wandb.mode=offline (the default) means offline: no process of a default `eyejax` run, W&B's
service included, opens a network socket or resolves a host name.

Two checks:
- every connect/sendto/sendmsg of the whole process tree of a default run, traced with `strace -f`
  (skipped, with the reason, where strace is missing or may not trace);
- an in-process audit hook on the Python side of an offline W&B run (always runs): no
  getaddrinfo/gethostbyname and no connect other than to a unix socket or loopback.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    for k in ("WANDB_MODE", "WANDB_DIR", "WANDB_DISABLED", "WANDB_SILENT"):
        env.pop(k, None)
    return env


def _strace_usable() -> str | None:
    """None when `strace -f` can trace here, else why not."""
    exe = shutil.which("strace")
    if exe is None:
        return "strace is not installed (CI installs it: apt-get install strace)"
    try:
        p = subprocess.run([exe, "-f", "-o", os.devnull, "true"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"strace does not run: {exc}"
    if p.returncode != 0:
        return f"strace may not trace here (ptrace not permitted?): {p.stderr.strip()[:200]}"
    return None


_INET = re.compile(r"sa_family=AF_INET6?\b.*?(?:sin_addr=inet_addr\(\"([^\"]+)\"\)|"
                   r"inet_pton\(AF_INET6, \"([^\"]+)\")")


def network_sockets(trace: str) -> list[str]:
    """The strace lines that address an IPv4/IPv6 peer other than loopback (unix, netlink and
    loopback are local)."""
    bad = []
    for line in trace.splitlines():
        if "AF_INET" not in line:
            continue
        m = _INET.search(line)
        if m is None:
            bad.append(line)  # an inet address strace printed in a form we do not parse: suspicious
            continue
        addr = ipaddress.ip_address(m.group(1) or m.group(2))
        mapped = getattr(addr, "ipv4_mapped", None)
        if not (addr.is_loopback or (mapped is not None and mapped.is_loopback)):
            bad.append(line)
    return bad


def test_parser_flags_dns_and_keeps_loopback():
    dns = ('7  connect(7, {sa_family=AF_INET, sin_port=htons(53), '
           'sin_addr=inet_addr("10.255.255.53")}, 16) = 0')
    lo = ('7  connect(7, {sa_family=AF_INET, sin_port=htons(4000), '
          'sin_addr=inet_addr("127.0.0.1")}, 16) = 0')
    lo6 = ('7  connect(5, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), '
           'inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0')
    ext6 = lo6.replace('"::1"', '"2606:4700::1111"')
    unix = '7  connect(8, {sa_family=AF_UNIX, sun_path="/tmp/wandb-1/socket"}, 41) = 0'
    assert network_sockets("\n".join([dns, lo, lo6, ext6, unix])) == [dns, ext6]


def test_default_run_opens_no_network_socket(tmp_path):
    why = _strace_usable()
    if why is not None:
        pytest.skip(why)
    trace = tmp_path / "trace.txt"
    run_dir = tmp_path / "run"
    p = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace),
         sys.executable, "-m", "eyejax.app.cli", f"hydra.run.dir={run_dir}"],
        cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert list((run_dir / "wandb").glob("offline-run-*")), "the default run writes an offline W&B run"
    text = trace.read_text()
    assert "AF_UNIX" in text  # the trace did see the W&B service's socket
    assert network_sockets(text) == []


_AUDIT = textwrap.dedent("""
    import json, sys
    def hook(event, args):  # reported at once: W&B's threads may still run at interpreter exit
        if event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            sys.stderr.write(f"NETWORK {event} {args[0]!r}\\n")
        elif event == "socket.connect":
            sock, addr = args
            if not isinstance(addr, str) and not str(addr[0]).startswith(("127.", "::1", "localhost")):
                sys.stderr.write(f"NETWORK {event} {addr!r}\\n")
    sys.addaudithook(hook)
    import pandas as pd
    from omegaconf import OmegaConf
    from eyejax.app.logging_wandb import log_run
    cfg = OmegaConf.create({"objective": "energy", "workload": {"name": "tiny"},
                            "wandb": {"mode": "offline", "project": "eyejax", "entity": None,
                                      "tags": []}})
    totals = pd.DataFrame({"config_id": [0], "energy": [1.0], "latency_ms": [1.0],
                           "feasible": [True]})
    run_dir = log_run(cfg, totals.assign(layer="l0"), totals)
    print(json.dumps({"run_dir": str(run_dir)}))
""")


def test_offline_wandb_resolves_no_host(tmp_path):
    p = subprocess.run([sys.executable, "-c", _AUDIT], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert Path(res["run_dir"]).name.startswith("offline-run-")
    assert [ln for ln in p.stderr.splitlines() if ln.startswith("NETWORK")] == []
