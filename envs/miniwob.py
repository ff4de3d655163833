"""MiniWoB++ (Farama ``miniwob``) in a real headless Chromium: ``mmopsd/MiniWoB-<task>-v0``.

The benchmark stays the benchmark: MiniWoB's own pages, reset, step and reward. On top of it:

- the observation is the task's instruction and the page's screenshot, with the visible DOM
  as text (``[ref] tag "text" at (x, y)``) for text-only models (``dom_text=False`` leaves it
  out);
- actions are text: ``click(x, y)`` (screenshot pixels), ``click_element(ref)``,
  ``click_text("words")`` (the element with those words), ``type("text")`` and
  ``press("key")`` (``<Enter>``, ``<Tab>``, ...); other text is answered with feedback and
  ``info["invalid"]`` without touching the page;
- ``info["privileged"]`` holds the target element's box (the element the task's expert clicks
  next, else the task's fields matched against the DOM) as ``target_box`` and ``boxes`` (so
  ``image_crop`` zooms on it), the DOM as an accessibility-style list under ``a11y`` (for
  ``reference``), the task's ``fields``, a ``hint`` in words, and ``next_action`` (the
  expert's, or a click on the target) where one was found, and in words that name no action
  (:mod:`~mmopsd.envs.miniwob_words`) the target as ``target_words`` and the expert's plan
  as subgoals, ``plan_words``; ``info["grounded"]`` says
  whether a click hit the target: ``click(x, y)`` inside its box, or ``click_element(ref)``
  naming it;
- one browser per environment, reused across resets; ``env.close()`` gives it back to a
  process-wide pool (:mod:`mmopsd.envs.browsers`), so the next environment made, of any task,
  starts without starting a browser. A browser that dies ends only its own episode
  (``info["error"]`` set, truncated), is never pooled, and is replaced on the next reset.

MiniWoB's pages end an episode after 10 s by default, far too short for a model generating on
a CPU: ``episode_seconds`` sets that limit (success counts the page's raw reward, not its
time-decayed one). Chromium comes from the system (``apt-get install chromium
chromium-driver``); nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import RecordConstructorArgs
from mmopsd.envs.browsers import pooled
from mmopsd.envs.miniwob_experts import EXPERTS
from mmopsd.envs.miniwob_page import Page as ExpertPage
from mmopsd.envs.miniwob_page import elements_of, named, typed
from mmopsd.envs.miniwob_words import element_words, plan_words
from mmopsd.envs.wrappers import DescribeObservations, SeedSplits, SuccessInfo, TextActions

# A call at the start of the answer; words after it (";", "." or a space first) are ignored.
CALL = re.compile(
    r"""(\w+)\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^()"']*?)\s*\)(?:[\s;,.].*)?$""",
    re.DOTALL,
)
INPUTS = {"input_text", "input_password", "textarea"}
CONTAINERS = {"body", "div", "form", "span", "p", "ul", "table", "tbody", "tr"}


def make_miniwob(
    task: str,
    split: str = "train",
    dom_text: bool = True,
    max_steps: int = 10,
    episode_seconds: float = 600.0,
) -> gym.Env:
    """A MiniWoB++ task as an mmopsd agent environment.

    Args:
        task: the MiniWoB task name (``click-button``, ``login-user``, ...).
        split: ``train``, ``validation`` or ``test`` (disjoint seed streams).
        dom_text: add the visible DOM as text to the observation.
        max_steps: actions before the episode is truncated.
        episode_seconds: the page's own time limit per episode.
    """
    miniwob = _miniwob()
    _find_chromium()
    quiet_agent_mistakes()
    gym.register_envs(miniwob)
    inner = _page(task)
    browser = Browser(inner, episode_seconds)
    env = TargetInfo(SuccessInfo(browser, fn=_raw_success), task)
    shape = tuple(inner.observation_space["screenshot"].shape)
    env = DescribeObservations(env, Page(dom_text), image_shape=shape)
    parser = Actions(inner.unwrapped, shown=browser.shown)
    env = TextActions(env, parser=parser, max_steps=max_steps)
    return SeedSplits(env, split)


