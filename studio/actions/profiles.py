"""Which models a story is made with, whether they are on this computer, and downloading them.

A profile names a model for each role (engine.profiles). New stories record the default profile; a story's
own profile is used for its pictures and words unless STORYBOOK_PROFILE says otherwise (project_profile).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import ModelUnavailable
from engine.fetch import get_downloads
from engine.profiles import (
    PROFILES,
    ROLES,
    Profile,
    fetch_command,
    get_profile,
    is_downloaded,
    load_settings,
    save_settings,
)
from storage import ProjectView


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


def start_download(profile):
    """Start downloading the profile's models on a thread of their own (engine.fetch); every tab sees it."""
    return get_downloads().start(profile)


def download_status(profile_name: str):
    """The profile's download (engine.fetch.Download) since the studio started, or None."""
    return get_downloads().get(profile_name)


_MODEL_NAMES = {"illustrator": "picture model", "captioner": "picture reader", "storyteller": "storyteller"}


def ensure_models(profile, roles: Sequence[str]) -> None:
    """ModelUnavailable, with the command that fetches it, for the first model of `roles` not downloaded."""
    for role, ref in missing_models(profile, roles):
        raise ModelUnavailable(
            f"The {_MODEL_NAMES.get(role, role)} model of the '{profile.name}' profile ({ref}) is not downloaded "
            f"yet: run '{fetch_command(profile)}' in a terminal once, or choose the 'tiny' profile (in the "
            f"storyboard's Book details, or in Settings for new stories) to try the studio offline."
        )


def ensure_illustrator(profile) -> None:
    """ModelUnavailable, with the command that fetches it, when the profile's picture model is not downloaded."""
    for _role, ref in missing_models(profile, ("illustrator",)):
        raise ModelUnavailable(
            f"The picture model of the '{profile.name}' profile ({ref}) is not downloaded yet: run "
            f"'{fetch_command(profile)}' in a terminal once, or choose the 'tiny' profile (in this story's "
            f"Book details, or in Settings for new stories) to try the studio offline."
        )


def set_default_profile(name: str) -> None:
    """Make `name` the profile new stories are made with (Settings). OSError when the settings file cannot be
    written; a story keeps the profile it was made with."""
    save_settings({**load_settings(), "profile": name})
