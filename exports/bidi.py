"""Just enough right-to-left support to print Hebrew and Arabic readably without extra packages.

reportlab lays glyphs out left to right and does no shaping, so Arabic letters would print in
their isolated forms and in reverse order. `shape_arabic` picks each letter's joined form from the
Unicode presentation-form blocks (which DejaVu Sans carries) and `visual_order` reorders one
already-wrapped line with a reduced Unicode bidi algorithm (strong types, numbers, neutrals,
mirrored brackets). It is not the full UAX #9, but ordinary story text comes out right.
"""

from __future__ import annotations

import unicodedata

# letter -> (first presentation form, joining type). Forms run isolated, final[, initial, medial].
_ARABIC: dict[int, tuple[int, str]] = {
    0x0621: (0xFE80, "U"),
    0x0622: (0xFE81, "R"),
    0x0623: (0xFE83, "R"),
    0x0624: (0xFE85, "R"),
    0x0625: (0xFE87, "R"),
    0x0626: (0xFE89, "D"),
    0x0627: (0xFE8D, "R"),
    0x0628: (0xFE8F, "D"),
    0x0629: (0xFE93, "R"),
    0x062A: (0xFE95, "D"),
    0x062B: (0xFE99, "D"),
    0x062C: (0xFE9D, "D"),
    0x062D: (0xFEA1, "D"),
    0x062E: (0xFEA5, "D"),
    0x062F: (0xFEA9, "R"),
    0x0630: (0xFEAB, "R"),
    0x0631: (0xFEAD, "R"),
    0x0632: (0xFEAF, "R"),
    0x0633: (0xFEB1, "D"),
    0x0634: (0xFEB5, "D"),
    0x0635: (0xFEB9, "D"),
    0x0636: (0xFEBD, "D"),
    0x0637: (0xFEC1, "D"),
    0x0638: (0xFEC5, "D"),
    0x0639: (0xFEC9, "D"),
    0x063A: (0xFECD, "D"),
    0x0641: (0xFED1, "D"),
    0x0642: (0xFED5, "D"),
    0x0643: (0xFED9, "D"),
    0x0644: (0xFEDD, "D"),
    0x0645: (0xFEE1, "D"),
    0x0646: (0xFEE5, "D"),
    0x0647: (0xFEE9, "D"),
    0x0648: (0xFEED, "R"),
    0x0649: (0xFEEF, "R"),
    0x064A: (0xFEF1, "D"),
    # Persian and Urdu letters from Presentation Forms-A
    0x067E: (0xFB56, "D"),
    0x0686: (0xFB7A, "D"),
    0x0698: (0xFB8A, "R"),
    0x06A9: (0xFB8E, "D"),
    0x06AF: (0xFB92, "D"),
    0x06CC: (0xFBFC, "D"),
}
_TATWEEL = 0x0640
_LAM = 0x0644
_LAM_ALEF = {0x0622: 0xFEF5, 0x0623: 0xFEF7, 0x0625: 0xFEF9, 0x0627: 0xFEFB}  # isolated; final is +1
_MIRROR = dict(zip("()[]{}<>«»‹›", ")(][}{><»«›‹"))


def _transparent(ch: str) -> bool:
    return unicodedata.category(ch) in ("Mn", "Me") or ch == "\u200d"  # ZWNJ (U+200C) is not: it breaks the join


def _joining(ch: str | None) -> str:
    if ch is None:
        return "U"
    if ord(ch) == _TATWEEL:
        return "C"
    entry = _ARABIC.get(ord(ch))
    return entry[1] if entry else "U"


def has_arabic(text: str) -> bool:
    return any(0x0600 <= ord(c) <= 0x06FF for c in text)


