"""The scripted simulated user: a declared stand-in for a human where no capable model can play one.

On a CPU the embedded 135M model cannot act as the customer: it almost never says the values a task
needs, so a verified dialogue's write calls use values nobody said (the provenance check fails) and a
model trained on it cannot learn its arguments. This user answers from what it knows, without a
model, by fixed rules:

- it knows its task as a :class:`UserScript`: the request (the instruction, in the first person),
  the values its steps need, in order (one step per ground-truth action; :func:`user_script`
  builds it), and the expected outputs. It never sees the agent's tools, the policy or a tool
  result: it reads only the agent's text (:func:`datagen.simulate.user.user_view`);
- it opens with its request and the values of its first step (who it is);
- each later turn it confirms when asked to confirm, answers the values the agent's request names
  (``order`` in "which order?"), gives its identifying values when asked to identify itself, and
  moves to its next step, saying the values that step needs (or, when it has none, telling the
  agent to go on); a step is taken once per turn, so an agent that acts once per turn (a replay
  agent) always finds the values of its next call said;
- once every step is taken, the agent said it did something ("... has been cancelled") and said the
  expected outputs, it stops (``###STOP###``); until then it tells the agent to go on or asks for
  the outputs, and it stops anyway after ``patience`` such turns.

Which values a step needs is structure, not wording: every argument value of the action, less what
the domain lets the agent work out (``ProvenanceRule.computed``), booleans and empty values, and
what an earlier write call returned (a new reservation's id). Where only the instruction is given
(a gold task in the τ harness: ``reveal="instruction"``), only the values the instruction states.

Its wording is drawn from small sets of our own phrasings with the episode seed, so dialogues differ.
Recorded as ``user_mode: scripted`` in every trajectory and dataset card; never a real recipe's default.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from apigen_rules.values import missing_outputs, value_written, written_forms
from datagen.envs.base import Domain, ToolCallModel
from datagen.llm.types import Message, Usage
from datagen.simulate.provenance import argument_leaves
from datagen.simulate.user import STOP, UserTurn, user_view

SCRIPTED = "scripted"  # its mode, and its name where rows name the user's model
Reveal = Literal["actions", "instruction"]
_GENERIC_WORDS = {"id", "ids", "new", "number", "the"}


@dataclass(frozen=True)
class Fact:
    """One argument's values, as the user says them: "The order id is #W1234."."""

    label: str  # "order id"
    text: str  # "#W1234", or "first name Ann, last name Lee; ..." for objects
    values: tuple[Any, ...]  # the scalars it says (for "was it said?")
    keywords: tuple[str, ...]  # words an agent's request uses for it ("order")


@dataclass(frozen=True)
class UserScript:
    """What a scripted user knows: its request, the facts of each step of its task, the outputs it
    wants to hear. Plain data: no tools, no policy, no environment."""

    request: str
    steps: tuple[tuple[Fact, ...], ...]
    outputs: tuple[str, ...] = ()
    identity_step: bool = False  # the first step only identifies the user (a read before any write)


def _humanise(name: str) -> str:
    """``order_id`` -> "order id", ``address1`` -> "address 1"."""
    return re.sub(r"(?<=[a-z])(\d+)$", r" \1", name).replace("_", " ").strip()


def _keywords(label: str) -> tuple[str, ...]:
    words = [w for w in label.split() if w not in _GENERIC_WORDS and not w.isdigit()]
    if not words:
        return (label,)
    phrase = " ".join(words)
    extra = ("e-mail",) if "email" in words else ()
    return tuple(dict.fromkeys([phrase, words[-1], *extra]))


