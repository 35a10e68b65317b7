"""What a coach writes for a broadcast: a small HTML subset, checked before anything is queued.

A coach types Telegram-style HTML with bold, italic and links only. :func:`parse` reads it
once, refuses what Telegram would refuse or what is ambiguous (with a :class:`RichTextError`
whose ``code`` the bot translates), and returns a :class:`RichText` that renders for each
channel: :meth:`~RichText.html` for Telegram (``parse_mode=HTML``), :meth:`~RichText.whatsapp`
and :meth:`~RichText.plain` for the terminal. ``parse(rt.html()) == rt`` always holds, so what
was checked is what goes out, and a broadcast cannot fail with "can't parse entities" halfway.

Reading rules, lenient only where the meaning is unambiguous:

* Tags ``<b>``/``<strong>``, ``<i>``/``<em>`` and ``<a href="http(s)://…">`` (names in any
  case; ``href`` quoted or not). ``b`` and ``i`` nest freely; a link may hold or sit in
  ``b``/``i``; a link in a link is refused. Every other tag is refused, and so are attributes
  on ``b``/``i`` and anything but one ``href`` on ``a``.
* ``<`` followed by an ASCII letter, ``/``, ``!`` or ``?`` starts a tag; any other ``<``
  ("korting < 10%", "<3") is text. ``>`` is always text.
* ``&name;`` (an HTML5 entity name, with its ``;``) and ``&#123;``/``&#x1F600;`` are decoded;
  an unknown ``&name;`` or a numeric reference without ``;`` is refused; any other ``&``
  ("Bakker & Zoon", "R&D", "&lt 5") is text.
* Control characters other than newline and tab (``\\r`` included) and lone surrogates are
  dropped; leading and trailing whitespace is trimmed; nothing else is normalised.

Positions in reasons count characters from 1 in the text as the coach typed it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from html.entities import html5
from itertools import groupby
from urllib.parse import urlsplit

MAX_TELEGRAM_TEXT = 4096  # after entity parsing, in UTF-16 code units
MAX_TELEGRAM_CAPTION = 1024

#: Every ``RichTextError.code``; the bot maps each to a translated message.
CODES = frozenset({"unknown_tag", "unclosed_tag", "bad_link", "too_long", "empty",
                   "nested_link", "bad_entity"})

_ALLOWED = "allowed: <b>, <i>, <a href>"
_LITERAL_LT = "write &lt; for a literal '<'"
_TAGS = {"b": "b", "strong": "b", "i": "i", "em": "i", "a": "a"}
_NUMERIC = re.compile(r"&#(?:([0-9]+)|[xX]([0-9a-fA-F]+))(;?)")
_PLAIN = re.compile(r"[^<&]+")
_NAMED = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
#: A web address typed as text; WhatsApp links it, so it is neither escaped nor formatted.
_BARE_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_WA_MARKERS = frozenset("*_~`")
_ZWSP = "\u200b"


class RichTextError(ValueError):
    """Why a coach's text is refused: ``reason`` (English, for logs and the CLI) and ``code``
    (a short stable key the bot maps to a translated message: "unknown_tag", "unclosed_tag",
    "bad_link", "too_long", "empty", "nested_link", "bad_entity")."""

    code: str
    reason: str

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Span:
    """A run of text with one formatting; ``href`` is set on (part of) a link's label."""

    text: str
    bold: bool = False
    italic: bool = False
    href: str | None = None


