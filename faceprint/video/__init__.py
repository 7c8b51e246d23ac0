"""Recognition on video: who appears in a file, camera or stream, and when.

- :mod:`~faceprint.video.source`: frames from a file, a camera or a URL (reconnecting live sources);
- :mod:`~faceprint.video.tracker`: faces carried between detections (Kalman filter, optical flow);
- :mod:`~faceprint.video.recognition`: detection on a schedule, tracking, an identity per track;
- :mod:`~faceprint.video.events`: sighting events as they happen (JSON lines, webhook);
- :mod:`~faceprint.video.draw`: the annotated output video.
"""
