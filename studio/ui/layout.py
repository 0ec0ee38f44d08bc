"""Layouts Streamlit has no element for: cards that wrap at a width they read whole in."""

from __future__ import annotations

import streamlit as st


def card_grid(key: str, min_rem: float):
    """A container for cards, in reading order, as many to a row as fit at min_rem or wider and all of a row's width
    shared evenly: three or four in a wide window, one or two in a narrow one. Cards in a row share its height.

    st.columns keeps its count whatever the window (three columns made a card 140 px wide at 800 px, and its buttons
    read "New pi…"), and Streamlit cannot know the window's width on the server. A wrapping row with fixed-width
    cards leaves a gap up to a card wide at the end of each row, and one with stretching cards squeezes them all
    into one row; so the wrapping row is laid out as a grid by one CSS rule on its key's class (st-key-KEY, which
    Streamlit documents). Without the rule the cards would still wrap, in reading order."""
    st.html(
        f"<style>.st-key-{key} {{ display: grid !important; "
        f"grid-template-columns: repeat(auto-fill, minmax(min({min_rem}rem, 100%), 1fr)); }}</style>"
    )
    return st.container(horizontal=True, gap="small", key=key)
