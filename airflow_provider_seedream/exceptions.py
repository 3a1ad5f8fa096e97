"""Typed errors: callers catch by class, never by parsing a message.

Errors that retrying the Airflow task cannot fix (bad input, bad key, no credits, a remote task that failed) derive
from ``AirflowFailException`` as well, so a task with ``retries`` does not hammer the API (or pay again) for nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from airflow_provider_seedream.version_compat import AirflowException, AirflowFailException, AirflowSensorTimeout


class FailedTask(Protocol):
    """What a failed remote task tells (``wire.SeedreamTask`` is one): the errors need nothing more of it."""

    @property
    def task_id(self) -> str: ...

    @property
    def fail_code(self) -> str | None: ...

    @property
    def fail_msg(self) -> str | None: ...

    def to_dict(self) -> dict[str, Any]: ...


class SeedreamError(AirflowException):
    """Root of every error this provider raises.

    :param message: what went wrong, for people.
    :param code: kie's code (body ``code`` or HTTP status) when the error came from an answer.
    """

    #: Whether sending the same read again may succeed.
    retryable: bool = False

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class SeedreamValidationError(SeedreamError, AirflowFailException, ValueError):
    """An input was refused, by us before sending (``field`` is set) or by kie (code 422)."""

    def __init__(self, message: str, *, field: str | None = None, code: int | None = 422) -> None:
        super().__init__(message, code=code)
        self.field = field


class SeedreamAuthError(SeedreamError, AirflowFailException):
    """The API key is missing or wrong (401), or the key's usage cap was hit (433)."""


class SeedreamInsufficientCreditsError(SeedreamError, AirflowFailException):
    """The account has too few credits for the request (402)."""


class SeedreamNotFoundError(SeedreamError):
    """kie does not know the task (404, or 422 ``recordInfo is null``): unknown id, or created a moment ago."""


class SeedreamFeatureDisabledError(SeedreamError, AirflowFailException):
    """kie has disabled the feature (505)."""


class SeedreamApiError(SeedreamError):
    """Any other non-success answer kie gave (for example 400 or 404 on an endpoint)."""


class SeedreamRateLimitError(SeedreamError):
    """kie refused the request for its rate limit (429); the request was not accepted.

    :param retry_after: seconds kie asked us to wait (``Retry-After``), when it said.
    """

    retryable = True

    def __init__(self, message: str, *, code: int | None = 429, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class SeedreamServiceUnavailableError(SeedreamError):
    """kie is in maintenance (455); the request was not accepted."""

    retryable = True

    def __init__(self, message: str, *, code: int | None = 455, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class SeedreamServerError(SeedreamError):
    """kie answered with a server error (5xx): a read may be retried, a submit may have been accepted."""

    retryable = True


class SeedreamTransportError(SeedreamError):
    """The request did not get an answer (connection refused or reset, timeout).

    :param sent: whether the request may have reached kie. ``False`` only when the connection was never made.
    """

    retryable = True

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class SeedreamResponseError(SeedreamError):
    """kie's answer could not be understood: not JSON, a missing field, an unknown state."""


class SeedreamSubmitUncertainError(SeedreamError, AirflowFailException):
    """A createTask may have been accepted but no task id came back; it is not resubmitted (a duplicate is billed).

    Check the kie.ai logs page for a task created at that moment before running the task again.
    """


class SeedreamTaskFailedError(SeedreamError, AirflowFailException):
    """The remote task ended in ``fail``; ``task`` holds kie's failCode and failMsg."""

    def __init__(self, task: FailedTask) -> None:
        super().__init__(
            f"Seedream task {task.task_id} failed: failCode={task.fail_code or '-'} failMsg={task.fail_msg or '-'}",
            code=501,
        )
        self.task = task


class SeedreamTimeoutError(SeedreamError, AirflowSensorTimeout):
    """The wait for a task passed its deadline; the remote task may still be running."""

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id


class SeedreamStorageError(SeedreamError):
    """A task succeeded (and was paid for) but its images could not be copied to ``output_path``.

    Retrying the Airflow task re-reads the same kie task (no new cost) and stores again, so this one is retryable.

    :param result_urls: kie's temporary result URLs, named in the message too.
    :param stored: the URIs already stored before the failure.
    """

    def __init__(self, message: str, *, result_urls: list[str], stored: list[str] | None = None) -> None:
        super().__init__(message)
        self.result_urls = list(result_urls)
        self.stored = list(stored or [])


class SeedreamBatchError(SeedreamError):
    """A batch ended with edits that did not succeed, and its ``fail_on`` says that fails the Airflow task.

    The per-edit outcomes are in XCom ``batch_results``. Retryable: a retry re-attaches to every edit already
    accepted (no new cost) and waits for, and stores, what has not ended yet.
    """
