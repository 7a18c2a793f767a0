"""Auth routes (contract section 3): each parses, calls one service function and shapes the response.

Routes are plain `def`: what they call touches the database or hashes passwords, so FastAPI runs them in its
worker threads. Throttles, which count on the bus, are async dependencies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from pawgle.auth import service, sessions
from pawgle.auth.components import AuthComponents
from pawgle.auth.config import Settings
from pawgle.auth.models import User
from pawgle.auth.schemas import (
    AccessResponse,
    DetailResponse,
    EmailRequest,
    GoogleRequest,
    GoogleResponse,
    LoginRequest,
    MessageResponse,
    ResetPasswordRequest,
    SignedInResponse,
    SignupRequest,
    SignupResponse,
    TokenRequest,
    UserCount,
)
from pawgle.auth.throttles import AccountThrottle
from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute, WriteSessionDep
from pawgle.common.errors import Forbidden, JSONResponseUTF8, error_response
from pawgle.common.openapi import error_responses
from pawgle.common.throttle import Throttle

# SessionRoute: a `def` route and its session's commit share one worker thread (one hop, not three).
router = APIRouter(tags=["auth"], route_class=SessionRoute)

SIGNUP_MESSAGE = "Account created. Please check your email to verify your account."
MAGIC_SENT = "If an account with that email exists, a sign-in link is on its way."
VERIFY_SENT = "If an account with that email needs verifying, a new link is on its way."
RESET_SENT = "If an account with that email exists, a password reset link is on its way."
RESET_DONE = "Your password has been reset. You can now sign in."

# Credential endpoints are counted per client address, never per the caller's access token (a token would
# buy every account its own budget against a victim's address), and per target account as well.
BY_ADDRESS = "ip"


def get_components(request: Request) -> AuthComponents:
    components: AuthComponents = request.app.state.components
    return components


ComponentsDep = Annotated[AuthComponents, Depends(get_components)]


def _user_read(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "email": user.email}


def set_refresh_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        settings.refresh_cookie_name,
        token,
        max_age=settings.refresh_ttl_s,
        path=settings.cookie_path,
        domain=settings.cookie_domain,
        secure=settings.secure_cookies,
        httponly=True,
        samesite=settings.cookie_samesite,
    )


def clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.refresh_cookie_name,
        path=settings.cookie_path,
        domain=settings.cookie_domain,
        secure=settings.secure_cookies,
        httponly=True,
        samesite=settings.cookie_samesite,
    )


def _signed_in(body: dict[str, Any], settings: Settings, refresh_token: str) -> JSONResponseUTF8:
    response = JSONResponseUTF8(body)
    set_refresh_cookie(response, settings, refresh_token)
    return response


def refused_refresh_response(request: Request, exc: Exception) -> Response:
    """The answer to InvalidRefreshToken: 401 in the shared error shape, and the useless cookie cleared."""
    assert isinstance(exc, sessions.InvalidRefreshToken)
    response = error_response(exc.status_code, exc.detail, headers=exc.headers)
    clear_refresh_cookie(response, request.app.state.components.settings)
    return response


def check_origin(request: Request) -> None:
    """Cookie-only endpoints: a browser request from a foreign site is refused (contract 0.4, D14)."""
    settings: Settings = request.app.state.components.settings
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() not in settings.origins_allowed:
        raise Forbidden("Origin not allowed.")


async def _password_slot(request: Request) -> AsyncIterator[None]:
    """Wait on the event loop for one of the few slots of password-hashing requests, held through the commit.

    Without it a burst of signups fills FastAPI's worker threads with hashes and with transactions
    waiting for SQLite's write lock, and the request holding the lock then finds no thread to commit in.
    """
    components: AuthComponents = request.app.state.components
    async with components.password_slots:
        yield


# Listed before the session in each route, so it is released after the session's commit.
PASSWORD_SLOT = Depends(_password_slot, scope="function")


def _refresh_cookie(request: Request) -> str | None:
    settings: Settings = request.app.state.components.settings
    return request.cookies.get(settings.refresh_cookie_name)


RefreshCookie = Annotated[str | None, Depends(_refresh_cookie)]


@router.post(
    "/api/auth/signup/",
    status_code=201,
    response_model=SignupResponse,
    dependencies=[Depends(Throttle("signup", by=BY_ADDRESS)), PASSWORD_SLOT],
)
def signup(body: SignupRequest, session: SessionDep, components: ComponentsDep) -> dict[str, Any]:
    """Create an account; the verification link goes out by e-mail (no session until it is used)."""
    user = service.signup(session=session, components=components, **body.model_dump())
    return {"message": SIGNUP_MESSAGE, "user": _user_read(user)}


@router.post(
    "/api/auth/login/",
    response_model=AccessResponse,
    dependencies=[Depends(Throttle("login", by=BY_ADDRESS)), Depends(AccountThrottle("login")), PASSWORD_SLOT],
    responses=error_responses(401, 403),
)
def login(body: LoginRequest, session: SessionDep, components: ComponentsDep) -> Response:
    """Password sign-in: the access token in the body, the refresh token in the cookie."""
    signed_in = service.login(session=session, components=components, email=body.email, password=body.password)
    return _signed_in({"access": signed_in.access}, components.settings, signed_in.refresh_token)


@router.post(
    "/api/auth/google/",
    response_model=GoogleResponse,
    dependencies=[Depends(Throttle("login", by=BY_ADDRESS))],
    responses=error_responses(401),
)
def google(body: GoogleRequest, session: SessionDep, components: ComponentsDep) -> Response:
    """Sign in (or up) with a Google ID token."""
    signed_in = service.google_sign_in(
        session=session, components=components, credential=body.credential, id_token=body.id_token
    )
    payload = {"user": _user_read(signed_in.user), "access": signed_in.access, "created": signed_in.created}
    return _signed_in(payload, components.settings, signed_in.refresh_token)


@router.post(
    "/api/auth/magic/request/",
    response_model=DetailResponse,
    dependencies=[Depends(Throttle("password_reset", by=BY_ADDRESS))],
)
def magic_request(body: EmailRequest, session: SessionDep, components: ComponentsDep) -> dict[str, str]:
    """E-mail a one-time sign-in link; the answer never tells whether the address has an account."""
    service.request_sign_in_link(session=session, components=components, email=body.email)
    return {"detail": MAGIC_SENT}


@router.post(
    "/api/auth/magic/consume/",
    response_model=SignedInResponse,
    dependencies=[Depends(Throttle("login", by=BY_ADDRESS)), Depends(AccountThrottle("login"))],
)
def magic_consume(body: TokenRequest, session: SessionDep, components: ComponentsDep) -> Response:
    """Sign in with a magic link's token (single use); verifies the account's e-mail on first use."""
    signed_in = service.consume_link(session=session, components=components, token=body.token)
    payload = {"access": signed_in.access, "user": _user_read(signed_in.user)}
    return _signed_in(payload, components.settings, signed_in.refresh_token)


@router.get(
    "/api/auth/verify-email/",
    response_model=SignedInResponse,
    dependencies=[Depends(Throttle("email_verification", by=BY_ADDRESS))],
)
def verify_email(
    session: WriteSessionDep, components: ComponentsDep, token: str = "", uid: str | None = None
) -> Response:
    """The original's verification route: consume a verification link's token (`uid` is ignored)."""
    signed_in = service.verify_email(session=session, components=components, token=token)
    payload = {"message": "Email verified.", "access": signed_in.access, "user": _user_read(signed_in.user)}
    return _signed_in(payload, components.settings, signed_in.refresh_token)


@router.post(
    "/api/auth/resend-verification/",
    response_model=MessageResponse,
    dependencies=[Depends(Throttle("email_verification", by=BY_ADDRESS))],
)
def resend_verification(body: EmailRequest, session: SessionDep, components: ComponentsDep) -> dict[str, str]:
    """Send a new verification link; the answer is the same for unknown, unverified and verified addresses."""
    service.resend_verification(session=session, components=components, email=body.email)
    return {"message": VERIFY_SENT, "detail": VERIFY_SENT}


@router.post(
    "/api/auth/logout/",
    response_model=DetailResponse,
    dependencies=[Depends(Throttle("anon", by=BY_ADDRESS)), Depends(check_origin)],
    responses=error_responses(403),
)
def logout(cookie: RefreshCookie, session: SessionDep, components: ComponentsDep) -> Response:
    """Revoke the cookie's refresh-token family and clear the cookie (always 200)."""
    service.logout(session=session, token=cookie)
    response = JSONResponseUTF8({"detail": "Logged out."})
    clear_refresh_cookie(response, components.settings)
    return response


