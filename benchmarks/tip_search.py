"""How well the tip search answers shopkeepers' questions without a language model.

Asks :class:`storage.tip_search.TipSearch` every question of the evaluation set
(``tests/data/tip_questions.toml``: questions in nl/en/fr and the tips a coach would accept
among the first three, or none) and prints per language and overall:

  recall@3   share of answerable questions with an accepted tip among the three found
  MRR        mean of 1/rank of the first accepted tip (0 when none of the three is)
  precision  share of the tips found for answerable questions that a coach accepts
  false      share of questions without a fitting tip that still got tips
  µs/query   median time of one search (5 runs of each question), and the slowest; the
             time of a 2,000-character question of unknown words (the worst case)

The rows nl, en, fr and all are the questions the search was tuned on; "held" the ones
written after it was (``held_out = true``), all languages together.

    .venv/bin/python benchmarks/tip_search.py            # figures
    .venv/bin/python benchmarks/tip_search.py --misses   # and every question it got wrong
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", action="store_true",
                        help="list the questions without an accepted tip, and what was found")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tests"))
    from test_tip_search import figures, load_questions, run

    from flows.tips import load_tips
    from storage.tip_search import TipSearch

    started = time.perf_counter()
    search = TipSearch(load_tips())
    built = time.perf_counter() - started
    questions = load_questions()
    outcomes = run(search, questions)
    timings = []
    for question in questions:
        for _ in range(5):
            started = time.perf_counter()
            search.find(question.text, question.lang, shop_type=question.shop_type)
            timings.append(time.perf_counter() - started)

    # The longest question a shopkeeper may send (handlers/questions.py: 2,000 characters),
    # made of words no tip uses: the most typo look-ups a question can cost.
    rng = random.Random(12)
    gibberish = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 12)))
                         for _ in range(250))[:2000]
    started = time.perf_counter()
    search.find(gibberish, "nl")
    longest = time.perf_counter() - started
    print(f"{len(questions)} questions, index built in {built * 1000:.0f} ms, "
          f"median {statistics.median(timings) * 1e6:.0f} µs/query, "
          f"slowest {max(timings) * 1e6:.0f} µs; "
          f"2,000 characters of unknown words: {longest * 1000:.0f} ms")
    print(f"{'lang':<6}{'answerable':>11}{'recall@3':>10}{'MRR':>7}{'precision':>11}"
          f"{'none':>6}{'false':>7}")
    tuned = [o for o in outcomes if not o.question.held_out]
    rows = [(lang, [o for o in tuned if o.question.lang == lang]) for lang in ("nl", "en", "fr")]
    rows += [("all", tuned), ("held", [o for o in outcomes if o.question.held_out])]
    for lang, part in rows:
        f = figures(part)
        print(f"{lang:<6}{f.answerable:>11}{f.recall:>10.2f}{f.mrr:>7.2f}"
              f"{f.precision:>11.2f}{f.unanswerable:>6}{f.false_found:>7.2f}")
    if args.misses:
        print()
        for o in outcomes:
            q = o.question
            if (q.tips and o.rank is None) or (not q.tips and o.found):
                print(f"[{q.lang}] {q.text!r}\n    found:    {', '.join(o.found) or '-'}"
                      f"\n    accepted: {', '.join(sorted(q.tips)) or '-'}")


if __name__ == "__main__":
    main()
