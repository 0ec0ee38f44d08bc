"""Pages as spans of one story text: plans after a re-split or an edit, and page edits (engine.paging)."""

import itertools
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core.words import has_words
from engine.errors import InputError
from engine.paging import (
    PagePlan,
    PageSpan,
    RemovedPage,
    Span,
    delete_page,
    edit_page,
    insert_page,
    matching_blocks,
    merge_pages,
    move_page,
    plan_edit,
    plan_split,
    split_page,
    split_points,
    word_tokens,
)
from engine.segment import has_paragraph_break, segment_story

# ------------------------------------------------------------------------------ helpers


def check_plan(plan: PagePlan, old_keys=()) -> None:
    """The plan tiles its text, every old key is placed exactly once, and the counts add up."""
    text = plan.text
    if plan.title is None:
        assert plan.body_start == 0
    else:
        assert text[: plan.body_start].strip() == plan.title
        assert plan.title == plan.title.strip() and plan.title
    previous = plan.body_start
    for page in plan.pages:
        assert previous <= page.start < page.end <= len(text)
        assert text[previous : page.start].strip() == "", "only whitespace may lie between pages"
        words = text[page.start : page.end]
        assert words == words.strip() and words
        previous = page.end
    assert text[previous:].strip() == ""
    if has_words(text, plan.body_start):
        assert all(has_words(text, p.start, p.end) for p in plan.pages), "a page of emoji or punctuation only"
    placed = [p.keep for p in plan.pages if p.keep is not None]
    placed += [key for p in plan.pages for key in p.absorb]
    placed += list(plan.loose)
    assert sorted(placed) == sorted(old_keys), "each old key exactly once across keep, absorb and loose"
    summary = plan.summary
    assert summary.pages == len(plan.pages) == summary.kept + summary.new
    assert summary.kept == sum(p.keep is not None for p in plan.pages)
    assert summary.merged == sum(len(p.absorb) for p in plan.pages)
    assert summary.loose == len(plan.loose)
    assert summary.words_changed == sum(p.changed for p in plan.pages)
    for page in plan.pages:
        assert page.keep is not None or not page.changed


def spans_of(plan: PagePlan, first_key: int = 100) -> list[PageSpan]:
    """The plan's pages as existing pages, keyed first_key, first_key + 1, ... (or by what they keep)."""
    return [
        PageSpan(p.keep if p.keep is not None else first_key + n, p.start, p.end, plan.words(n))
        for n, p in enumerate(plan.pages)
    ]


def fresh(text: str, **sizes) -> list[PageSpan]:
    return spans_of(plan_split(text, [], **sizes))


def words_of(plan: PagePlan) -> list[str]:
    return [plan.words(n) for n in range(len(plan.pages))]


def by_key(plan: PagePlan) -> dict[int, str]:
    return {p.keep: plan.words(n) for n, p in enumerate(plan.pages) if p.keep is not None}


def page_spans(text: str, **sizes) -> list[tuple[int, int]]:
    return [(p.start, p.end) for p in segment_story(text, **sizes)]


STORY = (
    "The Lighthouse Fox\n\n"
    "Once upon a time, on a windy island, there lived a small red fox named Pip. "
    "Pip lived in the old lighthouse with Mrs. Gull, who kept the lamp burning every night.\n\n"
    "One evening a storm rolled in from the west. The waves grew tall and grey. "
    '"The lamp has gone out!" cried Mrs. Gull. "The boats will never find their way home."\n\n'
    "Pip looked up the long spiral stairs. They were dark and steep, and Pip was afraid of the dark.\n\n"
    "In the morning the storm was gone. From that night on, Pip was never afraid of the dark again."
)


# ------------------------------------------------------------------------------ plan_split


def test_first_split_makes_new_pages_after_the_title_line():
    plan = plan_split(STORY, [])
    check_plan(plan)
    assert plan.title == "The Lighthouse Fox"
    assert plan.body_start == STORY.index("Once upon")
    assert all(p.keep is None for p in plan.pages)
    assert plan.summary.new == len(plan.pages) == 5
    untitled = plan_split(STORY, [], take_title=False)
    check_plan(untitled)
    assert untitled.title is None and untitled.words(0) == "The Lighthouse Fox"


def test_one_word_changed_keeps_every_picture_and_marks_only_that_page():
    old = fresh(STORY)
    edited = STORY.replace("small red fox", "small brown fox")
    plan = plan_split(edited, old)
    check_plan(plan, [p.key for p in old])
    assert [p.keep for p in plan.pages] == [p.key for p in old]
    assert [p.changed for p in plan.pages] == [True, False, False, False, False]
    assert plan.summary.kept == 5 and plan.summary.loose == 0 and plan.summary.words_changed == 1


