"""Storybook Studio: `streamlit run studio/Home.py`. The entry point: navigation and the shared sidebar."""

import streamlit as st

st.set_page_config(page_title="Storybook Studio", page_icon="📖", layout="wide", initial_sidebar_state="expanded")

from studio import state as S  # noqa: E402  (set_page_config first)
from studio import ui  # noqa: E402

ui.sync_project_from_url()

# The pages live in views/, not pages/: Streamlit still reads a pages/ folder beside the entry script as
# the old automatic page list, and a fresh load of any address that list lacks (/from-images) then
# opens a 'Page not found' dialog over the page.
pages = [
    st.Page(S.PAGE_LIBRARY, title="Library", icon=":material/local_library:", default=True),
    st.Page(S.PAGE_STORYBOARD, title="Storyboard", icon=":material/auto_stories:", url_path="storyboard"),
    st.Page(S.PAGE_FROM_IMAGES, title="From images", icon=":material/photo_library:", url_path="from-images"),
    st.Page(S.PAGE_EXPORT, title="Export", icon=":material/print:", url_path="export"),
    st.Page(S.PAGE_SETTINGS, title="Settings", icon=":material/settings:", url_path="settings"),
]
navigation = st.navigation(pages)
ui.sidebar()
navigation.run()