@router.post(
    "/api/token/refresh/",
    response_model=AccessResponse,
    dependencies=[Depends(Throttle("anon", by=BY_ADDRESS)), Depends(check_origin)],
    responses=error_responses(401, 403),
)
def refresh(cookie: RefreshCookie, session: SessionDep, components: ComponentsDep) -> Response:
    """A new access token from the refresh cookie (any body is ignored); the cookie rotates."""
    signed_in = service.refresh(session=session, components=components, token=cookie)
    return _signed_in({"access": signed_in.access}, components.settings, signed_in.refresh_token)


@router.post(
    "/api/auth/forgot-password/",
    response_model=MessageResponse,
    dependencies=[Depends(Throttle("password_reset", by=BY_ADDRESS))],
)
def forgot_password(body: EmailRequest, session: SessionDep, components: ComponentsDep) -> dict[str, str]:
    """E-mail a password reset link; the answer never tells whether the address has an account."""
    service.request_password_reset(session=session, components=components, email=body.email)
    return {"message": RESET_SENT, "detail": RESET_SENT}


@router.post(
    "/api/auth/reset-password/",
    response_model=MessageResponse,
    dependencies=[Depends(Throttle("login", by=BY_ADDRESS)), Depends(AccountThrottle("login")), PASSWORD_SLOT],
)
def reset_password(body: ResetPasswordRequest, session: SessionDep, components: ComponentsDep) -> dict[str, str]:
    """Set a new password with a reset link's token; signs out every session of the account."""
    service.reset_password(session=session, components=components, token=body.token, new_password=body.new_password)
    return {"message": RESET_DONE, "detail": RESET_DONE}


@router.delete("/api/auth/account/", status_code=204, dependencies=[Depends(Throttle("user"))])
def delete_account(user_id: CurrentUserId, session: SessionDep, components: ComponentsDep) -> Response:
    """Delete the caller's account: personal data erased, sessions revoked, user.deleted published."""
    service.delete_account(session=session, user_id=user_id)
    response = Response(status_code=204)
    clear_refresh_cookie(response, components.settings)
    return response


@router.get("/api/auth/users/count/", response_model=UserCount, dependencies=[Depends(Throttle("anon"))])
def users_count(session: SessionDep) -> dict[str, int]:
    """How many accounts can sign in (home page figure)."""
    return {"user_count": service.count_users(session=session)}


@router.get("/api/auth/jwks/")
def jwks(request: Request) -> JSONResponseUTF8:
    """The public keys that verify access tokens (current and previous)."""
    return JSONResponseUTF8(request.app.state.key_ring.jwks(), headers={"Cache-Control": "public, max-age=300"})