def test_a_page_rewritten_beyond_recognition_goes_loose():
    old = fresh(STORY)
    rewritten = STORY.replace(
        "Pip looked up the long spiral stairs. They were dark and steep, and Pip was afraid of the dark.",
        "Seven seagulls argued loudly about a herring on the harbour wall.",
    )
    plan = plan_split(rewritten, old)
    check_plan(plan, [p.key for p in old])
    assert plan.loose == (old[3].key,)
    assert plan.pages[3].keep is None and plan.words(3).startswith("Seven seagulls")
    assert plan.summary.new == 1 and plan.summary.loose == 1


def test_merging_pages_keeps_the_best_match_and_absorbs_the_others():
    text = "One fish swam. Two fish swam.\n\nA big red fish swam all day long in the cold blue sea. Tiny."
    old = fresh(text, sentences=1)
    assert [p.text for p in old] == [
        "One fish swam.",
        "Two fish swam.",
        "A big red fish swam all day long in the cold blue sea.",
        "Tiny.",
    ]
    plan = plan_split(text, old, sentences=3)
    check_plan(plan, [p.key for p in old])
    assert words_of(plan) == ["One fish swam. Two fish swam.", old[2].text + " Tiny."]
    assert plan.pages[0].keep == old[0].key and plan.pages[0].absorb == (old[1].key,)  # equal: the first
    assert plan.pages[1].keep == old[2].key and plan.pages[1].absorb == (old[3].key,)  # the most alike
    assert all(p.changed for p in plan.pages)
    assert plan.summary.merged == 2 and plan.summary.loose == 0


def test_splitting_a_page_keeps_it_on_the_part_most_like_its_words():
    text = "Tiny. A big red fish swam all day long in the cold blue sea.\n\nThe end came."
    old = fresh(text, sentences=2)
    plan = plan_split(text, old, sentences=1)
    check_plan(plan, [p.key for p in old])
    assert words_of(plan)[:2] == ["Tiny.", "A big red fish swam all day long in the cold blue sea."]
    assert [p.keep for p in plan.pages] == [None, old[0].key, old[1].key]
    equal_halves = fresh("One fish swam. Two fish swam.", sentences=2)
    plan = plan_split("One fish swam. Two fish swam.", equal_halves, sentences=1)
    assert [p.keep for p in plan.pages] == [equal_halves[0].key, None]  # a tie: the first part


def test_pages_with_identical_words_each_keep_their_own_row():
    refrain = "The bell rang."
    text = "\n\n".join([refrain, "A cat sat on the mat.", refrain, "A dog ran to the park.", refrain])
    old = fresh(text)
    assert [p.text for p in old].count(refrain) == 3
    plan = plan_split(text, old)
    check_plan(plan, [p.key for p in old])
    assert [p.keep for p in plan.pages] == [p.key for p in old]
    assert not any(p.changed for p in plan.pages)
    # Reordered in the text (the first refrain moved to the end): each page still finds its row.
    moved = "\n\n".join(["A cat sat on the mat.", refrain, "A dog ran to the park.", refrain, refrain])
    plan = plan_split(moved, old)
    check_plan(plan, [p.key for p in old])
    assert len(by_key(plan)) == 5 and plan.summary.loose == 0 and plan.summary.merged == 0
    assert by_key(plan)[old[1].key] == "A cat sat on the mat."
    assert {by_key(plan)[old[k].key] for k in (0, 2, 4)} == {refrain}


def test_a_paragraph_moved_elsewhere_keeps_its_pictures():
    old = fresh(STORY)
    paragraphs = STORY.split("\n\n")
    moved = "\n\n".join([paragraphs[0], paragraphs[3], paragraphs[1], paragraphs[2], paragraphs[4]])
    plan = plan_split(moved, old)
    check_plan(plan, [p.key for p in old])
    assert plan.summary.kept == 5 and plan.summary.loose == 0 and plan.summary.words_changed == 0
    assert by_key(plan) == {p.key: p.text for p in old}


def test_stale_spans_from_legacy_data_are_matched_by_their_words():
    old = [PageSpan(k, 0, 3, words) for k, words in enumerate(["The waves grew tall and grey.", "Pip looked up."])]
    plan = plan_split(STORY, old, sentences=1)
    check_plan(plan, [0, 1])
    assert by_key(plan) == {0: "The waves grew tall and grey.", 1: "Pip looked up the long spiral stairs."}
    assert plan.pages[[p.keep for p in plan.pages].index(1)].changed


def test_the_title_line_is_no_page_and_an_old_page_of_it_goes_loose():
    old = fresh(STORY, take_title=False)
    assert old[0].text == "The Lighthouse Fox"
    plan = plan_split(STORY, old)
    check_plan(plan, [p.key for p in old])
    assert plan.title == "The Lighthouse Fox" and plan.loose == (old[0].key,)


