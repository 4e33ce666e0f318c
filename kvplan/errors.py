"""The two kinds of failure kvplan reports without a traceback.

``InputError`` is a user mistake (bad file, field, value or flag); the CLI turns
it into one message on stderr and exit code 2.  ``PlannerRefusal`` is the
selected vLLM release refusing the model (vLLM would raise at startup); it
also exits 2, but carries vLLM's own reason.  ``NoDeviceError`` exits 3.
"""

from __future__ import annotations


class KvplanError(Exception):
    """Base class of every error the CLI reports as a one-line message."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The message as printed on stderr, with its hint on a second line."""
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class InputError(KvplanError):
    """A mistake in the user's input: file, field, value or flag."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        field: str | None = None,
        value: object = None,
        hint: str | None = None,
    ) -> None:
        where = []
        if source:
            where.append(source)
        if field:
            where.append(f"field '{field}'")
        prefix = ": ".join(where)
        text = f"{prefix}: {message}" if prefix else message
        if value is not None and field:
            text += f" (got {value!r})"
        super().__init__(text, hint)
        self.source = source
        self.field = field
        self.value = value


class PlannerRefusal(KvplanError):
    """The selected vLLM release's planner itself would refuse this model.

    ``vllm_type`` and ``vllm_message`` are the exception vLLM raises, word for
    word (``vllm_message`` defaults to the message itself, which is then
    vLLM's own text); ``message`` may add kvplan's explanation where vLLM's
    text says nothing (0.10 raises a bare ``NotImplementedError``).
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        vllm_type: str = "ValueError",
        vllm_message: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.vllm_type = vllm_type
        self.vllm_message = message if vllm_message is None else vllm_message


class NoDeviceError(KvplanError):
    """No CUDA device (or no way to reach one) for probing."""

    exit_code = 3
