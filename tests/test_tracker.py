"""The tracker on synthetic boxes and synthetic frames: ids, gaps, crossings, lifecycle, flow."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceprint.video.tracker import (
    FlowPropagator,
    KalmanBox,
    Tracker,
    TrackerConfig,
    TrackState,
    iou,
)
from faceprint.types import Box


def box_at(x: float, y: float, size: float = 40.0) -> Box:
    return Box(x, y, size, size)


def test_iou():
    a = Box(0, 0, 10, 10)
    assert iou(a, a) == pytest.approx(1.0)
    assert iou(a, Box(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert iou(a, Box(20, 20, 5, 5)) == 0.0


def test_kalman_learns_velocity_and_predicts():
    kf = KalmanBox(box_at(0, 100), frame=0)
    for f in range(1, 15):
        kf.update(box_at(5 * f, 100), f)
    predicted = kf.predict(20)
    assert predicted.x == pytest.approx(100, abs=3)
    assert predicted.y == pytest.approx(100, abs=2)
    assert kf.speed == pytest.approx(5 / 40, rel=0.2)


def test_confirmation_needs_min_hits_and_one_off_detections_vanish():
    tracker = Tracker(TrackerConfig(min_hits=2))
    ids = tracker.update(0, [box_at(10, 10), box_at(200, 10)])
    assert len(set(ids)) == 2 and tracker.active == []
    ids2 = tracker.update(5, [box_at(12, 10)])  # the second box was a false detection
    assert ids2 == [ids[0]]
    assert [t.track_id for t in tracker.active] == [ids[0]]
    assert len(tracker.tracks) == 1


def test_keeps_id_across_a_detection_gap_within_max_age():
    tracker = Tracker(TrackerConfig(max_age=10))
    first = None
    for f in range(10):
        (first,) = tracker.update(f, [box_at(100 + 2 * f, 50)])
    # Detector misses the face for 8 frames while it keeps moving; the filter carries it.
    tracker.predict(17)
    (again,) = tracker.update(18, [box_at(136, 50)])
    assert again == first
    assert tracker.pop_ended() == []


def test_track_ends_after_max_age_and_is_handed_over_once():
    tracker = Tracker(TrackerConfig(max_age=5))
    tracker.update(0, [box_at(10, 10)])
    (tid,) = tracker.update(1, [box_at(10, 10)])
    tracker.update(4, [])
    assert tracker.pop_ended() == []
    tracker.update(7, [])
    ended = tracker.pop_ended()
    assert [t.track_id for t in ended] == [tid] and ended[0].state is TrackState.ENDED
    assert tracker.pop_ended() == [] and tracker.tracks == []
    # A face at the same place later is a new track.
    (new,) = tracker.update(8, [box_at(10, 10)])
    assert new != tid


@pytest.mark.parametrize("dy", [0.0, 6.0])
def test_no_swap_when_two_faces_cross(dy):
    tracker = Tracker()
    ids_by_side = None
    for f in range(41):
        left = box_at(20 + 6 * f, 100)            # moves right
        right = box_at(260 - 6 * f, 100 + dy)     # moves left; they meet at frame 20
        ids = tracker.update(f, [left, right])
        if f == 2:
            ids_by_side = ids
    # After crossing, the face that started on the left is still the same track.
    final = {t.track_id: t.box for t in tracker.active}
    left_id, right_id = ids_by_side
    assert final[left_id].x > final[right_id].x
    assert final[left_id].x == pytest.approx(20 + 6 * 40, abs=4)


def test_no_swap_when_faces_cross_between_sparse_detections():
    """Detections every 4 frames only; the filter predicts in between."""
    tracker = Tracker(TrackerConfig(max_age=10))
    ids_start = None
    for f in range(0, 41, 4):
        ids = tracker.update(f, [box_at(20 + 5 * f, 100), box_at(220 - 5 * f, 104)])
        if f == 8:
            ids_start = ids
    assert ids == ids_start


def test_end_all_at_scene_cut():
    tracker = Tracker()
    tracker.update(0, [box_at(10, 10), box_at(100, 10)])
    tracker.update(1, [box_at(10, 10), box_at(100, 10)])
    tracker.update(2, [box_at(300, 10)])  # tentative
    tracker.end_all()
    assert len(tracker.pop_ended()) == 2 and tracker.tracks == []


def test_apply_flow_moves_track_between_detections():
    tracker = Tracker()
    tracker.update(0, [box_at(100, 100)])
    (tid,) = tracker.update(1, [box_at(100, 100)])
    for f in range(2, 8):
        tracker.apply_flow(f, {tid: box_at(100 + 4 * (f - 1), 100)})
    assert tracker.active[0].box.x == pytest.approx(124, abs=3)


def textured_frame(offset: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    patch = cv2.GaussianBlur(rng.integers(0, 255, (80, 80), dtype=np.uint8), (0, 0), 1.5)
    patch = cv2.resize(patch, None, fx=scale, fy=scale)
    frame = np.full((360, 640, 3), 90, np.uint8)
    y, x = 100 + offset[1], 200 + offset[0]
    frame[y:y + patch.shape[0], x:x + patch.shape[1]] = patch[:, :, None]
    return frame


def test_flow_follows_a_moving_textured_face():
    flow = FlowPropagator()
    assert flow.step(flow.grey(textured_frame((0, 0))), {1: Box(200, 100, 80, 80)}) == {}
    moved = flow.step(flow.grey(textured_frame((6, -4))), {1: Box(200, 100, 80, 80)})
    assert moved[1].x == pytest.approx(206, abs=1.0) and moved[1].y == pytest.approx(96, abs=1.0)


def test_flow_reports_no_measurement_on_a_flat_region():
    flow = FlowPropagator()
    blank = np.full((360, 640), 90, np.uint8)
    flow.step(blank, {1: Box(20, 20, 60, 60)})
    assert flow.step(blank, {1: Box(20, 20, 60, 60)}) == {}