def test_plan_split_refuses_what_the_segmenter_refuses():
    with pytest.raises(InputError, match="empty"):
        plan_split("  \n ", [])
    with pytest.raises(InputError, match="at least 1"):
        plan_split(STORY, [], sentences=0)
    with pytest.raises(InputError, match="too long"):
        plan_split("a" * 200_001, [])
    with pytest.raises(ValueError, match="distinct keys"):
        plan_split(STORY, [PageSpan(1, 0, 1, "a"), PageSpan(1, 2, 3, "b")])


def test_words_wins_over_sentences():
    plan = plan_split("One two three four. Five six seven eight. Nine ten.", [], sentences=1, words=8)
    assert words_of(plan) == ["One two three four. Five six seven eight.", "Nine ten."]


# ------------------------------------------------------------------------------ plan_edit


def edit(old_text: str, new_text: str, *, title=None, **sizes):
    old = fresh(old_text, take_title=title is not None, **sizes)
    plan = plan_edit(old_text, old, new_text, title=title, **sizes)
    check_plan(plan, [p.key for p in old])
    return old, plan


def test_editing_words_inside_a_page_keeps_its_row_and_says_so():
    old, plan = edit(STORY, STORY.replace("tall and grey", "tall, grey and cold"), title="The Lighthouse Fox")
    assert [p.keep for p in plan.pages] == [p.key for p in old]
    assert [p.changed for p in plan.pages] == [False, True, False, False, False]
    assert plan.title == "The Lighthouse Fox" and plan.body_start == STORY.index("Once")


def test_text_typed_next_to_a_page_in_its_paragraph_joins_it():
    text = "Pip ran home. It was late.\n\nThe moon rose."
    old, plan = edit(text, text.replace("late.", "late. Very late."), sentences=2)
    assert words_of(plan) == ["Pip ran home. It was late. Very late.", "The moon rose."]
    assert [p.keep for p in plan.pages] == [old[0].key, old[1].key] and plan.pages[0].changed
    old, plan = edit(text, text.replace("The moon", "Night fell. The moon"), sentences=2)
    assert words_of(plan) == ["Pip ran home. It was late.", "Night fell. The moon rose."]
    old, plan = edit(text, text.replace("late.", "late.Again"), sentences=2)  # glued to the page
    assert words_of(plan)[0] == "Pip ran home. It was late.Again"


def test_new_paragraphs_between_pages_or_at_the_end_become_new_pages():
    text = "Pip ran home. It was late.\n\nThe moon rose."
    new = "Pip ran home. It was late.\n\nAn owl woke. It hooted. It flew.\n\nThe moon rose.\n\nThe end."
    old, plan = edit(text, new, sentences=2)
    assert words_of(plan) == [
        "Pip ran home. It was late.",
        "An owl woke. It hooted.",
        "It flew.",
        "The moon rose.",
        "The end.",
    ]
    assert [p.keep for p in plan.pages] == [old[0].key, None, None, old[1].key, None]
    assert plan.summary.new == 3 and not any(p.changed for p in plan.pages)


def test_chinese_typed_between_pages_joins_one_or_becomes_pages_without_spaces():
    text = "这是一支笔。那是一本书！\n\n他走了。"
    old, plan = edit(text, "这是一支笔。新的句子。那是一本书！\n\n他走了。", sentences=1)
    assert words_of(plan) == ["这是一支笔。新的句子。", "那是一本书！", "他走了。"]
    assert [p.keep for p in plan.pages] == [p.key for p in old]
    old, plan = edit(text, "这是一支笔。一。二。三。那是一本书！\n\n他走了。", sentences=1)
    assert words_of(plan) == ["这是一支笔。", "一。", "二。", "三。", "那是一本书！", "他走了。"]
    assert [p.keep for p in plan.pages] == [old[0].key, None, None, None, old[1].key, old[2].key]


def test_a_long_insertion_in_a_paragraph_becomes_pages_of_its_own():
    text = "Pip ran home. It was late.\n\nThe moon rose."
    new = text.replace("late.", "late. One. Two. Three. Four. Five.")
    _, plan = edit(text, new, sentences=2)
    assert words_of(plan) == ["Pip ran home. It was late.", "One. Two.", "Three. Four.", "Five.", "The moon rose."]


def test_a_page_whose_words_were_deleted_goes_loose():
    text = "Pip ran home. It was late.\n\nAn owl woke.\n\nThe moon rose."
    old, plan = edit(text, "Pip ran home. It was late.\n\nThe moon rose.", sentences=2)
    assert plan.loose == (old[1].key,) and [p.keep for p in plan.pages] == [old[0].key, old[2].key]
    old, plan = edit(text, "   ", sentences=2)
    assert plan.pages == () and sorted(plan.loose) == [p.key for p in old]


