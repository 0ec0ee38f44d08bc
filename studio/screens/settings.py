"""Settings: the model profile, the device and its memory, the models loaded, and where the data lives."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core.paths import data_home
from engine.errors import InputError
from engine.profiles import EXTRA_ROLES, PROFILES, ROLE_WORDS, ROLES, TINY_PREFIX, is_downloaded, load_settings
from studio import actions, state, ui


def cell(words: str) -> str:
    return words[:1].upper() + words[1:]


def role_cells(role: str) -> dict[str, str]:
    """Which model a row is and what it does, in the words the notes and downloads use (engine.profiles.ROLE_WORDS)."""
    words = ROLE_WORDS.get(role)
    return {"Which": cell(words.name if words else role), "What it does": cell(words.does if words else role)}


def gb(nbytes: float) -> str:
    """Bytes as a person reads them: '2.3 GB', '0.4 GB', 'under 0.1 GB' (decimal gigabytes, as disks say)."""
    value = nbytes / 1e9
    return "under 0.1 GB" if value < 0.1 else f"{value:.1f} GB"


def model_name(ref: str) -> str:
    if ref.startswith(TINY_PREFIX):
        return f"tiny {ref.removeprefix(TINY_PREFIX).replace('_', ' ')} (for trying the app)"
    return ref


def where_it_is(ref: str) -> str:
    if ref.startswith(TINY_PREFIX):
        return "yes, built on this computer"
    if not is_downloaded(ref):
        return "not yet"
    return "yes, from its folder" if Path(ref).expanduser().is_dir() else "yes, downloaded"


def device_in_words(device) -> str:
    """'This computer's processor (no GPU found)', 'NVIDIA H200 graphics card', 'Apple graphics (Metal)'."""
    if device.device.startswith("cuda"):
        import torch

        try:
            return f"{torch.cuda.get_device_name(torch.device(device.device))} graphics card (GPU)"
        except (RuntimeError, AssertionError):
            return "Graphics card (GPU)"
    if device.device == "mps":
        return "Apple graphics (Metal GPU)"
    return "This computer's processor (no GPU found)"


st.title("Settings")
ui.show_flash()

# ------------------------------------------------------------------------------------------ profile
st.header(":material/neurology: Model profile", divider="orange")
try:
    current = actions.current_profile()
except InputError as exc:
    st.error(exc.message, icon=":material/error:")
    current = actions.current_profile("tiny")

env_profile = os.environ.get("STORYBOOK_PROFILE", "").strip()
saved = load_settings().get("profile")
names = list(PROFILES)
# The saved profile through index=, never through Session State: a radio given its value in Session State before it
# first showed could show its first option in the browser while the server held the saved one.
choice = st.radio(
    "The models new stories are made with",
    names,
    index=names.index(saved if saved in PROFILES else current.name),
    key=state.SETTINGS_PROFILE,
    format_func=lambda n: f"{n} — {PROFILES[n].description}",
)
chosen = PROFILES[choice]
st.caption(
    f"Download: {actions.download_size_here(chosen)}. Pictures of {chosen.width}×{chosen.height} pixels in "
    f"{chosen.steps} steps. "
    "Each story records the profile it was made with, so it is drawn and written with the same models "
    "again; change a story's profile in the storyboard's Book details."
)
if st.button("Use this profile", icon=":material/save:", type="primary", disabled=choice == saved):
    try:
        actions.set_default_profile(choice)
        ui.flash(
            "success",
            f"Saved: new stories are made with the '{choice}' profile. A story keeps the profile "
            "it was made with; change it in the storyboard's Book details.",
        )
        st.rerun()
    except OSError as exc:
        st.error(
            f"The settings file could not be written ({exc.strerror}): check that the data folder "
            f"is writable and has free space.",
            icon=":material/error:",
        )
if env_profile:
    st.info(
        f"The STORYBOOK_PROFILE environment variable is set to '{env_profile}', and it wins over the choice "
        f"saved here and over each story's own: every story is made with the '{current.name}' profile.",
        icon=":material/info:",
    )

# ------------------------------------------------------------------------------------------- device
with st.spinner("Looking at this computer…"):
    from engine.cache import get_cache
    from engine.device import memory_report, pick_device

    try:
        device = pick_device()
        memory = memory_report(device)
    except InputError as exc:
        device, memory = None, {}
        st.error(exc.message, icon=":material/error:")
    loaded = get_cache().report()
loaded_by_ref: dict[str, list[dict]] = {}
for item in loaded:
    key = item["key"]
    ref = key[1] if isinstance(key, tuple) and len(key) > 1 else str(key)
    loaded_by_ref.setdefault(str(ref), []).append(item)

