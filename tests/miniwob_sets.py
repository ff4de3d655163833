"""Which MiniWoB++ tasks the fast suite plays in a browser (the first twelve registered, one
of each kind of page), and the rest, played in the slow suite."""

import mmopsd.envs

FIRST = (
    "click-button", "click-link", "click-checkboxes", "click-tab", "click-dialog", "focus-text",
    "enter-text", "enter-password", "login-user", "choose-list", "use-autocomplete",
    "email-inbox",
)  # fmt: skip
MORE = tuple(t for t in mmopsd.envs.MINIWOB if t not in FIRST)