def test_a_page_rewritten_in_the_story_box_goes_loose_and_its_words_become_a_new_page():
    text = "Pip ran home. It was late.\n\nAn owl woke in the old oak.\n\nThe moon rose."
    new = text.replace("An owl woke in the old oak.", "Seven seagulls argued over a herring.")
    old, plan = edit(text, new, sentences=2)
    assert plan.loose == (old[1].key,)
    assert plan.pages[1].keep is None and plan.words(1) == "Seven seagulls argued over a herring."


def test_paragraph_breaks_typed_inside_a_page_do_not_split_it():
    text = "Pip ran home. It was late.\n\nThe moon rose."
    old, plan = edit(text, text.replace("home. It", "home.\n\nIt"), sentences=2)
    assert words_of(plan) == ["Pip ran home.\n\nIt was late.", "The moon rose."]
    assert [p.keep for p in plan.pages] == [old[0].key, old[1].key]
    assert not plan.pages[0].changed  # only whitespace changed


def test_a_page_cut_and_pasted_elsewhere_in_the_story_box_keeps_its_row():
    text = "Pip ran home. It was late.\n\nAn owl woke in the old oak.\n\nThe moon rose over the hill."
    new = "An owl woke in the old oak.\n\nPip ran home. It was late.\n\nThe moon rose over the hill."
    old, plan = edit(text, new, sentences=2)
    assert by_key(plan) == {p.key: p.text for p in old} and plan.summary.loose == 0


def test_the_title_line_can_be_edited_or_deleted():
    title = "The Lighthouse Fox"
    old, plan = edit(STORY, STORY.replace(title, "The Brave Lighthouse Fox"), title=title)
    assert plan.title == "The Brave Lighthouse Fox" and plan.summary.kept == 5 and plan.summary.new == 0
    old, plan = edit(STORY, STORY[len(title) :], title=title)
    assert plan.title is None and plan.summary.kept == 5
    joined = STORY.replace(title + "\n\n", title + " ")  # the title joined to the first page
    old, plan = edit(STORY, joined, title=title)
    assert plan.title is None and plan.words(0).startswith(title + " Once")
    above = "A new first line\n" + STORY  # the title line is no longer the first line: its words become pages
    old, plan = edit(STORY, above, title=title)
    assert plan.title is None and words_of(plan)[:2] == ["A new first line", title]
    assert [p.keep for p in plan.pages[2:]] == [p.key for p in old]
    assert plan_edit(STORY, old, STORY, title=None).words(0) == title  # no title: it is text for pages
    other = plan_edit(STORY, old, STORY, title="Another Title")  # not the text's first line: no title line
    check_plan(other, [p.key for p in old])
    assert other.title is None and other.words(0) == title


def test_plan_edit_with_legacy_spans_matches_by_words():
    old = [PageSpan(7, 0, 5, "The waves grew tall and grey."), PageSpan(8, 0, 5, "Pip looked up.")]
    plan = plan_edit(STORY, old, STORY, sentences=1, title="The Lighthouse Fox")
    check_plan(plan, [7, 8])
    assert plan.title == "The Lighthouse Fox" and 7 in by_key(plan) and 8 in by_key(plan)


def test_plan_edit_refuses_bad_input():
    old = fresh(STORY)
    with pytest.raises(InputError, match="NUL"):
        plan_edit(STORY, old, STORY + "\x00")
    with pytest.raises(InputError, match="too long"):
        plan_edit(STORY, old, "a" * 200_001)
    with pytest.raises(InputError, match="at least 1"):
        plan_edit(STORY, old, STORY, words=0)


def test_paging_is_a_light_module():
    probe = "import sys, engine.paging; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    for heavy in ("torch", "diffusers", "transformers", "streamlit", "storage", "studio", "sqlalchemy"):
        assert f"'{heavy}'" not in loaded


def test_matching_blocks_align_long_sequences():
    a = list("the quick brown fox jumps over the lazy dog")
    b = list("the quick red fox jumps over the lazy cat")
    blocks = matching_blocks(a, b)
    assert all(a[i : i + n] == b[j : j + n] for i, j, n in blocks)
    assert all(x[0] + x[2] <= y[0] and x[1] + x[2] <= y[1] for x, y in itertools.pairwise(blocks))
    assert sum(n for *_, n in blocks) >= 35


def test_word_tokens_fold_case_and_count_each_cjk_character():
    assert word_tokens("Hello, WORLD! don't") == ["hello", "world", "don", "t"]
    assert word_tokens("这是笔。") == ["这", "是", "笔"]
    assert word_tokens("🎉 !") == ["🎉", "!"]


# ------------------------------------------------------------------------------ page edits

ABC = "A1. A2.\n\nB1. B2.\n\nC1. C2."


def sentence_pages(text):
    return page_spans(text, sentences_per_segment=1)


def texts(text, spans):
    return [text[s:e] for s, e in spans]


