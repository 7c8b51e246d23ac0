"""Live monitoring with ``faceprint video``: sighting events, webhook, clean stop, loop, reconnect.

Real faces: the Hamilton clip (``../shared/data/video/short_hamilton_clip.mp4``) with the two
reference photos enrolled, as in ``tests/test_video.py``. The door-camera recipe of the README is
run end to end: ``python -m faceprint video --loop ...`` in a subprocess, stopped by a signal once
its events file holds enough events (the test waits on the file's content, never on a timer; the
long deadlines are failure guards only). Webhooks go to an HTTP server on 127.0.0.1 started by the
test. Reconnection is tested with a fake capture object that drops, not with a network.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceprint import cli
from faceprint.cli.video import StopOnSignals
from faceprint.errors import FaceprintError
from faceprint.video.events import EventOutputError, EventOutputs, JsonLinesSink, TrackEvent, WebhookSink
from faceprint.video.recognition import VideoRecognizer
from faceprint.video.source import ReconnectPolicy, VideoOpenError, VideoSource

REPO_ROOT = Path(__file__).resolve().parents[1]
LIN, ALEX = "lin-manuel-miranda", "alex-lacamoire"
GUARD_S = 300.0  # failure guard for waits on a subprocess: never reached when things work


@pytest.fixture(scope="module")
def gallery_path(engine_fast, data_dir, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("live") / "people.db"
    for person in (LIN, ALEX):
        engine_fast.enroll(person, [data_dir / "video" / f"{person}.png"], path)
    return path


# -- a loopback webhook receiver ---------------------------------------------------------------


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POSTed JSON body.

    ``answer(n)`` gives the status for the n-th request (0-based); ``hold``, when set, makes each
    request wait for it to be set (a slow receiver).
    """

    def __init__(self, answer: Callable[[int], int] = lambda n: 200, hold: threading.Event | None = None) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hold is not None:
                    assert hold.wait(GUARD_S)
                with receiver.lock:
                    n = receiver.requests
                    receiver.requests += 1
                    status = answer(n)
                    if status < 300:
                        receiver.bodies.append(body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def _event(kind: str = "seen", track: int = 1, person: str | None = LIN) -> TrackEvent:
    return TrackEvent(kind=kind, track_id=track, person=person, score=0.5, threshold=0.36, nearest=LIN,
                      frame=10 * track, time_s=track / 3, first_s=0.0, last_s=track / 3,
                      wall="2025-01-01T10:00:00.000+00:00", source="test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- events from the recognizer ---------------------------------------------------------------


def _check_event_order(events: list[dict]) -> None:
    """Per track: one ``seen`` first, then ``changed`` events, at most one ``ended`` last."""
    by_track: dict[int, list[dict]] = {}
    for e in events:
        by_track.setdefault(e["track"], []).append(e)
    for track, items in by_track.items():
        kinds = [e["event"] for e in items]
        assert kinds[0] == "seen" and kinds.count("seen") == 1, (track, kinds)
        assert kinds.count("ended") <= 1 and "ended" not in kinds[:-1], (track, kinds)
        persons = [e["person"] for e in items if e["event"] != "ended"]
        assert all(a != b for a, b in zip(persons, persons[1:])), (track, persons)  # "changed" means changed


def test_recognizer_reports_each_track_seen_changed_and_ended(engine_fast, gallery_path, clip):
    events: list[TrackEvent] = []
    with VideoSource(clip) as source, engine_fast.open_gallery(gallery_path, create=False) as gallery:
        timeline = VideoRecognizer(engine_fast, gallery).run(source, on_event=events.append)
    dicts = [e.to_dict() for e in events]
    _check_event_order(dicts)
    assert [e.frame for e in events] == sorted(e.frame for e in events)
    ended = {e.track_id: e for e in events if e.kind == "ended"}
    seen = {e.track_id for e in events if e.kind == "seen"}
    assert set(ended) == seen  # the file ran to its end: every track that was seen has ended
    tracks = {t.track_id: t for t in timeline.tracks}
    for track_id, e in ended.items():  # the ended event carries the timeline's final decision
        assert e.person == tracks[track_id].person and e.score == pytest.approx(tracks[track_id].score)
        assert e.first_s == tracks[track_id].first_s and e.last_s == tracks[track_id].last_s
    assert {e.person for e in ended.values()} - {None} == {p.person for p in timeline.people()} == {LIN, ALEX}
    # Tracks never embedded (faces under min_face) make no events; every track with templates does.
    assert seen == {t.track_id for t in timeline.tracks if t.templates}
    # The close-up of Alex Lacamoire is named online, then a poor template makes it unknown (README).
    changed = [e for e in events if e.kind == "changed"]
    assert any(e.person is None and ended[e.track_id].person is None for e in changed)
    first = {e.track_id: e for e in reversed(events) if e.kind == "seen"}
    assert any(first[e.track_id].person == ALEX for e in changed)
    assert all(e.threshold == pytest.approx(timeline.threshold) for e in events)
    assert timeline.ended == "end"


def test_stop_ends_the_run_after_the_current_frame_and_closes_every_track(engine_fast, gallery_path, clip):
    stop = threading.Event()
    events: list[TrackEvent] = []

    def on_event(event: TrackEvent) -> None:
        events.append(event)
        if event.kind == "seen" and event.person == LIN:
            stop.set()

    with VideoSource(clip, loop=True) as source, engine_fast.open_gallery(gallery_path, create=False) as gallery:
        timeline = VideoRecognizer(engine_fast, gallery).run(source, on_event=on_event, stop=stop)
    stop_frame = next(e.frame for e in events if e.kind == "seen" and e.person == LIN)
    assert timeline.ended == "stopped" and timeline.to_dict()["ended"] == "stopped"
    assert timeline.stats.frames == stop_frame + 1  # that frame was finished, no later one analysed
    assert max(o.frame for t in timeline.tracks for o in t.observations) == stop_frame
    _check_event_order([e.to_dict() for e in events])
    assert {e.track_id for e in events if e.kind == "ended"} == {e.track_id for e in events if e.kind == "seen"}
    assert LIN in {p.person for p in timeline.people()}
    assert all(e.frame == stop_frame for e in events if e.kind == "ended")


# -- sources: loop, reconnect ------------------------------------------------------------------


def test_loop_replays_the_file_with_running_indices(clip):
    with VideoSource(clip, loop=True) as source:
        assert source.frame_count is None and not source.live
        frames = list(source.frames(every=5, limit=600))
    assert [f.index for f in frames] == list(range(0, 600, 5))
    by_index = {f.index: f for f in frames}
    assert by_index[275].time_s == pytest.approx(275 / source.fps)
    assert np.array_equal(by_index[275].image, by_index[0].image)  # frame 275 is the file's frame 0 again
    assert np.array_equal(by_index[550].image, by_index[0].image)
    assert source.drops == 0


def test_file_end_is_not_a_drop(clip):
    opened = []

    def opener(target):
        opened.append(target)
        return cv2.VideoCapture(target)

    with VideoSource(clip, opener=opener) as source:
        assert not source.live and source.frame_count == 275
        assert sum(1 for _ in source.frames()) == 275
    assert len(opened) == 1 and source.drops == 0 and not source.lost


class FakeStream:
    """A capture of a live stream: ``frames`` frames (pixels = ``value``), then it drops for good.

    ``frames=None``: the (re)open itself fails.
    """

    def __init__(self, frames: int | None, value: int) -> None:
        self.opened = frames is not None
        self.left = frames or 0
        self.value = value

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return self.opened

    def read(self):
        if self.opened and self.left > 0:
            self.left -= 1
            return True, np.full((48, 64, 3), self.value, np.uint8)
        return False, None

    def grab(self) -> bool:
        return self.read()[0]

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 10.0, cv2.CAP_PROP_FRAME_COUNT: -1.0, cv2.CAP_PROP_FRAME_WIDTH: 64.0,
                cv2.CAP_PROP_FRAME_HEIGHT: 48.0}.get(prop, 0.0)

    def release(self) -> None:
        self.opened = False


class Script:
    """Opens FakeStreams in order: each entry is a connection's frame count (None: the open fails)."""

    def __init__(self, *connections: int | None) -> None:
        self.connections = list(connections)
        self.opens = 0

    def __call__(self, target):
        assert target == "rtsp://door.local/stream"
        n = self.opens
        self.opens += 1
        return FakeStream(self.connections[n] if n < len(self.connections) else None, value=n)


class RecordingWait:
    """Stands in for the stop event: records each backoff wait instead of sleeping."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.delays: list[float] = []
        self.stop_at = stop_at

    def wait(self, delay: float) -> bool:
        self.delays.append(delay)
        return self.stop_at is not None and len(self.delays) >= self.stop_at

    def is_set(self) -> bool:
        return self.stop_at is not None and len(self.delays) >= self.stop_at


def test_reconnect_policy_backoff_is_exponential_and_capped():
    policy = ReconnectPolicy(attempts=6, initial_s=1.0, factor=2.0, max_s=5.0)
    assert [policy.delay(n) for n in range(1, 7)] == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    with pytest.raises(ValueError):
        ReconnectPolicy(attempts=-1)


def test_stream_reconnects_after_a_drop_with_backoff_then_is_given_up(caplog):
    # 3 frames, drop, two failed reopens, 2 frames, drop, then nothing comes back.
    script = Script(3, None, None, 2)
    waits = RecordingWait()
    policy = ReconnectPolicy(attempts=3, initial_s=1.0, factor=2.0, max_s=3.0)
    with caplog.at_level(logging.WARNING, logger="faceprint.video.source"):
        with VideoSource("rtsp://door.local/stream", reconnect=policy, opener=script) as source:
            assert source.live and source.frame_count is None and source.fps == 10.0
            frames = list(source.frames(stop=waits))
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]  # indices run on across the reconnection
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 0, 0, 3, 3]  # from connections 0 and 3
    assert frames[3].time_s == pytest.approx(0.3)
    # Backoff restarts after a frame came through; capped at max_s; gives up after 3 in a row.
    assert waits.delays == [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    assert script.opens == 1 + 3 + 3
    assert (source.drops, source.reconnects, source.lost) == (2, 1, True)
    text = caplog.text
    assert "stream dropped; reconnecting in 1.0 s (attempt 1 of 3)" in text
    assert "reconnected after 3 attempt(s)" in text and "stream lost" in text


def test_stop_cuts_a_reconnect_wait_short_and_is_not_an_error():
    script = Script(2)
    waits = RecordingWait(stop_at=1)  # the stop comes during the first backoff
    with VideoSource("rtsp://door.local/stream", reconnect=ReconnectPolicy(initial_s=100.0, max_s=100.0),
                     opener=script) as source:
        frames = list(source.frames(stop=waits))
    assert len(frames) == 2 and waits.delays == [100.0] and script.opens == 1 and not source.lost
    with VideoSource("rtsp://door.local/stream", opener=Script(5)) as source:
        stop = threading.Event()
        stop.set()
        assert list(source.frames(stop=stop)) == []  # stopped before the first frame: no VideoOpenError


def test_no_reconnect_and_a_stream_that_never_gives_a_frame():
    with VideoSource("rtsp://door.local/stream", reconnect=ReconnectPolicy(attempts=0), opener=Script(2)) as source:
        assert len(list(source.frames(stop=RecordingWait()))) == 2
    assert source.lost and source.drops == 1
    with VideoSource("rtsp://door.local/stream", reconnect=ReconnectPolicy(attempts=2), opener=Script(0)) as source:
        with pytest.raises(VideoOpenError, match="no frame could be decoded"):
            list(source.frames(stop=RecordingWait()))
    with pytest.raises(FaceprintError, match="only a video file can be looped"):
        VideoSource("rtsp://door.local/stream", loop=True, opener=Script(2))


def test_recognizer_timeline_says_a_lost_stream(engine_fast, gallery_path):
    source = VideoSource("rtsp://door.local/stream", reconnect=ReconnectPolicy(attempts=1, initial_s=0.0),
                         opener=Script(4, 3))
    with source, engine_fast.open_gallery(gallery_path, create=False) as gallery:
        timeline = VideoRecognizer(engine_fast, gallery).run(source)
    assert timeline.stats.frames == 7 and timeline.ended == "lost" and source.reconnects == 1


# -- event outputs -----------------------------------------------------------------------------


def test_events_file_lines_are_flushed_as_written(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"event": "earlier run"}) + "\n")
    sink = JsonLinesSink(path)
    try:
        sink.emit(_event("seen", 1))
        # Read through another handle while the sink is still open: the line is there already.
        lines = path.read_text().splitlines()
        assert len(lines) == 2 and json.loads(lines[1]) == _event("seen", 1).to_dict()  # appended
        sink.emit(_event("ended", 1))
        assert json.loads(path.read_text().splitlines()[2])["event"] == "ended"
    finally:
        sink.close()
    with pytest.raises(EventOutputError, match="cannot open for writing events"):
        JsonLinesSink(tmp_path / "missing-folder" / "events.jsonl")


def test_webhook_posts_every_event_in_order():
    events = [_event("seen", i) for i in range(1, 6)] + [_event("ended", 3, None)]
    with Receiver() as receiver:
        sink = WebhookSink(receiver.url)
        for e in events:
            sink.emit(e)
        sink.close()
    assert receiver.bodies == [e.to_dict() for e in events]
    assert (sink.delivered, sink.failed, sink.dropped) == (6, 0, 0)


def test_webhook_retries_server_errors_not_client_errors(caplog):
    with Receiver(answer=lambda n: 503 if n < 2 else 200) as receiver:
        sink = WebhookSink(receiver.url, retries=3, backoff_s=0.01)
        sink.emit(_event())
        sink.close()
    assert receiver.requests == 3 and receiver.bodies == [_event().to_dict()] and sink.delivered == 1
    with caplog.at_level(logging.WARNING, logger="faceprint.video.events"), Receiver(answer=lambda n: 404) as receiver:
        sink = WebhookSink(receiver.url, retries=3, backoff_s=0.01)
        sink.emit(_event())
        sink.close()
    assert receiver.requests == 1 and sink.failed == 1 and sink.delivered == 0
    assert "not delivered after 1 attempt(s): HTTP 404" in caplog.text


def test_webhook_to_a_dead_receiver_logs_and_never_blocks(caplog):
    url = f"http://127.0.0.1:{_free_port()}/hook"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="faceprint.video.events"):
        sink = WebhookSink(url, retries=2, backoff_s=0.01)
        for i in range(3):
            sink.emit(_event("seen", i))
        sink.close()
    assert (sink.delivered, sink.failed) == (0, 3)
    assert caplog.text.count("not delivered after 3 attempt(s): ConnectError") == 3


def test_webhook_slow_receiver_fills_the_queue_and_drops_instead_of_waiting():
    hold = threading.Event()
    with Receiver(hold=hold) as receiver:
        sink = WebhookSink(receiver.url, queue_size=2, timeout_s=GUARD_S)
        for i in range(10):  # the receiver answers nothing yet: emit must still return at once
            sink.emit(_event("seen", i))
        dropped = sink.dropped
        hold.set()
        sink.close()
    # One event may be in flight, two wait in the queue: the other seven or eight are dropped.
    assert dropped in (7, 8) and sink.dropped == dropped
    assert sink.delivered == 10 - dropped and len(receiver.bodies) == sink.delivered and sink.failed == 0


def test_webhook_url_is_checked():
    for url in ("ftp://example.org/x", "not a url", "http://"):
        with pytest.raises(EventOutputError, match="webhook"):
            WebhookSink(url)


def test_event_outputs_go_on_when_one_sink_fails(tmp_path, caplog):
    class Broken:
        def emit(self, event):
            raise OSError("disk full")

        def close(self, wait=True):
            pass

    good = JsonLinesSink(tmp_path / "e.jsonl")
    outputs = EventOutputs([Broken(), good])
    with caplog.at_level(logging.ERROR, logger="faceprint.video.events"):
        outputs.emit(_event("seen"))
        outputs.emit(_event("ended"))
    outputs.close()
    assert outputs.count == 2 and len((tmp_path / "e.jsonl").read_text().splitlines()) == 2
    assert caplog.text.count("disk full") == 1


# -- signals -----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_asks_to_stop_second_aborts(signum):
    before = signal.getsignal(signum)
    with pytest.raises(KeyboardInterrupt), StopOnSignals() as stop:
        signal.raise_signal(signum)
        assert stop.event.is_set() and stop.name == signal.Signals(signum).name
        signal.raise_signal(signum)
        pytest.fail("the second signal should have raised KeyboardInterrupt")
    assert signal.getsignal(signum) is before


# -- the command -------------------------------------------------------------------------------


def test_cli_prints_events_as_they_happen_and_writes_them_to_file_and_webhook(gallery_path, clip, tmp_path, capsys):
    events_path, out_json = tmp_path / "events.jsonl", tmp_path / "timeline.json"
    with Receiver() as receiver:
        args = cli.build_parser().parse_args(
            ["video", str(clip), "--gallery", str(gallery_path), "--max-frames", "90", "--events", str(events_path),
             "--webhook", receiver.url, "--out-json", str(out_json)])
        assert args.func(args) == 0
    out = capsys.readouterr().out
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    assert receiver.bodies == events
    _check_event_order(events)
    lines = out.splitlines()
    event_lines = [line for line in lines if re.match(r"\s*[\d.]+s  track \d+ ", line)]
    assert len(event_lines) == len(events)  # one console line per event, printed before the summary
    assert lines.index(event_lines[-1]) < next(i for i, line in enumerate(lines) if line.startswith("track"))
    assert f"seen   {LIN}" in event_lines[0] and ">= 0.359" in event_lines[0]
    assert f"{len(events)} event(s); file {events_path}; webhook {receiver.url}: {len(events)} delivered" in out
    data = json.loads(out_json.read_text())
    assert data["ended"] == "end"
    assert {e["person"] for e in events if e["event"] == "ended"} - {None} == {p["person"] for p in data["people"]}


def test_cli_ctrl_c_while_the_models_load_still_ends_cleanly(gallery_path, clip, tmp_path, capsys, monkeypatch):
    from faceprint.cli import video as cli_video

    profile_for = cli_video._profile_for

    def ctrl_c_then_load(args):  # the signal arrives before the video is opened
        signal.raise_signal(signal.SIGINT)
        return profile_for(args)

    monkeypatch.setattr(cli_video, "_profile_for", ctrl_c_then_load)
    out_json = tmp_path / "t.json"
    args = cli.build_parser().parse_args(["video", str(clip), "--loop", "--gallery", str(gallery_path),
                                          "--out-json", str(out_json)])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "stopped by SIGINT after 0 frames" in captured.err and "stopped by SIGINT: results so far" in captured.out
    data = json.loads(out_json.read_text())
    assert data["ended"] == "stopped" and data["stats"]["frames"] == 0 and data["tracks"] == []


def test_cli_option_errors(gallery_path, clip, tmp_path):
    parser = cli.build_parser()
    out_video = tmp_path / "v.mp4"
    args = parser.parse_args(["video", str(clip), "--gallery", str(gallery_path), "--events",
                              str(tmp_path / "no" / "e.jsonl"), "--out-video", str(out_video)])
    with pytest.raises(EventOutputError, match="cannot open for writing events"):
        args.func(args)
    assert not out_video.exists()  # checked before anything is written
    args = parser.parse_args(["video", str(clip), "--gallery", str(gallery_path), "--webhook", "ftp://x/y"])
    with pytest.raises(EventOutputError, match="http:// or https://"):
        args.func(args)
    args = parser.parse_args(["video", str(clip), "--gallery", str(gallery_path), "--reconnect-max", "-1"])
    with pytest.raises(FaceprintError, match="--reconnect-max"):
        args.func(args)


# -- the README's door-camera recipe, end to end -----------------------------------------------


def _complete_events(path: Path) -> list[dict]:
    """The events in the file so far: complete lines only (a line being written is not counted)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def _run_until(cmd: list[str], events_path: Path, tmp_path: Path, ready: Callable[[list[dict]], bool],
               signum: int) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Start ``cmd``, wait until its events file satisfies ``ready``, send ``signum``, wait for the exit."""
    stdout, stderr = (tmp_path / "stdout.txt").open("w"), (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=stdout, stderr=stderr, text=True)
    try:
        deadline = time.monotonic() + GUARD_S
        while not ready(_complete_events(events_path)):
            assert proc.poll() is None, f"exited early: {(tmp_path / 'stderr.txt').read_text()[-2000:]}"
            assert time.monotonic() < deadline, "no events in time (failure guard)"
            time.sleep(0.05)  # polling interval, not a race: the condition above is what is waited for
        proc.send_signal(signum)
        proc.wait(timeout=GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stdout.close()
        stderr.close()
    done = subprocess.CompletedProcess(cmd, proc.returncode, (tmp_path / "stdout.txt").read_text(),
                                       (tmp_path / "stderr.txt").read_text())
    return done, _complete_events(events_path)


def test_door_camera_recipe_stopped_with_ctrl_c_keeps_events_timeline_and_video(gallery_path, clip, tmp_path):
    events_path, out_json, out_video = tmp_path / "door.jsonl", tmp_path / "door.json", tmp_path / "door.mp4"
    with Receiver() as receiver:
        cmd = [sys.executable, "-m", "faceprint", "video", str(clip), "--loop", "--gallery", str(gallery_path),
               "--events", str(events_path), "--webhook", receiver.url, "--out-json", str(out_json),
               "--out-video", str(out_video)]
        # Stop once an event comes from the second pass of the clip (frame 275 on), so the loop is exercised.
        proc, events = _run_until(cmd, events_path, tmp_path, lambda ev: any(e["frame"] >= 275 for e in ev),
                                  signal.SIGINT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stopped by SIGINT after" in proc.stderr and "stopped by SIGINT: results so far" in proc.stdout
    assert "known people in" in proc.stdout and "frames/s" in proc.stdout
    text = events_path.read_text()
    assert text.endswith("\n") and len(events) == len(text.splitlines())  # every line complete JSON
    _check_event_order(events)
    ended = {e["track"]: e for e in events if e["event"] == "ended"}
    assert set(ended) == {e["track"] for e in events if e["event"] == "seen"}  # the stop ended every track
    assert receiver.bodies == events
    data = json.loads(out_json.read_text())
    assert data["ended"] == "stopped" and data["frame_count"] is None
    assert data["stats"]["frames"] > 275  # the loop went round
    people = {p["person"] for p in data["people"]}
    assert people == {e["person"] for e in ended.values()} - {None} and LIN in people
    final = {t["track_id"]: t["person"] for t in data["tracks"]}
    assert all(final[track] == e["person"] for track, e in ended.items())
    capture = cv2.VideoCapture(str(out_video))  # finished properly: playable to the last frame
    try:
        frames = 0
        while capture.read()[0]:
            frames += 1
    finally:
        capture.release()
    assert frames == data["stats"]["frames"]


def test_sigterm_right_after_the_first_event_also_stops_cleanly(gallery_path, clip, tmp_path):
    events_path, out_json = tmp_path / "door.jsonl", tmp_path / "door.json"
    cmd = [sys.executable, "-m", "faceprint", "video", str(clip), "--loop", "--gallery", str(gallery_path),
           "--events", str(events_path), "--out-json", str(out_json), "--json"]
    proc, events = _run_until(cmd, events_path, tmp_path, lambda ev: len(ev) >= 1, signal.SIGTERM)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "stopped by SIGTERM" in proc.stderr
    printed = json.loads(proc.stdout)  # --json: only the timeline on stdout, no event lines
    assert printed == json.loads(out_json.read_text()) and printed["ended"] == "stopped"
    _check_event_order(events)
    assert {e["track"] for e in events if e["event"] == "ended"} == {e["track"] for e in events if e["event"] == "seen"}
