"""ElizaStreamer: the DOCTOR script (ranking, reflection, cycling, memory), streaming, options, threads."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import llmstreamer
from llmstreamer import (
    ConfigurationError,
    Conversation,
    ElizaStreamer,
    Message,
    Model,
    StreamCallbacks,
    StreamCancelled,
    Usage,
)

SCRIPT = json.loads(
    (Path(llmstreamer.__file__).parent / "providers" / "eliza_doctor.json").read_text(encoding="utf-8")
)["scripts"]["eliza-1966-en"]


def _replies(word: str) -> list[str]:
    """Every reply of the keyword listing ``word`` (all its rules)."""
    for keyword in SCRIPT["keywords"]:
        if word in keyword["words"]:
            return [r for rule in keyword["rules"] for r in rule["replies"]]
    raise KeyError(word)


GREETINGS = _replies("hello")
DEFAULTS = SCRIPT["defaults"]
GOODBYES = SCRIPT["goodbyes"]


def converse(eliza: ElizaStreamer, texts: list[str], **options: Any) -> list[str]:
    """Send ``texts`` one by one, keeping the history; return Eliza's replies."""
    history: list[Message] = []
    replies = []
    for text in texts:
        history.append(Message.user(text))
        response = eliza.chat(history, **options)
        history.append(response.message)
        replies.append(response.text)
    return replies


def test_transcript_for_a_fixed_seed() -> None:
    """A whole conversation with seed 7 gives exactly these replies."""
    transcript = [
        ("Hello", "How do you do. Please tell me your problem."),
        ("Hi, I need help", "Suppose you got help soon."),  # a greeting does not beat content
        ("I am sad about my mother", "I'm sure it's not pleasant to be sad about your mother."),  # reflection
        ("My job is boring", "Does that suggest anything else which belongs to you?"),
        ("Sorry", "There is no need to be sorry here."),
        ("Sorry", "Please don't apologise."),  # the rule cycles to its next reassembly
        ("his history", "Earlier you mentioned your mother."),  # no greeting in "his": memory recalled
        ("Whatever", "Is that connected with the fact that your job is boring?"),  # the next memory
        ("Hmm", "I am not sure I understand you fully."),  # memory used up: a default reply
        ("I dreamed about my computer", "Why do you mention computers?"),  # computer outranks dream, i, my
        ("I never said goodbye to my father", "You say you never said goodbye to your father?"),  # no quit
        ("Hmm", "Let's go back to your computer."),
        ("Goodbye!", "Goodbye. I hope our talk has helped."),  # the whole message is a quit phrase
    ]
    replies = converse(ElizaStreamer(seed=7), [text for text, _ in transcript])
    assert replies == [reply for _, reply in transcript]


def test_highest_ranked_keyword_wins_wherever_it_is() -> None:
    """The keyword of highest rank answers, not the first one in the message or in the file."""
    eliza = ElizaStreamer(seed=1)
    cases = {
        "I dreamed about my computer": "Keyword 'computer' (rank 50)",
        "My computer and I had a dream": "Keyword 'computer' (rank 50)",
        "I had a dream about my mother": "Keyword 'dream' (rank 40)",
        "Hi, I need help": "Keyword 'i' (rank 10), pattern '* i @desire *'",
        "Hello there": "Keyword 'hello' (rank -1)",
        "My mother hates me": "Keyword 'family' (rank 8), pattern '* my @family *'",
    }
    for text, trace in cases.items():
        thinking = eliza.chat([Message.user(text)], reasoning="low").thinking
        assert thinking.startswith(trace), (text, thinking)


@pytest.mark.parametrize("seed", range(8))
def test_reflection_turns_pronouns_around(seed: int) -> None:
    """Captured words are reflected for every seed: my → your, I am → you are, you → I before a verb."""
    eliza = ElizaStreamer(seed=seed)
    assert "sad about your mother" in eliza.chat([Message.user("I am sad about my mother")]).text
    assert "I hate you" in eliza.chat([Message.user("I think you hate me")]).text
    assert "your mother hates you" in eliza.chat([Message.user("I believe my mother hates me")]).text


