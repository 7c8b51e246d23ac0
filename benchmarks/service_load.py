"""Load and fault test of ``faceprint serve`` on loopback: concurrent clients mixing identify and enrol.

Starts the service as a separate process (the same command a user runs), seeds a collection,
then runs ``--clients`` threads for ``--seconds``: each request is an identify (a photo of a few
people) or, with probability ``--enrol-share``, an enrolment of a new person from one LFW photo.
It reports requests/s, p50/p95 latency per kind and every status code, and checks that no
request got a 5xx and that the gallery holds exactly the acknowledged enrolments. With
``--kill-after S`` it also kills the server (SIGKILL) S seconds into a second load run, restarts
it and checks that every enrolment acknowledged before the kill is there.

With ``--replicas N`` it starts a throwaway PostgreSQL with pgvector (``pgserver``, as the tests
do; or ``--database URL``) and N ``faceprint serve --database`` processes on N loopback ports
sharing it. Each client thread sends its requests to one replica (client i to replica i mod N, as
a round-robin load balancer would) and moves to the next replica when its own stops answering.
The books are checked through every replica (all must agree). The fault run (``--kill-after``)
then kills one replica with SIGKILL once ``--kill-after`` enrolments have been acknowledged and
stops the load once the survivors have answered as many requests again (events, not elapsed
time): every acknowledged enrolment must be present, and no survivor may answer 5xx.

    python benchmarks/service_load.py --clients 32 --seconds 60 --kill-after 5
    python benchmarks/service_load.py --replicas 2 --clients 32 --seconds 30 --kill-after 20
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
                 extra: tuple[str, ...] = (), key_from: Path | None = None) -> None:
        self.data_dir, self.profile, self.workers = Path(data_dir), profile, workers
        self.port = port or free_port()
        self.extra = extra
        self.key_from = Path(key_from) if key_from else self.data_dir  # the data folder holding admin.key
        self.proc: subprocess.Popen | None = None
        self.log_file = None  # the child's stdout/stderr, open while it runs
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_key(self) -> str:
        return (self.key_from / "admin.key").read_text().strip()

    def start(self, timeout: float = 120) -> ServerProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> ServerProcess:
        """Start the process; :meth:`wait_ready` waits for its ``/ready``."""
        cmd = [sys.executable, "-m", "faceprint.cli", "serve", "--data", str(self.data_dir), "--port", str(self.port),
               "--model", self.profile, "--workers", str(self.workers), *self.extra]
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        return self

    def wait_ready(self, timeout: float = 120) -> ServerProcess:
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


def run_load(server: ServerProcess | list[ServerProcess], clients: int, seconds: float, enrol_share: float = 0.2,
             seed_value: int = 0, tag: str = "run", stop: threading.Event | None = None,
             on_answer=None) -> LoadResult:
    """``clients`` threads hammering the server(s) for ``seconds`` (or until ``stop`` is set).

    With several servers (replicas), client i starts on replica i mod N and moves to the next one
    when a request fails to connect. ``on_answer(result)`` is called (under the result's lock)
    after every answered request: the fault run uses it to kill and to stop on events.
    """
    servers = server if isinstance(server, list) else [server]
    group = (DATA / "knn-small" / "test" / "obama_and_biden.jpg").read_bytes()
    photos = enrol_photos()
    key = servers[0].admin_key
    result = LoadResult(seconds=seconds, clients=clients)
    lock = threading.Lock()
    stop = stop or threading.Event()
    deadline = time.monotonic() + seconds

    def client_loop(index: int) -> None:
        rng = random.Random(seed_value * 1000 + index)
        n = 0
        target = index % len(servers)
        c = httpx.Client(base_url=servers[target].url, timeout=120, headers={"Authorization": f"Bearer {key}"})
        try:
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
                    if len(servers) > 1:  # as a load balancer would: this replica is gone, use the next
                        c.close()
                        target = (target + 1) % len(servers)
                        c = httpx.Client(base_url=servers[target].url, timeout=120,
                                         headers={"Authorization": f"Bearer {key}"})
                    else:
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
                    if on_answer is not None:
                        on_answer(result)
        finally:
            c.close()

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


def _ticks(pid: int) -> int:
    """User + system CPU clock ticks of process ``pid`` (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _children(pid: int) -> list[int]:
    """Every process whose parent is ``pid`` (PostgreSQL's backends under the postmaster)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def cpu_seconds(servers: list[ServerProcess], postmaster: int | None) -> dict[str, float]:
    """CPU seconds used so far by the replicas, by PostgreSQL (postmaster and live backends), and by this process."""
    hz = os.sysconf("SC_CLK_TCK")
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    pg = 0 if postmaster is None else sum(_ticks(p) for p in [postmaster, *_children(postmaster)])
    return {"replicas": sum(_ticks(s.proc.pid) for s in servers if s.proc) / hz, "postgres": pg / hz,
            "clients": me.ru_utime + me.ru_stime}


class Postgres:
    """A throwaway PostgreSQL with pgvector from ``pgserver`` (as the tests start one), in ``root``."""

    def __init__(self, root: Path) -> None:
        import pgserver

        self.root = Path(root)
        self.server = pgserver.get_server(str(self.root / "pg"), cleanup_mode="stop")
        self.url = self.server.get_uri()
        self.pid = self.server.get_pid()

    def stop(self) -> None:
        self.server.cleanup()


def start_replicas(root: Path, database: str, replicas: int, profile: str, workers: int) -> list[ServerProcess]:
    """``replicas`` servers on one database, each with its own data folder and port, started together.

    Whichever replica takes the database's lock first makes the tables and the admin key (in its
    own data folder); the others find them there.
    """
    servers = [ServerProcess(root / f"replica{i}", profile=profile, workers=workers, extra=("--database", database))
               for i in range(replicas)]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    holder = next((s.data_dir for s in servers if (s.data_dir / "admin.key").exists()), None)
    if holder is None:
        raise RuntimeError(f"no replica issued an admin key: is {database} a new database?")
    for server in servers:
        server.key_from = holder
    return servers


def books(servers: list[ServerProcess]) -> list[tuple[int, set[str]]]:
    """(faces, person names) of the load collection as each replica sees it."""
    return [face_count(s) for s in servers]


def replica_load(root: Path, replicas: int, clients: int, seconds: float, database: str | None = None,
                 profile: str = "fast", workers: int = 2, kill_after: int | None = None) -> dict:
    """Load through ``replicas`` servers on one PostgreSQL, books checked on each; optionally kill one mid-load.

    ``kill_after``: the fault run kills the last replica (SIGKILL) once that many enrolments have
    been acknowledged, and stops once the survivors have answered as many requests again as had
    been answered at the kill. Decided on answers, never on elapsed time.
    """
    root = Path(root)
    pg = None if database else Postgres(root)
    url = database or pg.url
    report: dict = {"profile": profile, "workers": workers, "replicas": replicas, "database": "pgserver"
                    if pg else "given"}
    servers: list[ServerProcess] = []
    try:
        servers = start_replicas(root, url, replicas, profile, workers)
        with httpx.Client(base_url=servers[0].url, timeout=60) as c:
            seed(servers[0], c)
        before, _ = face_count(servers[-1])
        log(f"load: {clients} clients for {seconds:g} s against {replicas} replica(s) on one PostgreSQL")
        cpu_before = cpu_seconds(servers, pg.pid if pg else None)
        load = run_load(servers, clients, seconds, tag="load")
        cpu_after = cpu_seconds(servers, pg.pid if pg else None)
        seen = books(servers)
        report["load"] = load.to_dict()
        report["cpu_ms_per_request"] = {k: round(1000 * (cpu_after[k] - cpu_before[k]) / max(1, load.requests), 1)
                                        for k in cpu_before}
        report["load_average"] = os.getloadavg()
        report["faces_before"], report["faces_after"] = before, seen[0][0]
        report["replicas_agree"] = all(b == seen[0] for b in seen)
        report["lost_enrolments"] = max((before + len(load.acknowledged)) - faces for faces, _ in seen)
        report["missing_names"] = sorted(set(load.acknowledged) - set.intersection(*(n for _, n in seen)))[:10]
        if kill_after is not None and replicas > 1:
            report["kill"] = _kill_one(servers, clients, kill_after)
    finally:
        for server in servers:
            server.stop()
        if pg is not None:
            pg.stop()
    return report


def _kill_one(servers: list[ServerProcess], clients: int, kill_after: int) -> dict:
    """The fault run: SIGKILL the last replica after ``kill_after`` acknowledged enrolments; check the books."""
    victim, survivors = servers[-1], servers[:-1]
    stop, killed = threading.Event(), threading.Event()
    mark: dict = {}

    def on_answer(result: LoadResult) -> None:  # called under the result's lock, after every answer
        if not killed.is_set() and len(result.acknowledged) >= kill_after:
            killed.set()
            victim.kill()
            mark.update(answers=result.requests, acknowledged=len(result.acknowledged))
        elif killed.is_set() and result.requests >= 2 * mark["answers"]:
            stop.set()  # the survivors answered as many requests again as everyone had before the kill

    result = run_load(servers, clients, 600, tag="kill", seed_value=1, stop=stop, on_answer=on_answer)
    seen = books(survivors)
    missing = sorted(set(result.acknowledged) - set.intersection(*(n for _, n in seen)))
    return {"killed": victim.url, "acknowledged_before_kill": mark.get("acknowledged", 0),
            "acknowledged": len(result.acknowledged), "answers_before_kill": mark.get("answers", 0),
            "answers": result.requests, "connection_errors": result.connection_errors,
            "missing_after_kill": len(missing), "missing_names": missing[:10], "statuses": result.statuses,
            "server_errors": result.server_errors, "stopped_by_event": stop.is_set()}


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
    if "replicas" in report:
        rows[0] = "| replicas " + rows[0]
        rows[1] = "|---" + rows[1]
        rows.append(f"| {report['replicas']} | {load['clients']} | {load['seconds']:.0f} | {load['requests']} "
                    f"| {load['requests_per_s']:.1f} | {pair('identify')} | {pair('enrol')} | {load['server_errors']} "
                    f"| {statuses} | {report['lost_enrolments']} |")
        cpu = report.get("cpu_ms_per_request", {})
        rows += ["", "CPU ms per request: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
                 + f"; load average during the run {report['load_average'][0]:.1f}"]
        if "kill" in report:
            k = report["kill"]
            rows += ["", f"Killed one of {report['replicas']} replicas with SIGKILL after {k['acknowledged_before_kill']} "
                         f"acknowledged enrolments; {k['acknowledged']} acknowledged in all, {k['missing_after_kill']} "
                         f"missing on the survivors; {k['server_errors']} 5xx; {k['connection_errors']} connection "
                         f"errors (requests in flight to the killed replica)."]
        return "\n".join(rows)
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
    parser.add_argument("--replicas", type=int, default=0,
                        help="N > 0: N 'faceprint serve --database' replicas on one PostgreSQL (pgserver unless "
                             "--database); --kill-after then counts acknowledged enrolments before one is killed")
    parser.add_argument("--database", default=None, help="with --replicas: this postgresql:// URL, not pgserver")
    parser.add_argument("--out", help="write the report as JSON here")
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="faceprint-load-") as tmp:
        if args.replicas > 0:
            os.chmod(tmp, 0o755)  # pgserver run as root starts PostgreSQL as its own user, which needs to get in
            report = replica_load(Path(args.data or tmp), args.replicas, args.clients, args.seconds, args.database,
                                  args.profile, args.workers, None if args.kill_after < 0 else int(args.kill_after))
            if args.out:
                Path(args.out).write_text(json.dumps(report, indent=2))
            print(table(report))
            kill = report.get("kill", {})
            return 0 if (report["load"]["server_errors"] == 0 and report["lost_enrolments"] == 0
                         and report["replicas_agree"] and not kill.get("missing_after_kill")
                         and not kill.get("server_errors")) else 1
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