@dataclass(frozen=True)
class RichText:
    """A validated text: spans as :func:`parse` builds them (none empty, no two neighbours
    with the same formatting, no whitespace at either end), so equal texts compare equal."""

    spans: tuple[Span, ...]

    def html(self) -> str:
        """Telegram HTML (``parse_mode=HTML``): only ``<b>``, ``<i>`` and ``<a href="…">``,
        every ``&``, ``<`` and ``>`` of the text escaped, the href quoted and escaped."""
        marks = [_marks(span) for span in self.spans]
        out: list[str] = []
        stack: list[tuple[str, str]] = []
        for index, span in enumerate(self.spans):
            want = marks[index]
            keep = next((n for n, mark in enumerate(stack) if mark not in want), len(stack))
            while len(stack) > keep:
                out.append(f"</{stack.pop()[0]}>")
            # open the mark that lasts longest first, so it needs no reopening
            for mark in sorted(want - set(stack), key=lambda m: (-_lasts(marks, index, m), m)):
                out.append(f'<a href="{html.escape(mark[1])}">' if mark[0] == "a"
                           else f"<{mark[0]}>")
                stack.append(mark)
            out.append(html.escape(span.text, quote=False))
        out.extend(f"</{mark[0]}>" for mark in reversed(stack))
        return "".join(out)

    def plain(self) -> str:
        """The visible text; a link as "label (url)", or just the url when that is its label."""
        return "".join(label if href is None or label == href else f"{label} ({href})"
                       for label, href, _ in _links(self.spans))

    def whatsapp(self) -> str:
        """``*bold*``, ``_italic_``, a link as "label (url)" (the url alone if it is the label).

        A ``*``, ``_``, ``~`` or ``` ` ``` of the text itself gets a zero-width space (U+200B)
        on both sides, so it neither opens nor closes formatting whether WhatsApp counts that
        space as whitespace or not (an assumption, not checked against a WhatsApp client);
        web addresses are left intact. Formatting never covers an address, stops at line
        ends, and is dropped where a marker would sit against a letter or digit outside it
        (WhatsApp would show the bare markers) or in a word that holds a web address.
        """
        chars: list[str] = []
        flags: list[tuple[bool, bool, bool]] = []  # bold, italic, part of a web address

        def add(text: str, bold: bool = False, italic: bool = False, url: bool = False) -> None:
            chars.extend(text)
            flags.extend([(bold, italic, url)] * len(text))

        for label, href, spans in _links(self.spans):
            if href is not None and label == href:
                add(href, url=True)
                continue
            for span in spans:
                for piece, is_url in _split_urls(span.text):
                    if is_url:
                        add(piece, url=True)
                    else:
                        add(_wa_escape(piece), span.bold, span.italic)
            if href is not None:
                add(" (")
                add(f"{href})", url=True)
        text = "".join(chars)
        bold_runs = _runs(text, [f[0] for f in flags])
        italic_runs = [run for run in _runs(text, [f[1] for f in flags])
                       for run in _split(text, run, bold_runs)]
        # A marker against a letter or digit outside it would show as is, and one in a word
        # that holds a web address might be read as part of the address.
        blocks = [c.isalnum() for c in text] + [False]
        for word in re.finditer(r"\S+", text):
            if any(f[2] for f in flags[word.start():word.end()]):
                blocks[word.start():word.end()] = [True] * len(word[0])
        opens: dict[int, list[tuple[int, int, str]]] = {}
        closes: dict[int, list[tuple[int, int, str]]] = {}
        for runs, marker, rank in ((bold_runs, "*", 0), (italic_runs, "_", 1)):
            for start, end in runs:
                if not blocks[start - 1] and not blocks[end]:  # blocks[-1] is the False
                    opens.setdefault(start, []).append((-end, rank, marker))
                    closes.setdefault(end, []).append((-start, -rank, marker))
        out: list[str] = []
        for index in range(len(text) + 1):
            out.extend(marker for *_, marker in sorted(closes.get(index, [])))
            out.extend(marker for *_, marker in sorted(opens.get(index, [])))
            out.append(text[index:index + 1])
        return "".join(out)

    def length(self) -> int:
        """The visible length in UTF-16 code units, as Telegram counts it for the 4096 limit."""
        return sum(_utf16_len(span.text) for span in self.spans)


