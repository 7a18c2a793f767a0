"""The refusals of the account service functions: AppErrors whose class carries the HTTP status.

`commit_session = True` marks a refusal that keeps what the request wrote (see pawgle.common.errors).
"""

from __future__ import annotations

from pawgle.common.errors import AppError, BadRequest, Forbidden, Unauthorized

INVALID_CREDENTIALS = "Invalid credentials."
VERIFY_FIRST = "Please verify your email — we sent you a new link."


class SignupRejected(BadRequest):
    """Field errors of a signup (400), shaped as the contract's `{field: [messages]}` beside `detail`."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__(next(iter(fields.values()))[0], **fields)
        self.fields = fields


class InvalidCredentials(Unauthorized):
    """Unknown e-mail, wrong password, or an account that cannot sign in: all look the same (401).

    Committed anyway: a wrong password for an existing account is recorded on it.
    """

    commit_session = True

    def __init__(self) -> None:
        super().__init__(INVALID_CREDENTIALS)


class EmailNotVerified(Forbidden):
    """Password sign-in before the address was verified (403); the new verification link is committed."""

    commit_session = True

    def __init__(self) -> None:
        super().__init__(VERIFY_FIRST)


class PasswordRejected(BadRequest):
    """A new password the policy refuses (400, the problems listed under `new_password`)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems[0], new_password=problems)
        self.problems = problems


class GoogleNotConfigured(AppError):
    status_code = 500

    def __init__(self) -> None:
        super().__init__("Google OAuth not configured on server.")