def shape_arabic(text: str) -> str:
    """Replace Arabic letters (logical order) by their contextual presentation forms."""
    if not has_arabic(text):
        return text
    chars = list(text)
    n = len(chars)

    def neighbour(i: int, step: int) -> str | None:
        j = i + step
        while 0 <= j < n and _transparent(chars[j]):
            j += step
        return chars[j] if 0 <= j < n else None

    out: list[str] = []
    i = 0
    while i < n:
        ch = chars[i]
        entry = _ARABIC.get(ord(ch))
        if entry is None:
            out.append(ch)
            i += 1
            continue
        prev = neighbour(i, -1)
        joins_prev = _joining(prev) in ("D", "C")
        nxt_index = i + 1
        while nxt_index < n and _transparent(chars[nxt_index]):
            nxt_index += 1
        nxt = chars[nxt_index] if nxt_index < n else None
        if ord(ch) == _LAM and nxt is not None and ord(nxt) in _LAM_ALEF:
            out.append(chr(_LAM_ALEF[ord(nxt)] + (1 if joins_prev else 0)))
            out.extend(chars[i + 1 : nxt_index])  # keep harakat between lam and alef
            i = nxt_index + 1
            continue
        base, kind = entry
        joins_next = kind == "D" and _joining(nxt) in ("D", "R", "C")
        if kind == "U":
            form = base
        elif joins_prev and joins_next:
            form = base + 3
        elif joins_prev:
            form = base + 1
        elif joins_next:
            form = base + 2
        else:
            form = base
        out.append(chr(form))
        i += 1
    return "".join(out)


def _strong(ch: str) -> str:
    """'R', 'L', 'EN' (number) or 'N' (neutral) for one character."""
    kind = unicodedata.bidirectional(ch)
    if kind in ("R", "AL", "RLE", "RLO", "RLI"):
        return "R"
    if kind in ("EN", "AN"):
        return "EN"
    if kind == "L":
        return "L"
    return "N"


def is_rtl_char(ch: str) -> bool:
    return unicodedata.bidirectional(ch) in ("R", "AL")


def has_rtl(text: str) -> bool:
    return any(is_rtl_char(c) for c in set(text))


def base_is_rtl(text: str) -> bool:
    """The paragraph direction: that of its first strong character (UAX #9 rules P2-P3)."""
    for ch in text:
        kind = _strong(ch)
        if kind == "R":
            return True
        if kind == "L":
            return False
    return False


def visual_order(line: str, rtl_base: bool) -> str:
    """Reorder one line from logical to display order (left to right)."""
    if not line or (not rtl_base and not has_rtl(line)):
        return line
    types = [_strong(c) for c in line]
    base = "R" if rtl_base else "L"
    # Numbers count as R for the neutrals around them when they sit in right-to-left text (W7/N1).
    effective: list[str] = []
    last_strong = base
    for t in types:
        if t in ("R", "L"):
            last_strong = t
            effective.append(t)
        elif t == "EN":
            effective.append("L" if last_strong == "L" else "R")
        else:
            effective.append("N")
    resolved = list(effective)
    i = 0
    while i < len(resolved):
        if resolved[i] != "N":
            i += 1
            continue
        j = i
        while j < len(resolved) and resolved[j] == "N":
            j += 1
        before = resolved[i - 1] if i > 0 else base
        after = resolved[j] if j < len(resolved) else base
        fill = before if before == after else base
        for k in range(i, j):
            resolved[k] = fill
        i = j
    base_level = 1 if rtl_base else 0
    levels = []
    for t, r in zip(types, resolved):
        if t == "EN":
            levels.append(2 if (base_level == 1 or r == "R") else 0)
        elif r == "R":
            levels.append(1)
        else:
            levels.append(2 if base_level == 1 else 0)
    chars = list(line)
    for k, ch in enumerate(chars):
        if levels[k] % 2 == 1 and ch in _MIRROR:
            chars[k] = _MIRROR[ch]
    top = max(levels)
    for level in range(top, 0, -1):
        k = 0
        while k < len(chars):
            if levels[k] >= level:
                m = k
                while m < len(chars) and levels[m] >= level:
                    m += 1
                chars[k:m] = chars[k:m][::-1]
                levels[k:m] = levels[k:m][::-1]
                k = m
            else:
                k += 1
    return "".join(chars)
