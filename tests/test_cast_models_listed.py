"""Issue 19's "How it is checked": every new model (ranker, judge, consistency, IP-Adapter) is named in the
profiles and listed by `python -m engine fetch` with its size and licence, and `fetch --extras` downloads exactly
those (the hub is not reached: the download call is recorded instead)."""

from __future__ import annotations

import pytest

from engine import fetch
from engine.__main__ import main
from engine.profiles import EXTRA_ROLES, MODEL_INFO, PROFILES

EXPECTED = {
    "ranker": "openai/clip-vit-base-patch32",
    "judge": "openai/clip-vit-large-patch14",
    "consistency": "facebook/dinov2-small",
}


@pytest.mark.parametrize("name", ["fast", "classic", "quality"])
def test_every_new_model_is_in_the_profile_and_listed_by_fetch_with_size_and_licence(name, monkeypatch, capsys):
    profile = PROFILES[name]
    assert {role: profile.model(role) for role in EXPECTED} == EXPECTED
    # SD 1.5 based profiles have the published IP-Adapter; SD-Turbo (SD 2.1) has none and shares attention.
    sd15 = profile.model("illustrator").startswith("stable-diffusion-v1-5/")
    assert profile.model("ip_adapter") == ("h94/IP-Adapter" if sd15 else "")
    assert profile.reference_methods()[0] == ("ip_adapter" if sd15 else "shared_attention")

    fetched: list[tuple[str, str]] = []
    monkeypatch.setattr(fetch, "is_offline", lambda: False)
    monkeypatch.setattr(fetch, "fetch_model", lambda role, ref, variant: fetched.append((role, ref)))
    assert main(["fetch", "--profile", name, "--extras"]) == 0
    listed = capsys.readouterr().err
    for role in EXTRA_ROLES:
        ref = profile.model(role)
        if not ref:
            continue
        size, licence = MODEL_INFO[ref]
        assert size.startswith("about ") and licence in {"MIT", "Apache-2.0"}
        assert f"  {role}: {ref}, {size}, licence {licence}" in listed
        assert (role, ref) in fetched
    assert [role for role, _ in fetched if role in EXTRA_ROLES] == [r for r in EXTRA_ROLES if profile.model(r)]


def test_without_extras_fetch_lists_them_and_says_how_to_get_them(monkeypatch, capsys):
    fetched: list[str] = []
    monkeypatch.setattr(fetch, "is_offline", lambda: False)
    monkeypatch.setattr(fetch, "fetch_model", lambda role, ref, variant: fetched.append(role))
    assert main(["fetch", "--profile", "fast"]) == 0
    assert "not fetched: add --extras, or download them from the studio's Settings" in capsys.readouterr().err
    assert not set(fetched) & set(EXTRA_ROLES)


def test_the_extras_size_sums_the_known_sizes_and_is_unknown_for_a_model_set_by_hand():
    import dataclasses

    fast, classic = PROFILES["fast"], PROFILES["classic"]
    assert fetch.extras_size(fast) == "about 2.4 GB"  # CLIP B/32 0.6 + CLIP L/14 1.7 + DINOv2-small 0.09
    assert fetch.extras_size(classic) == "about 5.0 GB"  # and the IP-Adapter with its image encoder, 2.6
    assert fetch.extras_size(fast, ["consistency"]) == "about 90 MB"
    assert fetch.extras_size(fast, []) == ""
    assert fetch.extras_size(PROFILES["tiny"]) == ""  # built locally, nothing to download
    by_hand = dataclasses.replace(fast, models={**fast.models, "judge": "someone/own-clip"})
    assert fetch.extras_size(by_hand) == ""


def test_the_ip_adapter_counts_as_downloaded_once_its_files_are_in_the_cache(tmp_path, monkeypatch):
    """The IP-Adapter repository has no config at its top (its files are in models/), so is_downloaded looks for
    the files its loader reads: the adapter's weights and the image encoder's. The encoder's small config arrives
    first; with it alone (an interrupted download) the adapter is not downloaded yet."""
    from huggingface_hub import constants

    from engine.profiles import is_downloaded

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert not is_downloaded("h94/IP-Adapter")
    repo = tmp_path / "models--h94--IP-Adapter"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    encoder = repo / "snapshots" / ("0" * 40) / "models" / "image_encoder"
    encoder.mkdir(parents=True)
    (encoder / "config.json").write_text("{}")
    assert not is_downloaded("h94/IP-Adapter")  # the weights never came
    (encoder.parent / "ip-adapter_sd15.safetensors").write_bytes(b"")
    assert not is_downloaded("h94/IP-Adapter")  # nor the image encoder's
    (encoder / "model.safetensors").write_bytes(b"")
    assert is_downloaded("h94/IP-Adapter")


def test_fetch_takes_every_file_the_ip_adapter_counts_as_downloaded_by():
    """What is_downloaded looks for is what `fetch` downloads (else a finished download would never count)."""
    from fnmatch import fnmatch

    from engine.profiles import IP_ADAPTER_MARKERS

    for marker in IP_ADAPTER_MARKERS:
        assert any(fnmatch(marker, pattern) for pattern in fetch.IP_ADAPTER_FILES), marker
