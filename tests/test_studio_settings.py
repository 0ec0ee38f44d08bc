"""The settings page under AppTest, and every page of the navigation opening cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from widgetkit import shows_what_it_holds

HOME = str(Path(__file__).resolve().parents[1] / "studio" / "Home.py")
TIMEOUT = 60  # the settings page imports torch to describe the device


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("STORYBOOK_HOME", str(home))
    return home


def page(path: str) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def test_settings_show_profile_device_models_and_data_folder(home):
    at = page("screens/settings.py")
    assert at.radio[0].value == "tiny"
    assert any("STORYBOOK_PROFILE" in i for i in texts(at.info))
    assert any("Every model of this profile is ready" in s for s in texts(at.success))
    device = next(m.value for m in at.markdown if m.value.startswith("Pictures are drawn on"))
    assert "processor (no GPU found)" in device or "GPU" in device
    assert str(home) in texts(at.code)

    at.radio[0].set_value("classic").run()
    next(b for b in at.button if b.label == "Use this profile").click().run()
    assert json.loads((home / "settings.json").read_text())["profile"] == "classic"
    assert any("'classic' profile" in s for s in texts(at.success))


def test_the_profile_radio_shows_on_its_own_the_saved_profile(home):
    """The saved profile (not the first one) is what the radio shows from its own default, as a browser draws
    it, and what the server holds: given through Session State, a browser could show the first profile."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(json.dumps({"profile": "quality"}))
    at = page("screens/settings.py")
    radio = at.radio[0]
    assert radio.value == "quality" and radio.index != 0
    assert shows_what_it_holds(radio), radio.proto
    assert next(b for b in at.button if b.label == "Use this profile").disabled  # already the saved one
    # A new choice, saved: the radio keeps it (its default follows the saved profile without starting it over).
    at.radio[0].set_value("classic").run()
    next(b for b in at.button if b.label == "Use this profile").click().run()
    assert at.radio[0].value == "classic" and shows_what_it_holds(at.radio[0])
    assert json.loads((home / "settings.json").read_text())["profile"] == "classic"


def test_settings_say_whether_emoji_will_print_and_how_to_get_them(home, monkeypatch, tmp_path):
    monkeypatch.setenv("STORYBOOK_EMOJI_FONT", "none")
    at = page("screens/settings.py")
    assert any("Emoji are left out of printed books" in m for m in texts(at.markdown))
    assert any("fonts-noto-color-emoji" in c for c in texts(at.caption))

    from exports import emoji

    found = emoji._find("")
    if found is None:
        pytest.skip("no colour emoji font on this machine (fonts-noto-color-emoji)")
    monkeypatch.setenv("STORYBOOK_EMOJI_FONT", str(found))
    at = page("screens/settings.py")
    assert str(found) in texts(at.code)
    assert not any("Emoji are left out" in m for m in texts(at.markdown))


def test_settings_explain_models_that_are_not_downloaded(home, monkeypatch):
    from engine.profiles import PROFILES, is_downloaded

    if is_downloaded(PROFILES["fast"].model("illustrator")):
        pytest.skip("the 'fast' models are downloaded on this machine")
    monkeypatch.setenv("STORYBOOK_PROFILE", "fast")
    at = page("screens/settings.py")
    assert any("not downloaded yet" in w for w in texts(at.warning))
    assert "python -m engine fetch --profile fast" in texts(at.code)
    assert any("tiny" in c for c in texts(at.caption))


@pytest.mark.parametrize(
    "path",
    [
        "screens/library.py",
        "screens/storyboard.py",
        "screens/from_images.py",
        "screens/export.py",
        "screens/settings.py",
    ],
)
def test_every_page_opens_without_an_error_with_and_without_a_story(home, path):
    from storage import Library
    from studio import actions

    at = page(path)
    assert not at.error
    project = actions.open_sample(Library(home))
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params["project"] = str(project.id)
    at.run()
    at.switch_page(path).run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]


