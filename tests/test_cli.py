"""The terminal chat as a real process: scripted through a pipe, killed, started again."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def chat_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KISS_", "TELEGRAM_"))}
    env["KISS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'kiss.sqlite3'}"
    env["KISS_CHARTS_DIR"] = str(tmp_path / "charts")
    return env


async def start_chat(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "chat", "--user", "piet", *args, cwd=tmp_path,
        env=chat_env(tmp_path), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)


async def read_until(process: asyncio.subprocess.Process, marker: str) -> str:
    assert process.stdout is not None
    seen = ""
    while marker not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if not line:
            raise AssertionError(f"chat ended before {marker!r}:\n{seen}")
        seen += line.decode()
    return seen


async def test_killed_mid_assessment_resumes_at_the_same_question(tmp_path: Path) -> None:
    chat = await start_chat(tmp_path)
    assert chat.stdin is not None
    chat.stdin.write(b"1\nja\nBakkerij Dewitte\nRoeselare\n1\n2\n1\n2\n")
    await chat.stdin.drain()
    await read_until(chat, "Vraag 3 van 26")
    chat.send_signal(signal.SIGKILL)
    await chat.wait()

    again = await start_chat(tmp_path)
    output = await read_until(again, "Vraag 3 van 26")
    assert "Welkom terug" in output
    assert "Vraag 1 van 26" not in output
    again.send_signal(signal.SIGKILL)
    await again.wait()


async def test_piped_chat_runs_the_whole_journey_and_saves_the_chart(tmp_path: Path) -> None:
    answers = ["2", "1", "Corner Shop", "Bruges", "7", "1"] + ["1"] * 25
    chat = await start_chat(tmp_path, "--lang", "en")
    stdout, stderr = await asyncio.wait_for(
        chat.communicate("\n".join(answers).encode() + b"\n"), timeout=120)
    output = stdout.decode()
    assert chat.returncode == 0, stderr.decode()
    assert "Your result: 100/100" in output
    charts = list((tmp_path / "charts").glob("*.png"))
    assert len(charts) == 1
    assert str(charts[0]) in output
    assert charts[0].read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("command", [["flows", "check"], ["db", "upgrade"]])
async def test_other_commands_exit_cleanly(tmp_path: Path, command: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *command, cwd=tmp_path, env=chat_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, stderr.decode()
    assert stdout.strip()


async def test_flows_check_validates_the_tip_library(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "flows", "check", cwd=tmp_path, env=chat_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert "tips: " in stdout.decode() and "calendar moments" in stdout.decode()


async def test_tips_preview_lists_the_next_five_tips_with_their_time(tmp_path: Path) -> None:
    # The whole check in the terminal, then weekly tips in the morning (buttons 1 and 1).
    answers = ["1", "1", "Bakkerij Dewitte", "Kortrijk", "1", "1"] + ["2"] * 25 + ["1", "1"]
    chat = await start_chat(tmp_path, "--lang", "nl")
    stdout, stderr = await asyncio.wait_for(
        chat.communicate("\n".join(answers).encode() + b"\n"), timeout=120)
    assert chat.returncode == 0, stderr.decode()
    assert "Je eerste tip komt" in stdout.decode()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "tips", "preview", "--user", "console:piet", cwd=tmp_path,
        env=chat_env(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    lines = out.decode().strip().splitlines()
    assert len(lines) == 5
    days = [line.split()[1] for line in lines]
    assert days == sorted(days) and len(set(days)) == 5  # one a week, in order
    assert all(line.split()[2] == "09:00" for line in lines)  # the morning
    unknown = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "tips", "preview", "--user", "console:nobody",
        cwd=tmp_path, env=chat_env(tmp_path), stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(unknown.communicate(), timeout=60)
    assert "nobody known as console:nobody" in out.decode()


async def run_cli(tmp_path: Path, *args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=tmp_path, env=chat_env(tmp_path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_broadcast_send_asks_queues_and_status_shows_it(tmp_path: Path) -> None:
    chat = await start_chat(tmp_path, "--lang", "nl")  # one shopkeeper in Kortrijk
    answers = ["1", "1", "Bakkerij Dewitte", "Kortrijk", "1", "1"]
    await asyncio.wait_for(chat.communicate("\n".join(answers).encode() + b"\n"), timeout=120)
    code, _, err = await run_cli(tmp_path, "broadcast", "send", "--text", "<u>x</u>", "--yes")
    assert code == 2 and "unknown tag <u>" in err
    code, _, err = await run_cli(tmp_path, "broadcast", "send", "--text", "Hallo",
                                 "--segment", "municipality=Gent", "--yes")
    assert code == 2 and "not one of the 62" in err
    code, out, _ = await run_cli(tmp_path, "broadcast", "send", "--text", "<b>Koopavond</b>",
                                 "--segment", "municipality=Kortrijk", stdin=b"n\n")
    assert code == 1 and "1 recipients" in out and "not sent" in out
    code, out, _ = await run_cli(tmp_path, "broadcast", "send", "--text", "<b>Koopavond</b>",
                                 "--segment", "arrondissement=Kortrijk", "--urgent", "--yes",
                                 "--no-wait")
    assert code == 0 and "1 messages queued" in out
    code, out, _ = await run_cli(tmp_path, "broadcast", "status")
    assert code == 0 and "#1 sending" in out and "queued 1" in out
    code, out, _ = await run_cli(tmp_path, "broadcast", "cancel", "1")
    assert code == 0 and "cancelled" in out
    code, out, _ = await run_cli(tmp_path, "broadcast", "status", "1")
    assert "#1 cancelled" in out and "cancelled 1" in out and "later day" not in out
    with sqlite3.connect(tmp_path / "kiss.sqlite3") as db:  # WhatsApp's tier held some
        db.execute("UPDATE broadcast SET next_day_rows = 7 WHERE id = 1")
    code, out, _ = await run_cli(tmp_path, "broadcast", "status", "1")
    assert "(7 went on a later day: WhatsApp's daily tier)" in out
    fake = tmp_path / "poster.png"
    fake.write_bytes(b"GIF89a not really")
    code, _, err = await run_cli(tmp_path, "broadcast", "send", "--text", "Kijk",
                                 "--photo", str(fake), "--yes")
    assert code == 2 and "poster.png is not a JPEG or PNG picture" in err
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    code, out, _ = await run_cli(tmp_path, "broadcast", "send", "--text", "Kijk",
                                 "--photo", str(fake), "--urgent", "--yes", "--no-wait")
    assert code == 0 and "#2: 1 messages queued" in out
    code, out, _ = await run_cli(tmp_path, "broadcast", "delete", "2", stdin=b"n\n")
    assert code == 1 and "not deleted" in out
    code, out, _ = await run_cli(tmp_path, "broadcast", "delete", "2", "--yes")
    assert code == 0 and "deletion queued for 0 chats" in out  # nothing had gone out yet
    code, out, _ = await run_cli(tmp_path, "broadcast", "status", "2")
    assert "#2 cancelled" in out
    code, _, err = await run_cli(tmp_path, "broadcast", "delete", "2", "--yes")
    assert code == 1 and "deleted already" in err