# ------------------------------------------------------------------------------ browser
class Browser(gym.Wrapper, RecordConstructorArgs):
    """Keep one Chromium per environment alive: a step that fails because the browser died
    ends only that episode (``info["error"]``, truncated); the next reset starts a new one."""

    def __init__(self, env: gym.Env, episode_seconds: float = 600.0) -> None:
        RecordConstructorArgs.__init__(self, episode_seconds=episode_seconds)
        gym.Wrapper.__init__(self, env)
        self.episode_seconds = episode_seconds
        self._last: Any = None
        self.screenshots = True

    def skip_images(self) -> None:
        """Take no more screenshots (the agent reads the text alone): an observation's image
        is then blank. A screenshot costs the browser about 60 ms a step."""
        self.screenshots = False

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Restart a dead browser, set the page's time limit, then reset."""
        page = self.env.unwrapped
        if page.instance is None or page.instance.died:
            page._hard_reset_instance()
        page.instance.record_screenshots = self.screenshots
        # The countdown shown beside the task (outside what the agent sees) repaints every
        # second: a page that shows none idles at half the CPU, which generation gets back.
        page.instance.driver.execute_script(
            f"core.EPISODE_MAX_TIME = {int(self.episode_seconds * 1000)};"
            "core.countdownTimer = function () {};"
        )
        obs, info = self.env.reset(**kwargs)
        self._last = obs
        return obs, info

    def shown(self) -> list[dict[str, Any]]:
        """The elements of the page as the agent last saw it (empty before a reset)."""
        return [] if self._last is None else list(self._last["dom_elements"])

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Act in the page; a dead browser ends the episode with ``info["error"]``."""
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except Exception as err:  # the driver lost its browser: this episode is over
            self.env.unwrapped.instance.died = True
            error = f"the browser died ({type(err).__name__}: {str(err).splitlines()[0]})"
            return self._last, 0.0, False, True, {"error": error, "raw_reward": 0.0}
        if not terminated:
            self._last = obs
        return obs, reward, terminated, truncated, info


def _raw_success(reward: float, terminated: bool, info: dict[str, Any]) -> bool:
    return terminated and float(info.get("raw_reward", reward)) > 0


# ----------------------------------------------------------------------- observations
@dataclass(frozen=True)
class Page:
    """The instruction, the visible DOM as text (optional) and the screenshot."""

    dom_text: bool = True

    def __call__(self, obs: dict[str, Any], env: Any) -> dict[str, Any]:
        """The observation as mmopsd's agents read it."""
        text = f"Task: {obs['utterance']}" if obs["utterance"] else "Task: (episode over)"
        if self.dom_text:
            lines = [_element_line(e) for e in visible(obs["dom_elements"])]
            text += "\nPage elements:\n" + ("\n".join(lines) or "(none)")
        return {"text": text, "image": obs["screenshot"]}


def visible(elements: Any) -> list[dict[str, Any]]:
    """Elements worth naming: anything with text or a value, and every input or control."""
    out = []
    for e in elements:
        w, h = float(np.ravel(e["width"])[0]), float(np.ravel(e["height"])[0])
        if w <= 0 or h <= 0:
            continue
        if e["tag"] in CONTAINERS and not (e["text"] and _is_leaf(e)):
            continue
        out.append(e)
    return out


def box_of(element: dict[str, Any]) -> list[int]:
    """``[left, top, right, bottom]`` in screenshot pixels."""
    left, top = float(np.ravel(element["left"])[0]), float(np.ravel(element["top"])[0])
    w, h = float(np.ravel(element["width"])[0]), float(np.ravel(element["height"])[0])
    return [round(left), round(top), round(left + w), round(top + h)]


def _centre(box: list[int]) -> tuple[int, int]:
    return (box[0] + box[2]) // 2, (box[1] + box[3]) // 2


def _is_leaf(e: dict[str, Any]) -> bool:
    flags = np.ravel(e.get("flags", [0, 0, 0, 1]))
    return bool(flags[-1])