def parse(text: str, *, limit: int = MAX_TELEGRAM_TEXT) -> RichText:
    """Read what a coach typed (see the module docstring for the rules) into a RichText.

    Raises RichTextError: ``unknown_tag``, ``unclosed_tag`` (also a mis-nested or stray end
    tag), ``bad_link``, ``nested_link``, ``bad_entity``, ``empty`` (nothing visible after
    trimming) or ``too_long`` (more than ``limit`` UTF-16 code units visible).
    """
    spans = _merge(_Reader(text).read())
    for label, href, _ in _links(spans):
        # checked per link, not per <a>: html() may write one link as several <a> elements
        if href is not None and not label.strip():
            raise RichTextError("bad_link", f"the link to {_short(href)!r} has no visible text")
    spans = _trim(spans)
    if not spans:
        raise RichTextError("empty", "the text is empty (after removing tags and whitespace)")
    rich = RichText(tuple(spans))
    if (size := rich.length()) > limit:
        raise RichTextError(
            "too_long", f"the text is {size} characters long as Telegram counts them (UTF-16, "
            f"without tags); the limit is {limit}, so remove {size - limit}")
    return rich


@dataclass(frozen=True, slots=True)
class _Open:
    kind: str  # "b", "i" or "a"
    name: str  # as written, lower case: "strong" must be closed by </strong>
    position: int  # 1-based
    href: str | None
    start: int  # index into _Reader.parts where its content begins


