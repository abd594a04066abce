"""The demo as a person sees it (devtools demo_view): width, word-safe clipping, redraw only on a terminal."""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime
from typing import Any

from notebook_devtools.demo_view import WIDTH, Screen, clip_words, local, money_lines, table

NOW = datetime(2026, 12, 2, 6, 38, 40, tzinfo=UTC)


def item(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"desiredState": "Running"}, "status": status}


def test_clipping_never_cuts_a_word() -> None:
    text = "IdleCullerPolicy gpu-idle: idle 2 min, cpu 2%, gpu 0%"
    for width in range(12, len(text)):
        clipped = clip_words(text, width)
        assert len(clipped) <= width and clipped.endswith("…")
        kept = clipped[:-1]
        assert text.startswith(kept) and (not kept or text[len(kept)] in " ,;:(")  # ends where a word ends
    assert clip_words(text, 200) == text


def test_the_table_fits_the_width_with_long_reasons() -> None:
    long = "notebook-operator: IdleCullerPolicy a-very-long-policy-name-for-the-gpu-team: idle 125 min, cpu 2%, gpu 0%"
    status = {"provider": "modelarts-devenv", "phase": "Stopped", "stoppedBy": long,
              "cost": {"perHour": 123.45, "currency": "CNY"}, "nextShutdownAt": "2026-12-02T14:38:38Z"}  # fmt: skip
    items = [item(f"notebook-{i:02d}-with-a-long-name", **status) for i in range(3)]
    lines = table(items, NOW)
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[1].rstrip().endswith("…") and "IdleCullerPolicy" in lines[1]


def test_times_in_the_feed_show_the_teams_wall_clock() -> None:
    assert local("shutdown at 2026-12-02T14:38:38Z was due") == "shutdown at 14:38:38 (Asia/Shanghai 22:38:38) was due"


def test_redraw_in_place_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Terminal(), io.StringIO()
    for out in (tty, pipe):
        Screen(out).show(["frame 1"])
        Screen(out).show(["frame 2"])
    assert tty.getvalue().count("\x1b[H\x1b[J") == 2
    assert "\x1b" not in pipe.getvalue() and pipe.getvalue() == "frame 1\n\nframe 2\n\n"


def test_redraw_on_a_real_pseudo_terminal() -> None:
    """The same check against a real terminal device (a pty), as `make demo` sees one in a terminal."""
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as terminal:
        Screen(terminal).show(["frame 1"])
        Screen(terminal).show(["frame 2"])
    written = os.read(master, 4096).decode()
    os.close(master)
    assert written.count("\x1b[H\x1b[J") == 2 and written.rstrip().endswith("frame 2")


def test_money_lines_lead_with_savings_and_state_the_projection() -> None:
    items = [item("a", cost={"perHour": 10.0, "currency": "CNY"}), item("b", cost={"perHour": 2.5, "currency": "USD"})]
    lines = money_lines({"estimatedSavings": {"CNY": 4.2}, "estimatedHoursSaved": 0.42}, items, ["a", "b"], team=2)
    assert lines[0].startswith("  saved so far by culling: 4.20 CNY (0.42 instance-hours")
    assert lines[1].endswith("10.00 CNY/h, 2.50 USD/h")
    assert lines[2].endswith("3,080 CNY, 770 USD")  # 10 x 14 h x 22 days; 2.5 x 14 x 22
    assert "14 h" in lines[3] and "22 working days" in lines[3]
