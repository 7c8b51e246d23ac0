"""A fake camera for the web console, and the screenshot of docs/images/web-console.png made with it.

Chromium can play a ``.y4m`` file as its camera (``--use-fake-device-for-media-stream
--use-fake-ui-for-media-stream --use-file-for-fake-video-capture=FILE.y4m``). :func:`fake_camera`
writes one from ``video/short_hamilton_clip.mp4`` of the shared data (every second frame, 15
frames a second), followed by two seconds of ``knn-small/test/alex_lacamoire1.jpg``: in the clip
Alex Lacamoire is a 25-pixel, blurred face at the piano that the quality gate skips in every frame,
and this other photo of him (not the one he is enrolled from) shows him to the camera.

    python scripts/web_console_screenshot.py --data ../shared/data --out docs/images/web-console.png

starts ``faceprint serve`` on loopback, enrols Lin-Manuel Miranda and Alex Lacamoire from
``video/lin-manuel-miranda.png`` and ``video/alex-lacamoire.png``, opens the page in headless
Chromium with the fake camera and saves the camera section once Lin-Manuel Miranda is named alone in the picture (his medium shot).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
FPS = 15
SIZE = (640, 360)
PEOPLE = ("lin-manuel-miranda", "alex-lacamoire")
CAMERA_FLAGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


def write_y4m(frames, path: Path, fps: int = FPS) -> Path:
    """Write BGR frames (all of one size, even width and height) as an uncompressed 4:2:0 YUV4MPEG2 file."""
    with open(path, "wb") as out:
        header = False
        for bgr in frames:
            if not header:
                out.write(f"YUV4MPEG2 W{bgr.shape[1]} H{bgr.shape[0]} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
                header = True
            out.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


def _letterboxed(path: Path, size: tuple[int, int] = SIZE) -> np.ndarray:
    image = cv2.imread(str(path))
    scale = min(size[0] / image.shape[1], size[1] / image.shape[0])
    small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_AREA)
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    y, x = (size[1] - small.shape[0]) // 2, (size[0] - small.shape[1]) // 2
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def fake_camera(data_dir: Path, path: Path) -> Path:
    """The fake camera file (see the module docstring): the Hamilton clip, then Alex Lacamoire's photo."""

    def frames():
        video = cv2.VideoCapture(str(data_dir / "video" / "short_hamilton_clip.mp4"))
        index = 0
        while True:
            ok, frame = video.read()
            if not ok:
                break
            if index % 2 == 0:
                yield cv2.resize(frame, SIZE) if frame.shape[1::-1] != SIZE else frame
            index += 1
        video.release()
        alex = _letterboxed(data_dir / "knn-small" / "test" / "alex_lacamoire1.jpg")
        for _ in range(2 * FPS):
            yield alex

    return write_y4m(frames(), path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "web-console.png")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "benchmarks"))
    import httpx
    from playwright.sync_api import expect, sync_playwright
    from service_load import ServerProcess

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "data", profile="fast", workers=2) as srv:
        camera = fake_camera(args.data, Path(tmp) / "camera.y4m")
        h = {"Authorization": f"Bearer {srv.admin_key}"}
        httpx.post(srv.url + "/v1/collections", json={"name": "stage"}, headers=h).raise_for_status()
        for person in PEOPLE:
            photo = args.data / "video" / f"{person}.png"
            httpx.post(f"{srv.url}/v1/collections/stage/persons/{person}/faces", headers=h, timeout=60,
                       files=[("images", (photo.name, photo.read_bytes(), "image/png"))]).raise_for_status()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=[
                "--headless=new", "--no-sandbox", "--disable-gpu", *CAMERA_FLAGS,
                f"--use-file-for-fake-video-capture={camera}"])
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(srv.url + "/")
            page.get_by_label("API key").fill(srv.admin_key)
            page.get_by_role("button", name="Use key").click()
            expect(page.locator("#threshold")).to_contain_text("Threshold in use")
            page.get_by_role("button", name="Start camera").click()
            page.wait_for_function("""() => {  // the medium shot: Lin-Manuel Miranda alone, named
                const faces = document.querySelectorAll('#camera-results li');
                return faces.length === 1 && faces[0].dataset.person === 'lin-manuel-miranda'; }""", timeout=120_000)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.locator("section[aria-labelledby=camera-h]").screenshot(path=str(args.out))
            browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
