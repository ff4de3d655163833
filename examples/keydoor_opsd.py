"""Self-distil SmolLM2-135M on KeyDoor with a frozen hint-reading teacher, step by step.

    python examples/keydoor_opsd.py [--steps 40] [--batch 16] [--eval-episodes 64]

The loop is spelled out here (the `mmopsd train` command runs the same one, with
checkpoints, resume and plots).
"""

from __future__ import annotations

import argparse

import torch
from mmopsd.agents import prompt_for
from mmopsd.privileged import build_provider

import mmopsd.losses as L
from mmopsd.evaluation import evaluate
from mmopsd.policies import load_policy
from mmopsd.rollout import Sampling, make_envs, rollout
from mmopsd.training.teachers import build_teacher

ap = argparse.ArgumentParser()
ap.add_argument("--steps", type=int, default=40)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--eval-episodes", type=int, default=64)
args = ap.parse_args()

torch.manual_seed(0)
env_id = "mmopsd/KeyDoor-v0"
policy = load_policy("smollm2-135m")
teacher = build_teacher("frozen", policy)  # the initial model, reading the hint
provider = build_provider("hint", template=" Hint: {hint}")
spec = prompt_for(env_id)  # assistant prefix "I open the"
loss_fn = L.get("forward_kl")
optimizer = torch.optim.AdamW(policy.model.parameters(), lr=2e-5)
envs = make_envs(env_id, args.batch, split="train", n_rooms=1)  # one room: one turn


def held_out() -> float:
    policy.model.eval()
    return evaluate(
        policy,
        env_id,
        spec,
        episodes=args.eval_episodes,
        env_kwargs={"n_rooms": 1},
        max_new_tokens=4,
        seed_offset=10_000_000,
    ).success


print(f"held-out success before: {held_out():.3f}")
for step in range(1, args.steps + 1):
    # 1. the student samples its own responses
    seeds = [step * args.batch + i for i in range(args.batch)]
    turns = [
        t for tr in rollout(policy, envs, seeds, spec, Sampling(max_new_tokens=4)) for t in tr.turns
    ]
    # 2. the teacher context: the student's messages plus the privileged hint
    teacher_prompts = [
        policy.encode(
            provider(t.messages, t.privileged).messages, assistant_prefix=t.assistant_prefix
        )
        for t in turns
    ]
    # 3. both score the identical response ids; 4. token-level divergence; 5. step
    responses = [t.response_ids for t in turns]
    policy.model.train()
    s = policy.score([t.prompt for t in turns], responses)
    t = teacher.score(teacher_prompts, responses)
    loss = loss_fn(s.logits, t.logits, s.mask)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad()
    success = sum(x.reward for x in turns) / len(turns)
    print(f"step {step:3d}  loss {loss.item():.4f}  rollout success {success:.2f}")
print(f"held-out success after: {held_out():.3f}")