def test_rules_cycle_through_their_reassemblies() -> None:
    """The same rule used again gives the next reassembly in script order, wrapping around."""
    variants = _replies("sorry")
    replies = converse(ElizaStreamer(seed=3), ["Sorry"] * (len(variants) + 1))
    start = variants.index(replies[0])
    assert replies == [variants[(start + i) % len(variants)] for i in range(len(variants) + 1)]


def test_memory_is_recalled_once_oldest_first() -> None:
    """ "my ..." statements are recalled when nothing matches, oldest first, each only once."""
    replies = converse(ElizaStreamer(seed=5), ["My job is boring", "My cat died", "Hmm", "Hmm", "Hmm"])
    assert "your job is boring" in replies[2]
    assert "your cat died" in replies[3]
    assert replies[4] in DEFAULTS


def test_default_reply_when_nothing_matches_and_nothing_is_remembered() -> None:
    """A message with no keyword and no memory gets a default reply."""
    assert ElizaStreamer(seed=0).chat([Message.user("Hmm.")]).text in DEFAULTS


@pytest.mark.parametrize("text", ["his history", "the high road", "this is hilarious", "they say hey-ho"])
def test_greetings_match_whole_words_only(text: str) -> None:
    """Words that merely start like a greeting are not greetings."""
    expected_greeting = text == "they say hey-ho"  # "hey" is a whole word there
    reply = ElizaStreamer(seed=2).chat([Message.user(text)]).text
    assert (reply in GREETINGS) is expected_greeting


@pytest.mark.parametrize("text", ["Hi", "hello!", "Good morning.", "HEY"])
def test_greetings_alone_are_greeted(text: str) -> None:
    """A message that only greets gets a greeting."""
    assert ElizaStreamer(seed=2).chat([Message.user(text)]).text in GREETINGS


@pytest.mark.parametrize("text", ["bye", "Goodbye!", "see you later.", "  QUIT  "])
def test_quit_phrase_as_the_whole_message_says_goodbye(text: str) -> None:
    """A message that is only a quit phrase gets a goodbye, and is_quit says so."""
    eliza = ElizaStreamer(seed=4)
    assert eliza.chat([Message.user(text)]).text in GOODBYES
    assert eliza.is_quit(text)


@pytest.mark.parametrize("text", ["I never said goodbye to my father", "bye for now then", "I want to quit my job"])
def test_quit_word_inside_a_sentence_is_not_a_goodbye(text: str) -> None:
    """A quit word inside a longer message does not end the chat."""
    eliza = ElizaStreamer(seed=4)
    assert eliza.chat([Message.user(text)]).text not in GOODBYES
    assert not eliza.is_quit(text)


TEXTS = ["Hello", "I am sad about my mother", "My job is boring", "You are a computer", "Hmm", "Hmm", "Sorry"]


def test_a_seed_makes_answers_reproducible() -> None:
    """Two streamers with one seed agree; the seed option overrides the constructor's seed."""
    assert converse(ElizaStreamer(seed=11), TEXTS) == converse(ElizaStreamer(seed=11), TEXTS)
    assert converse(ElizaStreamer(seed=99), TEXTS, seed=11) == converse(ElizaStreamer(seed=11), TEXTS)
    assert converse(ElizaStreamer(seed=11), TEXTS) != converse(ElizaStreamer(seed=12), TEXTS)


def test_unseeded_streamer_picks_one_seed_and_keeps_it() -> None:
    """Without a seed, a streamer draws one seed and answers consistently with it."""
    eliza = ElizaStreamer()
    assert isinstance(eliza.seed, int)
    assert converse(eliza, TEXTS) == converse(ElizaStreamer(seed=eliza.seed), TEXTS)


def test_concurrent_streams_answer_like_sequential_ones() -> None:
    """Many concurrent streams on one streamer give the answers sequential streams give."""
    eliza = ElizaStreamer(seed=21)
    conversations = [TEXTS[i:] + TEXTS[:i] for i in range(len(TEXTS))] * 4
    expected = [converse(eliza, texts) for texts in conversations]
    with ThreadPoolExecutor(max_workers=16) as pool:
        got = list(pool.map(lambda texts: converse(eliza, texts), conversations))
    assert got == expected

    recorders = []
    handles = []
    for texts in conversations:  # and through stream_chat's own worker threads
        calls: list[str] = []
        recorders.append(calls)
        handles.append(eliza.stream_chat([Message.user(t) for t in texts], StreamCallbacks(on_content=calls.append)))
    for handle in handles:
        assert handle.wait(timeout=10)
    replies = ["".join(calls) for calls in recorders]
    assert replies == [eliza.chat([Message.user(t) for t in texts]).text for texts in conversations]