def test_models_download_from_the_page_with_progress_then_the_page_says_ready(home, monkeypatch, tmp_path):
    """The hub is out of reach here, so its two download calls are replaced by ones that fill a private
    Hugging Face cache the way a download does; everything above them is the studio's own code."""
    import threading

    import diffusers
    import huggingface_hub
    from huggingface_hub import constants

    from engine import fetch

    monkeypatch.setattr(fetch, "_downloads", None)  # a fresh studio: no download seen yet
    monkeypatch.setenv("STORYBOOK_PROFILE", "fast")
    monkeypatch.setenv("STORYBOOK_DEVICE", "cpu")
    cache = tmp_path / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))

    # Started offline, no download button is offered (it could not work before a restart): the page says so in
    # words and quotes the size for this machine only.
    at = page("screens/settings.py")
    assert any("not downloaded yet" in w for w in texts(at.warning))
    assert not any("Download" in b.label for b in at.button)
    assert any("started in offline mode" in i and "about 7 GB" in i and "with a GPU" not in i for i in texts(at.info))
    # Said once: the scoring and reference models' box below points to it instead of saying it again.
    assert sum("started in offline mode" in i for i in texts(at.info)) == 1, texts(at.info)
    assert any(c.startswith("Like the models above, they can be downloaded here once") for c in texts(at.caption))
    # STORYBOOK_PROFILE=fast wins over any choice, so the tiny profile is not offered here (it could not work).
    assert not any(b.label.startswith("Try the studio now with the tiny profile") for b in at.button)

    # Back online but the hub out of reach: the failure says so in plain words and offers to try again.
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(
        diffusers.DiffusionPipeline,
        "download",
        classmethod(lambda cls, ref, **kw: (_ for _ in ()).throw(ConnectionError("Max retries exceeded"))),
    )
    at.run()
    assert any("about 7 GB" in m for m in texts(at.markdown)), texts(at.markdown)
    next(b for b in at.button if b.label == "Download them now").click().run()
    while fetch.get_downloads().get("fast").running:
        threading.Event().wait(0.05)
    at.run()
    assert any("internet could not be reached" in e for e in texts(at.error)), texts(at.error)
    assert not any("OSError" in e or "ConnectionError" in e for e in texts(at.error))
    assert any(b.label == "Try the download again" for b in at.button)

    gate, asked = threading.Event(), []

    def land(ref: str, marker: str) -> None:
        gate.wait(30)
        asked.append(ref)
        repo = cache / f"models--{ref.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text("0" * 40)
        (repo / "snapshots" / ("0" * 40)).mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / ("0" * 40) / marker).write_text("{}")

    monkeypatch.setattr(
        diffusers.DiffusionPipeline, "download", classmethod(lambda cls, ref, **kw: land(ref, "model_index.json"))
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda ref, **kw: land(ref, "config.json"))
    next(b for b in at.button if b.label == "Try the download again").click().run()
    assert any("Downloading the picture model" in i and "stabilityai/sd-turbo" in i for i in texts(at.info)), texts(
        at.info
    )
    again = page("screens/settings.py")  # another tab sees the same download, and starts no second one
    assert any("Downloading the picture model" in i for i in texts(again.info))
    gate.set()
    while fetch.get_downloads().get("fast").running:
        threading.Event().wait(0.05)
    at.run()
    assert asked == [
        "stabilityai/sd-turbo",
        "Salesforce/blip-image-captioning-base",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "madebyollin/taesd",
    ]
    assert any("Every model of this profile is ready" in s for s in texts(at.success)), texts(at.warning)
    assert not at.warning


def test_the_tiny_profile_is_one_click_away_when_models_are_missing(home, monkeypatch):
    from engine.profiles import PROFILES, is_downloaded

    if is_downloaded(PROFILES["fast"].model("illustrator")):
        pytest.skip("the 'fast' models are downloaded on this machine")
    monkeypatch.delenv("STORYBOOK_PROFILE")
    (home).mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(json.dumps({"profile": "fast"}))
    at = page("screens/settings.py")
    next(b for b in at.button if b.label.startswith("Try the studio now with the tiny profile")).click().run()
    assert json.loads((home / "settings.json").read_text())["profile"] == "tiny"
    assert any("'tiny' profile" in s for s in texts(at.success)), texts(at.success)
    assert any("Every model of this profile is ready" in s for s in texts(at.success))


def test_illustrate_ready_says_why_not_in_plain_words(home, monkeypatch):
    from engine.profiles import PROFILES, is_downloaded
    from studio import actions

    assert actions.illustrate_ready(PROFILES["tiny"]) is None
    if is_downloaded(PROFILES["fast"].model("illustrator")):
        pytest.skip("the 'fast' models are downloaded on this machine")
    offline = actions.illustrate_ready(PROFILES["fast"])
    assert offline and "picture model" in offline and "offline mode" in offline and "tiny" in offline
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    online = actions.illustrate_ready(PROFILES["fast"])
    assert online and "offline mode" not in online and "Settings" in online


