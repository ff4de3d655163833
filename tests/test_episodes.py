"""Episodes kept to be looked at: ``mmopsd eval --episodes-out`` writes every episode turn by
turn, MiniWoB++'s screenshots as PNG files, and an HTML page; the page renders in headless
Chromium and shows every turn and every screenshot."""

from __future__ import annotations

import json
import shutil

import pytest
from mmopsd.agents.prompting import prompt_for
from mmopsd.privileged import build_provider

from mmopsd.cli import main
from mmopsd.evaluation import evaluate
from mmopsd.evaluation.episodes import EpisodeRecorder, episode_markdown, read_episodes
from mmopsd.testing import tiny_text_policy

HAS_BROWSER = bool(shutil.which("chromium") and shutil.which("chromedriver"))


def test_every_episode_and_turn_is_kept_with_the_teachers_lines(tmp_path):
    recorder = EpisodeRecorder(tmp_path / "eps", "tiny on KeyDoor", build_provider("hint"))
    result = evaluate(
        tiny_text_policy(), "mmopsd/KeyDoor-v0", prompt_for("mmopsd/KeyDoor-v0"), episodes=3,
        max_turns=3, max_new_tokens=4, on_episode=recorder.add,
    )  # fmt: skip
    page = recorder.write({"success": result.success})
    episodes = read_episodes(tmp_path / "eps.jsonl")
    assert [e["episode"] for e in episodes] == [0, 1, 2]
    turns = [t for e in episodes for t in e["turns"]]
    assert len(turns) == round(result.mean_turns * 3)
    assert sum(not t["valid"] for t in turns) == round(result.invalid_rate * len(turns))
    prefix = prompt_for("mmopsd/KeyDoor-v0").assistant_prefix
    for t in turns:
        assert t["observation"] and t["response"].startswith(prefix)
        assert t["privileged"]["hint"] in "\n".join(t["teacher_lines"])  # the teacher's line
        assert t["privileged"]["hint"] not in t["observation"]  # only the teacher reads it
    html = page.read_text()
    for e in episodes:
        for t in e["turns"]:
            assert f"id='episode-{e['episode']}-turn-{t['turn']}'" in html
    assert "**episode 0**" in episode_markdown(episodes[0])


def test_a_folder_in_the_files_place_is_an_error_before_anything_plays(tmp_path, capsys):
    (tmp_path / "eps.jsonl").mkdir()
    code = main(["eval", "--episodes", "1", "--episodes-out", str(tmp_path / "eps")])
    assert code == 2 and "is a directory" in capsys.readouterr().err


@pytest.mark.skipif(
    not HAS_BROWSER, reason="needs Chromium: apt-get install chromium chromium-driver"
)
def test_miniwob_episodes_render_in_chromium_with_every_turn_and_screenshot(tmp_path):
    pytest.importorskip("miniwob")
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    policy = tiny_text_policy()
    policy.model.save_pretrained(tmp_path / "model")
    policy.tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "episodes" / "click-button"
    code = main(["eval", "--model", str(tmp_path / "model"), "--env",
                 "mmopsd/MiniWoB-click-button-v0", "--episodes", "2", "--max-turns", "2",
                 "--max-new-tokens", "4", "--episodes-out", str(out)])  # fmt: skip
    assert code == 0
    episodes = read_episodes(out)
    turns = [(e["episode"], t) for e in episodes for t in e["turns"]]
    assert len(episodes) == 2 and turns
    assert all(t["frames"] and "click_element" in t["privileged"].get("hint", "") for _, t in turns)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get(out.with_suffix(".html").resolve().as_uri())
        shown = driver.find_elements(By.CSS_SELECTOR, "div.turn")
        assert [s.get_attribute("id") for s in shown] == [
            f"episode-{n}-turn-{t['turn']}" for n, t in turns
        ]
        images = driver.find_elements(By.CSS_SELECTOR, "div.turn img")
        assert len(images) == sum(len(t["frames"]) for _, t in turns)
        assert all(
            driver.execute_script("return arguments[0].naturalWidth", i) == 160 for i in images
        )
        text = driver.find_element(By.TAG_NAME, "body").text
        assert all(t["response"].strip()[:20] in text for _, t in turns)
    finally:
        driver.quit()
    assert json.loads(json.dumps(episodes))  # plain JSON
