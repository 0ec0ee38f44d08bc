"""Best of N: candidates drawn in the same batches with their own seeds, all kept, the top score chosen."""

from __future__ import annotations

import numpy as np
import pytest

from core.requests import PageSpec
from core.seeds import sub_seed
from engine.errors import InputError
from engine.illustrate import candidate_seed, chosen, illustrate_pages
from engine.profiles import get_profile
from engine.references import Reference
from engine.scoring import open_scorer

PAGES = [
    PageSpec(key=0, text="Mara lived by the sea.", seed=3),
    PageSpec(key=1, text="'Quite sure,' she said, and stepped onto the rocks.", seed=4),
]
CAST = [("Mara", "a young girl with a yellow raincoat")]


@pytest.fixture(scope="module")
def profile(tiny_models, one_cpu_thread):
    return get_profile("tiny")


def test_candidates_are_all_kept_scored_and_the_best_chosen(profile):
    seen, picked, steps = [], [], []
    pictures = illustrate_pages(
        PAGES,
        profile,
        style="none",
        characters=CAST,
        candidates=3,
        batch_size=6,
        on_image=seen.append,
        on_chosen=picked.append,
        on_progress=lambda done, total: steps.append(total),
    )
    assert steps[-1] == 2  # six pictures, one batch of two steps: the candidates share the batch
    assert [(p.key, p.metadata["candidate"]) for p in pictures] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert len(seen) == 6 and len(picked) == 2
    assert [p.settings["seed"] for p in pictures[:3]] == [3, sub_seed(3, "candidate", 1), sub_seed(3, "candidate", 2)]
    for key in (0, 1):
        mine = [p for p in pictures if p.key == key]
        best = max(mine, key=lambda p: p.metadata["clip_score"])
        assert [p.metadata["chosen"] for p in mine] == [p is best for p in mine]
        assert all(p.metadata["candidates"] == 3 and p.metadata["characters"] == ["Mara"] for p in mine)
    assert [p.key for p in chosen(pictures)] == [0, 1] and picked == chosen(pictures)
    assert "yellow raincoat" in pictures[3].settings["prompt"]  # "she" on page 2 is Mara
    # The stored score is the ranker's score of that picture against its page's words.
    with open_scorer(profile, "ranker") as scorer:
        again = scorer.score([pictures[4].image], [PAGES[1].text])[0]
    assert pictures[4].metadata["clip_score"] == pytest.approx(again, abs=1e-4)
    assert pictures[4].metadata["clip_model"] == "tiny:ranker"


def test_one_candidate_draws_what_it_always_drew(profile):
    (plain,) = illustrate_pages(PAGES[:1], profile, style="none")
    (scored,) = illustrate_pages(PAGES[:1], profile, style="none", score=True)
    assert np.array_equal(np.asarray(plain.image), np.asarray(scored.image))
    assert "clip_score" not in plain.metadata and plain.metadata["chosen"] is True
    assert scored.metadata["clip_score"] >= 0.0
    assert candidate_seed(3, 0) == 3


def test_candidates_out_of_range_are_refused(profile):
    for n in (0, 9):
        with pytest.raises(InputError, match="candidates"):
            illustrate_pages(PAGES, profile, style="none", candidates=n)


def test_a_page_with_a_character_is_drawn_with_its_reference(profile):
    ref = Reference("Mara", prompt="a young girl with a yellow raincoat", seed=9, share_rate=0.5)
    pictures = illustrate_pages(
        PAGES + [PageSpec(key=2, text="The waves were high.", seed=5)],
        profile,
        style="none",
        characters=CAST,
        references={"Mara": ref},
    )
    assert [p.settings.get("reference", {}).get("name") for p in pictures] == ["Mara", "Mara", None]


def test_drafts_draw_candidates_and_references_and_finish_keeping_the_reference(profile):
    import torch

    from engine.illustrate import finish_drafts

    ref = Reference("Mara", prompt="a young girl with a yellow raincoat", seed=9, share_rate=0.5)
    pictures = illustrate_pages(
        PAGES, profile, style="none", characters=CAST, candidates=2, references={"Mara": ref}, draft=True, batch_size=1
    )
    assert [(p.key, p.metadata["candidate"]) for p in pictures] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(p.settings["draft"] and p.settings["decoder"] == "preview" for p in pictures)
    assert all(p.settings["reference"]["name"] == "Mara" and "clip_score" in p.metadata for p in pictures)
    # The reference row is drawn in front of each page but only the page's own latent comes back.
    assert all(p.latents is not None and p.latents.shape[0] == 1 for p in pictures)
    assert not torch.equal(pictures[0].latents, pictures[1].latents)  # each candidate's own, not the reference's
    best = chosen(pictures)
    drafts = [(p.key, p.settings) for p in best]
    kept = finish_drafts(drafts, profile, latents={p.key: p.latents for p in best})
    redrawn = finish_drafts(drafts, profile)  # the latents drawn again, with the recorded reference row
    for draft, a, b in zip(best, kept, redrawn):
        assert torch.equal(a.latents, draft.latents) and torch.equal(b.latents, draft.latents)
        assert a.settings["reference"] == b.settings["reference"] == draft.settings["reference"]
        assert a.settings["finished_from"] == "draft" and a.settings["decoder"] == "full"
    with pytest.raises(InputError, match="'decode' only"):
        finish_drafts(drafts, profile, method="refine")
