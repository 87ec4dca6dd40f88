"""The judge's question as the model sees it, and the one token of each answer.

The prompt comes from the model's own chat template (``processor.apply_chat_template``): a user
turn with k images then the question, followed by the template's generation prompt (e.g.
``Assistant:`` for SmolVLM, ``<|im_start|>assistant\\n`` for Qwen). The reward is read from the
next-token distribution at the end of that prompt: the *answer position*.

Which token an answer is (the rule): the answer is rendered as the assistant's reply by the same
chat template, and the tokens between the generation prompt and the end of the answer text are
its tokens. So a template that writes ``Assistant: yes`` makes the answer ``yes`` the
leading-space token (``Ġyes`` in GPT-2-style vocabularies) while a template that ends its prompt
with a newline makes it the bare ``yes``: the token the model would generate there. When the
template cannot render a reply (or renders it with a different prefix), the answer gets a
leading space exactly when the prompt does not end in whitespace. The answer must then be
exactly one token that the vocabulary knows (not the unknown token), and the two answers must be
different tokens; anything else is refused with :class:`AnswerError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlmrm_core.errors import InvalidInputError

DEFAULT_ANSWERS = ("yes", "no")
"""The answer pair when none is given: the positive answer first."""


class AnswerError(InvalidInputError):
    """An answer (or question) the judge cannot score; the message names the fix."""


@dataclass(frozen=True)
class AnswerTokens:
    """The token ids of the positive and negative answer at the answer position."""

    positive: int
    negative: int
    positive_token: str
    """The vocabulary entry, e.g. ``Ġyes``."""
    negative_token: str


def chat_messages(question: str, n_images: int) -> list[dict[str, Any]]:
    """One user turn: ``n_images`` images, then the question (the order judges are trained on)."""
    content: list[dict[str, Any]] = [{"type": "image"} for _ in range(n_images)]
    content.append({"type": "text", "text": question})
    return [{"role": "user", "content": content}]


def check_question(question: str) -> str:
    """The question, stripped; refuses an empty one."""
    if not isinstance(question, str) or not question.strip():
        raise AnswerError(
            "the judge's question is empty: ask a yes/no question about the frames, e.g. "
            "'Is the pole balanced upright on the cart? Answer yes or no.'"
        )
    return question.strip()


def render_prompt(processor: Any, question: str, n_images: int) -> str:
    """The prompt text with the model's chat template, ending at the answer position.

    Raises:
        AnswerError: the processor has no chat template (a base model rather than a chat one).
    """
    if not getattr(processor, "chat_template", None):
        raise AnswerError(
            "this model's processor has no chat template, so it cannot be asked a question: use "
            "an instruction-tuned (chat) model, e.g. one whose name ends in -Instruct"
        )
    text = processor.apply_chat_template(
        chat_messages(question, n_images), add_generation_prompt=True, tokenize=False
    )
    return str(text[0] if isinstance(text, list) else text)


def answer_tokens(processor: Any, question: str, answers: tuple[str, str]) -> AnswerTokens:
    """The single tokens of the two answers at the answer position (see the module docstring).

    Raises:
        AnswerError: an empty answer, an answer of several tokens or outside the vocabulary,
            or two answers that are the same token.
    """
    tokenizer = processor.tokenizer
    prompt = render_prompt(processor, question, 1)
    ids: list[int] = []
    for answer in answers:
        if not answer.strip():
            raise AnswerError("an answer is empty: give two one-word answers, e.g. yes,no")
        text = _answer_text(processor, question, prompt, answer.strip())
        base = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        full = tokenizer(prompt + text, add_special_tokens=False)["input_ids"]
        if full[: len(base)] == base:
            tokens = full[len(base) :]
        else:  # the prompt's last token merged with the answer: tokenise the answer on its own
            tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        pieces = tokenizer.convert_ids_to_tokens(tokens)
        if len(tokens) != 1:
            raise AnswerError(
                f"the answer {answer.strip()!r} is {len(tokens)} tokens for this model "
                f"({', '.join(map(repr, pieces))}); the judge reads one token: pick a one-token "
                "answer such as yes/no or Yes/No"
            )
        unk = tokenizer.unk_token_id
        if unk is not None and tokens[0] == unk:
            raise AnswerError(
                f"the answer {answer.strip()!r} is not in this model's vocabulary (it becomes "
                f"the unknown token {tokenizer.unk_token!r}): pick a word the model knows, e.g. "
                "yes/no"
            )
        ids.append(int(tokens[0]))
    if ids[0] == ids[1]:
        raise AnswerError(
            f"the answers {answers[0]!r} and {answers[1]!r} are the same token for this model: "
            "give two different answers"
        )
    positive, negative = tokenizer.convert_ids_to_tokens(ids)
    return AnswerTokens(ids[0], ids[1], str(positive), str(negative))


def _answer_text(processor: Any, question: str, prompt: str, answer: str) -> str:
    """The answer as the chat template writes it after the generation prompt."""
    messages = chat_messages(question, 1)
    messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    try:
        rendered = processor.apply_chat_template(messages, tokenize=False)
        rendered = str(rendered[0] if isinstance(rendered, list) else rendered)
    except Exception:  # a template that cannot render replies: use the fallback rule
        rendered = ""
    if rendered.startswith(prompt):
        rest = rendered[len(prompt) :]
        at = rest.find(answer)
        if at >= 0 and not rest[:at].strip():  # only whitespace between prompt and answer
            return rest[: at + len(answer)]
    return answer if prompt[-1:].isspace() else " " + answer