st.markdown(f"**Models of the '{current.name}' profile** (the one in use)")
rows, missing = [], []
for role in ROLES:
    ref = current.model(role)
    if not ref:
        continue
    if not is_downloaded(ref):
        missing.append(role)
    held = loaded_by_ref.get(ref, [])
    rows.append(
        {
            **role_cells(role),
            "Model": model_name(ref),
            "On this computer": where_it_is(ref),
            "Loaded now": f"yes, {gb(sum(i['bytes'] for i in held))} of memory" if held else "no",
        }
    )
st.dataframe(rows, hide_index=True, width="stretch")
if missing:
    labels = [ROLE_WORDS[r].does if r in ROLE_WORDS else r for r in missing]
    ui.model_download(
        current,
        f"Not ready yet: the model that {'; the model that '.join(labels)}.",
        tip="To try the studio now without downloading anything, choose the **tiny** profile: tiny "
        "models built on this machine, which draw noise.",
    )
else:
    st.success("Every model of this profile is ready on this machine.", icon=":material/check_circle:")
extras = [role for role in EXTRA_ROLES if current.model(role)]
if extras:
    st.markdown(f"**Scoring and reference models of the '{current.name}' profile** (optional)")
    st.dataframe(
        [
            {
                **role_cells(role),
                "Model": model_name(current.model(role)),
                "On this computer": where_it_is(current.model(role)),
            }
            for role in extras
        ],
        hide_index=True,
        width="stretch",
    )
    if actions.missing_extras(current):
        ui.extras_download(current, offline_said=bool(missing))  # the box above said why nothing downloads
    else:
        st.success("The scoring and reference models of this profile are ready too.", icon=":material/check_circle:")
st.caption(
    "Models load the first time something is drawn or written, and stay loaded while memory allows, "
    "so the next picture starts at once."
)

st.header(":material/memory: This computer", divider="orange")
if device is not None:
    # One row that wraps in a narrow window: three columns cut the figures to "25.3 …" at 800 px.
    row = st.container(horizontal=True, gap="large")
    cols = [row.container(width="stretch"), row.container(width="content"), row.container(width="content")]
    cols[0].markdown(f"Pictures are drawn on\n\n**{device_in_words(device)}**")
    used, total = memory.get("used"), memory.get("total")
    where = "graphics card" if device.is_gpu else "computer"
    if used is not None and total:
        cols[1].metric(
            f"Memory of the {where}",
            f"{gb(total)}",
            help="The models of the profile must fit in it while they draw or write.",
        )
        cols[2].metric(
            "Free now",
            f"{gb(total - used)}",
            help="What everything running on this computer (the studio included) leaves free.",
        )
    if not device.is_gpu:
        st.caption(
            "No GPU was found, so pictures are drawn on the processor: expect minutes per picture with "
            "the full-size profiles, seconds with 'tiny'."
        )
    with st.expander("Details for the technically curious"):
        st.markdown(
            f"- Device: `{device.describe()}` (number format {str(device.dtype).removeprefix('torch.')}; "
            "set STORYBOOK_DEVICE and STORYBOOK_DTYPE to change them)\n"
            f"- Memory in use by everything on this {where}: {gb(used) if used is not None else 'unknown'}"
        )
        if loaded:
            st.dataframe(
                [
                    {
                        "What": " · ".join(str(k) for k in item["key"])
                        if isinstance(item["key"], tuple)
                        else str(item["key"]),
                        "Memory": gb(item["bytes"]),
                        "Working now": "yes" if item["pinned"] else "no",
                        "Took to load": f"{item['load_seconds']} s",
                        "Last used": f"{item['idle_seconds']} s ago",
                    }
                    for item in loaded
                ],
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption("No model is loaded now.")

# ------------------------------------------------------------------------------------------- books
st.header(":material/print: Printing", divider="orange")
emoji_font = actions.emoji_font()
if emoji_font is not None:
    st.markdown("Emoji in a story print in colour, drawn from this computer's emoji font:")
    st.code(str(emoji_font), language=None)
else:
    st.markdown(
        "Emoji are left out of printed books (the PDF says so): this computer has no colour emoji font "
        "the studio can use."
    )
    st.caption(
        "Install one (Debian and Ubuntu: `sudo apt install fonts-noto-color-emoji`), or set "
        "STORYBOOK_EMOJI_FONT to the file of one, then restart the studio."
    )

# --------------------------------------------------------------------------------------------- data
st.header(":material/folder: Your data", divider="orange")
home = data_home()
st.markdown("Stories, pictures, settings and downloaded tiny models are kept in this folder:")
st.code(str(home), language=None)
st.caption(
    "Back it up by copying the folder, or export single stories as bundles from the library. "
    "Set STORYBOOK_HOME to keep the data somewhere else."
)
