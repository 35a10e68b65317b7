"""Golden conversations: a scripted terminal chat must print exactly the recorded transcript.

Each ``tests/golden/<name>.in`` holds the user's lines; ``<name>.out`` the whole transcript.
After an intended change of wording, regenerate with ``pytest --update-golden`` and read the
diff like any other change.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.app import App
from bot.console import ConsoleChat

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.stem for p in GOLDEN.glob("*.in"))


async def transcript(app: App, lines: list[str], *, user: str, lang: str | None) -> str:
    stdin = io.StringIO("".join(f"{line}\n" for line in lines))
    stdout = io.StringIO()
    await ConsoleChat(app, user=user, stdin=stdin, stdout=stdout, lang=lang).run()
    return stdout.getvalue().replace(str(app.settings.charts_dir.resolve()), "<charts>")


@pytest.mark.parametrize("case", CASES)
async def test_golden_conversation(app: App, case: str, request: pytest.FixtureRequest) -> None:
    script = (GOLDEN / f"{case}.in").read_text(encoding="utf-8").splitlines()
    lang = script[0].removeprefix("#lang ") if script and script[0].startswith("#lang") else None
    answers = [line for line in script if not line.startswith("#")]
    got = await transcript(app, answers, user=f"golden-{case}", lang=lang)
    expected_file = GOLDEN / f"{case}.out"
    if request.config.getoption("--update-golden"):
        expected_file.write_text(got, encoding="utf-8")
    assert got == expected_file.read_text(encoding="utf-8")


def test_every_golden_case_has_a_transcript() -> None:
    assert CASES, "no golden cases found"
    for case in CASES:
        assert (GOLDEN / f"{case}.out").exists(), f"run pytest --update-golden for {case}"
