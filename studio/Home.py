"""Storybook Studio: `streamlit run studio/Home.py`. The entry point: navigation and the shared sidebar."""

import streamlit as st

st.set_page_config(page_title="Storybook Studio", page_icon="📖", layout="wide", initial_sidebar_state="expanded")

from studio import state, ui  # noqa: E402  (set_page_config first)

ui.sync_project_from_url()
ui.let_quick_jobs_finish()  # a picture started by the click before this run: drawn in it when it takes a moment

# The screens live in screens/, not pages/: Streamlit still reads a pages/ folder beside the entry script as
# the old automatic page list, and a fresh load of any address that list lacks (/from-images) then
# opens a 'Page not found' dialog over the screen. ("Screen", because a page is a page of a book.)
screens = [
    st.Page(state.SCREEN_LIBRARY, title="Library", icon=":material/local_library:", default=True),
    st.Page(state.SCREEN_STORYBOARD, title="Storyboard", icon=":material/auto_stories:", url_path="storyboard"),
    st.Page(state.SCREEN_FROM_IMAGES, title="From images", icon=":material/photo_library:", url_path="from-images"),
    st.Page(state.SCREEN_EXPORT, title="Export", icon=":material/print:", url_path="export"),
    st.Page(state.SCREEN_SETTINGS, title="Settings", icon=":material/settings:", url_path="settings"),
]
navigation = st.navigation(screens)
ui.sidebar(on_storyboard=navigation.url_path == "storyboard")
navigation.run()
