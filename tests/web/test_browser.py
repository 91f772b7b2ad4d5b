"""The Flask chat page in a real headless Chromium: the answer streams in, survives a reload, Stop cancels from any tab.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package. Skipped only
when /usr/bin/chromedriver is missing outside CI; in CI (``CI`` set) these tests always run.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

from llmstreamer import ElizaStreamer, Message, open_session_store

CHROMEDRIVER = "/usr/bin/chromedriver"
if not os.path.exists(CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip("no /usr/bin/chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from .test_web_examples import load  # noqa: E402

SAD = "I am sad about my mother"
LONG = "I remember my childhood home very well"  # Eliza answers it in 13 words
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1000,800",
)


def words(text: str) -> list[str]:
    """Eliza's chunks of ``text``: each word with the space before it."""
    return re.findall(r"\s*\S+", text)


class SpyEliza(ElizaStreamer):
    """Eliza that also records the conversation each stream was asked to answer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asked: list[list[dict[str, Any]]] = []

    def stream_chat(self, messages: Any, callbacks: Any = None, **options: Any) -> Any:
        self.asked.append([m.to_dict() if isinstance(m, Message) else dict(m) for m in messages])
        return super().stream_chat(messages, callbacks, **options)


@pytest.fixture(scope="module")
def chat_example() -> ModuleType:
    """examples/flask_chat/app.py."""
    return load("flask_chat/app.py", "browser_flask_chat")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium with a fresh profile."""
    options = webdriver.ChromeOptions()
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` on a real threaded werkzeug server in a thread; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def screenshot_on_failure(driver: Any, tmp_path: Path) -> Iterator[None]:
    """On any failure, save a screenshot and the page source under ``tmp_path``."""
    try:
        yield
    except BaseException:
        driver.save_screenshot(str(tmp_path / "failure.png"))
        (tmp_path / "failure.html").write_text(driver.page_source, encoding="utf-8")
        print(f"screenshot: {tmp_path / 'failure.png'}")
        raise


LAST_ANSWER = """
const bubbles = document.querySelectorAll('.message.assistant');
if (!bubbles.length) return null;
const last = bubbles[bubbles.length - 1];
return [last.querySelector('.text').textContent, last.dataset.state];
"""


def poll(driver: Any, script: str, until: Any, timeout: float = 15.0) -> list[Any]:
    """Run ``script`` in the page until ``until(value)``; returns every distinct value seen, in order."""
    seen: list[Any] = []
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script)
        if not seen or seen[-1] != value:
            seen.append(value)
        if until(value):
            return seen
        assert time.monotonic() < deadline, f"gave up after {timeout} s; seen: {seen}"


SAVED = "return JSON.parse(localStorage.getItem('llmstreamer-chat'))"


def stored(store: Any) -> list[dict[str, Any]]:
    """The messages of the only session in ``store``, as the page's ``conversation`` holds them."""
    [info], _ = store.list()
    return [m.to_dict() for m in store.get(info.id).messages]


def send(driver: Any, text: str) -> None:
    """Type ``text`` into the prompt and press Send."""
    driver.find_element(By.ID, "prompt").send_keys(text)
    driver.find_element(By.ID, "send").click()


def test_answer_streams_in_and_the_history_is_kept(
    chat_example: ModuleType, browser: Any, recorder: Any, tmp_path: Path
) -> None:
    """The answer grows in the page word by word to Eliza's text; the next turn continues the stored history, which a reload draws again."""
    eliza = SpyEliza(seed=5, pace=0.1)
    same = ElizaStreamer(seed=5)  # the same answers, unpaced, for the expectations
    first = same.chat([{"role": "user", "content": SAD}])
    store = open_session_store(f"sqlite:///{tmp_path}/chat.db")
    app = chat_example.create_app(eliza, callbacks=recorder, store=store)
    with serving(app) as url, screenshot_on_failure(browser, tmp_path):
        browser.get(url)
        assert "eliza:eliza" in browser.find_element(By.ID, "model").text
        send(browser, SAD)
        seen = poll(browser, LAST_ANSWER, lambda v: v is not None and v[1] == "done")
        texts = [v[0] for v in seen if v is not None and v[0]]
        assert len(texts) >= 3, texts  # it grew in steps, not all at once
        assert all(b.startswith(a) for a, b in zip(texts, texts[1:])), texts
        assert texts[-1] == first.text
        assert browser.find_element(By.ID, "status").get_attribute("data-state") == "done"
        assert recorder.done.wait(5)
        usage = first.usage
        assert usage is not None
        assert recorder.calls == [
            *(("content", w) for w in words(first.text)),
            ("usage", usage.input_tokens, usage.output_tokens),
            ("finish", first.text),
        ]

        history = [{"role": "user", "content": SAD}, {"role": "assistant", "content": first.text}]
        assert browser.execute_script("return conversation") == history
        second_question = "My father hates me"
        second = same.chat([*history, {"role": "user", "content": second_question}])
        send(browser, second_question)
        poll(browser, LAST_ANSWER, lambda v: v is not None and v[1] == "done" and v[0] == second.text)
        assert eliza.asked == [history[:1], [*history, {"role": "user", "content": second_question}]]
        assert len(browser.find_elements(By.CSS_SELECTOR, ".message.user")) == 2
        browser.save_screenshot(str(tmp_path / "chat.png"))
        whole = [*history, {"role": "user", "content": second_question}, {"role": "assistant", "content": second.text}]
        assert browser.execute_script("return conversation") == whole == stored(store)
        assert browser.execute_script(SAVED) == {"active": None}  # the history is not kept in the browser
        browser.refresh()
        poll(browser, "return document.querySelectorAll('.message').length", lambda n: n == 4)
        assert browser.execute_script("return conversation") == whole


def test_stop_ends_the_stream_and_cancels_it_on_the_server(
    chat_example: ModuleType, browser: Any, recorder: Any, tmp_path: Path
) -> None:
    """Stop aborts the fetch mid-answer: the page shows the partial answer as stopped, and the server's stream is cancelled."""
    full = ElizaStreamer(seed=5).chat([{"role": "user", "content": LONG}]).text
    store = open_session_store(f"sqlite:///{tmp_path}/chat.db")
    app = chat_example.create_app(ElizaStreamer(seed=5, pace=0.3), callbacks=recorder, store=store)
    with serving(app) as url, screenshot_on_failure(browser, tmp_path):
        browser.get(url)
        send(browser, LONG)
        poll(browser, LAST_ANSWER, lambda v: v is not None and v[0] != "")
        browser.find_element(By.ID, "stop").click()
        shown, state = poll(browser, LAST_ANSWER, lambda v: v[1] != "streaming")[-1]
        assert state == "stopped"
        assert recorder.done.wait(5)  # the server-side stream ended...
        kinds = recorder.kinds()
        assert kinds[-1] == "error" and recorder.calls[-1] == ("error", "StreamCancelled")  # ...cancelled
        sent = [c[1] for c in recorder.calls[:-1]]
        assert recorder.calls == [*(("content", w) for w in sent), ("error", "StreamCancelled")]
        assert sent == words(full)[: len(sent)] and 1 <= len(sent) < len(words(full))
        assert "".join(sent).startswith(shown) and shown
        assert browser.find_element(By.CSS_SELECTOR, ".message.assistant .note").text == "Stopped."
        assert browser.find_element(By.ID, "status").get_attribute("data-state") == "stopped"
        assert browser.find_element(By.ID, "send").is_enabled()
        assert not browser.find_element(By.ID, "stop").is_enabled()
        assert browser.execute_script("return conversation") == [
            {"role": "user", "content": LONG},
            {"role": "assistant", "content": shown},
        ] == stored(store)  # the server kept the partial answer as the page shows it
        browser.save_screenshot(str(tmp_path / "stopped.png"))


@pytest.mark.parametrize("log", ["memory", "redis"])
def test_reload_mid_answer_shows_the_whole_answer_once(
    chat_example: ModuleType, browser: Any, recorder: Any, tmp_path: Path, request: pytest.FixtureRequest, log: str
) -> None:
    """Reloading the page mid-answer follows the same answer again: it ends whole, once, and was generated once."""
    from llmstreamer.web import ResumableStreams

    full = ElizaStreamer(seed=5).chat([{"role": "user", "content": LONG}]).text
    eliza = SpyEliza(seed=5, pace=0.15)
    streams = ResumableStreams(request.getfixturevalue("redis_url") if log == "redis" else None)
    store = open_session_store(request.getfixturevalue("redis_url") if log == "redis" else f"sqlite:///{tmp_path}/chat.db")
    app = chat_example.create_app(eliza, callbacks=recorder, streams=streams, store=store)
    with serving(app) as url, screenshot_on_failure(browser, tmp_path):
        browser.get(url)
        send(browser, LONG)
        before, _ = poll(browser, LAST_ANSWER, lambda v: v is not None and len(v[0].split()) >= 3)[-1]
        assert before != full
        browser.refresh()
        seen = poll(browser, LAST_ANSWER, lambda v: v is not None and v[1] == "done")
        assert seen[-1] == [full, "done"]
        assert len(browser.find_elements(By.CSS_SELECTOR, ".message.assistant")) == 1
        assert len(browser.find_elements(By.CSS_SELECTOR, ".message.user")) == 1
        assert browser.execute_script("return conversation") == [
            {"role": "user", "content": LONG},
            {"role": "assistant", "content": full},
        ]
        assert len(eliza.asked) == 1  # one generation, followed twice
        assert recorder.done.wait(5) and recorder.calls[-1] == ("finish", full)
        browser.refresh()  # the finished turn is kept, and nothing is followed any more
        poll(browser, "return document.querySelectorAll('.message').length", lambda n: n == 2)
        assert browser.find_element(By.CSS_SELECTOR, ".message.assistant .text").text == full
        assert browser.find_element(By.ID, "send").is_enabled()
        assert browser.execute_script("return conversation") == stored(store)
        assert browser.execute_script(SAVED) == {"active": None}


def test_stop_in_a_second_tab_cancels_the_answer(
    chat_example: ModuleType, browser: Any, recorder: Any, tmp_path: Path
) -> None:
    """A second tab follows the running answer; its Stop cancels it on the server and both tabs show it stopped."""
    full = ElizaStreamer(seed=5).chat([{"role": "user", "content": LONG}]).text
    app = chat_example.create_app(ElizaStreamer(seed=5, pace=0.3), callbacks=recorder)
    with serving(app) as url, screenshot_on_failure(browser, tmp_path):
        browser.get(url)
        send(browser, LONG)
        poll(browser, LAST_ANSWER, lambda v: v is not None and v[0] != "")
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        browser.get(url)
        poll(browser, LAST_ANSWER, lambda v: v is not None and v[0] != "" and v[1] == "streaming")
        browser.find_element(By.ID, "stop").click()
        shown, state = poll(browser, LAST_ANSWER, lambda v: v[1] != "streaming")[-1]
        assert state == "stopped"
        assert recorder.done.wait(5)
        sent = [c[1] for c in recorder.calls[:-1]]
        assert recorder.calls == [*(("content", w) for w in sent), ("error", "StreamCancelled")]
        assert 1 <= len(sent) < len(words(full)) and shown == "".join(sent)
        browser.switch_to.window(first)
        assert poll(browser, LAST_ANSWER, lambda v: v[1] != "streaming")[-1] == [shown, "stopped"]
        assert browser.find_element(By.CSS_SELECTOR, ".message.assistant .note").text == "Stopped."
        assert browser.find_element(By.ID, "send").is_enabled()
