"""The videos users bring, made here with PyAV: each gives the same frames on both decoders, upright and
picked by time, or is rejected by prepare's check with its reason."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
import torch
from videos import frames, garble, truncate, write

from video_classifier.data.decoding import decode_pyav, decode_torchcodec, torchcodec_problem
from video_classifier.data.manifest import probe_video
from video_classifier.data.user_videos import check_video

CORPUS = {  # name -> write() arguments
    "h264 mp4 with B-frames": {"kind": "h264"},
    "vp9 webm": {"kind": "vp9"},
    "hevc mkv": {"kind": "hevc"},
    "mjpeg avi": {"kind": "mjpeg"},
    "29.97 fps": {"kind": "h264", "fps": Fraction(30000, 1001)},
    "variable frame rate": {"kind": "hevc", "variable_rate": True},
    "rotated 90 degrees": {"kind": "h264", "rotation": 90},
    "rotated 270 degrees": {"kind": "h264", "rotation": -90},
    "portrait": {"kind": "vp9", "width": 48, "height": 64},
    "odd size": {"kind": "mjpeg", "width": 63, "height": 47},
    "10-bit": {"kind": "h264", "pix_fmt": "yuv420p10le"},
    "10-bit BT.2020 (wide gamut)": {"kind": "hevc", "pix_fmt": "yuv420p10le", "bt2020": True},
    "one frame": {"kind": "h264", "n": 1},
    "shorter than a clip": {"kind": "mpeg4", "n": 5},
    "with an audio track": {"kind": "h264", "audio": True},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("corpus")
    return {name: write(folder / name.replace(" ", "_"), **kwargs) for name, kwargs in CORPUS.items()}


@pytest.mark.parametrize("name", CORPUS)
def test_every_kind_passes_the_check_and_decodes_upright(corpus, name):
    frames_count, fps, seconds = check_video(str(corpus[name]))
    assert (frames_count, fps) == probe_video(corpus[name])[:2]
    n, rotation = CORPUS[name].get("n", 30), CORPUS[name].get("rotation", 0)
    assert abs(frames_count - n) <= 1
    indices = sorted({0, frames_count // 2, frames_count - 1})
    pyav = decode_pyav(corpus[name], indices)
    height, width = CORPUS[name].get("height", 48), CORPUS[name].get("width", 64)
    assert tuple(pyav.shape[2:]) == ((width, height) if rotation % 180 else (height, width))
    if not CORPUS[name].get("variable_rate"):  # constant rate: index i is exactly frame i of the source
        source = torch.from_numpy(frames(n, width, height)).permute(0, 3, 1, 2).float()
        if rotation:
            source = torch.rot90(source, rotation // 90 % 4, dims=(2, 3))
        for index, frame in zip(indices, pyav.float()):
            difference = (source - frame).abs().mean(dim=(1, 2, 3))
            assert difference.argmin().item() == index, (name, index, difference)
            assert n == 1 or difference[index] < 0.5 * difference.median(), (name, index, difference)


@pytest.mark.torchcodec
@pytest.mark.skipif(torchcodec_problem() is not None, reason="torchcodec does not load here")
@pytest.mark.parametrize("name", CORPUS)
def test_every_kind_gives_torchcodec_the_frames_pyav_gives(corpus, name):
    frames_count = probe_video(corpus[name])[0]
    indices = sorted({0, frames_count // 2, frames_count - 1})
    pyav, torchcodec = decode_pyav(corpus[name], indices), decode_torchcodec(corpus[name], indices)
    # equal to the bit, odd sizes and 10-bit included: both convert to RGB as FFmpeg's command line does
    # (PyAV's own to_ndarray filtered chroma otherwise there: mean |difference| 2.7 of 255 for an odd-sized
    # mjpeg, 2.9 on the real-world 10-bit files)
    assert torch.equal(pyav, torchcodec), name


def test_variable_frame_rate_picks_the_frame_on_screen(corpus):
    """Frames 20 and 60 ms apart in turn: a frame index stands for its slot's middle at the average rate
    (25 fps here: 40 ms slots), and the frame returned is the one shown then."""
    video = corpus["variable frame rate"]
    # frame k starts at 80 * (k // 2) + (20 if k is odd) ms; slot i's middle is 40 i + 20 ms
    starts = [80 * (k // 2) + (20 if k % 2 else 0) for k in range(30)]
    decoded = decode_pyav(video, list(range(10)))
    all_frames = torch.from_numpy(frames(30)).permute(0, 3, 1, 2).float()
    for i in range(10):
        shown = max(k for k, start in enumerate(starts) if start <= 40 * i + 20)
        nearest = (all_frames - decoded[i].float()).abs().mean(dim=(1, 2, 3)).argmin().item()
        assert nearest == shown, (i, nearest, shown)


@pytest.mark.parametrize("damage, reason", [
    ("truncated", None),
    ("garbled in the middle", None),
    ("zero bytes", "empty file"),
    ("not a video at all", "Invalid data"),
])
def test_damaged_files_are_rejected_with_a_reason(tmp_path, damage, reason):
    path = write(tmp_path / "video", "h264", n=60)
    if damage == "truncated":
        # mp4 keeps its index at the end: truncating leaves nothing; an AVI keeps its header
        path = truncate(write(tmp_path / "video", "mpeg4", n=60), 0.4)
    elif damage == "garbled in the middle":
        garble(path)
    elif damage == "zero bytes":
        path.write_bytes(b"")
    else:
        path.write_text("hello, I am a text file\n")
    with pytest.raises(ValueError, match=reason) as error:
        check_video(str(path))
    assert str(error.value).strip()
