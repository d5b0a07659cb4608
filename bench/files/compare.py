#!/usr/bin/env python3
"""One file over loopback, side by side: sockit download (from sockit serve
files), socat, ncat and iperf3 -Z (the zero-copy ceiling). Every variant runs
once per round, in an order rotated each round, each server a fresh process;
the table gives medians over the rounds and, per round, each variant's
throughput as a ratio of sockit's. CPU is per GiB moved, for the sending side
(the server; iperf3's client) and the receiving side (the client; iperf3's
server), from wait4(2) and /proc/PID/stat. Loopback only, every run bounded.

  bench/files/files.sh [--rounds N] [--size 4G] [--dir DIR]
"""
import argparse, os, random, signal, socket, statistics, subprocess, sys, tempfile, time

HZ = os.sysconf("SC_CLK_TCK")
GIB = 1 << 30


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def wait_port(port, proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early: {proc.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"server did not listen: {proc.args}")


def wait_listening(proc, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        line = proc.stdout.readline()
        if line.startswith("listening "):
            return int(line.rsplit(":", 1)[1])
    raise SystemExit("sockit serve files did not listen")


def run_client(argv, timeout, stdout=None):
    """Runs a client; returns (wall seconds, cpu seconds, exit status)."""
    start = time.time()
    p = subprocess.Popen(argv, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = start + timeout
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            p.kill()
            raise SystemExit(f"client timed out: {argv}")
        time.sleep(0.002)
    wall = time.time() - start
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.stderr.write(p.stderr.read().decode(errors="replace"))
        raise SystemExit(f"client failed ({p.returncode}): {argv}")
    return wall, ru.ru_utime + ru.ru_stime


class Sampler:
    """Samples a process's CPU time (utime+stime from /proc/PID/stat) every
    5 ms until it exits: its last sample is its CPU time to within 5 ms,
    whoever reaps it."""

    def __init__(self, pid):
        import threading
        self.pid, self.last, self.done = pid, 0.0, threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.done.is_set():
            try:
                self.last = proc_cpu(self.pid)
            except (OSError, IndexError, ValueError):
                return
            time.sleep(0.005)


def stop_server(p, sampler, before=0.0):
    """Stops a server (a one-shot one exits by itself) and returns the CPU
    time it used since before."""
    deadline = time.time() + 15
    signalled = False
    while p.poll() is None:
        if not signalled:
            time.sleep(0.05)
            if p.poll() is not None:
                break
            p.send_signal(signal.SIGTERM)
            signalled = True
        if time.time() > deadline:
            p.kill()
        time.sleep(0.005)
    sampler.t.join(timeout=1)
    return sampler.last - before


def sockit(args, path, size, out):
    root, name = os.path.split(path)
    srv = subprocess.Popen([args.sockit, "serve", "files", "--root", root, "--engine", args.engine,
                            "-l", "tcp://127.0.0.1:0", "--write-timeout", "0", "--idle-timeout", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    port = wait_listening(srv)
    # The checksum is computed once per version of a file: ask for the
    # header only (OFFSET = SIZE) so that the run measures serving.
    t = time.time()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {name} {size}\n".encode())
    while s.recv(4096):
        pass
    s.close()
    hash_wall = time.time() - t
    sampler = Sampler(srv.pid)
    prefault(out, size)
    before = proc_cpu(srv.pid)
    wall, ccpu = run_client([args.sockit, "download", f"tcp://127.0.0.1:{port}", name, "-o", out,
                             "--timeout", "60s"], args.timeout)
    scpu = stop_server(srv, sampler, before)
    check(out, size)
    return wall, scpu, ccpu, hash_wall


def socat(args, path, size, out):
    port = free_port()
    srv = subprocess.Popen(["socat", "-u", f"OPEN:{path},rdonly", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"],
                           stderr=subprocess.DEVNULL)
    sampler = Sampler(srv.pid)
    wait_listen_proc(port, srv)
    prefault(out, size)
    wall, ccpu = run_client(["socat", "-u", f"TCP:127.0.0.1:{port}", f"OPEN:{out},creat,trunc,wronly"], args.timeout)
    scpu = stop_server(srv, sampler)
    check(out, size)
    return wall, scpu, ccpu, 0


def ncat(args, path, size, out):
    port = free_port()
    with open(path, "rb") as f:
        srv = subprocess.Popen(["ncat", "-l", "127.0.0.1", str(port), "--send-only"], stdin=f, stderr=subprocess.DEVNULL)
    sampler = Sampler(srv.pid)
    wait_listen_proc(port, srv)
    prefault(out, size)
    with open(out, "wb") as o:
        wall, ccpu = run_client(["ncat", "--recv-only", "127.0.0.1", str(port)], args.timeout, stdout=o)
    scpu = stop_server(srv, sampler)
    check(out, size)
    return wall, scpu, ccpu, 0


def iperf3(args, path, size, out):
    port = free_port()
    # iperf3's server receives (the download's client side), its client
    # sends with sendfile (-Z, the file server's side).
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sampler = Sampler(srv.pid)
    wait_listen_proc(port, srv)
    prefault(out, size)
    wall, sender_cpu = run_client(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-Z", "-n", str(size),
                                   "-F", path, "-l", "1M"], args.timeout)
    receiver_cpu = stop_server(srv, sampler)
    return wall, sender_cpu, receiver_cpu, 0


def wait_listen_proc(port, proc, timeout=10):
    """Waits until something listens on port without connecting to it (a
    one-shot server would take the probe as its client): /proc/net/tcp."""
    end = time.time() + timeout
    hexport = f"{port:04X}"
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early: {proc.args}")
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                    return
        time.sleep(0.01)
    raise SystemExit(f"server did not listen: {proc.args}")


def prefault(out, size):
    """Touches the memory the copy will take, right before a measured run.
    In a VM, memory freed by the last run goes back to the host within
    seconds (free page reporting) and its next first touch costs a host
    fault per page: without this, whichever variant waited longest before
    writing its copy (sockit, behind its first checksum) would pay for it."""
    with open(out, "wb") as f:
        chunk = b"\0" * (1 << 20)
        for _ in range(size // len(chunk) + 64):
            f.write(chunk)
    os.remove(out)


def check(out, size):
    got = os.path.getsize(out)
    os.remove(out)
    if got != size:
        raise SystemExit(f"{out}: {got} bytes, want {size}")


VARIANTS = {"sockit": sockit, "socat": socat, "ncat": ncat, "iperf3-Z": iperf3}


def parse_size(s):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * mult[s[-1]] if s[-1] in mult else int(s)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sockit", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", default="4G")
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="where the file and the copies live (default /dev/shm: the disk is not measured)")
    ap.add_argument("--engine", default="epoll")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    size = parse_size(args.size)
    work = tempfile.mkdtemp(prefix="sockit-files.", dir=args.dir)
    path = os.path.join(work, "big.bin")
    with open(path, "wb") as f:
        f.truncate(size)  # sparse: the page cache's zero pages, the same for every peer
    out = os.path.join(work, "copy.bin")
    res = {v: [] for v in VARIANTS}
    order = list(VARIANTS)
    try:
        for r in range(args.rounds):
            order = order[1:] + order[:1]
            for v in order:
                wall, scpu, ccpu, hashed = VARIANTS[v](args, path, size, out)
                res[v].append((wall, scpu, ccpu, hashed))
                print(f"round {r+1} {v:9s} {size/wall/1e6:8.0f} MB/s  server {scpu*GIB/size:5.2f} s/GiB  client {ccpu*GIB/size:5.2f} s/GiB"
                      + (f"  (first checksum {hashed:.2f} s)" if hashed else ""), file=sys.stderr, flush=True)
    finally:
        for p in (path, out):
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(work)
    med = lambda xs: statistics.median(xs)
    print(f"\n{args.rounds} rounds, {args.size} file, sockit --engine {args.engine}; medians, ratio = MB/s ÷ sockit's MB/s in the same round (min–max)\n")
    print("| variant | MB/s | ratio to sockit | sending side CPU s/GiB | receiving side CPU s/GiB |")
    print("|---|---:|---|---:|---:|")
    for v in VARIANTS:
        rows = res[v]
        mbs = [size / w / 1e6 for w, *_ in rows]
        ratios = [(size / rows[i][0]) / (size / res["sockit"][i][0]) for i in range(len(rows))]
        print(f"| {v} | {med(mbs):.0f} | {med(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f}) | "
              f"{med([s for _, s, _, _ in rows])*GIB/size:.2f} | {med([c for _, _, c, _ in rows])*GIB/size:.2f} |")
    h = [x[3] for x in res["sockit"]]
    print(f"\nsockit serve files' first checksum of the file (once per version, cached): median {med(h):.2f} s = {size/med(h)/1e6:.0f} MB/s")


if __name__ == "__main__":
    main()
