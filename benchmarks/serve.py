"""The web page (``nlzoo serve``): time from upload to labels for a 10 s clip, and the server's memory.

One run starts ``nlzoo serve`` with a video and a pose model (both loaded at start-up) and, with
``gradio_client``, uploads a generated 10 s clip (25 fps, 256x340) and waits for the labels, with the
default 3x1 views and with the paper's 10x3. The reference, timed in the same run and interleaved with the
page's requests, is the same inference without the page: ``nlzoo.inference`` in this process (decode the
views, classify them, draw the attention), i.e. what ``predict-video`` + ``explain`` compute. The ratio is
what the page adds (upload, queue, encoding). Memory: the server's resident set with the two models loaded,
after start-up and at its peak after the requests, against the two models' weight bytes.

    python benchmarks/serve.py [--video-model i3d_r50_nl] [--pose-model simplebaseline_r50_nl] [--repeats 3]
    python benchmarks/serve.py --quick                       # r18 models, 1 repeat: a smoke test
    python benchmarks/serve.py --screenshot docs/serve.png --video-model PATH --screenshot-video CLIP

An architecture name is saved with random weights (speed does not depend on them, and nothing is downloaded);
a folder or ``.ckpt`` is served as it is. ``--screenshot`` also saves the page after a run in headless Chromium.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_MODELS: dict = {}  # model folder -> the loaded model (loaded once, as the server does)


def prepared_model(name: str, folder: Path) -> str:
    """A registry architecture saved with random weights into ``folder``; a path is returned as it is."""
    import nlzoo

    if Path(name).exists():
        return name
    nlzoo.save_pretrained(nlzoo.load(name, pretrained=False), folder)
    return str(folder)


def ten_second_clip(root: Path) -> Path:
    from nlzoo.data import SyntheticVideoSpec, write_synthetic_videos

    spec = SyntheticVideoSpec(
        num_train=1, num_val=0, num_test=0, num_frames=250, fps=25, size=(256, 340), object_size=32, margin=40
    )
    return write_synthetic_videos(root, spec) / "videos" / "train" / "00000.mp4"


def start_server(models: list[str], root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "nlzoo.cli", "serve", "--port", str(port), "--max-video-seconds", "30"]
    for model in models:
        command += ["--model", model]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(REPO)}
    log = open(root / "serve.log", "w")  # noqa: SIM115  (open for the server's lifetime)
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nlzoo serve exited: {(root / 'serve.log').read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("nlzoo serve did not start within 600 s")


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident set, its peak) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def weight_mb(folder: str) -> float:
    return sum(f.stat().st_size for f in Path(folder).glob("*.safetensors")) / 2**20


def reference_seconds(model_dir: str, clip: Path, views: tuple[int, int]) -> float:
    """The same inference without the page, in this process: views, scores, attention (fresh model per call)."""
    from nlzoo.inference.attention import draw_attention
    from nlzoo.inference.inputs import load_for_inference, read_video_views
    from nlzoo.inference.scores import class_scores
    from nlzoo.precision import inference_precision

    model = REFERENCE_MODELS.setdefault(model_dir, load_for_inference(model_dir))
    config = model.nlzoo_config.data_config
    start = time.perf_counter()
    with inference_precision("auto"):
        class_scores(model, read_video_views(clip, config, num_clips=views[0], num_crops=views[1]))
        draw_attention(model, read_video_views(clip, config, num_clips=1, num_crops=1), config, panel_height=160)
    return time.perf_counter() - start


def screenshot(url: str, clip: Path, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1050"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        browser.get(url)
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "input[type=file]"))
        browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(clip.resolve()))
        button = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Classify")
        button.click()
        WebDriverWait(browser, 600).until(lambda b: b.find_elements(By.ID, "attention-picture"))
        time.sleep(1.5)  # let the GIF show a frame with the heat maps
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(out))
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video-model", default="i3d_r50_nl")
    parser.add_argument("--pose-model", default="simplebaseline_r50_nl")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="i3d_r18_nl + simplebaseline_r18_nl, 1 repeat")
    parser.add_argument("--screenshot", type=Path, help="also save the page after a run to this PNG")
    parser.add_argument("--screenshot-video", type=Path, help="the clip for the screenshot (default: the 10 s clip)")
    args = parser.parse_args()
    video_name, pose_name, repeats = (
        ("i3d_r18_nl", "simplebaseline_r18_nl", 1) if args.quick else (args.video_model, args.pose_model, args.repeats)
    )
    from gradio_client import Client, handle_file

    with tempfile.TemporaryDirectory(prefix="nlzoo-bench-serve-") as tmp:
        root = Path(tmp)
        video_model = prepared_model(video_name, root / "video_model")
        pose_model = prepared_model(pose_name, root / "pose_model")
        clip = ten_second_clip(root / "clip")
        process, url = start_server([video_model, pose_model], root)
        try:
            loaded_rss, _ = rss_mb(process.pid)
            client = Client(url, verbose=False)
            print(
                f"video model {video_name}, pose model {pose_name}; clip: 10 s, 250 frames of 256x340; "
                f"{repeats} repeat(s)"
            )
            print(
                "| views | page: upload to labels (s) | of which the page's own timing: predict + attention (s) "
                "| reference: same inference, no page (s) | page / reference |"
            )
            print("|---|---|---|---|---|")
            for views in ((3, 1), (10, 3)):
                page, inner, reference = [], [], []
                for _ in range(repeats + 1):  # the first round warms up both sides
                    start = time.perf_counter()
                    _, _, timing = client.predict(
                        handle_file(clip), None, video_model, f"{views[0]}x{views[1]}", None, api_name="/classify_video"
                    )
                    page.append(time.perf_counter() - start)
                    inner.append(float(re.match(r"Took (\d+\.\d+) s", timing).group(1)))
                    reference.append(reference_seconds(video_model, clip, views))
                p, i, r = (statistics.median(x[1:]) for x in (page, inner, reference))
                print(f"| {views[0]}x{views[1]} | {p:.2f} | {i:.2f} | {r:.2f} | {p / r:.2f}x |")
            rss, peak = rss_mb(process.pid)
            weights = weight_mb(video_model) + weight_mb(pose_model)
            print(
                f"server memory with both models loaded: {loaded_rss:.0f} MiB after start-up, {rss:.0f} MiB now, "
                f"{peak:.0f} MiB peak; the two models' weights: {weights:.0f} MiB ({peak / weights:.1f}x)"
            )
            if args.screenshot:
                screenshot(url, args.screenshot_video or clip, args.screenshot)
                print(f"wrote {args.screenshot}")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)


if __name__ == "__main__":
    main()
