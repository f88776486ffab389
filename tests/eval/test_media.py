"""Evaluation videos: titled with the policy, its checkpoint's step, the env step and the outcome;
MP4 when imageio-ffmpeg is installed, a clear error otherwise."""

import numpy as np
import pytest
from PIL import Image

from tests.conftest import tiny_run
from worldjepa.cli import main
from worldjepa.eval.media import side_by_side


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("media"), train_steps=3)


def _text_rows(frame: np.ndarray, top: int) -> int:
    """Dark pixels in the title line: text was drawn there."""
    return int((frame[:top].min(-1) < 100).sum())


def test_a_title_is_drawn_above_the_panels():
    a = np.zeros((16, 16, 3), np.uint8)
    plain = side_by_side([a, a], ["obs", "goal"])
    titled = side_by_side([a, a], ["obs", "goal"], title="run @3 | step 2/5")
    assert titled.shape[0] == plain.shape[0] + 10 and titled.shape[1] == plain.shape[1]
    assert _text_rows(titled, 10) > 20 and _text_rows(plain, 0) == 0


def test_eval_gif_is_titled_and_ends_on_its_outcome(tiny, tmp_path):
    data, run = tiny
    gif = tmp_path / "eval.gif"
    args = ["eval", "--data", data, "--episodes", "2", "--budget", "3", "--goal-offset", "5", "--samples", "8",
            "--iterations", "1", "--no-progress", "--gif-episodes", "1"]
    assert main([*args, "--policy", f"oracle,{run}", "--gif", str(gif)]) == 0
    for name in ("eval-0.gif", "eval-1.gif"):  # one per policy
        with Image.open(tmp_path / name) as im:
            frames = [np.asarray(f.convert("RGB")) for f in _frames(im)]
        assert len(frames) >= 2 and frames[0].shape[0] == 128 + 20  # 32 px frames at scale 4, title + captions
        assert all(_text_rows(f, 10) > 20 for f in frames)
        assert not np.array_equal(frames[0][:10], frames[-1][:10])  # the last title (the outcome) differs


def _frames(im):
    for i in range(im.n_frames):
        im.seek(i)
        yield im.copy()


def test_mp4_when_imageio_ffmpeg_is_installed(tiny, tmp_path, capsys):
    data, run = tiny
    args = ["eval", "--data", data, "--policy", run, "--episodes", "1", "--budget", "3", "--goal-offset", "5",
            "--samples", "8", "--iterations", "1", "--no-progress"]
    assert main([*args, "--gif", str(tmp_path / "eval.avi")]) == 2
    assert ".mp4" in capsys.readouterr().err
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        assert main([*args, "--gif", str(tmp_path / "eval.mp4")]) == 2
        assert "worldjepa[video]" in capsys.readouterr().err
        pytest.skip("imageio-ffmpeg is not installed: the refusal is tested")
    import imageio.v3 as iio

    assert main([*args, "--gif", str(tmp_path / "eval.mp4")]) == 0
    video = iio.imread(tmp_path / "eval.mp4", plugin="FFMPEG")
    assert video.ndim == 4 and video.shape[0] >= 2 and video.shape[3] == 3
    assert main(["plan", "--run", run, "--data", data, "--goal-offset", "5", "--budget", "3", "--samples", "8",
                 "--iterations", "1", "--nn-frames", "50", "--gif", str(tmp_path / "plan.mp4")]) == 0
    assert iio.imread(tmp_path / "plan.mp4", plugin="FFMPEG").shape[0] >= 2
