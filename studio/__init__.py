"""The Streamlit studio: screens that draw and dispatch, studio.actions (every change to the library, every job)
and studio.ui (what the screens share)."""
