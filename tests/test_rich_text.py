"""Coach-written rich text: refused early with a precise reason, or sent in a form Telegram's
HTML parser (the Bot API emulator's, after tdlib) accepts, with the text the coach meant."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from bot_api.entities import EntityParseError, utf16_len
from bot_api.formatting import parse_formatted_text

from flows.rich_text import (
    CODES,
    MAX_TELEGRAM_CAPTION,
    MAX_TELEGRAM_TEXT,
    RichText,
    RichTextError,
    Span,
    parse,
)

ZW = "\u200b"
Units = list[frozenset[tuple[str, str]]]


def visible(rich: RichText) -> str:
    return "".join(span.text for span in rich.spans)


def units_of_spans(rich: RichText) -> Units:
    """Per UTF-16 code unit, the formatting on it, as (entity type, url)."""
    units: Units = []
    for span in rich.spans:
        marks = {("bold", "")} if span.bold else set()
        if span.italic:
            marks.add(("italic", ""))
        if span.href is not None:
            marks.add(("text_link", span.href))
        units += [frozenset(marks)] * utf16_len(span.text)
    return units


def units_of_entities(text: str, entities: list[dict[str, Any]]) -> Units:
    units: list[set[tuple[str, str]]] = [set() for _ in range(utf16_len(text))]
    for entity in entities:
        for unit in range(entity["offset"], entity["offset"] + entity["length"]):
            units[unit].add((entity["type"], entity.get("url", "")))
    return [frozenset(unit) for unit in units]


def check(text: str, *, limit: int = MAX_TELEGRAM_TEXT) -> RichText:
    """parse, then hold it to its promises: a stable round trip, and HTML that the emulator
    accepts (strictly: every '&' and '>' escaped) with the same text, formatting and length."""
    rich = parse(text, limit=limit)
    assert parse(rich.html(), limit=limit) == rich
    assert all(span.text for span in rich.spans)
    shown, entities = parse_formatted_text(rich.html(), "HTML", strict_html=True)
    assert shown == visible(rich)
    assert utf16_len(shown) == rich.length()
    assert units_of_entities(shown, entities) == units_of_spans(rich)
    assert not {e["type"] for e in entities} - {"bold", "italic", "text_link"}
    assert shown == shown.strip()
    return rich


# What coaches type, and the corners of the grammar: each must be accepted and survive.
TRICKY = [
    "Hallo allemaal",
    "<b>Opendeurdag</b> zaterdag!",
    "korting < 10% bij Bakker & Zoon",
    "a > b en c >= d",
    "<3 <- dank je -> klaar",
    "R&D, AT&T, &lt 5 en & alleen",
    "&amp; &lt;b&gt; &quot;citaat&quot; &#39;enkel&#39; &#x27;hex&#x27;",
    "&eacute;t&eacute; &euro;5 &nbsp;vast",
    "Crème brûlée, façade, één, Noël, coöperatie, naïef",
    "e\u0301 blijft ontbonden",  # decomposed é: not normalised
    "😀 emoji 👩‍👩‍👧 familie 🇧🇪 vlag",
    "&#128512; &#x1F600; als referentie",
    "<b>😀 vet emoji</b> en <i>🇧🇪</i>",
    "regel 1\nregel 2\n\nalinea\tmet tab",
    "a\r\nb\x00c\x07d\x1be\x7f",
    "<b>vet <i>vet en schuin</i> vet</b> gewoon",
    "<i>schuin <b>beide</b></i>",
    "<b><b>dubbel</b> vet</b>",
    "<B>HOOFD</B> <Strong>sterk</Strong> <EM>nadruk</EM>",
    "<strong>a</strong><b>b</b>",
    '<a href="https://kiss.be">KI:SS</a>',
    "<a href='https://kiss.be/pad?a=1&amp;b=2'>enkel</a>",
    "<a href=https://kiss.be/x_y>zonder aanhalingstekens</a>",
    '<a   href = "https://kiss.be" >ruimte</a   >',
    '<a href="HTTP://KISS.BE/OUD">hoofdletters</a>',
    '<a href="https://café.be/été">accenten</a>',
    '<a href="https://x.be/?q=a&amp;r=it\'s&#35;x">tekens</a>',
    '<a href="https://x.be/a&b&c=1">ruwe ampersand</a>',
    '<a href="https://kiss.be">https://kiss.be</a>',
    '<b>Zie <a href="https://kiss.be">onze site</a> nu</b>',
    '<a href="https://kiss.be"><b>vet</b> en <i>schuin</i></a>',
    '<i>p<b>q<a href="https://u.be">r</a></b></i><a href="https://u.be"><i> </i>s</a>',
    '<a href="https://a.be">een</a><a href="https://b.be">twee</a>',
    '<a href="https://a.be">een</a><a href="https://a.be"> zelfde</a>',
    "<b>  spaties binnen  </b>",
    "   \n  rondom weg \t\n ",
    "<b></b>leeg <i></i>weg",
    "5 * 3 = 15, bestand_naam, ~ongeveer~, `code`",
    "*geen vet* _geen schuin_",
    "www.kiss.be en https://kiss.be/a_b_c",
    "' \" aanhalingstekens",
    "\u2028lijn\u2029 en \u00a0nbsp",
    "x" * MAX_TELEGRAM_TEXT,
    "😀" * (MAX_TELEGRAM_TEXT // 2),
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_inputs_round_trip_and_telegram_accepts_the_html(text: str) -> None:
    check(text)


REFUSED = [
    ("korting <u>groot</u>", "unknown_tag", "unknown tag <u> at position 9; allowed: <b>, <i>, "
     "<a href>"),
    ("<script>alert(1)</script>", "unknown_tag", "unknown tag <script> at position 1"),
    ("tekst <div>", "unknown_tag", "<div>"),
    ("<span class='tg-spoiler'>x</span>", "unknown_tag", "<span>"),
    ("<br/>", "unknown_tag", "<br/>"),
    ("a</u>", "unknown_tag", "unknown tag </u> at position 2"),
    ("<!-- nota -->", "unknown_tag", "position 1"),
    ("als x <y dan", "unknown_tag", "<y>"),
    ("a </ b>", "unknown_tag", "end tag without a name at position 3"),
    ("<b class='x'>y</b>", "unknown_tag", "<b> at position 1 takes no attributes"),
    ("hallo <b>wereld", "unclosed_tag", "<b> opened at position 7 is never closed"),
    ("<b><i>x</b></i>", "unclosed_tag", "</b> at position 8 does not match <i> opened at "
     "position 4; close tags in reverse order"),
    ("<strong>x</b>", "unclosed_tag", "</b> at position 10 does not match <strong> opened at "
     "position 1; no <b> is open"),
    ("x</b>", "unclosed_tag", "</b> at position 2 closes nothing"),
    ("het getal <b is klein", "unclosed_tag", "tag <b at position 11 is not closed"),
    ("<b x<i>y</i>", "unclosed_tag", "not closed with '>'"),
    ("<a href='https://x.be>x</a>", "unclosed_tag", "the quote at position 9"),
    ("<b>x</b", "unclosed_tag", "end tag </b at position 5 has no '>'"),
    ("<a href='javascript:alert(1)'>x</a>", "bad_link", "only http:// and https://"),
    ("<a href='tg://resolve?domain=x'>x</a>", "bad_link", "only http:// and https://"),
    ("<a href='mailto:a@b.be'>x</a>", "bad_link", "only http:// and https://"),
    ("<a href='ftp://x.be'>x</a>", "bad_link", "only http:// and https://"),
    ("<a href='/relatief'>x</a>", "bad_link", "only http:// and https://"),
    ("<a href='https:kiss.be'>x</a>", "bad_link", "has no valid host name"),
    ("<a href='https://'>x</a>", "bad_link", "has no valid host name"),
    ("<a href='http://localhost:8080/'>x</a>", "bad_link", "has no valid host name"),
    ("<a href='https://[::1'>x</a>", "bad_link", "has no valid host name"),
    ("<a href='https://ki ss.be'>x</a>", "bad_link", "contains a space"),
    ("<a href='https://x.be/a&#10;b'>x</a>", "bad_link", "contains a space"),
    ("<a href='https://x.be/?q=&lt;b&gt;'>x</a>", "bad_link", "not allowed in an address"),
    ("<a href='https://x.be/&quot;'>x</a>", "bad_link", "not allowed in an address"),
    ("<a>x</a>", "bad_link", "needs exactly one address"),
    ("<a href>x</a>", "bad_link", "needs exactly one address"),
    ("<a href=''>x</a>", "bad_link", "needs exactly one address"),
    ("<a href='https://a.be' href='https://b.be'>x</a>", "bad_link", "exactly one"),
    ("<a href='https://x.be' target='_blank'>x</a>", "bad_link", "attribute 'target'"),
    ("kijk <a href='https://x.be'></a>", "bad_link", "the link at position 6 has no text"),
    ("kijk <a href='https://x.be'> </a> hier", "bad_link", "'https://x.be' has no visible"),
    ("<a href='https://a.be'>x <a href='https://b.be'>y</a></a>", "nested_link",
     "the link at position 26 is inside the link opened at position 1"),
    ("<a href='https://a.be'><b><a href='https://b.be'>y</a></b></a>", "nested_link", ""),
    ("&foo; en zo", "bad_entity", "unknown entity &foo; at position 1"),
    ("AT&T;", "bad_entity", "&T;"),
    ("nummer &#12 zonder", "bad_entity", "&#12 at position 8 needs a closing ';'"),
    ("&#0;", "bad_entity", "is not a character"),
    ("&#xD800;", "bad_entity", "is not a character"),
    ("&#x110000;", "bad_entity", "is not a character"),
    ("&#99999999999999999999;", "bad_entity", "is not a character"),
    ("<a href='https://x.be/&bogus;'>x</a>", "bad_entity", "&bogus;"),
    ("", "empty", "empty"),
    ("  \n\t ", "empty", "empty"),
    ("<b> </b><i>\n</i>", "empty", "empty"),
    ("\x00\x07\r", "empty", "empty"),
    ("x" * (MAX_TELEGRAM_TEXT + 1), "too_long", "4097 characters"),
    ("😀" * 2049, "too_long", "4098 characters"),
]


@pytest.mark.parametrize(("text", "code", "reason"), REFUSED)
def test_refused_with_a_stable_code_and_a_precise_reason(text: str, code: str,
                                                         reason: str) -> None:
    with pytest.raises(RichTextError) as caught:
        parse(text)
    assert caught.value.code == code, caught.value.reason
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)
    assert code in CODES


def test_the_example_from_the_brief_names_tag_position_and_what_is_allowed() -> None:
    with pytest.raises(RichTextError) as caught:
        parse("Beste klant <u>nu</u>")
    assert caught.value.code == "unknown_tag"
    assert caught.value.reason.startswith(
        "unknown tag <u> at position 13; allowed: <b>, <i>, <a href>")


def test_every_code_is_reachable() -> None:
    assert {code for _, code, _ in REFUSED} == CODES


def test_telegram_would_refuse_the_raw_text_but_accepts_what_we_send() -> None:
    raw = "korting < 10% bij Bakker & Zoon"
    with pytest.raises(EntityParseError):
        parse_formatted_text(raw, "HTML")  # tdlib reads "< " as a start tag without a name
    assert parse_formatted_text(parse(raw).html(), "HTML", strict_html=True) == (raw, [])


def test_html_escapes_text_and_quotes_the_href() -> None:
    rich = check("<a href=\"https://x.be/?a=1&amp;b=it's\">1 &lt; 2 &amp; 3 > 2</a>")
    assert rich.spans == (Span("1 < 2 & 3 > 2", href="https://x.be/?a=1&b=it's"),)
    assert rich.html() == ('<a href="https://x.be/?a=1&amp;b=it&#x27;s">'
                           "1 &lt; 2 &amp; 3 &gt; 2</a>")


def test_html_nests_tags_without_reopening_the_longer_one() -> None:
    assert check("<i>a <b>b</b> c</i>").html() == "<i>a <b>b</b> c</i>"
    assert check("<b>a <i>b</i></b><i> c</i>").html() == "<b>a <i>b</i></b><i> c</i>"
    assert check("<i>a <b>b</b></i><b> c</b>").html() == "<i>a <b>b</b></i><b> c</b>"
    assert check("<b>a</b><i><b>b</b> c</i>").html() == "<b>a<i>b</i></b><i> c</i>"
    assert check('<b>Zie <a href="https://k.be">site</a></b>').html() == (
        '<b>Zie <a href="https://k.be">site</a></b>')


def test_different_spellings_of_the_same_text_are_equal() -> None:
    assert parse("<strong>Vet</strong>") == parse("<b>Vet</b>") == parse("<B>V</B><b>et</b>")
    assert parse("<em>x</em>") == parse("<i>x</i>")
    assert parse("<b>x</b> <b>y</b>") != parse("<b>x y</b>")  # the space is not bold
    assert parse("  x  ") == parse("x") == RichText((Span("x"),))
    assert parse("&eacute;&#233;&#xe9;") == parse("ééé")


def test_spans_are_merged_trimmed_and_keep_inner_whitespace() -> None:
    rich = check("  <b> Let op </b>: nu\n <i>en</i>  ")
    assert rich.spans == (Span("Let op ", bold=True), Span(": nu\n "), Span("en", italic=True))


def test_control_characters_are_dropped_newlines_and_tabs_kept() -> None:
    rich = check("a\r\nb\tc\x00d\x0be\x1bf\x7fg\x85h&#13;i&#7;j")
    assert visible(rich) == "a\nb\tcdefghij"


def test_lone_surrogates_are_dropped() -> None:
    assert visible(check("a\ud800b")) == "ab"


def test_accents_emoji_and_newlines_are_kept_as_typed() -> None:
    text = "Één façade, crème brûlée, e\u0301\n👩‍👩‍👧 en 🇧🇪\n\nTot zo!"
    rich = check(text)
    assert visible(rich) == rich.plain() == text
    assert rich.length() == utf16_len(text) == len(text) + 5  # five astral code points


def test_length_counts_utf16_code_units_and_the_limit_is_inclusive() -> None:
    assert check("😀").length() == 2
    assert check("<b>ab</b> <a href='https://x.be'>c</a>").length() == 4
    assert check("😀" * 512, limit=MAX_TELEGRAM_CAPTION).length() == MAX_TELEGRAM_CAPTION
    with pytest.raises(RichTextError) as caught:
        parse("x" * 1000 + "😀" * 13, limit=MAX_TELEGRAM_CAPTION)
    assert caught.value.code == "too_long"
    assert "1026 characters" in caught.value.reason
    assert "the limit is 1024, so remove 2" in caught.value.reason


def test_the_limit_is_on_visible_text_not_markup() -> None:
    text = '<a href="https://kiss.be/een/lange/weg">' + "x" * MAX_TELEGRAM_TEXT + "</a>"
    assert check(text).length() == MAX_TELEGRAM_TEXT


def test_positions_count_characters_from_one_including_emoji() -> None:
    with pytest.raises(RichTextError) as caught:
        parse("😀😀 <u>")
    assert "at position 4" in caught.value.reason


def test_plain_writes_links_as_label_and_url() -> None:
    assert check('Zie <a href="https://kiss.be">onze site</a>!').plain() == (
        "Zie onze site (https://kiss.be)!")
    assert check('<a href="https://kiss.be">https://kiss.be</a>').plain() == "https://kiss.be"
    assert check('<a href="https://a.be"><b>a</b>b</a> <i>c</i>').plain() == (
        "ab (https://a.be) c")
    assert check("<b>1 &lt; 2</b> &amp; *x*").plain() == "1 < 2 & *x*"


@pytest.mark.parametrize(("text", "expected"), [
    ("<b>vet</b> en <i>schuin</i>", "*vet* en _schuin_"),
    ("<b>vet <i>beide</i></b>", "*vet _beide_*"),
    ("<i>a <b>b</b> c</i>", "_a *b* c_"),
    ("<b>a <i>b</i></b><i> c</i>", "*a _b_* _c_"),  # italic cut where bold ends: markers nest
    ("<b><i>x</i></b>", "*_x_*"),
    ("<b>Let op </b>: nu", "*Let op* : nu"),  # no marker next to a space
    ("<b>Let op</b>: nu", "*Let op*: nu"),
    ("<b>Nieuw!</b>🎉", "*Nieuw!*🎉"),
    ("<b>een</b> <b>twee</b>", "*een twee*"),
    ("<b>regel 1\nregel 2</b>", "*regel 1*\n*regel 2*"),
    ("<b>un</b>believable", "unbelievable"),  # a marker inside a word would show as is
    ('<a href="https://kiss.be">site</a>', "site (https://kiss.be)"),
    ('<a href="https://kiss.be">https://kiss.be</a>', "https://kiss.be"),
    ('<a href="https://k.be">x</a> <b>y</b>', "x (https://k.be) *y*"),
    ('<a href="https://k.be">x</a><b>y</b>', "x (https://k.be)y"),  # "*" might join the link
    ('<b>Zie:</b>https://k.be <b>nu</b>', "Zie:https://k.be *nu*"),
    ("<b>https://k.be/</b><b>nu</b>", "https://k.be/nu"),
    ('<b>Zie <a href="https://k.be/a_b">site</a> nu</b>', "*Zie site* (https://k.be/a_b) *nu*"),
    ("<b>naar https://k.be/a_b nu</b>", "*naar* https://k.be/a_b *nu*"),
    ("5 * 3", f"5 {ZW}*{ZW} 3"),
    ("*geen vet* en file_name", f"{ZW}*{ZW}geen vet{ZW}*{ZW} en file{ZW}_{ZW}name"),
    ("~x~ `y`", f"{ZW}~{ZW}x{ZW}~{ZW} {ZW}`{ZW}y{ZW}`{ZW}"),
    ("zie www.k.be/a_b of https://k.be/*", "zie www.k.be/a_b of https://k.be/*"),
    ("1 &lt; 2 &amp; 3", "1 < 2 & 3"),
])
def test_whatsapp_markers(text: str, expected: str) -> None:
    assert check(text).whatsapp() == expected


def whatsapp_markers_are_sound(out: str) -> str:
    """Check that our markers in WhatsApp text pair up, open before and close after a
    non-space, do not cross and stay out of words with a web address; return the text
    without markers and escapes."""
    kept: list[str] = []
    open_markers: list[str] = []
    for word in re.split(r"(\s+)", out):
        word = re.sub(f"{ZW}([*_~`]){ZW}", lambda m: "\0" + str("*_~`".index(m[1])), word)
        if re.search(r"https?://|www\.", word, flags=re.I):
            assert not open_markers, out
            kept.append(word)
            continue
        for at, char in enumerate(word):
            if char not in "*_":
                kept.append(char)
            elif open_markers and open_markers[-1] == char:
                assert at > 0, out
                open_markers.pop()
            else:
                assert char not in open_markers, out  # crossing
                assert at + 1 < len(word), out
                open_markers.append(char)
    assert not open_markers, out
    return re.sub("\0([0-3])", lambda m: "*_~`"[int(m[1])], "".join(kept))


def test_whatsapp_markers_are_sound_and_hide_nothing_but_formatting() -> None:
    rng = random.Random(7)
    for _ in range(1000):
        try:
            rich = parse(random_markup(rng))
        except RichTextError:
            continue
        assert whatsapp_markers_are_sound(rich.whatsapp()) == rich.plain()


# The random part: a fixed seed, so a failure is reproducible by its index.
PIECES = ["Hallo", " ", "wereld", "café", "crème brûlée", "😀", "👩‍👩‍👧", "< 10%", "Bakker & Zoon",
          "a>b", "&amp;", "&lt;b&gt;", "&#128512;", "&eacute;", "*ster*", "_onder_", "~", "`",
          "\n", "\t", "  ", "R&D", "'", '"', "5 * 3", "https://x.be/a_b", "\r", "\x00", "<3",
          "&lt 5", "&quot;"]
URLS = ["https://kiss.be", "http://voorbeeld.be/pad?a=1&amp;b=2", "HTTPS://WWW.X.BE/",
        "https://café.be/été", "https://x.be/it&#39;s", "https://x.be/a&b", "https://x.be/#frag"]
SOUP = ["<", ">", "/", "b", "i", "a", "em", "strong", "u", " ", " href=", '"', "'", "<a",
        "</a>", "<b>", "</b>", "javascript:",
        "https://x.be", "&", "amp;", "#", "1", "x", ";", "é", "😀", "\n", "=", "!", "lt;"]


def random_markup(rng: random.Random, depth: int = 0, in_link: bool = False) -> str:
    """Well-formed markup: nested tags, odd spellings and quoting, tricky text."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        if depth < 3 and rng.random() < 0.4:
            tag = rng.choice(["b", "strong", "i", "em", "B", "I", *([] if in_link else ["a"])])
            inner = random_markup(rng, depth + 1, in_link or tag == "a")
            if tag == "a":
                quote = rng.choice(['"', "'", ""])
                url = rng.choice(URLS)
                parts.append(f"<a href={quote}{url}{quote}>{inner}</a>")
            else:
                parts.append(f"<{tag}>{inner}</{tag}>")
        else:
            parts.append(rng.choice(PIECES))
    return "".join(parts)


def test_random_well_formed_markup_round_trips() -> None:
    rng = random.Random(20240601)
    accepted = 0
    for index in range(1500):
        text = random_markup(rng)
        try:
            rich = check(text)
        except RichTextError as error:  # a whitespace-only link, or nothing visible
            assert error.code in {"bad_link", "empty"}, (index, text, error.reason)
            continue
        accepted += 1
        assert parse(text) == rich
    assert accepted > 1200


def test_random_soup_is_refused_with_a_known_code_or_round_trips() -> None:
    rng = random.Random(4096)
    outcomes: set[str] = set()
    for _ in range(4000):
        text = "".join(rng.choice(SOUP) for _ in range(rng.randint(1, 16)))
        try:
            check(text)
            outcomes.add("ok")
        except RichTextError as error:
            assert error.code in CODES
            assert error.reason
            outcomes.add(error.code)
    assert {"ok", "unknown_tag", "unclosed_tag", "bad_link", "empty"} <= outcomes
