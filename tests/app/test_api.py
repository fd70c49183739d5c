"""The page's API through ``gradio_client``: what a script (or a Space's API page) gets, and every refusal."""

from __future__ import annotations

import base64
import json
import re
import urllib.request

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from nlzoo.inference.inputs import load_for_inference, read_video_views
from nlzoo.inference.pose import draw_skeleton, predict_keypoints
from nlzoo.inference.scores import class_scores
from nlzoo.models.skeleton import default_skeleton

from .conftest import LIMITS, Served

VIDEO, IMAGE = "/classify_video", "/analyse_image"


@pytest.fixture(scope="module")
def client(served: Served) -> Client:
    return Client(served.url, verbose=False)


def _scores(label: dict) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in label["confidences"]}


def test_a_video_gets_the_view_averaged_scores_and_the_attention_gif(client: Client, served: Served) -> None:
    label, html, timing = client.predict(
        handle_file(served.video),
        None,
        str(served.video_model),
        "10x3",
        "layer3.1_nonlocal",
        api_name=VIDEO,
    )
    model = load_for_inference(str(served.video_model))
    views = read_video_views(served.video, model.nlzoo_config.data_config, num_clips=10, num_crops=3)
    expected = class_scores(model, views, precision="fp32")  # the server runs --precision fp32
    names = model.nlzoo_config.label_names
    assert _scores(label) == pytest.approx({names[i]: float(s) for i, s in enumerate(expected)}, abs=1e-5)
    assert label["label"] == names[int(expected.argmax())]
    gif = base64.b64decode(re.search(r'src="data:image/gif;base64,([^"]+)"', html).group(1))
    with Image.open(__import__("io").BytesIO(gif)) as picture:
        assert picture.format == "GIF" and picture.n_frames == 4  # one picture per input frame
    assert "layer3.1_nonlocal" in html
    assert re.match(r"Took \d+\.\d\d s: prediction .* \(10x3 views of 4 frames, fp32 on cpu\)\.", timing)


def test_examples_are_picked_by_name_and_pose_models_draw_a_skeleton(client: Client, served: Served) -> None:
    label, _, timing = client.predict(
        None, "synthetic clip 3 (same colour, 4 s)", str(served.video_model), "3x1", None, api_name=VIDEO
    )
    assert set(_scores(label)) == {"different_colour", "same_colour"} and "3x1 views" in timing
    drawn, labels, html, _ = client.predict(
        handle_file(served.image), None, str(served.pose_model), None, 0.0, api_name=IMAGE
    )
    model = load_for_inference(str(served.pose_model))
    original = Image.open(served.image).convert("RGB")
    box = [[0.0, 0.0, float(original.width), float(original.height)]]
    skeleton = default_skeleton(17)
    joints = predict_keypoints(
        model, original, box, model.nlzoo_config.data_config, skeleton=skeleton, precision="fp32"
    )
    expected = draw_skeleton(original, joints, skeleton, threshold=0.0)
    with Image.open(drawn) as picture:
        assert picture.size == original.size and expected.tobytes() != original.tobytes()
        assert picture.convert("RGB").tobytes() == expected.tobytes()  # predict-image's skeleton, drawn the same
    assert not labels.get("confidences") and 'src="data:image/png;base64,' in html


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "unsupported file type '.txt'; upload one of: .mp4"),
        ("long", f"long; the limit is {LIMITS['max_video_seconds']:g} s: upload a shorter clip"),
        ("corrupt", "not a video FFmpeg can read"),
        ("nothing", "upload a file or pick an example first"),
        ("unknown example", "x.mp4 is not in the list of choices"),  # Gradio checks the choices
    ],
)
def test_video_refusals_are_one_clear_line(client: Client, served: Served, tmp_path, kind: str, message: str) -> None:
    files = {"text": tmp_path / "notes.txt", "corrupt": tmp_path / "broken.mp4", "long": served.long_video}
    files["text"].write_text("not a video")
    files["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    upload = handle_file(files[kind]) if kind in files else None
    example = "x.mp4" if kind == "unknown example" else None
    with pytest.raises(AppError) as caught:
        client.predict(upload, example, str(served.video_model), "3x1", None, api_name=VIDEO)
    assert message in str(caught.value)
    assert str(tmp_path) not in str(caught.value) and "gradio" not in str(caught.value)  # no server paths shown


def test_image_refusals_name_the_limit(client: Client, served: Served, tmp_path) -> None:
    Image.new("RGB", (600, 600)).save(tmp_path / "huge.png")  # 0.36 megapixels, a few KB
    with pytest.raises(AppError, match=r"600x600 = 0\.4 megapixels; the limit is 0\.2: upload a smaller image"):
        client.predict(handle_file(tmp_path / "huge.png"), None, str(served.pose_model), None, 0.2, api_name=IMAGE)
    (tmp_path / "fake.png").write_bytes(b"not a png")
    with pytest.raises(AppError, match="fake.png: not an image Pillow can read"):
        client.predict(handle_file(tmp_path / "fake.png"), None, str(served.pose_model), None, 0.2, api_name=IMAGE)


def test_uploads_over_the_size_limit_are_refused_before_they_are_stored(client: Client, served: Served, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(bytes(int(LIMITS["max_file_mb"] * 1024 * 1024) + 1))
    with pytest.raises(Exception, match="exceeds the maximum file size of 524288 bytes"):  # the client checks
        client.predict(handle_file(big), None, str(served.video_model), "3x1", None, api_name=VIDEO)
    response = httpx.post(served.url + "gradio_api/upload", files={"files": ("big.mp4", big.read_bytes())})
    assert response.status_code == 413, response.text  # and so does the server, for any other client


def test_a_path_named_by_the_client_is_never_read(served: Served, tmp_path) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(served.video.read_bytes())
    forged = {"path": str(secret), "meta": {"_type": "gradio.FileData"}, "orig_name": "secret.mp4"}
    body = json.dumps({"data": [forged, None, str(served.video_model), "3x1", None]}).encode()
    request = urllib.request.Request(
        served.url + "gradio_api/call/classify_video", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{served.url}gradio_api/call/classify_video/{event_id}", timeout=60) as response:
        stream = response.read().decode()
    assert "event: error" in stream and "different_colour" not in stream and "confidence" not in stream