class _Reader:
    """One pass over the coach's text into ``parts``: spans in order, not yet merged."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts: list[Span] = []
        self.stack: list[_Open] = []

    def read(self) -> list[Span]:
        text, i = self.text, 0
        while i < len(text):
            if text[i] == "<" and _starts_tag(text, i + 1):
                i = self._tag(i)
            elif text[i] == "&":
                decoded, i = self._entity(i, len(text))
                self._emit(decoded)
            else:
                plain = _PLAIN.match(text, i + 1)
                end = plain.end() if plain else i + 1
                self._emit(text[i:end])
                i = end
        if self.stack:
            top = self.stack[-1]
            raise RichTextError("unclosed_tag", f"<{top.name}> opened at position "
                                f"{top.position} is never closed; add </{top.name}>")
        return self.parts

    def _emit(self, text: str) -> None:
        text = "".join(c for c in text if _keep(c))
        if text:
            bold = any(o.kind == "b" for o in self.stack)
            italic = any(o.kind == "i" for o in self.stack)
            href = next((o.href for o in self.stack if o.kind == "a"), None)
            self.parts.append(Span(text, bold, italic, href))

    def _entity(self, i: int, end: int) -> tuple[str, int]:
        """Decode the reference at ``i`` (a '&'); a '&' that starts none is itself."""
        if numeric := _NUMERIC.match(self.text, i, end):
            shown = numeric.group(0)
            if not numeric.group(3):
                raise RichTextError("bad_entity", f"{shown} at position {i + 1} needs a closing "
                                    "';'; write &amp; for a literal '&'")
            digits = numeric.group(1)
            code = int(digits, 10) if digits else int(numeric.group(2), 16)
            if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise RichTextError("bad_entity", f"{shown} at position {i + 1} is not a "
                                    "character")
            return chr(code), numeric.end()
        if named := _NAMED.match(self.text, i, end):
            if (decoded := html5.get(named.group(1) + ";")) is None:
                raise RichTextError("bad_entity", f"unknown entity {named.group(0)} at position "
                                    f"{i + 1}; write &amp; for a literal '&'")
            return decoded, named.end()
        return "&", i + 1

    def _tag(self, begin: int) -> int:
        """Read the tag at ``begin`` (a '<'); return the index after its '>'."""
        text, at = self.text, begin + 1
        closing = text[begin + 1] == "/"
        i = begin + 2 if closing else begin + 1
        while i < len(text) and not text[i].isspace() and text[i] not in "<>":
            i += 1
        name = text[begin + 2 if closing else begin + 1:i].lower()
        shown = f"<{'/' if closing else ''}{name[:20]}>"
        if not name:
            raise RichTextError("unknown_tag", f"end tag without a name at position {at}; "
                                f"{_ALLOWED}; {_LITERAL_LT}")
        if name not in _TAGS:
            raise RichTextError("unknown_tag", f"unknown tag {shown} at position {at}; "
                                f"{_ALLOWED}; {_LITERAL_LT}")
        if closing:
            i = _skip_space(text, i)
            if i >= len(text) or text[i] != ">":
                raise RichTextError("unclosed_tag", f"end tag </{name} at position {at} has no "
                                    "'>'")
            self._close(name, at)
            return i + 1
        attributes, i = self._attributes(i, name, at)
        kind = _TAGS[name]
        href = None
        if kind == "a":
            href = self._href(attributes, at)
        elif attributes:
            raise RichTextError("unknown_tag", f"<{name}> at position {at} takes no attributes "
                                f"(found {attributes[0][0]!r}); {_ALLOWED}")
        self.stack.append(_Open(kind, name, at, href, len(self.parts)))
        return i

    def _attributes(self, i: int, name: str, at: int) -> tuple[list[tuple[str, str | None]], int]:
        text = self.text
        found: list[tuple[str, str | None]] = []
        while True:
            i = _skip_space(text, i)
            if i >= len(text) or text[i] == "<":
                raise RichTextError("unclosed_tag", f"tag <{name} at position {at} is not closed "
                                    f"with '>'; {_LITERAL_LT}")
            if text[i] == ">":
                return found, i + 1
            start = i
            i += 1  # a name is at least one character, even "=" or "/"
            while i < len(text) and not text[i].isspace() and text[i] not in "=<>":
                i += 1
            attribute, value = text[start:i].lower(), None
            i = _skip_space(text, i)
            if i < len(text) and text[i] == "=":
                i = _skip_space(text, i + 1)
                if i < len(text) and text[i] in "\"'":
                    end = text.find(text[i], i + 1)
                    if end < 0:
                        raise RichTextError("unclosed_tag", f"the quote at position {i + 1} in "
                                            f"<{name}> is never closed")
                    value, i = self._decode(i + 1, end), end + 1
                else:
                    start = i
                    while i < len(text) and not text[i].isspace() and text[i] not in "<>":
                        i += 1
                    value = self._decode(start, i)
            found.append((attribute, value))

    def _decode(self, i: int, end: int) -> str:
        out: list[str] = []
        while i < end:
            if self.text[i] == "&":
                decoded, i = self._entity(i, end)
                out.append(decoded)
            else:
                out.append(self.text[i])
                i += 1
        return "".join(out)

    def _href(self, attributes: list[tuple[str, str | None]], at: int) -> str:
        if outer := next((o for o in self.stack if o.kind == "a"), None):
            raise RichTextError("nested_link", f"the link at position {at} is inside the link "
                                f"opened at position {outer.position}; close that one first")
        for attribute, _ in attributes:
            if attribute != "href":
                raise RichTextError("bad_link", f"attribute {attribute!r} on the link at "
                                    f"position {at} is not allowed; only href")
        hrefs = [value for _, value in attributes]
        if len(hrefs) != 1 or not hrefs[0] or not hrefs[0].strip():
            raise RichTextError("bad_link", f"the link at position {at} needs exactly one "
                                'address: <a href="https://…">')
        return _check_url(hrefs[0].strip(), at)

    def _close(self, name: str, at: int) -> None:
        if not self.stack:
            raise RichTextError("unclosed_tag", f"</{name}> at position {at} closes nothing: "
                                "no tag is open")
        top = self.stack.pop()
        if top.name != name:
            hint = ("close tags in reverse order" if any(o.name == name for o in self.stack)
                    else f"no <{name}> is open")
            raise RichTextError("unclosed_tag", f"</{name}> at position {at} does not match "
                                f"<{top.name}> opened at position {top.position}; {hint}")
        if top.kind == "a" and len(self.parts) == top.start:
            raise RichTextError("bad_link", f"the link at position {top.position} has no "
                                f"text; write it as <a href=\"…\">text</a>")


def _check_url(url: str, at: int) -> str:
    shown = _short(url)
    if any(c.isspace() or not _keep(c) or c in '<>"' for c in url):
        raise RichTextError("bad_link", f"the address {shown!r} of the link at position {at} "
                            "contains a space or a character not allowed in an address")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    else:
        if parts.scheme.lower() not in ("http", "https"):
            raise RichTextError("bad_link", f"the link at position {at} goes to {shown!r}; only "
                                "http:// and https:// addresses are allowed")
    if not host or "." not in host or not url[url.index(":"):].startswith("://"):
        raise RichTextError("bad_link", f"the address {shown!r} of the link at position {at} "
                            "has no valid host name, as in https://www.example.be")
    return url


def _short(url: str) -> str:
    return url if len(url) <= 60 else url[:57] + "..."


def _starts_tag(text: str, i: int) -> bool:
    return i < len(text) and ((text[i].isascii() and text[i].isalpha()) or text[i] in "/!?")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _keep(char: str) -> bool:
    """Whether a character survives: no control characters but newline and tab, and no lone
    surrogates (they cannot be sent as UTF-8)."""
    return char in "\n\t" or unicodedata.category(char) not in ("Cc", "Cs")


def _utf16_len(text: str) -> int:
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def _merge(parts: list[Span]) -> list[Span]:
    """Neighbours with the same formatting as one span."""
    return [Span("".join(p.text for p in group), *flags)
            for flags, group in groupby(parts, key=lambda p: (p.bold, p.italic, p.href))]


def _trim(spans: list[Span]) -> list[Span]:
    while spans and not spans[0].text.strip():
        spans.pop(0)
    while spans and not spans[-1].text.strip():
        spans.pop()
    if spans:
        spans[0] = replace(spans[0], text=spans[0].text.lstrip())
        spans[-1] = replace(spans[-1], text=spans[-1].text.rstrip())
    return spans


def _marks(span: Span) -> frozenset[tuple[str, str]]:
    """The tags a span sits in, as (tag, href or "")."""
    marks = {("b", "")} if span.bold else set()
    if span.italic:
        marks.add(("i", ""))
    if span.href is not None:
        marks.add(("a", span.href))
    return frozenset(marks)


def _lasts(marks: Sequence[frozenset[tuple[str, str]]], index: int,
           mark: tuple[str, str]) -> int:
    end = index
    while end < len(marks) and mark in marks[end]:
        end += 1
    return end - index


def _links(spans: Sequence[Span]) -> Iterator[tuple[str, str | None, list[Span]]]:
    """Neighbouring spans grouped by link: (label, href or None, spans)."""
    group: list[Span] = []
    for span in [*spans, None]:
        if group and (span is None or span.href != group[0].href):
            yield "".join(s.text for s in group), group[0].href, group
            group = []
        if span is not None:
            group.append(span)


def _split_urls(text: str) -> Iterator[tuple[str, bool]]:
    at = 0
    for match in _BARE_URL.finditer(text):
        yield text[at:match.start()], False
        yield match.group(0), True
        at = match.end()
    yield text[at:], False


def _wa_escape(text: str) -> str:
    return "".join(f"{_ZWSP}{c}{_ZWSP}" if c in _WA_MARKERS else c for c in text)


def _runs(text: str, flags: list[bool]) -> list[tuple[int, int]]:
    """Stretches [start, end) of flagged characters, bridging spaces, ending at line ends."""
    runs: list[tuple[int, int]] = []
    start = last = -1
    for index, char in enumerate(text):
        if char.isspace() and char != "\n":
            continue
        if flags[index] and char != "\n":
            start = index if start < 0 else start
            last = index
        elif start >= 0:
            runs.append((start, last + 1))
            start = -1
    if start >= 0:
        runs.append((start, last + 1))
    return runs


def _split(text: str, run: tuple[int, int], outer: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Cut ``run`` where an ``outer`` run crosses it, so the markers nest."""
    start, end = run
    cuts = sorted({point for o_start, o_end in outer for point in (o_start, o_end)
                   if start < point < end and not (start <= o_start and o_end <= end)})
    pieces: list[tuple[int, int]] = []
    for low, high in zip([start, *cuts], [*cuts, end], strict=True):
        while low < high and text[low].isspace():
            low += 1
        while high > low and text[high - 1].isspace():
            high -= 1
        if low < high:
            pieces.append((low, high))
    return pieces