def test_streams_word_by_word_through_the_callbacks(recorder: Any) -> None:
    """Each word is one on_content call, then usage and finish, on a named worker thread."""
    handle = ElizaStreamer(seed=7).stream_chat([Message.user("I am sad about my mother")], recorder)
    assert handle.wait(timeout=10)
    assert recorder.calls == [
        ("content", "I'm"),
        ("content", " sure"),
        ("content", " it's"),
        ("content", " not"),
        ("content", " pleasant"),
        ("content", " to"),
        ("content", " be"),
        ("content", " sad"),
        ("content", " about"),
        ("content", " your"),
        ("content", " mother."),
        ("usage", 6, 14),
        ("finish", "I'm sure it's not pleasant to be sad about your mother."),
    ]
    assert len(recorder.threads) == 1 and recorder.threads.pop().startswith("llmstreamer-eliza-")
    response = handle.result()
    assert (response.provider, response.model, response.finish_reason) == ("eliza", "eliza-1966-en", "stop")


def test_cancel_while_pacing_ends_with_the_partial_answer(recorder: Any) -> None:
    """Cancelling during the pause between words ends at once with StreamCancelled and the words sent."""
    first_word = threading.Event()
    eliza = ElizaStreamer(seed=7, pace=30.0)

    class Callbacks:
        def on_content(self, text: str) -> None:
            recorder.on_content(text)
            first_word.set()

        def on_error(self, error: Any) -> None:
            recorder.on_error(error)

    handle = eliza.stream_chat([Message.user("I am sad about my mother")], Callbacks())
    assert first_word.wait(timeout=10)
    handle.cancel()
    assert handle.wait(timeout=10)
    assert recorder.calls == [("content", "I'm"), ("error", "StreamCancelled")]
    assert isinstance(recorder.error, StreamCancelled)
    assert recorder.error.partial is not None
    assert (recorder.error.partial.text, recorder.error.partial.finish_reason) == ("I'm", "cancelled")


