"""Chat mode's forced answer prefix against two small local stand-ins for OpenAI-compatible
servers: one that continues a final assistant message (as vLLM does with
``continue_final_message``) and one that answers 200 but ignores the field and starts a new
message (as llama.cpp's server was seen to). The real llama.cpp server is measured by
``benchmarks/llama_cpp_chat.py``."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai", reason="the serve extra is missing: pip install 'mmopsd[serve]'")

from mmopsd.engines.served import (
    PROBE_PREFIX,
    OpenAIEngine,
    continues_probe,
    with_instruction,
    without_restated,
)
from mmopsd.testing import tiny_text_policy


def _server(continues: bool):
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append(body)
            last = body["messages"][-1]
            probe = any(m["content"] == PROBE_PREFIX for m in body["messages"])
            if continues and body.get("continue_final_message") and last["role"] == "assistant":
                text = " five six" if probe else " blue door."
            else:  # a new message, restating what it was asked to begin with, if anything
                text = "One two three four five" if probe else "I open the blue door."
            answer = {
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
            }  # fmt: skip
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


@pytest.mark.parametrize("continues", [True, False])
def test_the_prefix_is_forced_or_asked_for_by_what_the_server_does(continues):
    server, requests = _server(continues)
    policy = tiny_text_policy()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        engine = OpenAIEngine(url, "m", policy.tokenizer, policy.eos_id, max_retries=0)
        conversations = [[{"role": "user", "content": "Which door?"}]] * 3
        out = engine.chat_generate(conversations, max_new_tokens=8, assistant_prefix="I open the")
    finally:
        server.shutdown()
    assert engine.continues() is continues
    probes = [r for r in requests if any(m["content"] == PROBE_PREFIX for m in r["messages"])]
    assert len(probes) == 1  # probed once, however many requests run at once
    tasks = [r for r in requests if r not in probes]
    asked = [r["messages"][-1]["content"].endswith("Which door? I open the") for r in tasks]
    assert asked == [not continues] * 3
    for gen in out:
        assert policy.tokenizer.decode(gen.ids[:-1]).strip() == "blue door."


def test_the_probe_reads_the_answer_not_the_status():
    assert continues_probe(" five six seven")
    assert continues_probe("Five, six")
    assert not continues_probe("One two three four five")  # a new message: ignored
    assert not continues_probe("")


def test_the_answer_start_goes_at_the_end_of_the_last_user_message_and_is_taken_back():
    text_only = [{"role": "system", "content": "s"}, {"role": "user", "content": "Which door?"}]
    got = with_instruction(text_only, "I open the")
    assert got[1]["content"] == "Which door? I open the"
    assert text_only[1]["content"] == "Which door?"  # the caller's messages are untouched
    parts = [{"role": "user", "content": [{"type": "text", "text": "Look."}]}]
    assert with_instruction(parts, "I open")[0]["content"][-1]["type"] == "text"
    assert without_restated('"I open the blue door."', "I open the") == " blue door."
    assert without_restated("i open the red door", "I open the") == " red door"
    assert without_restated("The key is red.", "I open the") == "The key is red."