def _element_line(e: dict[str, Any]) -> str:
    x, y = _centre(box_of(e))
    words = f' "{e["text"]}"' if e["text"] else ""
    value = f" value={e['value']!r}" if e.get("value") else ""
    return f"[{e['ref']}] {e['tag']}{words}{value} at ({x}, {y})"


# -------------------------------------------------------------------- privileged info
class TargetInfo(gym.Wrapper, RecordConstructorArgs):
    """``info["privileged"]`` from the task's expert and its fields matched against the DOM,
    and ``info["grounded"]`` for clicks. The target is the element the expert clicks next
    (:func:`expert_click`); where it types, or the task has no expert, the element the task's
    fields name (:func:`target_elements`). ``next_action`` and ``expert_plan`` come from the
    expert alone: a task without one (``privileged["has_expert"]`` False; every registered
    task has one) never gets a guess in their place."""

    def __init__(self, env: gym.Env, task: str = "") -> None:
        RecordConstructorArgs.__init__(self, task=task)
        gym.Wrapper.__init__(self, env)
        self.expert = EXPERTS.get(task)
        self._target: list[int] | None = None
        self._target_ref: int | None = None
        self._done: list[str] = []  # this episode's actions, in the agent's grammar

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """Reset and locate the target."""
        obs, info = self.env.reset(**kwargs)
        self._done = []
        return obs, self._with_privileged(obs, info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Act; a click is grounded when it lands inside the target box."""
        target, target_ref = self._target, self._target_ref
        self._done.append(action_text(self.env.unwrapped, action))
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = self._with_privileged(obs, info)
        coords = _click_coords(self.env.unwrapped, action)
        ref = _clicked_ref(self.env.unwrapped, action)
        if coords is not None and target is not None:
            x, y = coords
            info["grounded"] = bool(target[0] <= x <= target[2] and target[1] <= y <= target[3])
        elif ref is not None and target_ref is not None:
            info["grounded"] = ref == target_ref  # the element click names the target
        return obs, reward, terminated, truncated, info

    def _with_privileged(self, obs: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
        plan = self._plan(obs)
        clicked = expert_click(obs["dom_elements"], plan[0]) if plan else None
        found = [clicked] if clicked is not None else target_elements(obs)
        privileged: dict[str, Any] = {
            "has_expert": self.expert is not None,
            "fields": {str(k): str(v) for k, v in obs.get("fields", ())},
            "a11y": "\n".join(_element_line(e) for e in visible(obs["dom_elements"])),
        }
        self._target = box_of(found[0]) if found else None
        self._target_ref = int(found[0]["ref"]) if found else None
        notes = [f"{k}: {v}" for k, v in privileged["fields"].items()]
        if found:
            privileged["target_box"] = self._target
            privileged["boxes"] = [box_of(e) for e in found]
            x, y = _centre(self._target)
            ref = found[0]["ref"]
            notes.insert(0, f"the target is element [{ref}] at ({x}, {y}): click_element({ref})")
        privileged["hint"] = "; ".join(notes) or "no target on this page"
        if found:
            privileged["target_words"] = element_words(found[0])
        if plan:
            privileged["next_action"], privileged["expert_plan"] = plan[0], plan
            clicked = [expert_click(obs["dom_elements"], a) for a in plan]
            privileged["plan_words"] = plan_words(plan, clicked)
        return {**info, "privileged": privileged}

    def _plan(self, obs: dict[str, Any]) -> list[str]:
        """The expert's remaining actions on this page ([] for a task without an expert)."""
        if self.expert is None or not obs["utterance"]:
            return []
        return self.expert(ExpertPage.of(obs, self._done)) or []


def target_elements(obs: dict[str, Any]) -> list[dict[str, Any]]:
    """The elements the task's fields name: text equal to a field value, else text holding it
    as a word ("Tab #3" for 3); where no field names an element (text to type), the first
    text box. Leaves first."""
    values = [str(v).strip().lower() for _, v in obs.get("fields", ()) if str(v).strip()]
    elements = [e for e in obs["dom_elements"] if e["tag"] != "body"]
    found = []
    for value in values:
        hit = _named(elements, value)
        if hit is not None:
            found.append(hit)
    if not found:
        found = [e for e in elements if e["tag"] in INPUTS][:1]
    return found


def expert_click(raw: list[dict[str, Any]], action: str) -> dict[str, Any] | None:
    """The element of ``raw`` (a page's ``dom_elements``) that ``action``, an expert's action,
    clicks: ``click_element(ref)`` or ``click_text("words")``; None for any other action."""
    found = CALL.match(action.strip())
    if not found:
        return None
    verb, args = found.group(1).lower(), found.group(2).strip()
    if verb == "click_element" and args.isdigit():
        ref: int | None = int(args)
    elif verb == "click_text" and len(args) >= 2 and args[0] == args[-1] and args[0] in "\"'":
        hit = named(elements_of(raw), args[1:-1])
        ref = None if hit is None else int(hit["ref"])
    else:
        return None
    return next((e for e in raw if int(e["ref"]) == ref), None)


def _named(elements: list[dict[str, Any]], value: str) -> dict[str, Any] | None:
    """The element whose text is ``value``, else the one holding it as a word; leaves first."""
    words = re.compile(rf"(^|\W){re.escape(value)}(\W|$)")
    texts = [str(e["text"]).strip().lower() for e in elements]
    for hits in (
        [e for e, t in zip(elements, texts) if t == value],
        [e for e, t in zip(elements, texts) if words.search(t)],
    ):
        if hits:
            return min(hits, key=lambda e: (not _is_leaf(e), e["tag"] in CONTAINERS))
    return None


def action_text(page: Any, action: Any) -> str:
    """A miniwob action written in the agent's grammar (``""`` for any other kind)."""
    from miniwob.action import ActionTypes

    if not isinstance(action, dict):
        return ""
    config = page.action_space_config
    kind = config.action_types[int(action["action_type"])]
    if kind == ActionTypes.CLICK_ELEMENT:
        return f"click_element({int(np.ravel(action['ref'])[0])})"
    if kind == ActionTypes.CLICK_COORDS:
        x, y = np.ravel(action["coords"])[:2]
        return f"click({round(float(x))}, {round(float(y))})"
    if kind == ActionTypes.TYPE_TEXT:
        return typed(str(action["text"]))
    if kind == ActionTypes.PRESS_KEY:
        return f'press("{config.allowed_keys[int(action["key"])]}")'
    return ""


def _clicked_ref(page: Any, action: Any) -> int | None:
    """The element ``ref`` of a ``click_element`` action, else None."""
    from miniwob.action import ActionTypes

    if not isinstance(action, dict):
        return None
    kind = page.action_space_config.action_types[int(action["action_type"])]
    return int(np.ravel(action["ref"])[0]) if kind == ActionTypes.CLICK_ELEMENT else None


def _click_coords(page: Any, action: Any) -> tuple[float, float] | None:
    from miniwob.action import ActionTypes

    if not isinstance(action, dict):
        return None
    kind = page.action_space_config.action_types[int(action["action_type"])]
    if kind != ActionTypes.CLICK_COORDS:
        return None
    x, y = np.ravel(action["coords"])[:2]
    return float(x), float(y)


# ------------------------------------------------------------------------------ actions
@dataclass
class Actions:
    """Text to MiniWoB actions: ``click(x, y)``, ``click_element(ref)`` (a number of the
    page as the agent saw it),
    ``click_text("words")`` (the element :func:`~mmopsd.envs.miniwob_page.named` picks
    among ``shown()``, the page as the agent saw it), ``type("text")``, ``press("key")``; None
    for anything else (a click outside the screenshot, or on words no element has, included).
    Parsers compare equal, so ``env.spec`` rebuilds the same stack."""

    page: Any = field(compare=False)
    shown: Callable[[], list[dict[str, Any]]] = field(default=list, compare=False)
    keys: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        self.keys = tuple(self.page.action_space_config.allowed_keys)

    def __deepcopy__(self, memo: dict) -> Actions:
        return self  # bound to its page's browser, which is never copied

    def __call__(self, text: str) -> dict[str, Any] | None:
        """The action ``text`` names, or None."""
        from miniwob.action import ActionTypes

        found = CALL.match(text.strip())
        if not found:
            return None
        verb, args = found.group(1).lower(), found.group(2).strip()
        if verb == "click":
            nums = re.fullmatch(r"(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)", args)
            if not nums:
                return None
            x, y = float(nums.group(1)), float(nums.group(2))
            cfg = self.page.action_space_config
            if not (0 <= x < cfg.screen_width and 0 <= y < cfg.screen_height):
                return None
            return self.page.create_action(ActionTypes.CLICK_COORDS, coords=np.array([x, y]))
        if verb == "click_element":
            refs = {e["ref"] for e in self.shown()}
            if not args.isdigit() or (refs and int(args) not in refs):
                return None  # no element of the page the agent saw has this number
            return self.page.create_action(ActionTypes.CLICK_ELEMENT, ref=int(args))
        quoted = re.fullmatch(r"""(["'])(.*)\1""", args, re.DOTALL)
        if quoted is None:
            return None
        value = quoted.group(2)
        if verb == "type" and 0 < len(value) <= 64:
            return self.page.create_action(ActionTypes.TYPE_TEXT, text=value)
        if verb == "press" and value in self.keys:
            return self.page.create_action(ActionTypes.PRESS_KEY, key=self.keys.index(value))
        if verb == "click_text":
            hit = named(elements_of(self.shown()), value)
            if hit is not None:
                return self.page.create_action(ActionTypes.CLICK_ELEMENT, ref=hit["ref"])
        return None


# ------------------------------------------------------------------------------- setup
def _page(task: str) -> gym.Env:
    """MiniWoB's own environment for ``task``, its browser from the shared pool."""
    spec = gym.spec(f"miniwob/{task}-v1")
    entry = spec.entry_point
    cls = gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry
    return pooled(cls)(**spec.kwargs)


class _AgentMistakes(logging.Filter):
    """Drops MiniWoB's own log lines about an action the page could not carry out (a click
    on an element that cannot be clicked, a key it does not know, a step after the episode
    ended): the agent's mistakes, which its episodes and invalid rate already show, not
    warnings for the user. MiniWoB logs them on the root logger."""

    MISTAKES = ("Clicking %s failed", "Invalid key %s", "Cannot call %s on instance")

    def filter(self, record: logging.LogRecord) -> bool:
        """False for MiniWoB's per-action lines; True for everything else."""
        ours = f"{os.sep}miniwob{os.sep}" in record.pathname
        return not (ours and str(record.msg).startswith(self.MISTAKES))


def quiet_agent_mistakes() -> None:
    """Install :class:`_AgentMistakes` on the root logger (once)."""
    root = logging.getLogger()
    if not any(isinstance(f, _AgentMistakes) for f in root.filters):
        root.addFilter(_AgentMistakes())


def _miniwob() -> Any:
    try:
        import miniwob
    except ImportError as err:
        raise ImportError("MiniWoB++ needs miniwob: pip install 'mmopsd[miniwob]'") from err
    return miniwob


def _find_chromium() -> None:
    """Point miniwob at the system's Chromium and ChromeDriver (never a download)."""
    if os.environ.get("MINIWOB_CHROME_BINARY") and os.environ.get("MINIWOB_CHROMEDRIVER"):
        return
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        raise FileNotFoundError(
            "MiniWoB++ needs Chromium and ChromeDriver: as root, apt-get install chromium "
            "chromium-driver (or set MINIWOB_CHROME_BINARY and MINIWOB_CHROMEDRIVER)"
        )
    os.environ["MINIWOB_CHROME_BINARY"] = browser
    os.environ["MINIWOB_CHROMEDRIVER"] = driver
