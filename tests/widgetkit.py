"""What a widget shows in a browser on its own, for AppTests that check it against what the server holds."""

from __future__ import annotations


def shows_what_it_holds(widget) -> bool:
    """Whether the browser, drawing this widget from its own default, shows the value the server holds, with no
    value sent from Session State on top (a value put in Session State before the widget first showed is sent
    that way, and a browser could show, and later send back, the widget's own default instead: the Pages box's
    "Sentences per page" did so)."""
    proto = widget.proto
    if proto.set_value:
        return False
    if hasattr(widget, "index"):  # a radio or a selectbox: its default is an option's position
        return proto.default == widget.index
    if isinstance(proto.default, (bool, int, float, str)):
        return proto.default == widget.value
    # A numeric slider: its default is a list (one value, or a range's two ends).
    held = widget.value
    return list(proto.default) == (list(held) if isinstance(held, (list, tuple)) else [held])