def test_moving_inside_a_paragraph_moves_sentences():
    new, spans = move_page(ABC, sentence_pages(ABC), 0, 1)
    assert new == "A2. A1.\n\nB1. B2.\n\nC1. C2."
    assert texts(new, spans) == ["A2.", "A1.", "B1.", "B2.", "C1.", "C2."]


def test_moving_across_a_paragraph_break_keeps_every_break_in_its_place():
    new, spans = move_page(ABC, sentence_pages(ABC), 1, 2)
    assert new == "A1. B1.\n\nA2. B2.\n\nC1. C2."
    back, _ = move_page(new, spans, 2, 1)
    assert back == ABC


def test_a_move_and_a_delete_never_regroup_the_other_paragraphs():
    # The example: one move and one delete gave "A1. B2. / B1. C1. / C2.".
    moved, spans = move_page(ABC, sentence_pages(ABC), 3, 2)
    assert moved == "A1. A2.\n\nB2. B1.\n\nC1. C2."
    deleted, spans, _ = delete_page(moved, spans, 1)
    assert deleted == "A1.\n\nB2. B1.\n\nC1. C2."
    for index in range(6):
        after, _, gone = delete_page(ABC, sentence_pages(ABC), index)
        kept = ABC.replace(gone.words, "").split("\n\n")
        assert [p.split() for p in after.split("\n\n")] == [p.split() for p in kept if p.strip()]


def test_delete_takes_the_separator_that_belongs_to_the_page():
    text = "A.\n\nB1. B2.\n\nC."
    spans = sentence_pages(text)
    assert delete_page(text, spans, 0)[0] == "B1. B2.\n\nC."  # a paragraph of its own: the break after it
    assert delete_page(text, spans, 1)[0] == "A.\n\nB2.\n\nC."  # shares its paragraph: the space after it
    assert delete_page(text, spans, 2)[0] == "A.\n\nB1.\n\nC."  # the space before it
    assert delete_page(text, spans, 3)[0] == "A.\n\nB1. B2."  # the last page: the break before it
    only = "Title\n\nAlone here.\n"
    new, left, gone = delete_page(only, [(7, 18)], 0)
    assert new == "Title\n\n\n" and left == [] and gone == RemovedPage("Alone here.", None, False, 7)
    assert insert_page(new, left, 0, gone) == (only, [Span(7, 18)])


def test_pages_without_space_between_them_delete_and_come_back_exactly():
    text = "这是一支笔。那是一本书！他走了。"
    spans = sentence_pages(text)
    new, left, gone = delete_page(text, spans, 1)
    assert new == "这是一支笔。他走了。" and gone.separator == ""
    assert insert_page(new, left, 1, gone) == (text, spans)


def test_pages_an_edit_leaves_touching_become_one_page():
    text = "Pip ran home. It was late, and the wind was cold."
    old, plan = edit(text, "Pip ran home.It was late, and the wind was cold.", sentences=1)  # the space deleted
    assert words_of(plan) == ["Pip ran home.It was late, and the wind was cold."]
    assert plan.pages[0].keep == old[0].key and plan.pages[0].absorb == (old[1].key,)
    chinese = "这是一支笔。那是一本书！"  # written without spaces: its pages touch and stay apart
    old, plan = edit(chinese, chinese, sentences=1)
    assert words_of(plan) == ["这是一支笔。", "那是一本书！"]


def test_deleting_then_inserting_again_gives_back_the_text():
    for index in range(6):
        new, spans, gone = delete_page(ABC, sentence_pages(ABC), index)
        back, back_spans = insert_page(new, spans, index, gone)
        assert back == ABC and back_spans == sentence_pages(ABC)


def test_edit_page_changes_the_story_text_in_place():
    spans = sentence_pages(ABC)
    new, new_spans = edit_page(ABC, spans, 2, "  Bee one, edited.  ")
    assert new == "A1. A2.\n\nBee one, edited. B2.\n\nC1. C2."
    assert texts(new, new_spans) == ["A1.", "A2.", "Bee one, edited.", "B2.", "C1.", "C2."]
    with pytest.raises(InputError, match="needs some words"):
        edit_page(ABC, spans, 0, "  \n")
    with pytest.raises(InputError, match="not only emoji"):
        edit_page(ABC, spans, 0, "🎉 !")


def test_merge_and_split_change_boundaries_only():
    spans = sentence_pages(ABC)
    merged = merge_pages(ABC, spans, 1)
    assert texts(ABC, merged) == ["A1.", "A2.\n\nB1.", "B2.", "C1.", "C2."]
    with pytest.raises(InputError, match="last page"):
        merge_pages(ABC, spans, 5)
    split = split_page(ABC, merged, 1, 3)
    assert split == spans
    with pytest.raises(InputError, match="both parts"):
        split_page(ABC, merged, 1, 0)
    with pytest.raises(InputError, match="both parts"):
        split_page("Hi 🎉", [(0, 4)], 0, 3)


