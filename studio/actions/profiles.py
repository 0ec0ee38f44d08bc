"""Which models a story is made with, whether they are on this computer, and downloading them.

A profile names a model for each role (engine.profiles). New stories record the default profile; a story's
own profile is used for its pictures and words unless STORYBOOK_PROFILE says otherwise (project_profile).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import InputError, ModelUnavailable
from engine.fetch import extras_size, get_downloads
from engine.profiles import (
    EXTRA_ROLES,
    PROFILES,
    ROLES,
    Profile,
    download_size_for,
    fetch_command,
    get_profile,
    is_downloaded,
    is_offline,
    load_settings,
    role_name,
    save_settings,
)
from storage import Library, ProjectView

TINY = "tiny"


def current_profile(name: str | None = None):
    """The default profile, which new projects record: STORYBOOK_PROFILE, else Settings, else 'fast'."""
    return get_profile(name)


@dataclass(frozen=True)
class ProfileChoice:
    profile: Profile
    note: str | None = None  # one sentence when the project's own profile could not be used


def project_profile(project: ProjectView) -> ProfileChoice:
    """The profile a project's pictures and story are made with.

    The rule: STORYBOOK_PROFILE, when set in the environment, wins for every project (tests and
    offline users set it to 'tiny'); otherwise the project's own profile is used, the default it
    recorded when it was made (Settings) or the one chosen in its Book details, so the same project
    is drawn and written with the same models again. A project whose profile no longer exists uses
    the default profile, and ``note`` says so.
    """
    if os.environ.get("STORYBOOK_PROFILE", "").strip():
        return ProfileChoice(current_profile())
    if project.profile in PROFILES:
        return ProfileChoice(current_profile(project.profile))
    default = current_profile()
    return ProfileChoice(
        default,
        f"This story was made with the '{project.profile}' profile, which no longer "
        f"exists, so the default '{default.name}' profile is used.",
    )


def missing_models(profile, roles: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(role, model reference) for each model of the profile that cannot load without the network."""
    missing = []
    for role in roles or ROLES:
        ref = profile.model(role)
        if ref and not is_downloaded(ref):
            missing.append((role, ref))
    return missing


def model_here(profile, role: str) -> bool:
    """Whether the profile names a model for `role` and it is on this computer (loading it needs no network)."""
    return bool(profile.model(role)) and not missing_models(profile, (role,))


def start_download(profile, extras: bool = False):
    """Start downloading the profile's models on a thread of their own (engine.fetch); every tab sees it.
    extras: its scoring and reference models (EXTRA_ROLES) instead, a download of their own."""
    return get_downloads().start(profile, extras=extras)


def download_status(profile_name: str, extras: bool = False):
    """The profile's download (engine.fetch.Download) since the studio started, or None (extras: the download of
    its scoring and reference models)."""
    return get_downloads().get(profile_name, extras=extras)


def missing_extras(profile) -> list[tuple[str, str]]:
    """(role, model reference) for each scoring and reference model of the profile not on this computer."""
    return missing_models(profile, EXTRA_ROLES)


def extras_download_size(profile) -> str:
    """What downloading the profile's missing scoring and reference models takes, in words ("" when not known)."""
    return extras_size(profile, [role for role, _ in missing_extras(profile)])


EXTRAS_BUTTON = "Download the scoring and reference models"


def has_gpu() -> bool:
    """Whether models run on a GPU here (engine.device.pick_device), which decides the weights downloaded."""
    from engine.device import pick_device
    from engine.errors import InputError

    try:
        return pick_device().is_gpu
    except InputError:
        return False


def half_weights_here() -> bool:
    """Whether this computer downloads and loads the half-size (fp16) weights: a GPU, or a processor that runs
    bf16 fast (engine.device, engine.fetch.weights_variant); else the full-precision ones."""
    from engine.device import pick_device
    from engine.errors import InputError
    from engine.fetch import weights_variant

    try:
        return weights_variant(pick_device()) == "fp16"
    except InputError:
        return False


def download_size_here(profile: Profile) -> str:
    """The download the profile's models take on this computer, in words: what decides it is the weights fetched
    (half-size on a GPU and on a processor that runs bf16 fast, full precision otherwise), not the GPU alone."""
    gpu, half = has_gpu(), half_weights_here()
    if gpu == half or not (profile.size_gpu and profile.size_cpu):
        return download_size_for(profile, gpu)
    if half:
        return (
            f"{profile.size_gpu} to download on this computer (it has no GPU, but its processor computes in "
            "bfloat16, so it takes the half-size weights)"
        )
    return f"{profile.size_cpu} to download on this computer (its GPU is set to compute in full precision)"


