"""Load and fault test of ``faceprint serve`` on loopback: concurrent clients mixing identify and enrol.

Starts the service as a separate process (the same command a user runs), seeds a collection,
then runs ``--clients`` threads for ``--seconds``: each request is an identify (a photo of a few
people) or, with probability ``--enrol-share``, an enrolment of a new person from one LFW photo.
It reports requests/s, p50/p95 latency per kind and every status code, and checks that no
request got a 5xx and that the gallery holds exactly the acknowledged enrolments. With
``--kill-after S`` it also kills the server (SIGKILL) S seconds into a second load run, restarts
it and checks that every enrolment acknowledged before the kill is there.

    python benchmarks/service_load.py --clients 32 --seconds 60 --kill-after 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO_ROOT, log
from typing_extensions import Self

DATA = REPO_ROOT.parent / "shared" / "data"
COLLECTION = "load"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``faceprint serve`` in a child process on loopback; ``start``, ``kill`` (SIGKILL), ``stop``."""

    def __init__(self, data_dir: Path, profile: str = "fast", workers: int = 2, port: int | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.data_dir, self.profile, self.workers = Path(data_dir), profile, workers
        self.port = port or free_port()
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.log_file = None  # the child's stdout/stderr, open while it runs
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def start(self, timeout: float = 120) -> ServerProcess:
        cmd = [sys.executable, "-m", "faceprint.cli", "serve", "--data", str(self.data_dir), "--port", str(self.port),
               "--model", self.profile, "--workers", str(self.workers), *self.extra]
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout} s: {self.log_path.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a power cut of the process."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class LoadResult:
    """What one load run saw."""

    seconds: float
    clients: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"identify": [], "enrol": []})
    statuses: dict[str, int] = field(default_factory=dict)
    acknowledged: list[str] = field(default_factory=list)
    connection_errors: int = 0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code.startswith("5"))

    def percentile(self, kind: str, q: float) -> float | None:
        values = sorted(self.latencies[kind])
        if not values:
            return None
        return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]

    def to_dict(self) -> dict:
        kinds = {k: {"count": len(v), "p50_ms": self.percentile(k, 50), "p95_ms": self.percentile(k, 95)}
                 for k, v in self.latencies.items()}
        return {"clients": self.clients, "seconds": round(self.seconds, 2), "requests": self.requests,
                "requests_per_s": round(self.requests / self.seconds, 2) if self.seconds else 0.0,
                "statuses": dict(sorted(self.statuses.items())), "server_errors": self.server_errors,
                "acknowledged_enrolments": len(self.acknowledged), "connection_errors": self.connection_errors,
                "latency": kinds}


def enrol_photos(limit: int = 400) -> list[Path]:
    """One photo each of up to ``limit`` LFW people (they become the enrolled persons)."""
    people = sorted((DATA / "lfw-view1" / "images").iterdir())[:limit]
    return [min(p.iterdir()) for p in people]


def seed(server: ServerProcess, client: httpx.Client) -> None:
    """Create the collection and enrol two people so identify has something to find."""
    h = {"Authorization": f"Bearer {server.admin_key}"}
    r = client.post("/v1/collections", json={"name": COLLECTION}, headers=h)
    if r.status_code not in (201, 409):
        raise RuntimeError(r.text)
    knn = DATA / "knn-small" / "train"
    for person in ("obama", "biden"):
        files = [("images", (p.name, p.read_bytes())) for p in sorted((knn / person).iterdir())]
        client.post(f"/v1/collections/{COLLECTION}/persons/{person}/faces", files=files, headers=h).raise_for_status()


def face_count(server: ServerProcess) -> tuple[int, set[str]]:
    """(faces, person names) in the load collection."""
    h = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, timeout=30) as c:
        info = c.get(f"/v1/collections/{COLLECTION}", headers=h).json()
        names = {p["name"] for p in c.get(f"/v1/collections/{COLLECTION}/persons", headers=h).json()}
    return info["faces"], names


