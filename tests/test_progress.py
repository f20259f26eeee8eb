"""Progress reports: tqdm on a terminal, plain lines (no escape codes) elsewhere."""

import io

from tqdm import tqdm

from orthocore import progress as progress_module
from orthocore.progress import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_off_a_terminal_plain_lines_at_the_interval_and_at_the_end(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL", 0.0)
    assert list(progress(range(3), desc="transfer attacks", unit="batch", stream=stream)) == [0, 1, 2]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # one per step at interval 0, and the closing one
    assert lines[-1].startswith("transfer attacks: 3/3 batch (100%)") and "\x1b" not in stream.getvalue()
    assert "\r" not in stream.getvalue()


def test_a_long_interval_prints_only_the_closing_line_with_the_postfix():
    stream = io.StringIO()
    with progress(total=5, desc="epoch 1", stream=stream) as bar:
        bar.update(2)
        bar.set_postfix({"ce": "0.123"})
        bar.update(3)
    assert stream.getvalue().splitlines() == [stream.getvalue().strip()]
    assert stream.getvalue().startswith("epoch 1: 5/5 it (100%)") and "ce=0.123" in stream.getvalue()


def test_a_terminal_gets_tqdm_and_disabled_prints_nothing():
    assert isinstance(progress(range(2), desc="x", stream=Terminal()), tqdm)
    stream = io.StringIO()
    assert list(progress(range(2), desc="x", enabled=False, stream=stream)) == [0, 1]
    assert stream.getvalue() == ""


def test_plain_lines_estimate_the_time_left(monkeypatch):
    stream = io.StringIO()
    clock = iter([0.0, 0.0, 60.0, 60.0, 240.0, 240.0])
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(progress_module, "PLAIN_INTERVAL", 0.0)
    with progress(total=4, desc="models", unit="model", stream=stream) as bar:
        bar.update()  # 1 of 4 after 60 s: 3 more at that rate
        bar.update(3)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "models: 1/4 model (25%), 60 s, 60.0 s/model, about 3 min left"
    assert lines[1].startswith("models: 4/4 model (100%), 240 s") and "left" not in lines[1]
