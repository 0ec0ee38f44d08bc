"""Make a story's text and its pages agree, dropping nothing: used by the 0005 migration (libraries from
before the rule) and by bundle import (bundles from before it, or made by hand).

The rule (storage/library/pages.py): the story text is the live pages' words with their separators.
"""

from __future__ import annotations

import re

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def agree(
    story: str, title: str, pages: list[tuple[int, str, int, int]]
) -> tuple[str, bool, list[tuple[int | None, str, int, int, int | None]]]:
    """The story text, whether its first line is the title, and the pages (id or None for a new page, words,
    start, end, the page a new one was made beside) so that the story is the pages' words with separators.

    Consistent data comes back unchanged. Otherwise nothing is dropped: each page keeps its own words; where
    the story text at a page's place says something else, that text becomes a page right after it; story
    text that lies between or after the pages, outside any, becomes pages too (one per paragraph).
    """
    ordered = list(pages)  # in page order
    first_start = ordered[0][2] if ordered and _valid(story, ordered[0][2], ordered[0][3]) else 0
    head = story[:first_start]
    head_line = head.strip()
    title_from_text = bool(head_line) and "\n" not in head_line and head_line == (title or "").strip()
    if _consistent(story, ordered, allow_head=title_from_text):
        return story, title_from_text, [(pid, text, start, end, None) for pid, text, start, end in ordered]

    pieces: list[tuple[int | None, str, str, int | None]] = []  # (id, words, separator before, made beside)
    if head_line and not title_from_text:
        for paragraph in _paragraphs(head):
            pieces.append((None, paragraph, "\n\n", ordered[0][0]))
    previous_end = None
    for index, (page_id, text, start, end) in enumerate(ordered):
        words = text.strip() or text
        separator = "\n\n"
        if previous_end is not None and _valid(story, start, end) and previous_end <= start:
            gap = story[previous_end:start]
            if gap.strip():
                for paragraph in _paragraphs(gap):
                    pieces.append((None, paragraph, "\n\n", page_id))
            elif gap:
                separator = gap
        pieces.append((page_id, words, separator, None))
        if _valid(story, start, end):
            there = story[start:end].strip()
            if there and there != words:
                pieces.append((None, there, " " if "\n" not in story[start:end] else "\n\n", page_id))
            previous_end = end
        nxt = ordered[index + 1] if index + 1 < len(ordered) else None
        if nxt is None and previous_end is not None:
            for paragraph in _paragraphs(story[previous_end:]):
                pieces.append((None, paragraph, "\n\n", page_id))
    out_story = (head_line + "\n\n") if title_from_text else ""
    out_pages: list[tuple[int | None, str, int, int, int | None]] = []
    for n, (row_id, words, separator, beside) in enumerate(pieces):
        if n:
            out_story += separator
        start = len(out_story)
        out_story += words
        out_pages.append((row_id, words, start, len(out_story), beside))
    return out_story, title_from_text, out_pages


def _consistent(story: str, pages: list[tuple[int, str, int, int]], *, allow_head: bool) -> bool:
    cursor = 0
    for n, (_, text, start, end) in enumerate(pages):
        if not _valid(story, start, end) or start < cursor or story[start:end] != text or not text.strip():
            return False
        gap = story[cursor:start]
        if gap.strip() and not (n == 0 and allow_head):
            return False
        cursor = end
    return not story[cursor:].strip()


def _valid(story: str, start: int, end: int) -> bool:
    return isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(story)


def _paragraphs(text: str) -> list[str]:
    return [piece.strip() for piece in _PARAGRAPH_BREAK.split(text) if piece.strip()]
