"""Settings: the model profile, the device and its memory, the models loaded, and where the data lives."""

from __future__ import annotations

import os

import streamlit as st

from core.paths import data_home
from engine.errors import InputError
from engine.profiles import PROFILES, ROLES, is_downloaded, load_settings
from studio import actions, state, ui

ROLE_LABELS = {
    "illustrator": "Pictures",
    "captioner": "Picture captions",
    "storyteller": "Story writing",
    "preview_decoder": "Quick previews",
}

st.title("Settings")
ui.show_flash()

# ------------------------------------------------------------------------------------------ profile
st.subheader(":material/neurology: Model profile", divider="orange")
try:
    current = actions.current_profile()
except InputError as exc:
    st.error(exc.message, icon=":material/error:")
    current = actions.current_profile("tiny")

env_profile = os.environ.get("STORYBOOK_PROFILE", "").strip()
saved = load_settings().get("profile")
names = list(PROFILES)
choice_key = ui.init_widget(state.SETTINGS_PROFILE, saved if saved in PROFILES else current.name)
choice = st.radio(
    "The models new stories are made with",
    names,
    key=choice_key,
    format_func=lambda n: f"{n} — {PROFILES[n].description}",
)
chosen = PROFILES[choice]
st.caption(
    f"Download: {chosen.download_size}. {chosen.steps} steps, {chosen.width}×{chosen.height} pixels. "
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

st.markdown(f"**Models of the '{current.name}' profile** (the one in use)")
rows, missing = [], []
for role in ROLES:
    ref = current.model(role)
    if not ref:
        continue
    ready = is_downloaded(ref)
    if not ready:
        missing.append(role)
    rows.append(
        {
            "Used for": ROLE_LABELS.get(role, role),
            "Model": ref,
            "Ready": "yes, on this machine" if ready else "not downloaded",
        }
    )
st.dataframe(rows, hide_index=True, width="stretch")
if missing:
    labels = [ROLE_LABELS.get(r, r).lower() for r in missing]
    needs = ", ".join(labels[:-1]) + " and " + labels[-1] if len(labels) > 1 else labels[0]
    ui.model_download(
        current,
        f"{needs[0].upper()}{needs[1:]} cannot run yet.",
        tip="To try the studio now without downloading anything, choose the **tiny** profile: tiny "
        "models built on this machine, which draw noise.",
    )
else:
    st.success("Every model of this profile is ready on this machine.", icon=":material/check_circle:")

# ------------------------------------------------------------------------------------------- device
st.subheader(":material/memory: Device and memory", divider="orange")
with st.spinner("Looking at the device…"):
    from engine.device import memory_report, pick_device

    try:
        device = pick_device()
        memory = memory_report(device)
    except InputError as exc:
        device, memory = None, {}
        st.error(exc.message, icon=":material/error:")
if device is not None:
    cols = st.columns(3)
    cols[0].metric("Device", device.describe())
    used, total = memory.get("used"), memory.get("total")
    if used is not None and total:
        cols[1].metric("Memory in use", f"{used / 2**30:.1f} GiB", help=f"of {total / 2**30:.1f} GiB")
        cols[2].metric("Memory total", f"{total / 2**30:.1f} GiB")
    if not device.is_gpu:
        st.caption(
            "No GPU was found, so pictures are drawn on the processor: expect minutes per picture with "
            "the full-size profiles, seconds with 'tiny'."
        )

st.markdown("**Models loaded now**")
from engine.cache import get_cache  # noqa: E402  (imports torch; only this page needs it)

loaded = get_cache().report()
if loaded:
    st.dataframe(
        [
            {
                "Model": str(item["key"]),
                "Size": f"{item['bytes'] / 2**20:,.0f} MiB",
                "In use": "yes" if item["pinned"] else "no",
                "Load time": f"{item['load_seconds']} s",
                "Idle": f"{item['idle_seconds']} s",
            }
            for item in loaded
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.caption("None: models load the first time something is drawn, and stay loaded while memory allows.")

# ------------------------------------------------------------------------------------------- books
st.subheader(":material/print: Printing", divider="orange")
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
st.subheader(":material/folder: Your data", divider="orange")
home = data_home()
st.markdown("Stories, pictures, settings and downloaded tiny models are kept in this folder:")
st.code(str(home), language=None)
st.caption(
    "Back it up by copying the folder, or export single stories as bundles from the library. "
    "Set STORYBOOK_HOME to keep the data somewhere else."
)
