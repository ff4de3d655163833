"""Experts for MiniWoB++ tasks: what is left to do, read from the page and the task's fields.

An expert gets the page as it is now (:class:`~mmopsd.envs.miniwob_page.Page`: the DOM
elements, the task's fields and the actions taken so far this episode) and returns the
actions, in mmopsd's grammar (``click_element(ref)``, ``click_text("words")``,
``type("text")``, ``press("key")``), that finish the task from here. Where the task names an
element by its words (click-button's "cancel", click-tab's "Tab #2") and ``click_text`` of
those words picks that element (:func:`~mmopsd.envs.miniwob_page.named`), the expert clicks it
by those words. It is asked again after every step, so a plan that depends on what a click
reveals (a tab's links, a menu's items) names only the actions it can see; an expert never
reads the page's hidden answer, only what the agent could read, plus the task's parsed fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mmopsd.envs.miniwob_page import Page, checked, click, fill, submit, typed

Expert = Callable[["Page"], list[str]]
EXPERTS: dict[str, Expert] = {}


def expert(*tasks: str) -> Callable[[Expert], Expert]:
    """Register a function as the expert of ``tasks``."""

    def add(fn: Expert) -> Expert:
        for task in tasks:
            EXPERTS[task] = fn
        return fn

    return add


# ------------------------------------------------------------------------------ experts
@expert("click-button", "click-link", "unicode-test", "click-dialog-2")
def click_named(page: Page) -> list[str]:
    """Click the element whose text is the target (``x``: a dialog's close button)."""
    target = page.fields.get("target", "")
    if target == "x":
        close = page.one(cls="ui-dialog-titlebar-close")
        return [click(close)] if close else []
    hits = [e for e in page.find(target) if e["tag"] != "t"]
    buttons = [e for e in hits if e["tag"] in ("button", "a")]
    return [page.click_by_text((buttons or hits)[0])] if hits else []


@expert("click-dialog")
def close_dialog(page: Page) -> list[str]:
    """Click the dialog's close button."""
    close = page.one(cls="ui-dialog-titlebar-close")
    return [click(close)] if close else []


@expert("click-test")
def click_me(page: Page) -> list[str]:
    """Click the one button."""
    b = page.one("Click Me!", "button")
    return [click(b)] if b else []


@expert("click-test-2")
def click_one(page: Page) -> list[str]:
    """Click button ONE."""
    b = page.one("ONE", "button")
    return [page.click_by_text(b)] if b else []


@expert("click-button-sequence")
def one_then_two(page: Page) -> list[str]:
    """Click ONE, then TWO."""
    one, two = page.one("ONE", "button"), page.one("TWO", "button")
    if one is None or two is None:
        return []
    first = [] if page.clicked(one) else [page.click_by_text(one)]
    return [*first, page.click_by_text(two)]


@expert("click-checkboxes", "click-checkboxes-large", "click-checkboxes-transfer")
def tick_boxes(page: Page) -> list[str]:
    """Tick exactly the named boxes, then Submit."""
    wanted = {v.strip().lower() for k, v in page.fields.items() if k.startswith("target")}
    out = []
    for box in page.find(tag="input_checkbox"):
        if checked(box) != (page.label_of(box).lower() in wanted):
            out.append(click(box))
    return out + submit(page)


@expert("click-option")
def pick_radio(page: Page) -> list[str]:
    """Choose the named radio button, then Submit."""
    target = page.fields.get("target", "").strip().lower()
    for radio in page.find(tag="input_radio"):
        if page.label_of(radio).lower() == target:
            return ([] if checked(radio) else [click(radio)]) + submit(page)
    return []


@expert("click-collapsible", "click-collapsible-nodelay")
def expand_then_submit(page: Page) -> list[str]:
    """Open the section (its Submit button shows), then Submit."""
    header = page.one(tag="h3")
    if header is None:
        return []
    if "ui-accordion-header-active" not in header["classes"].split():
        return [click(header)]
    return submit(page)


@expert("click-collapsible-2", "click-collapsible-2-nodelay", "click-tab-2", "click-tab-2-easy",
        "click-tab-2-medium")  # fmt: skip
def search_sections(page: Page) -> list[str]:
    """Click the target link if it shows; else open the next closed section or tab not yet
    opened (an open one is already searched). A section that was just clicked may still be
    sliding open: its panel is clicked once (nothing happens) to let it finish."""
    target = page.fields.get("target", "")
    link = next((e for e in page.find(target) if "alink" in e["classes"].split()), None)
    if link is not None:
        return [click(link)]
    heading = re.compile(r"\s*(Section|Tab) #\d+\s*")
    headers = [e for e in page.elements if e["tag"] != "t" and heading.fullmatch(e["text"])]
    panel = page.one(cls="ui-accordion-content-active")
    if panel is not None and any(page.done[-1:] == [click(h)] for h in headers):
        return [click(panel)]
    for e in headers:
        holder = page.parent(e) if e["tag"] == "a" else e  # a tab's <li>, a section's <h3>
        classes = (holder or e)["classes"].split()
        if "ui-tabs-active" in classes or "ui-accordion-header-active" in classes:
            continue
        if not page.clicked(e):
            return [click(e)]
    return []


@expert("click-tab")
def click_tab(page: Page) -> list[str]:
    """Click the tab named by the target number."""
    target = page.fields.get("target", "")
    tab = next((e for e in page.find(tag="a") if e["text"].strip() == f"Tab #{target}"), None)
    return [page.click_by_text(tab)] if tab else []


@expert("focus-text")
def focus_box(page: Page) -> list[str]:
    """Click the text box."""
    box = page.one(tag="input_text")
    return [] if box is None or box["focused"] else [click(box)]


@expert("focus-text-2")
def focus_nth(page: Page) -> list[str]:
    """Click the n-th text box from the top."""
    boxes = sorted(page.find(tag="input_text"), key=lambda e: (e["box"][1], e["box"][0]))
    n = int(page.fields.get("target", "1")) - 1
    if not 0 <= n < len(boxes):
        return []
    return [] if boxes[n]["focused"] else [click(boxes[n])]


@expert("enter-text", "enter-text-dynamic")
def enter_text(page: Page) -> list[str]:
    """Type the target into the text field, then Submit."""
    box = page.one(tag="input_text")
    return (fill(page, box, page.fields.get("target", "")) + submit(page)) if box else []


@expert("enter-text-2")
def enter_text_cased(page: Page) -> list[str]:
    """Type the text in the asked case, then Submit."""
    text = page.fields.get("text", "")
    text = text.upper() if page.fields.get("case", "").lower() == "upper" else text.lower()
    box = page.one(tag="input_text")
    return (fill(page, box, text) + submit(page)) if box else []


@expert("enter-password")
def enter_password(page: Page) -> list[str]:
    """The password into both fields, then Submit."""
    out = []
    for box in page.find(tag="input_password"):
        out += fill(page, box, page.fields.get("target", ""))
    return out + submit(page)


@expert("login-user", "login-user-popup")
def log_in(page: Page) -> list[str]:
    """Close a popup if one shows (Cancel keeps the page), then user name, password, Login."""
    cancel = page.one("Cancel", "button", id="popup-cancel")
    if cancel is not None:
        return [click(cancel)]
    user, password = page.one(id="username"), page.one(id="password")
    if user is None or password is None:
        return []
    out = fill(page, user, page.fields.get("username", ""))
    out += fill(page, password, page.fields.get("password", ""))
    login = page.one(tag="button", id="subbtn")  # "Login", or "OK" beside a popup's own "OK"
    return out + ([click(login)] if login else [])


@expert("choose-list")
def choose_from_list(page: Page) -> list[str]:
    """Focus the list, type the item's name (a focused list selects what is typed), then
    Submit."""
    target = page.fields.get("target", "")
    select = page.one(tag="select")
    if select is None:
        return []
    if typed(target) in page.done:  # a list's choice is not in the DOM: trust the typing
        return submit(page)
    return [*([] if select["focused"] else [click(select)]), typed(target), *submit(page)]


@expert("use-autocomplete", "use-autocomplete-nodelay")
def autocomplete(page: Page) -> list[str]:
    """Type the beginning, then click the suggestion that ends right, then Submit."""
    start, end = page.fields.get("start", ""), page.fields.get("end", "")
    box = page.one(id="tags")
    if box is None:
        return []
    items = [e for e in page.elements if "ui-menu-item" in e["classes"]
             or "ui-menu-item-wrapper" in e["classes"]]  # fmt: skip
    good = [e for e in items if e["text"].startswith(start) and e["text"].endswith(end)]
    value = box["value"]
    if value.startswith(start) and value.endswith(end) and len(value) > len(start):
        return submit(page)
    if good:
        return [click(good[0]), *submit(page)]
    if box["value"] == start:  # the suggestions come after a delay: click the box and look again
        return [click(box)]
    return fill(page, box, start)


@expert("enter-date")
def enter_date(page: Page) -> list[str]:
    """Type the date's digits (month, day, year) into the date field, then Submit."""
    target = page.fields.get("target", "")
    digits = re.sub(r"\D", "", target)
    box = page.one(tag="input_date")
    if box is None:
        return []
    m, d, y = ([*target.split("/"), "", "", ""])[:3]
    if box["value"] == f"{y}-{m}-{d}":
        return submit(page)
    return ([] if box["focused"] else [click(box)]) + [typed(digits)] + submit(page)


@expert("simple-arithmetic")
def arithmetic(page: Page) -> list[str]:
    """Work out ``a op b`` and type the answer, then Submit."""
    problem = next((e["text"] for e in page.elements if re.search(r"\d\s*[-+x*]\s*\d",
                                                                  e["text"])), "")  # fmt: skip
    found = re.search(r"(-?\d+)\s*([-+x*])\s*(-?\d+)", problem)
    box = page.one(tag="input_text")
    if not found or box is None:
        return []
    a, op, b = int(found.group(1)), found.group(2), int(found.group(3))
    answer = a + b if op == "+" else a - b if op == "-" else a * b
    return fill(page, box, str(answer)) + submit(page)


@expert("simple-algebra")
def algebra(page: Page) -> list[str]:
    """Solve ``x + a = b`` (or ``x - a``, ``a + x``, ``a - x``) and type x, then Submit."""
    text = " ".join(e["text"] for e in page.elements if "x" in e["text"] and "=" in e["text"])
    box = page.one(tag="input_text")
    found = re.search(r"(-?\d*)\s*([-+])?\s*x\s*([-+])?\s*(-?\d*)\s*=\s*(-?\d+)", text)
    if not found or box is None:
        return []
    left, lop, rop, right, total = found.groups()
    total_n = int(total)
    if left:  # a +/- x = total
        x = total_n - int(left) if lop == "+" else int(left) - total_n
    else:  # x +/- a = total
        x = total_n - int(right) if rop == "+" else total_n + int(right)
    return fill(page, box, str(x)) + submit(page)


@expert("odd-or-even")
def odd_or_even(page: Page) -> list[str]:
    """Mark each number Odd or Even (the button beside it in its row), then Submit."""
    out = []
    for number in page.find(cls="display-number"):
        row = _ancestor(page, number, "row")
        if row is None or not re.fullmatch(r"-?\d+", number["text"].strip()):
            continue
        want = "even" if int(number["text"]) % 2 == 0 else "odd"
        hit = next((b for b in _descendants(page, row) if want in b["classes"].split()), None)
        if hit is not None and "selected" not in hit["classes"].split():
            out.append(click(hit))
    return out + submit(page)


@expert("find-word")
def nth_word(page: Page) -> list[str]:
    """Type the paragraph's n-th word (its letters), then Submit."""
    n = int(re.sub(r"\D", "", page.fields.get("target", "1")) or 1)
    para = next((e for e in page.find(tag="p") if e["text"].split()), None)
    box = page.one(tag="input_text")
    if para is None or box is None or n > len(para["text"].split()):
        return []
    word = re.sub(r"[^a-zA-Z]", "", para["text"].split()[n - 1])
    return fill(page, box, word) + submit(page)


@expert("read-table")
def read_table(page: Page) -> list[str]:
    """Type the value beside the asked label in the table, then Submit."""
    target = page.fields.get("target", "").strip().lower()
    cells = page.find(tag="td")
    box = page.one(tag="input_text")
    for i, cell in enumerate(cells[:-1]):
        if cell["text"].strip().lower() == target and box is not None:
            return fill(page, box, cells[i + 1]["text"].strip()) + submit(page)
    return []


MEDIA_ACTIONS = {
    "reply": "reply", "retweet": "retweet", "like": "like", "share via dm": "share",
    "copy link to tweet": "copy", "embed tweet": "embed", "mute": "menu-user",
    "block": "block-user", "report": "report",
}  # fmt: skip
MORE_MENU = {"share", "copy", "embed", "menu-user", "block-user", "report"}


@expert("social-media")
def social_media(page: Page) -> list[str]:
    """Click the asked control on a post of the asked user (a menu item: open the post's
    "more" menu first)."""
    user = page.fields.get("user", "").lstrip("@").strip().lower()
    kind = MEDIA_ACTIONS.get(page.fields.get("button", "").strip().lower())
    if kind is None:
        return []
    for name in page.find(f"@{user}"):
        post = _ancestor(page, name, "media")
        if post is None:
            continue
        inside = _descendants(page, post)
        control = next((e for e in inside if kind in e["classes"].split()), None)
        if control is not None:
            return [click(control)]
        more = next((e for e in inside if "more" in e["classes"].split()), None)
        if kind in MORE_MENU and more is not None:
            return [click(more)]
    return []


@expert("navigate-tree")
def navigate_tree(page: Page) -> list[str]:
    """Click the file or folder if it shows, else open the next closed folder."""
    target = page.fields.get("target", "")
    names = [e for e in page.elements if e["tag"] == "span"]
    hit = next((e for e in names if e["text"].strip() == target), None)
    if hit is not None:
        return [click(hit)]
    for e in names:
        item = page.parent(e)
        closed = item is not None and "expandable" in item["classes"].split()
        if "folder" in e["classes"].split() and closed and not page.clicked(e):
            return [click(e)]
    return []


def _ancestor(page: Page, e: dict[str, Any], cls: str) -> dict | None:
    while e is not None:
        if cls in e["classes"].split():
            return e
        e = page.parent(e)  # type: ignore[assignment]
    return None


def _descendants(page: Page, e: dict[str, Any]) -> list[dict[str, Any]]:
    out, todo = [], [e]
    while todo:
        kids = page.children(todo.pop())
        out += kids
        todo += kids
    return out


@expert("enter-time")
def enter_time(page: Page) -> list[str]:
    """Type hours, minutes and AM/PM into the time field, then Submit."""
    found = re.fullmatch(r"(\d+):(\d+)\s*([AP]M)", page.fields.get("target", "").strip())
    box = page.one(tag="input_time")
    if found is None or box is None:
        return []
    hour, minute, half = int(found.group(1)), found.group(2), found.group(3)
    hour24 = hour % 12 + (12 if half == "PM" else 0)
    if box["value"] == f"{hour24:02d}:{minute}":
        return submit(page)
    return [*([] if box["focused"] else [click(box)]), typed(f"{hour:02d}{minute}{half[0]}"),
            *submit(page)]  # fmt: skip


@expert("text-transform")
def captcha(page: Page) -> list[str]:
    """Type the distorted letters, then Submit."""
    holder = page.one(id="captcha")
    box = page.one(tag="input_text")
    if holder is None or box is None:
        return []
    letters = "".join(c["text"].strip() for c in page.children(holder))
    return fill(page, box, letters) + submit(page)


WIDGETS = {"radio": "input_radio", "checkbox": "input_checkbox", "text": "input_text",
           "textarea": "textarea", "button": "button"}  # fmt: skip


@expert("click-widget")
def click_widget(page: Page) -> list[str]:
    """Click a widget of the asked kind."""
    tag = WIDGETS.get(page.fields.get("target", "").strip().lower())
    hit = page.one(tag=tag) if tag else None
    return [click(hit)] if hit else []


SHAPE_BUTTONS = {"rect": "Rectangle", "circle": "Circle", "polygon": "Triangle"}


@expert("identify-shape")
def identify_shape(page: Page) -> list[str]:
    """Name the drawn figure: a letter, a number, or its shape."""
    svg = page.one(id="area_svg")
    if svg is None:
        return []
    answer = None
    for e in _descendants(page, svg):
        if e["tag"] == "text" and e["text"].strip():
            answer = "Number" if e["text"].strip().isdigit() else "Letter"
        elif e["tag"] in SHAPE_BUTTONS:
            answer = SHAPE_BUTTONS[e["tag"]]
    button = page.button(answer) if answer else None
    return [click(button)] if button else []


@expert("guess-number")
def guess_number(page: Page) -> list[str]:
    """Guess 5, then walk one at a time the way the feedback points, Submit after each."""
    box = page.one(tag="input_number")
    if box is None:
        return []
    text = " ".join(e["text"] for e in page.elements)
    higher = re.search(r"higher than\s*(\d+)", text)
    lower = re.search(r"lower than\s*(\d+)", text)
    guess = int(higher.group(1)) + 1 if higher else int(lower.group(1)) - 1 if lower else 5
    return fill(page, box, str(guess)) + submit(page)


@expert("grid-coordinate")
def grid_coordinate(page: Page) -> list[str]:
    """Click the grid point whose id is the asked coordinate."""
    x, y = page.fields.get("x", "").strip(), page.fields.get("y", "").strip()
    point = page.one(id=f"({x},{y})")
    return [click(point)] if point else []


MOVIE_LABELS = {"genre": ("genre",), "director": ("director",), "year": ("year", "date")}
SEARCH_WORDS = ("submit", "search", "go!", "go")


@expert("multi-layouts", "multi-orderings")
def movie_search(page: Page) -> list[str]:
    """Fill genre, director and year by the labels beside the fields, then submit."""
    out = []
    for box in page.find(tag="input_text"):
        label = _label_near(page, box).lower()
        key = next((k for k, words in MOVIE_LABELS.items() if any(w in label for w in words)),
                   None)  # fmt: skip
        if key is not None:
            out += fill(page, box, page.fields.get(key, ""))
    done = next((e for e in page.elements if e["text"].strip().lower() in SEARCH_WORDS
                 and e["tag"] != "t"), None)  # fmt: skip
    return out + ([click(done)] if done else [])


def _label_near(page: Page, box: dict[str, Any]) -> str:
    """The text of the nearest element beside ``box`` in its row (up to two levels up)."""
    holder = page.parent(box)
    for _ in range(2):
        if holder is None:
            return ""
        words = [e["text"] for e in _descendants(page, holder) if e["text"].strip()]
        if words:
            return " ".join(words)
        holder = page.parent(holder)
    return ""


@expert("search-engine")
def search_engine(page: Page) -> list[str]:
    """Search the query, go to the result's page, click the n-th result."""
    query = page.fields.get("query", "")
    rank = int(re.sub(r"\D", "", page.fields.get("rank", "1")) or 1)
    box, search = page.one(id="search-text"), page.one(id="search")
    if box is None or search is None:
        return []
    titles = page.find(tag="a", cls="search-title")
    if box["value"].lower() != query.lower() or not titles:
        return [*fill(page, box, query), click(search)]
    want_page, slot = (rank - 1) // 3 + 1, (rank - 1) % 3
    active = next((e for e in page.elements if "active" in e["classes"].split()), None)
    words = [e["text"].strip() for e in ([active, *_descendants(page, active)] if active else [])]
    shown = next((int(w) for w in words if w.isdigit()), 1)
    if shown != want_page:
        link = next((e for e in page.find(str(want_page)) if e["tag"] == "a"), None)
        return [click(link)] if link else []
    return [click(titles[slot])] if slot < len(titles) else []


@expert("email-inbox", "email-inbox-noscroll", "email-inbox-delete", "email-inbox-important",
        "email-inbox-reply", "email-inbox-forward")  # fmt: skip
def email_inbox(page: Page) -> list[str]:
    """Delete or star the sender's email from the inbox; reply or forward from the opened
    email (open it, open the reply or forward form, fill it, send)."""
    task, by = page.fields.get("task", "").lower(), page.fields.get("by", "")
    reply_text, forward_to = page.one(id="reply-text"), page.one(cls="forward-sender")
    if reply_text is not None:
        send = page.one(id="send-reply")
        return [
            *fill(page, reply_text, page.fields.get("message", "")),
            *([click(send)] if send else []),
        ]
    if forward_to is not None:
        send = page.one(id="send-forward")
        return [
            *fill(page, forward_to, page.fields.get("to", "")),
            *([click(send)] if send else []),
        ]
    opened = page.one(cls="email-reply")
    if opened is not None and task in ("reply", "forward"):
        button = opened if task == "reply" else page.one(cls="email-forward")
        return [click(button)] if button else []
    for sender in page.find(by, cls="email-sender"):
        row = _ancestor(page, sender, "email-thread")
        if row is None:
            continue
        if task in ("reply", "forward"):
            return [click(sender)]
        icon = "trash" if task == "delete" else "star"
        hit = next((e for e in _descendants(page, row) if icon in e["classes"].split()), None)
        return [click(hit)] if hit else []
    return []
