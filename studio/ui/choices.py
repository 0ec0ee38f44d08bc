"""Choices shown as pictures: a sample per picture style, a thumbnail per PDF layout (studio.actions.samples)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from studio import actions


def picture_choices(
    options: Sequence[str],
    selected: str,
    label: Callable[[str], str],
    image: Callable[[str], bytes | None],
    *,
    columns: int = 4,
    key: str,
) -> None:
    """A row (or rows) of small pictures, one per option, each captioned with its label; the chosen one says so.
    What is chosen stays with the form's own widget (a radio or a select box beside it): this shows, not picks."""
    shown = [(o, image(o)) for o in options]
    if not any(png for _, png in shown):
        return
    with st.container(key=key):
        for start in range(0, len(shown), columns):
            cols = st.columns(columns)
            for col, (option, png) in zip(cols, shown[start : start + columns]):
                with col:
                    chosen = option == selected
                    name = label(option)
                    if png:
                        st.image(
                            png,
                            width="stretch",
                            caption=f"✓ {name} (chosen)" if chosen else name,
                            alt=f"Sample: {name}",
                        )
                    else:
                        st.caption(f"✓ {name} (chosen)" if chosen else name)


def style_gallery(selected: str, *, key: str = "styles.gallery", columns: int = 4) -> None:
    """A sample picture for every picture style (engine.prompts.STYLES), the chosen one marked."""
    from engine.prompts import STYLES

    picture_choices(list(STYLES), selected, lambda k: STYLES[k].label, actions.style_sample, columns=columns, key=key)


def layout_gallery(selected: str, labels: dict[str, str], page_size: str, orientation: str, *, key: str) -> None:
    """The exporter's own first page of a sample book in each layout, at the chosen page size, the chosen one
    marked; nothing when previews cannot be drawn here (no pdftoppm)."""
    picture_choices(
        list(labels),
        selected,
        labels.__getitem__,
        lambda layout: actions.layout_thumbnail(layout, page_size, orientation),
        columns=len(labels),
        key=key,
    )
