"""Find a West-Flemish municipality from what a shopkeeper types.

"kortrijk", "KORTRIJK " and "Kortryk" should all end at Kortrijk; "Meulebeke" (merged into
Tielt in 2025) at Tielt. Matching ignores case, accents, spaces and hyphens; a typo gets the
closest names as suggestions instead of a flat "unknown".
"""

from __future__ import annotations

import difflib
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "municipalities.toml"


def normalize(text: str) -> str:
    """Casefold, drop accents and everything that is not a letter or digit."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class Match:
    """``name`` when the input is unambiguous, else up to three ``suggestions``."""

    name: str | None
    suggestions: tuple[str, ...] = ()
    alias_of: str | None = None  # the typed old or foreign name, when one was used


class Gazetteer:
    """The municipalities and the other names people use for them."""

    def __init__(self, arrondissement_of: dict[str, str], aliases: dict[str, str]) -> None:
        self.municipalities = tuple(sorted(arrondissement_of))
        self.arrondissement_of = arrondissement_of
        self.aliases = aliases
        self._by_key = {normalize(n): n for n in self.municipalities}
        self._by_key.update({normalize(a): a for a in aliases})

    @classmethod
    def load(cls, path: Path = DATA_FILE) -> Gazetteer:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        arrondissement_of = {
            name: arr for arr, names in data["arrondissements"].items() for name in names
        }
        return cls(arrondissement_of, dict(data["aliases"]))

    def find(self, text: str) -> Match:
        key = normalize(text)
        if not key:
            return Match(None)
        exact = self._by_key.get(key)
        if exact is not None:
            canonical = self.aliases.get(exact, exact)
            return Match(canonical, alias_of=exact if exact != canonical else None)
        keys = list(self._by_key)
        # A unique prefix ("knokke", "langemark") is as good as the full name.
        prefixed = {self._canonical(k) for k in keys if len(key) >= 4 and k.startswith(key)}
        if len(prefixed) == 1:
            return Match(prefixed.pop())
        close = difflib.get_close_matches(key, keys, n=6, cutoff=0.7)
        suggestions = tuple(dict.fromkeys(self._canonical(k) for k in close))[:3]
        return Match(None, suggestions)

    def _canonical(self, key: str) -> str:
        name = self._by_key[key]
        return self.aliases.get(name, name)


@cache
def gazetteer() -> Gazetteer:
    """The shipped list, loaded once."""
    return Gazetteer.load()