def downloads_possible() -> bool:
    """False when the studio was started offline (HF_HUB_OFFLINE): nothing can download until a restart."""
    return not is_offline()


def _what_to_do(profile, extras: bool = False) -> str:
    """How to get a missing model: Settings' download (of the scoring and reference models, for `extras`) or the
    terminal command that fetches it; offline, what must change first."""
    command = fetch_command(profile, extras=extras)
    if extras:
        # The studio draws this button beside every such sentence (ui.extras_download for the story's profile);
        # Settings offer it for the default profile only.
        try:
            default = current_profile().name
        except InputError:
            default = ""
        where = (
            "here or in Settings"
            if default == profile.name
            else f"here, or in Settings when '{profile.name}' is the default profile"
        )
        button = f'the "{EXTRAS_BUTTON}" button ({where})'
        if downloads_possible():
            return f"download it once with {button}, or run '{command}' in a terminal"
        return (
            "the studio was started in offline mode, so start it again without the HF_HUB_OFFLINE setting and use "
            f"{button}, or run '{command}' in a terminal"
        )
    if downloads_possible():
        how = f"download it once from Settings (or run '{command}' in a terminal)"
    else:
        how = (
            "the studio was started in offline mode, so start it again without the HF_HUB_OFFLINE setting and "
            f"download it from Settings (or run '{command}' in a terminal)"
        )
    # (Not for an extra role: the tiny profile's random-weight scores would mean nothing.)
    return f"{how}, or switch to the 'tiny' profile to try the studio without any download"


def missing_reason(profile, roles: Sequence[str], until: str = "") -> str | None:
    """One plain sentence on why work needing the `roles` models cannot run with `profile`; None when it can.
    `until`: what happens meanwhile ("pictures are drawn one per page, without scores"), said after "so"."""
    for role, _ref in missing_models(profile, roles):
        meanwhile = f", so {until}" if until else ""
        return (
            f"The {role_name(role)} of the '{profile.name}' profile is not on this computer "
            f"yet{meanwhile}: {_what_to_do(profile, extras=role in EXTRA_ROLES)}."
        )
    return None


def role_note(profile, role: str, unset: str, until: str = "") -> str | None:
    """None when the profile's model for `role` is on this computer; `unset` when the profile names none; else
    missing_reason's sentence (what to download, and how when the studio runs offline; `until`: what happens
    meanwhile)."""
    if model_here(profile, role):
        return None
    if not profile.model(role):
        return unset
    return missing_reason(profile, (role,), until)


def illustrate_ready(profile) -> str | None:
    """None when "Illustrate" can work with `profile`; else the sentence that says why not and what to do.

    For the storyboard: disable Illustrate/Redraw with this sentence as the help, and show ui.model_download.
    """
    if profile is None:
        return "No model profile can be used for this story: pick one in Book details."
    return missing_reason(profile, ("illustrator",))


def ensure_models(profile, roles: Sequence[str]) -> None:
    """ModelUnavailable, saying what to do, for the first model of `roles` not downloaded."""
    reason = missing_reason(profile, roles)
    if reason:
        raise ModelUnavailable(reason)


def ensure_illustrator(profile) -> None:
    """ModelUnavailable, saying what to do, when the profile's picture model is not downloaded."""
    ensure_models(profile, ("illustrator",))


def use_tiny_profile(lib: Library | None = None, project_id: int | None = None, expected_version: int | None = None):
    """The one-click offline try: the 'tiny' profile (tiny models built here, no download) becomes the default for
    new stories and, when a project is given, that story's own profile. The project (ProjectView) or None.
    OSError when the settings file cannot be written."""
    set_default_profile(TINY)
    if lib is not None and project_id is not None and expected_version is not None:
        return lib.update_project(project_id, expected_version, profile=TINY)
    return None


def tiny_possible() -> bool:
    """Whether switching to 'tiny' changes anything: STORYBOOK_PROFILE, when set to another profile, wins."""
    env = os.environ.get("STORYBOOK_PROFILE", "").strip()
    return not env or env == TINY


def set_default_profile(name: str) -> None:
    """Make `name` the profile new stories are made with (Settings). OSError when the settings file cannot be
    written; a story keeps the profile it was made with."""
    save_settings({**load_settings(), "profile": name})