def test_download_failures_read_as_plain_sentences():
    import errno

    from engine.fetch import download_error_message

    class RepositoryNotFoundError(Exception):
        pass

    assert "internet could not be reached" in download_error_message("a/b", ConnectionError("refused"))
    assert "internet could not be reached" in download_error_message("a/b", OSError("Network is unreachable"))
    assert "not found" in download_error_message("a/b", RepositoryNotFoundError("404"))
    assert "disk is full" in download_error_message("a/b", OSError(errno.ENOSPC, "No space left on device"))
    assert "ValueError" in download_error_message("a/b", ValueError("odd"))


def test_settings_read_for_a_person_with_details_behind_an_expander(home):
    """No Python tuples, MiB or dtypes on the page itself: what each model is for, whether it is here and loaded,
    memory in GB; the technical rows are kept in the expander."""
    import torch

    from engine.cache import get_cache

    key = ("illustrator", "tiny:illustrator", "cpu", "torch.float32")
    with get_cache().use(key, lambda: torch.nn.Linear(1000, 1000)):
        pass
    try:
        at = page("screens/settings.py")
        table = at.dataframe[0].value
        row = table[table["What it does"] == "Draws the pictures"].iloc[0]
        assert row["On this computer"] == "yes, built on this computer"
        assert row["Loaded now"] == "yes, under 0.1 GB of memory", row["Loaded now"]
        assert "tiny" in row["Model"] and "(for trying the app)" in row["Model"]
        shown = [m.label + " " + m.value for m in at.metric]
        assert all("GiB" not in m and "MiB" not in m and "float" not in m for m in shown), shown
        assert any(m.endswith(" GB") for m in shown), shown
        details = at.expander[-1]
        assert details.label == "Details for the technically curious"
        assert any("float32" in m.value for m in details.markdown)
        assert any("tiny:illustrator" in what for what in details.dataframe[0].value["What"])
    finally:
        get_cache().evict(key)


def test_the_tiny_button_switches_the_open_story_made_with_the_missing_models(home, monkeypatch):
    from engine.profiles import PROFILES, is_downloaded
    from storage import Library
    from studio import actions

    if is_downloaded(PROFILES["fast"].model("illustrator")):
        pytest.skip("the 'fast' models are downloaded on this machine")
    monkeypatch.delenv("STORYBOOK_PROFILE")
    lib = Library(home)
    story = actions.create_project(lib, title="Fox", story_text="One. Two.", profile="fast")
    at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    at.query_params["project"] = str(story.id)
    at.run()
    at.switch_page("screens/storyboard.py").run()
    assert any("not downloaded yet" in w for w in texts(at.warning))
    next(b for b in at.button if b.label.startswith("Try the studio now with the tiny profile")).click().run()
    assert lib.get_project(story.id).profile == "tiny"
    assert json.loads((home / "settings.json").read_text())["profile"] == "tiny"
    assert any("This story and new stories now use the 'tiny' profile" in s for s in texts(at.success))
    assert not any("not downloaded yet" in w for w in texts(at.warning))


def test_the_settings_download_of_the_scoring_models_asks_fetch_for_them_only(monkeypatch):
    """Downloads.start(extras=True) is its own download: fetch_profile is asked for the extras and not for the
    profile's own models; the main download is unchanged (its own models, no extras) and runs beside it."""
    import threading

    from engine import fetch
    from engine.profiles import PROFILES

    asked: list[tuple[str, bool, bool]] = []
    done = threading.Event()

    def fake_fetch(profile, weights="auto", say=lambda role, what: None, *, extras=False, main=True):
        asked.append((profile.name, extras, main))
        if len(asked) == 2:
            done.set()

    monkeypatch.setattr(fetch, "fetch_profile", fake_fetch)
    downloads = fetch.Downloads()
    tiny = PROFILES["tiny"]
    extras = downloads.start(tiny, extras=True)
    own = downloads.start(tiny)
    assert done.wait(30)
    while extras.running or own.running:
        threading.Event().wait(0.01)
    assert sorted(asked) == [("tiny", False, True), ("tiny", True, False)]
    assert extras.extras and extras.state == "done" and own.state == "done"
    assert downloads.get("tiny", extras=True) is extras and downloads.get("tiny") is own