def test_page_edits_refuse_spans_that_do_not_tile_the_text():
    with pytest.raises(ValueError, match="overlaps"):
        move_page(ABC, [(0, 3), (2, 7)], 0, 1)
    with pytest.raises(ValueError, match="stripped"):
        move_page(ABC, [(0, 4)], 0, 0)
    with pytest.raises(ValueError, match="after the last page"):
        delete_page(ABC, [(0, 3)], 0)
    with pytest.raises(ValueError, match="not one of"):
        move_page(ABC, sentence_pages(ABC), 0, 6)


def test_split_points_offer_sentence_starts_or_the_middle():
    assert split_points("One fish swam. Two fish swam. Red fish!") == [
        (15, "Two fish swam. Red fish!"),
        (30, "Red fish!"),
    ]
    ((at, preview),) = split_points("a single long sentence without any stop at all")
    assert at == 23 and preview == "without any stop at all"
    assert split_points("word") == []
    assert split_points('"Cumin! Cardamom!" he called. She came.') == [(30, "She came.")]
    assert split_points("Hello 🎉 🎉 🎉 🎉 🎉") == []  # no split leaves words on both sides


# ------------------------------------------------------------------------------ properties

SENTENCES = [
    "Pip ran home.",
    "The moon rose over the hill.",
    "It was late, and the wind was cold.",
    '"Are you sure?" asked Mara.',
    '"Quite sure," she said.',
    "“Cumin! Cardamom! Saffron, today only!” called the merchant.",
    "The bell rang.",
    "这是一支笔。",
    "「こんにちは！」と言いました。",
    "مرحبا بالعالم.",
    "שלום עולם.",
    "🎉",
    "🦊🌙!",
    "Dr. Brown waved.",
    "«Bonjour!» dit-il.",
]
SEPARATORS = [" ", " ", " ", "\n", "  ", "\v", "\x85", "\u2028 "]
BREAKS = ["\n\n", "\n\n", "\r\n\r\n", "\n\n\n", "\u2029", "\n \n", "\f"]

sentence = st.sampled_from(SENTENCES)
paragraph = st.lists(st.tuples(sentence, st.sampled_from(SEPARATORS)), min_size=1, max_size=5).map(
    lambda items: "".join(s + sep for s, sep in items).strip()
)


@st.composite
def stories(draw, min_paragraphs=1):
    paragraphs = draw(st.lists(paragraph, min_size=min_paragraphs, max_size=6))
    breaks = [draw(st.sampled_from(BREAKS)) for _ in paragraphs]
    body = "".join(p + b for p, b in zip(paragraphs, breaks)).rstrip() + draw(st.sampled_from(["", "\n", " \n\n"]))
    if draw(st.booleans()):
        body = draw(st.sampled_from(["The Fox\n\n", "Chapter One\n", "A Tale\r\n\r\n"])) + body
    if not has_words(body):
        body += "\n\nThe end."
    return body


sizes = st.one_of(
    st.builds(dict, sentences=st.integers(1, 4)),
    st.builds(dict, sentences=st.none(), words=st.integers(3, 30)),
)


@st.composite
def edits(draw, text):
    """A random edit of the story box: type a sentence or a paragraph, delete a stretch, change a word,
    move a paragraph. Returns the new text and, for a local edit, the stretch of the old text it
    touched (start, end), else None."""
    kind = draw(st.sampled_from(["type", "paragraph", "delete", "word", "move", "nothing"]))
    at = draw(st.integers(0, len(text)))
    if kind in ("type", "paragraph"):
        if kind == "type":
            typed = draw(sentence) + draw(st.sampled_from([" ", "", "\n"]))
        else:
            typed = f"\n\n{draw(paragraph)}\n\n"
        # A copy of words already in the story may be aligned with the original instead: no local edit.
        local = not any(s in text for s in SENTENCES if s in typed)
        return text[:at] + typed + text[at:], (at, at) if local else None
    if kind == "delete":
        end = draw(st.integers(at, min(len(text), at + 40)))
        return text[:at] + text[end:], (at, end)
    if kind == "word":
        starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == " "]
        start = draw(st.sampled_from(starts))
        end = text.find(" ", start)
        end = len(text) if end < 0 else end
        return text[:start] + draw(st.sampled_from(["fox", "Moon.", "跑", "🎈", ""])) + text[end:], (start, end)
    if kind == "move":
        parts = text.split("\n\n")
        if len(parts) > 1:
            k = draw(st.integers(0, len(parts) - 1))
            part = parts.pop(k)
            parts.insert(draw(st.integers(0, len(parts))), part)
        return "\n\n".join(parts), None
    return text, (0, 0)


