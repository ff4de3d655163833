"""Draw the README's benchmark pictures: what the agent sees, with privileged boxes marked.

python docs/pictures.py   # writes docs/miniwob.png, docs/babyai.png, docs/crafter.png
                          # and prints the text each agent reads
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import mmopsd.envs  # noqa: F401
import numpy as np
from PIL import Image, ImageDraw

HERE = Path(__file__).parent


def enlarge(image: np.ndarray, factor: int) -> Image.Image:
    """Nearest-neighbour enlargement, so small frames stay sharp."""
    picture = Image.fromarray(image)
    return picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)


def miniwob() -> str:
    env = gym.make("mmopsd/MiniWoB-click-button-v0", disable_env_checker=True)
    obs, info = env.reset(seed=4)
    picture = enlarge(obs["image"], 3)
    box = [3 * v for v in info["privileged"]["target_box"]]
    ImageDraw.Draw(picture).rectangle(box, outline=(230, 0, 0), width=3)
    picture.save(HERE / "miniwob.png")
    env.close()
    return obs["text"] + "\n\n(privileged) " + info["privileged"]["hint"]


def babyai() -> str:
    env = gym.make("mmopsd/BabyAI-GoToLocal-v0", image=True, tile_size=16)
    obs, info = env.reset(seed=2)
    enlarge(obs["image"], 2).save(HERE / "babyai.png")
    return obs["text"] + "\n\n(privileged) " + info["privileged"]["hint"]


def crafter() -> str:
    env = gym.make("mmopsd/Crafter-v0")
    obs, info = env.reset(seed=0)
    for _ in range(3):
        obs, *_, info = env.step(info["privileged"]["next_action"])
    enlarge(obs["image"], 4).save(HERE / "crafter.png")
    return obs["text"] + "\n\n(privileged) " + info["privileged"]["hint"]


if __name__ == "__main__":
    for name, draw in (("MiniWoB", miniwob), ("BabyAI", babyai), ("Crafter", crafter)):
        print(f"--- {name}\n{draw()}\n")