def _say(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_DROP = object()


def _prune(value: Any, path: str, keep: Any) -> Any:
    """``value`` with only the scalars ``keep(scalar, path)`` accepts (``_DROP`` when none is left);
    ``path`` leaves list indices out, as :class:`ProvenanceRule` paths do."""
    if isinstance(value, dict):
        kept = {k: p for k, v in value.items() if (p := _prune(v, f"{path}.{k}", keep)) is not _DROP}
        return kept or _DROP
    if isinstance(value, list):
        items = [p for v in value if (p := _prune(v, path, keep)) is not _DROP]
        return items or _DROP
    return value if keep(value, path) else _DROP


def _render(value: Any) -> str:
    """A value as a phrase: lists joined, objects as "key value" pairs."""
    if isinstance(value, dict):
        return ", ".join(f"{_humanise(k)} {_render(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ("; " if any(isinstance(v, dict) for v in value) else ", ").join(_render(v) for v in value)
    return _say(value)


def _sayable(value: Any) -> bool:
    return not (value is None or isinstance(value, bool) or value == "")


def user_script(
    domain: Domain,
    seed: int,
    actions: Sequence[dict[str, Any] | ToolCallModel],
    *,
    instruction: str,
    outputs: Sequence[str] = (),
    reveal: Reveal = "actions",
) -> UserScript:
    """The script of a user whose task is ``actions`` on ``domain`` at ``seed`` (module docstring).

    The actions are replayed once on a fresh environment here, in the build layer, to learn what an
    earlier write returned; the user itself gets only the script."""
    calls = [a.model_dump() if isinstance(a, ToolCallModel) else a for a in actions]
    observations = domain.new_env(seed).replay(calls)
    stated = written_forms([instruction])
    rule = domain.provenance
    returned: list[str] = []  # normal forms of what earlier write calls returned
    seen: set[tuple[str, str]] = set()
    steps: list[tuple[Fact, ...]] = []
    for call, observation in zip(calls, observations, strict=True):
        facts = []
        tool = call["name"]

        def keep(leaf: Any, path: str, tool: str = tool) -> bool:
            return (
                _sayable(leaf)
                and not rule.is_computed(tool, path)
                and not value_written(leaf, returned)
                and (reveal == "actions" or value_written(leaf, stated))
            )

        for name, value in (call.get("arguments") or {}).items():
            kept = _prune(value, name, keep)
            if kept is _DROP:
                continue
            label = _humanise(name)
            fact = Fact(label, _render(kept), tuple(v for _, _, v in argument_leaves(kept)), _keywords(label))
            if (label, fact.text) not in seen:
                seen.add((label, fact.text))
                facts.append(fact)
        steps.append(tuple(facts))
        spec = domain.tool(call["name"])
        if spec is not None and spec.kind == "write":
            returned.extend(written_forms([observation.content]))
    first = domain.tool(calls[0]["name"]) if calls else None
    return UserScript(
        request=first_person_request(instruction),
        steps=tuple(steps),
        outputs=tuple(outputs),
        identity_step=first is not None and first.kind == "read",
    )


_SWAPS = (
    (r"\byou are\b", "I am"),
    (r"\byou're\b", "I'm"),
    (r"\byou have\b", "I have"),
    (r"\byou've\b", "I've"),
    (r"\byourself\b", "myself"),
    (r"\byours\b", "mine"),
    (r"\byour\b", "my"),
    (r"\b(to|for|with|tell|give|send|ask|let|help|call|contact) you\b", r"\1 me"),
    (r"\byou\b", "I"),
)
# Sentences that are not the request: what to do if something happens, who the customer is, and
# directions to the customer ("Give your user id when asked.").
_NOT_REQUEST = re.compile(
    r"^(if|when|unless|should|in case|you are|your name is|give|provide|say|tell|mention|insist|"
    r"accept|decline|refuse|agree|do not|don't|only|never|always|be)\b",
    re.IGNORECASE,
)
# "Ask how much will be refunded." / "I ask whether ..." -> "Could you tell me how much ..."
_ASK = re.compile(
    r"^(?:I )?ask (?:the agent )?(whether|if|how|what|which|when|where|why|who)\b", re.IGNORECASE
)


def first_person_request(instruction: str) -> str:
    """The instruction's request in the customer's voice: its sentences other than who the customer
    is and what to do if something happens, with second-person words turned to the first person."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", instruction.strip()) if s.strip()]
    kept = [
        _ASK.sub(r"Could you tell me \1", _first_person(s)) for s in sentences if not _NOT_REQUEST.match(s)
    ]
    return " ".join(kept) or "I need some help with my account."


def _first_person(text: str) -> str:
    for pattern, replacement in _SWAPS:
        text = re.sub(pattern, lambda m, r=replacement: _cased(m, r), text, flags=re.IGNORECASE)
    return text


def _cased(match: re.Match[str], replacement: str) -> str:
    text = match.expand(replacement)
    if match.group(0)[:1].isupper():
        return text[:1].upper() + text[1:]
    return text


# Our own phrasings; the episode seed picks among them, so dialogues of one task differ.
GREETINGS = ("Hi.", "Hello!", "Hi there,", "Good morning.", "Hey,")
FACT_FORMS = (
    "The {label} is {text}.",
    "{Label}: {text}.",
    "For the {label}, it's {text}.",
    "It's {text} for the {label}.",
)
LEADS = ("", "Sure. ", "Okay. ", "Here you go. ", "Right. ")
CONFIRMS = ("Yes, please go ahead.", "Yes, that's correct. Please proceed.", "Yes, I confirm.", "Yes, do it.")
NUDGES = ("Please go ahead.", "Okay, please continue.", "Sounds good, go on.", "Alright, what's next?")
UNKNOWN = (
    "Sorry, I don't have that information.",
    "I'm afraid I don't know that.",
    "I don't have that, sorry.",
)
WAITING = ("Please go ahead with my request.", "Could you take care of that for me?", "Is it done?")
ASK_OUTPUTS = ("Could you tell me what I asked about?", "And what about the information I asked for?")
CLOSINGS = (
    "That's all I needed, thank you!",
    "Great, thanks for your help.",
    "Perfect, that's everything.",
    "Thanks, that's all for today.",
)

_REQUEST = re.compile(
    r"\?|\b(please (provide|share|give|tell|confirm|send|let)|could you|can you|would you|may i|"
    r"let me know|tell me|i need your|i'll need|i will need)\b"
)
_CONFIRM = re.compile(
    r"\b(confirm|proceed|go ahead|shall i|should i|would you like me to|do you want me to|"
    r"is (that|this) (correct|right)|yes or no|yes/no)\b|\(yes\)"
)
_IDENTIFY = re.compile(
    r"\b(identif|verif|authenticat|e-?mail|zip|user ?id|date of birth|your (full )?name|"
    r"look up your|locate your|find your (account|profile))"
)
# A request for a piece of data ("what is your phone number?"), not "anything else about your account?".
_DATA_REQUEST = re.compile(
    r"\b(your|the)\s+(\w+\s+)?(ids?|number|e-?mail|address|zip|code|date|name|phone|amount)\b"
)
# The agent says it did something ("your order has been cancelled"): a request may be met.
_DONE = re.compile(
    r"\b(done|complete|completed|cancell?ed|updated|changed|modified|processed|returned|exchanged|"
    r"booked|refunded|sent|blocked|unblocked|frozen|transferred|added|removed|replaced|opened|"
    r"successfully|has been|have been|all set)\b"
)
# An open question that closes a request ("anything else?"): it names nothing the user should repeat.
_OPEN = re.compile(r"\b(anything else|something else|any other|further (help|assistance))\b")


@dataclass
class _State:
    said: list[str] = field(default_factory=list)  # normal forms of what this user wrote
    step: int = 0  # the next step to take
    turns: int = 0
    idle: int = 0  # turns since every step was taken in which it said nothing new


class ScriptedUser:
    """A user that answers from a :class:`UserScript` by the rules of the module docstring. Same
    interface as :class:`datagen.simulate.user.SimulatedUser` (``reply``, ``usage``); no model."""

    mode = SCRIPTED

    def __init__(self, script: UserScript, *, seed: int | None = None, patience: int = 3):
        self.script = script
        self.instruction = script.request
        self.rng = random.Random(seed)
        self.patience = patience
        self.usage = Usage()  # no model: stays zero
        self._state = _State()

    def revealed(self, fact: Fact) -> bool:
        return all(value_written(v, self._state.said) for v in fact.values)

    async def reply(self, conversation: list[Message]) -> UserTurn:
        """The next message, from the agent's text alone (the user's view hides tools and results)."""
        agent_texts = [m["content"] for m in user_view(conversation) if m["role"] == "user"]
        text = self._opening() if self._state.turns == 0 else self._answer(agent_texts)
        self._state.turns += 1
        self._state.said.extend(written_forms([text]))
        return UserTurn(text=text, candidates=[text])

    def _opening(self) -> str:
        return " ".join([self.rng.choice(GREETINGS), self.script.request, *self._say(self._take_step())])

    def _take_step(self) -> list[Fact]:
        """The unsaid facts of the next step; the step counts as taken."""
        if self._state.step >= len(self.script.steps):
            return []
        facts = [f for f in self.script.steps[self._state.step] if not self.revealed(f)]
        self._state.step += 1
        return facts

    def _answer(self, agent_texts: list[str]) -> str:
        lowered = (agent_texts[-1] if agent_texts else "").casefold()
        request = bool(_REQUEST.search(lowered))
        specific = request and not _OPEN.search(lowered)
        confirm = [self.rng.choice(CONFIRMS)] if specific and _CONFIRM.search(lowered) else []
        facts = self._asked(lowered) if specific else []
        if specific and _IDENTIFY.search(lowered) and self.script.identity_step:
            facts += [f for f in self.script.steps[0] if f not in facts]
        if self._state.step < len(self.script.steps):
            facts += [f for f in self._take_step() if f not in facts]
            if not confirm and not facts:
                confirm = [self.rng.choice(NUDGES)]
        else:
            # every step is taken: what is left is waiting for the goal, within its patience
            self._state.idle += 0 if any(not self.revealed(f) for f in facts) else 1
            if self._state.idle > self.patience or not (confirm or facts):
                return self._finish(agent_texts, specific and bool(_DATA_REQUEST.search(lowered)))
        said = self._say(facts)
        lead = self.rng.choice(LEADS) if said and not confirm else ""
        return (lead + " ".join(confirm + said)).strip()

    def _finish(self, agent_texts: list[str], asks_for_data: bool) -> str:
        """Every step is taken and the agent asked for nothing this user knows: stop when the goal
        looks met (the agent said it did something and said the expected outputs), else say it does
        not have what the agent asks for, ask for the outputs or tell it to go on, until its
        patience runs out."""
        heard = not missing_outputs(self.script.outputs, agent_texts)
        done = any(_DONE.search(text.casefold()) for text in agent_texts[-2:])
        if (heard and done and not asks_for_data) or self._state.idle > self.patience:
            return f"{self.rng.choice(CLOSINGS)} {STOP}"
        if asks_for_data:
            return self.rng.choice(UNKNOWN)
        return self.rng.choice(ASK_OUTPUTS if done else WAITING)

    def _asked(self, lowered: str) -> list[Fact]:
        """The facts whose keywords the agent's request names, from every step."""
        found = []
        for step in self.script.steps:
            for fact in step:
                if any(re.search(rf"\b{re.escape(k)}", lowered) for k in fact.keywords) and fact not in found:
                    found.append(fact)
        return found

    def _say(self, facts: Sequence[Fact]) -> list[str]:
        return [
            self.rng.choice(FACT_FORMS).format(label=f.label, Label=f.label.capitalize(), text=f.text)
            for f in facts
        ]