def untouched(old: list[PageSpan], region) -> list[PageSpan]:
    """The old pages an edit of `region` cannot reach: not the last page before it, nor the first after."""
    if region is None:
        return []
    start, end = region
    before = [p for p in old if p.end < start]
    after = [p for p in old if p.start > end]
    return before[:-1] + after[1:]


# PAGING_EXAMPLES=3000 PAGING_MACHINES=4000 run the properties and the state machine longer (about two
# minutes on two cores); the defaults keep this file to a few seconds.
FAST = settings(
    max_examples=int(os.environ.get("PAGING_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FAST
@given(data=st.data(), story=stories(), first=sizes, second=sizes, titles=st.tuples(st.booleans(), st.booleans()))
def test_property_split_again_tiles_the_text_and_places_every_old_page_once(data, story, first, second, titles):
    old = fresh(story, take_title=titles[0], **first)
    edited, _ = data.draw(edits(story))
    if not edited.strip():
        return
    plan = plan_split(edited, old, take_title=titles[1], **second)
    check_plan(plan, [p.key for p in old])
    if edited == story and first == second and titles[0] == titles[1]:
        assert [p.keep for p in plan.pages] == [p.key for p in old] and plan.summary.words_changed == 0


@FAST
@given(data=st.data(), story=stories(), first=sizes, second=sizes)
def test_property_edits_keep_the_pages_tiling_the_text(data, story, first, second):
    first_plan = plan_split(story, [], **first)
    text, old, title = story, spans_of(first_plan), first_plan.title
    for _ in range(3):  # a few saves in a row, each planned from the one before
        edited, region = data.draw(edits(text))
        plan = plan_edit(text, old, edited, title=title, **second)
        check_plan(plan, [p.key for p in old])
        if edited == text:
            assert [p.keep for p in plan.pages] == [p.key for p in old] and not plan.loose
        kept = {p.keep: (plan.words(n), p.changed) for n, p in enumerate(plan.pages) if p.keep is not None}
        for page in untouched(old, region):
            assert kept.get(page.key) == (page.text, False), "a page away from the edit keeps its row and words"
        text, old, title = edited, spans_of(plan, first_key=1000 * (_ + 2)), plan.title


@FAST
@given(story=stories(min_paragraphs=1), first=sizes, data=st.data())
def test_property_move_down_then_up_and_delete_then_insert_round_trip(story, first, data):
    plan = plan_split(story, [], **first)
    spans = [(p.start, p.end) for p in plan.pages]
    index = data.draw(st.integers(0, len(spans) - 1))
    if index + 1 < len(spans):
        moved, moved_spans = move_page(story, spans, index, index + 1)
        assert sorted(texts(moved, moved_spans)) == sorted(texts(story, spans))
        seps = [moved[a.end : b.start] for a, b in itertools.pairwise(moved_spans)]
        assert seps == [story[a[1] : b[0]] for a, b in itertools.pairwise(spans)], "separators stay in place"
        back, back_spans = move_page(moved, moved_spans, index + 1, index)
        assert back == story and back_spans == spans
    to = data.draw(st.integers(0, len(spans) - 1))
    far, far_spans = move_page(story, spans, index, to)
    assert move_page(far, far_spans, to, index) == (story, spans)
    deleted, left, gone = delete_page(story, spans, index)
    others = spans[:index] + spans[index + 1 :]
    assert [deleted[s:e] for s, e in left] == [story[s:e] for s, e in others]
    assert insert_page(deleted, left, index, gone) == (story, spans)
    # Deleting never joins two paragraphs: between the pages around the deleted one there is a
    # paragraph break exactly when there was one on either side of it.
    breaks = [has_paragraph_break(story, a[1], b[0]) for a, b in itertools.pairwise(spans)]
    if 0 < index < len(spans) - 1:
        expected = [*breaks[: index - 1], breaks[index - 1] or breaks[index], *breaks[index + 1 :]]
    else:
        expected = breaks[1:] if index == 0 else breaks[:-1]
    assert [has_paragraph_break(deleted, a[1], b[0]) for a, b in itertools.pairwise(left)] == expected


# ------------------------------------------------------------------------------ every operation, in any order


class Storyboard(RuleBasedStateMachine):
    """The storyboard's text operations in random order, as the studio will call them; after each,
    the pages tile the text, each page has words, and every page that ever existed is accounted for:
    on the board, or absorbed, loose or deleted (so its pictures are somewhere)."""

    def __init__(self):
        super().__init__()
        self.text = ""
        self.pages: list[tuple[int, int, int]] = []  # (key, start, end)
        self.title: str | None = None
        self.next_key = 0
        self.gone: set[int] = set()  # absorbed, loose or deleted: their pictures went elsewhere

    def _adopt(self, plan: PagePlan) -> None:
        check_plan(plan, [key for key, *_ in self.pages])
        pages = []
        for page in plan.pages:
            key = page.keep
            if key is None:
                key, self.next_key = self.next_key, self.next_key + 1
            pages.append((key, page.start, page.end))
        self.gone |= {k for p in plan.pages for k in p.absorb} | set(plan.loose)
        self.text, self.pages, self.title = plan.text, pages, plan.title

    def _spans(self):
        return [(s, e) for _, s, e in self.pages]

    @initialize(story=stories(), first=sizes)
    def start(self, story, first):
        self._adopt(plan_split(story, [], **first))

    @rule(second=sizes, take_title=st.booleans())
    def split_again(self, second, take_title):
        old = [PageSpan(k, s, e, self.text[s:e]) for k, s, e in self.pages]
        if not self.text.strip():
            with pytest.raises(InputError, match="empty"):
                plan_split(self.text, old, take_title=take_title, **second)
            return
        self._adopt(plan_split(self.text, old, take_title=take_title, **second))

    @rule(data=st.data(), second=sizes)
    def type_in_the_story_box(self, data, second):
        edited, _ = data.draw(edits(self.text))
        old = [PageSpan(k, s, e, self.text[s:e]) for k, s, e in self.pages]
        self._adopt(plan_edit(self.text, old, edited, title=self.title, **second))

    @precondition(lambda self: len(self.pages) > 1)
    @rule(data=st.data())
    def move(self, data):
        i = data.draw(st.integers(0, len(self.pages) - 1))
        to = data.draw(st.integers(0, len(self.pages) - 1))
        text, spans = move_page(self.text, self._spans(), i, to)
        keys = [k for k, *_ in self.pages]
        keys.insert(to, keys.pop(i))
        back = move_page(text, spans, to, i)
        assert back == (self.text, self._spans())
        self.text, self.pages = text, [(k, s, e) for k, (s, e) in zip(keys, spans)]

    @precondition(lambda self: len(self.pages) > 1)
    @rule(data=st.data())
    def delete(self, data):
        i = data.draw(st.integers(0, len(self.pages) - 1))
        text, spans, gone = delete_page(self.text, self._spans(), i)
        assert insert_page(text, spans, i, gone) == (self.text, self._spans())
        key = self.pages[i][0]
        keys = [k for k, *_ in self.pages if k != key]
        self.gone.add(key)
        self.text, self.pages = text, [(k, s, e) for k, (s, e) in zip(keys, spans)]

    @precondition(lambda self: self.pages)
    @rule(data=st.data())
    def edit_a_page(self, data):
        i = data.draw(st.integers(0, len(self.pages) - 1))
        words = data.draw(paragraph)
        if not has_words(words):
            with pytest.raises(InputError, match="not only emoji"):
                edit_page(self.text, self._spans(), i, words)
            return
        text, spans = edit_page(self.text, self._spans(), i, words)
        self.text, self.pages = text, [(k, s, e) for (k, *_), (s, e) in zip(self.pages, spans)]

    @precondition(lambda self: len(self.pages) > 1)
    @rule(data=st.data())
    def merge(self, data):
        i = data.draw(st.integers(0, len(self.pages) - 2))
        spans = merge_pages(self.text, self._spans(), i)
        keys = [k for k, *_ in self.pages]
        self.gone.add(keys.pop(i + 1))  # its pictures join page i as versions
        self.pages = [(k, s, e) for k, (s, e) in zip(keys, spans)]

    @precondition(lambda self: self.pages)
    @rule(data=st.data())
    def split(self, data):
        i = data.draw(st.integers(0, len(self.pages) - 1))
        _, s, e = self.pages[i]
        points = split_points(self.text[s:e])
        if not points:
            return
        at, _ = data.draw(st.sampled_from(points))
        spans = split_page(self.text, self._spans(), i, at)
        keys = [k for k, *_ in self.pages]
        keys.insert(i + 1, self.next_key)
        self.next_key += 1
        self.pages = [(k, s, e) for k, (s, e) in zip(keys, spans)]

    @invariant()
    def pages_tile_the_text_and_every_page_is_accounted_for(self):
        if not self.text:
            return
        previous = len(self.text) - len(self.text.lstrip()) if self.title is None else 0
        for _, s, e in self.pages:
            assert self.text[previous:s].strip() == "" or (self.title and previous == 0)
            words = self.text[s:e]
            assert words == words.strip() and words
            assert has_words(words) or not has_words(self.text), "a page of emoji or punctuation only"
            previous = e
        assert self.text[previous:].strip() == ""
        keys = [k for k, *_ in self.pages]
        assert len(set(keys)) == len(keys)
        assert set(keys) | self.gone == set(range(self.next_key)), "a page vanished without being accounted for"
        assert not set(keys) & self.gone


Storyboard.TestCase.settings = settings(
    max_examples=int(os.environ.get("PAGING_MACHINES", "25")),
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_storyboard_operations_in_any_order = Storyboard.TestCase