def run_load(server: ServerProcess, clients: int, seconds: float, enrol_share: float = 0.2, seed_value: int = 0,
             tag: str = "run", stop: threading.Event | None = None) -> LoadResult:
    """``clients`` threads hammering the server for ``seconds`` (or until ``stop`` is set)."""
    group = (DATA / "knn-small" / "test" / "obama_and_biden.jpg").read_bytes()
    photos = enrol_photos()
    key = server.admin_key
    result = LoadResult(seconds=seconds, clients=clients)
    lock = threading.Lock()
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds

    def client_loop(index: int) -> None:
        rng = random.Random(seed_value * 1000 + index)
        n = 0
        with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as c:
            while time.monotonic() < deadline and not stop.is_set():
                enrol = rng.random() < enrol_share
                start = time.perf_counter()
                try:
                    if enrol:
                        photo = photos[rng.randrange(len(photos))]
                        name = f"{tag}-c{index}-{n}"
                        n += 1
                        r = c.post(f"/v1/collections/{COLLECTION}/persons/{name}/faces",
                                   files=[("images", (photo.name, photo.read_bytes()))])
                    else:
                        r = c.post(f"/v1/collections/{COLLECTION}/identify", files=[("image", ("g.jpg", group))])
                except httpx.HTTPError:
                    with lock:
                        result.connection_errors += 1
                    if stop.is_set():
                        return
                    time.sleep(0.05)
                    continue
                ms = 1000 * (time.perf_counter() - start)
                with lock:
                    code = str(r.status_code)
                    result.statuses[code] = result.statuses.get(code, 0) + 1
                    if r.status_code < 300:
                        result.latencies["enrol" if enrol else "identify"].append(ms)
                        if enrol:
                            result.acknowledged.append(name)

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - t0
    return result


def load_and_fault(data_dir: Path, clients: int, seconds: float, kill_after: float | None,
                   profile: str = "fast", workers: int = 2) -> dict:
    """The whole test: load, count check, then (optionally) kill mid-load, restart, check."""
    report: dict = {"profile": profile, "workers": workers}
    server = ServerProcess(data_dir, profile=profile, workers=workers)
    with server:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            seed(server, c)
        before, _ = face_count(server)
        log(f"load: {clients} clients for {seconds:g} s against {server.url}")
        load = run_load(server, clients, seconds, tag="load")
        after, names = face_count(server)
        report["load"] = load.to_dict()
        report["faces_before"], report["faces_after"] = before, after
        report["lost_enrolments"] = (before + len(load.acknowledged)) - after
        report["missing_names"] = sorted(set(load.acknowledged) - names)[:10]
    if kill_after is not None:
        server = ServerProcess(data_dir, profile=profile, workers=workers, port=server.port)
        server.start()
        stop = threading.Event()
        holder: dict = {}
        worker = threading.Thread(target=lambda: holder.setdefault(
            "r", run_load(server, clients, kill_after + 30, tag="kill", seed_value=1, stop=stop)))
        worker.start()
        time.sleep(kill_after)
        server.kill()
        stop.set()
        worker.join()
        killed = holder["r"]
        server = ServerProcess(data_dir, profile=profile, workers=workers, port=server.port)
        with server:
            _, names = face_count(server)
        missing = sorted(set(killed.acknowledged) - names)
        report["kill"] = {"acknowledged_before_kill": len(killed.acknowledged), "missing_after_restart": len(missing),
                          "missing_names": missing[:10], "statuses": killed.statuses,
                          "server_errors": killed.server_errors}
    return report


def table(report: dict) -> str:
    """The markdown table of one report."""
    load = report["load"]
    rows = [("| clients | seconds | requests | req/s | identify p50 / p95 ms | enrol p50 / p95 ms | 5xx | statuses "
            "| lost enrolments |"), "|---|---|---|---|---|---|---|---|---|"]
    lat = load["latency"]

    def pair(kind: str) -> str:
        p50, p95 = lat[kind]["p50_ms"], lat[kind]["p95_ms"]
        return "-" if p50 is None else f"{p50:.0f} / {p95:.0f}"

    statuses = ", ".join(f"{k}: {v}" for k, v in load["statuses"].items())
    rows.append(f"| {load['clients']} | {load['seconds']:.0f} | {load['requests']} | {load['requests_per_s']:.1f} "
                f"| {pair('identify')} | {pair('enrol')} | {load['server_errors']} | {statuses} "
                f"| {report['lost_enrolments']} |")
    if "kill" in report:
        k = report["kill"]
        rows.append("")
        rows.append(f"Killed with SIGKILL mid-load: {k['acknowledged_before_kill']} enrolments acknowledged before "
                    f"the kill, {k['missing_after_restart']} missing after restart.")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kill-after", type=float, default=5.0, help="seconds into the fault run (negative: skip)")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", default=None, help="service data folder (default: a fresh temporary one)")
    parser.add_argument("--out", help="write the report as JSON here")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "data"
        report = load_and_fault(data, args.clients, args.seconds,
                                None if args.kill_after < 0 else args.kill_after, args.profile, args.workers)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    print(table(report))
    ok = report["load"]["server_errors"] == 0 and report["lost_enrolments"] == 0 and (
        "kill" not in report or report["kill"]["missing_after_restart"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
