#!/usr/bin/env python3
"""ferry over ssh against scp, sftp and rsync -e ssh, through one loopback sshd, same cipher.

    python3 bench/ssh.py               # 1 GiB file and 2,000 x 4 KiB files, best of 2
    python3 bench/ssh.py --runs 3 --files 10000

Needs root (sshd with UsePAM no), openssh-server, rsync, and the release binaries
(`cargo build --release -p ferry -p ferry-server`). Everything lives on /dev/shm. Every
command logs in afresh (ferry's workers share one master, which it starts); all use the cipher
--cipher. This is a benchmark, not a test: read the ratios, which come from one run.
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def start_sshd(d, with_server=True):
    (d / "bin").mkdir()
    (d / "home").mkdir()
    if with_server:
        os.symlink(BIN / "ferry-server", d / "bin" / "ferry-server")
    keygen(d / "host_key")
    keygen(d / "client_key")
    shutil.copy(d / "client_key.pub", d / "authorized_keys")
    kind, key = (d / "host_key.pub").read_text().split()[:2]
    (d / "known_hosts").write_text(f"bench {kind} {key}\n")
    port = free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\nPidFile none\n"
        f"MaxStartups 100\nMaxSessions 100\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
        f"SetEnv PATH={d}/bin:/usr/bin:/bin HOME={d}/home\n"
    )
    (d / "ssh_config").write_text(
        f"Host bench\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  HostKeyAlias bench\n"
        f"  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    sshd = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return sshd
        except OSError:
            time.sleep(0.05)
    sys.exit("sshd did not start")


def timed(cmd, **kw):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)
    return time.perf_counter() - start


def same_tree(a, b):
    return subprocess.run(["diff", "-rq", str(a), str(b)], stdout=subprocess.DEVNULL).returncode == 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--cipher", default="aes128-gcm@openssh.com")
    parser.add_argument("--fallback", action="store_true",
                        help="no ferry-server on the remote: ferry's SFTP fallback against sftp")
    args = parser.parse_args()
    tools = ["ferry", "sftp"] if args.fallback else ["ferry", "scp", "sftp", "rsync"]

    base = Path(tempfile.mkdtemp(prefix="ferry-ssh-bench-", dir="/dev/shm"))
    d = base / "sshd"
    d.mkdir()
    sshd = start_sshd(d, with_server=not args.fallback)
    try:
        ssh = ["ssh", "-F", str(d / "ssh_config"), "-c", args.cipher]
        ssh_line = " ".join(ssh)
        src = base / "src"
        (src / "small").mkdir(parents=True)
        with open(src / "big.bin", "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(args.big_mib):
                f.write(block)
        for i in range(args.files):
            sub = src / "small" / f"d{i % 100}"
            sub.mkdir(exist_ok=True)
            (sub / f"f{i}.bin").write_bytes(os.urandom(4096))
        ferry = [str(BIN / "ferry"), "--ssh", ssh_line]
        scp = ["scp", "-q", "-F", str(d / "ssh_config"), "-c", args.cipher]
        sftp = ["sftp", "-q", "-F", str(d / "ssh_config"), "-c", args.cipher, "-b", "-"]
        rsync = ["rsync", "-a", "-e", ssh_line]

        def rows():
            big, small = src / "big.bin", src / "small"
            for what, is_tree, path in [("1 GiB file", False, big), (f"{args.files} x 4 KiB", True, small)]:
                r = ["-r"] if is_tree else []
                for direction in ["get", "put"]:
                    def fresh():
                        out = base / "out"
                        shutil.rmtree(out, ignore_errors=True)
                        out.mkdir()
                        return out

                    def run(tool):
                        out = fresh()
                        if direction == "get":
                            remote, local = f"bench:{path}", out
                        else:
                            remote, local = f"bench:{out}", path
                        name = path.name
                        if tool == "ferry":
                            cmd = ferry + ([direction] + r + ([remote, str(out)] if direction == "get" else [str(path), remote + "/"]))
                            t = timed(cmd)
                        elif tool == "scp":
                            cmd = scp + r + ([remote, str(out)] if direction == "get" else [str(path), remote])
                            t = timed(cmd)
                        elif tool == "rsync":
                            cmd = rsync + ([remote, str(out)] if direction == "get" else [str(path), remote])
                            t = timed(cmd)
                        else:
                            op = f"get {'-r ' if is_tree else ''}{path} {out}" if direction == "get" else f"put {'-r ' if is_tree else ''}{path} {out}"
                            t = timed(sftp + ["bench"], input=(op + "\n").encode())
                        got = out / name
                        ok = same_tree(path, got) if is_tree else got.stat().st_size == path.stat().st_size
                        if not ok:
                            sys.exit(f"{tool} {direction} {what}: the copy differs")
                        return t

                    best = {}
                    for _ in range(args.runs):
                        for tool in tools:
                            t = run(tool)
                            best[tool] = min(best.get(tool, t), t)
                    yield what, direction, best

        print(f"cipher {args.cipher}, best of {args.runs}, loopback sshd, /dev/shm")
        print(f"{'row':<22}" + "".join(f"{t:>9}" for t in tools) + "   ferry vs best peer")
        for what, direction, best in rows():
            peer = min(best[t] for t in tools[1:])
            cells = "".join(f"{best[t]:>8.2f}s" for t in tools)
            print(f"{what + ' ' + direction:<22}{cells}   {peer / best['ferry']:.2f}x", flush=True)
    finally:
        sshd.terminate()
        sshd.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