def test_settings_offer_the_scoring_models_download_when_one_is_missing_and_not_when_all_are_here(
    home, monkeypatch, tmp_path
):
    """The tiny profile with its judge set to a hub model that is not here: Settings say what the missing model
    brings and its size, offer their own download (not when started offline: they say why), show its progress in
    every tab, and say ready once it is done; with every model here there is no such button. The hub is out of
    reach: fetch_profile is replaced by one that lands the model in a private cache the way a download does."""
    import threading

    from huggingface_hub import constants

    from engine import fetch
    from studio import actions

    button = actions.EXTRAS_BUTTON
    at = page("screens/settings.py")  # every model of 'tiny' is here
    assert not any(b.label == button for b in at.button)
    assert any("scoring and reference models of this profile are ready" in s for s in texts(at.success))

    monkeypatch.setattr(fetch, "_downloads", None)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("STORYBOOK_JUDGE", "openai/clip-vit-large-patch14")
    at = page("screens/settings.py")
    optional = [m for m in texts(at.markdown) if m.startswith("Optional, not downloaded yet")]
    assert optional and "judging the book" in optional[0] and "about 1.7 GB" in optional[0], texts(at.markdown)
    assert "scores and best of N" not in optional[0]  # the ranker is here (tiny)
    assert not any(b.label == button for b in at.button)  # started offline
    assert any("started in offline mode" in i for i in texts(at.info))
    assert "python -m engine fetch --profile tiny --extras" in texts(at.code)
    assert any("Every model of this profile is ready" in s for s in texts(at.success))  # its own models are

    monkeypatch.delenv("HF_HUB_OFFLINE")
    gate, asked = threading.Event(), []

    def fake_fetch(profile, weights="auto", say=lambda role, what: None, *, extras=False, main=True):
        asked.append((extras, main))
        say("judge", "downloading openai/clip-vit-large-patch14 …")
        gate.wait(30)
        repo = tmp_path / "hub" / "models--openai--clip-vit-large-patch14"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text("0" * 40)
        (repo / "snapshots" / ("0" * 40)).mkdir(parents=True, exist_ok=True)
        (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")

    monkeypatch.setattr(fetch, "fetch_profile", fake_fetch)
    at.run()
    next(b for b in at.button if b.label == button).click().run()
    assert any("Downloading the judge model" in i for i in texts(at.info)), texts(at.info)
    again = page("screens/settings.py")  # another tab sees the same download and offers no second one
    assert any("Downloading the judge model" in i for i in texts(again.info))
    assert not any(b.label == button for b in again.button)
    gate.set()
    while fetch.get_downloads().get("tiny", extras=True).running:
        threading.Event().wait(0.05)
    at.run()
    assert asked == [(True, False)]  # the scoring models only, not the profile's own
    assert not any(b.label == button for b in at.button)
    assert any("scoring and reference models of this profile are ready" in s for s in texts(at.success))


def test_after_a_failed_download_of_the_scoring_models_the_button_keeps_its_name_and_the_error_says_try_again(
    home, monkeypatch, tmp_path
):
    """The button is the one the missing-model sentences name (actions.EXTRAS_BUTTON), before and after a
    download; only the failure's own words say to try again."""
    import threading

    from huggingface_hub import constants

    from engine import fetch
    from studio import actions

    monkeypatch.setattr(fetch, "_downloads", None)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("STORYBOOK_JUDGE", "openai/clip-vit-large-patch14")
    monkeypatch.delenv("HF_HUB_OFFLINE")

    def failing_fetch(profile, weights="auto", say=lambda role, what: None, *, extras=False, main=True):
        raise fetch.InputError("The model 'openai/clip-vit-large-patch14' was not found on the hub.")

    monkeypatch.setattr(fetch, "fetch_profile", failing_fetch)
    at = page("screens/settings.py")
    next(b for b in at.button if b.label == actions.EXTRAS_BUTTON).click().run()
    while fetch.get_downloads().get("tiny", extras=True).running:
        threading.Event().wait(0.05)
    at.run()
    assert any(b.label == actions.EXTRAS_BUTTON for b in at.button), [b.label for b in at.button]
    assert not any("again" in b.label for b in at.button)
    assert any("was not found on the hub. Then try again with the button below." in e for e in texts(at.error))