def test_usage_is_estimated_from_characters() -> None:
    """Input counts the text of every message, output the answer, both as (chars + 3) // 4."""
    history = [Message.user("My job is boring"), Message.assistant("Your job is boring?"), Message.user("Yes")]
    response = ElizaStreamer(seed=7).chat(history)
    chars_in = len("My job is boring") + len("Your job is boring?") + len("Yes")
    assert response.usage == Usage((chars_in + 3) // 4, (len(response.text) + 3) // 4)


def test_max_tokens_cuts_the_answer_at_a_word() -> None:
    """max_tokens keeps the whole words that fit the estimate and finishes with length."""
    response = ElizaStreamer(seed=7).chat([Message.user("I am sad about my mother")], max_tokens=3)
    assert (response.text, response.finish_reason) == ("I'm sure", "length")
    assert response.usage is not None and response.usage.output_tokens <= 3


def test_stop_cuts_before_the_first_stop_sequence() -> None:
    """The answer ends before the earliest stop sequence, with finish reason stop."""
    response = ElizaStreamer(seed=7).chat([Message.user("I am sad about my mother")], stop=["sad", "sure"])
    assert (response.text, response.finish_reason) == ("I'm", "stop")


def test_reasoning_streams_eliza_reasoning_as_thinking(recorder: Any) -> None:
    """With reasoning set, the keyword, the pattern and the memory arrive as thinking first."""
    history = [Message.user("My job is boring"), Message.assistant("?"), Message.user("Ok")]
    handle = ElizaStreamer(seed=7).stream_chat(history, recorder, reasoning="medium")
    assert handle.wait(timeout=10)
    thinking = [c for c in recorder.calls if c[0] == "thinking"]
    assert thinking == [
        ("thinking", "No keyword matched.\n"),
        ("thinking", "Recalling what you said: your job is boring.\n"),
    ]
    assert recorder.kinds().index("content") > recorder.kinds().index("thinking")
    assert ElizaStreamer(seed=7).chat(history, reasoning="none").thinking == ""


@llmstreamer.tool
def lookup(word: str) -> str:
    """Look a word up.

    Args:
        word: The word.
    """
    return word


def test_options_a_user_would_pass_are_accepted() -> None:
    """Sampling options, system and tools are accepted (and ignored); the answer does not change."""
    eliza = ElizaStreamer(seed=7)
    plain = eliza.chat([Message.user("I am sad")]).text
    tuned = eliza.chat(
        [Message.system("Be nice."), Message.user("I am sad")],
        system="You are a therapist.",
        temperature=0.2,
        top_p=0.9,
        top_k=5,
        thinking_budget=100,
        tools=[lookup],
        tool_choice="auto",
        extra={"x": 1},
    )
    assert tuned.text == plain


def test_unsupported_options_raise_before_streaming() -> None:
    """Options Eliza cannot honour raise ConfigurationError naming the problem."""
    eliza = ElizaStreamer()
    with pytest.raises(ConfigurationError, match="response_format"):
        eliza.stream_chat([Message.user("Hi")], response_format={"type": "object"})
    with pytest.raises(ConfigurationError, match="tool_choice"):
        eliza.stream_chat([Message.user("Hi")], tools=[lookup], tool_choice="required")


@pytest.mark.parametrize(
    "messages, match",
    [
        ([Message.user("Hi"), Message.assistant("Hello")], "last message must be from the user"),
        ([Message.user("   ")], "no text"),
        ([Message.system("Be nice.")], "last message must be from the user"),
    ],
)
def test_a_conversation_eliza_cannot_answer_raises_before_streaming(messages: list[Message], match: str) -> None:
    """An empty last user message, or a last message not from the user, is a clear ConfigurationError."""
    with pytest.raises(ConfigurationError, match=match):
        ElizaStreamer().stream_chat(messages)


def test_provider_facts_and_models() -> None:
    """Eliza needs no key, defaults to the alias 'eliza', lists Model values and rejects unknown models."""
    eliza = llmstreamer.streamer("eliza")
    assert isinstance(eliza, ElizaStreamer)
    assert (eliza.provider, eliza.model, eliza.spec.requires_key) == ("eliza", "eliza", False)
    assert ElizaStreamer("eliza-1966-en").chat([Message.user("Hi")]).model == "eliza-1966-en"
    assert eliza.list_models() == [Model("eliza-1966-en", "eliza", -126230400, "eliza")]
    with pytest.raises(ConfigurationError, match="unknown eliza model 'eliza-2000'"):
        ElizaStreamer("eliza-2000")
    with pytest.raises(ConfigurationError, match="pace"):
        ElizaStreamer(pace=-1)
    with pytest.raises(ConfigurationError, match="seed"):
        ElizaStreamer(seed="7")  # type: ignore[arg-type]


def test_stream_iterator_yields_words_then_finish() -> None:
    """Streamer.stream yields the same words as events, ending with finish."""
    events = list(ElizaStreamer(seed=7).stream([Message.user("Sorry")]))
    assert [e.type for e in events] == ["content"] * 8 + ["usage", "finish"]
    assert "".join(e.text for e in events if e.type == "content") == "There is no need to be sorry here."
    assert events[-1].data.text == "There is no need to be sorry here."


def test_conversation_turns_fork_and_json_round_trip() -> None:
    """A Conversation keeps Eliza's history; a fork and a JSON round trip continue it the same way."""
    eliza = ElizaStreamer(seed=7)
    chat = Conversation(eliza)
    first = chat.send("I am sad about my mother").result(timeout=10)
    second = chat.send("My job is boring").result(timeout=10)
    assert (first.text, second.text) == (
        "I'm sure it's not pleasant to be sad about your mother.",
        "Does that suggest anything else which belongs to you?",
    )
    assert [m.role for m in chat.messages] == ["user", "assistant", "user", "assistant"]

    fork = chat.fork()
    restored = Conversation.from_list(eliza, json.loads(json.dumps(chat.to_list())))
    assert restored.to_list() == chat.to_list()
    answers = [c.send("Hmm").result(timeout=10).text for c in (chat, fork, restored)]
    assert answers == ["Earlier you mentioned your mother."] * 3
    assert len(chat) == len(fork) == len(restored) == 6

    fork.reset()
    assert fork.send("Hmm").result(timeout=10).text in DEFAULTS  # nothing left to remember
    assert len(chat) == 6
