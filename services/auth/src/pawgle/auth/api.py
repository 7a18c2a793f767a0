"""Auth routes (contract section 3): thin handlers that parse, call the service and shape the response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from pawgle.auth import links, service, sessions
from pawgle.auth.config import Settings
from pawgle.auth.google import GoogleEmailNotVerified, GoogleTokenError
from pawgle.auth.kit import AuthKit, normalize_email
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
from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, WriteSessionDep
from pawgle.common.errors import AppError, BadRequest, Forbidden, JSONResponseUTF8, Unauthorized, error_response
from pawgle.common.openapi import error_responses
from pawgle.common.throttle import Throttle, ThrottleStore

router = APIRouter(tags=["auth"])

SIGNUP_MESSAGE = "Account created. Please check your email to verify your account."
INVALID_CREDENTIALS = "Invalid credentials."
VERIFY_FIRST = "Please verify your email — we sent you a new link."
MAGIC_SENT = "If an account with that email exists, a sign-in link is on its way."
VERIFY_SENT = "If an account with that email needs verifying, a new link is on its way."
RESET_SENT = "If an account with that email exists, a password reset link is on its way."


def get_kit(request: Request) -> AuthKit:
    kit: AuthKit = request.app.state.kit
    return kit


KitDep = Annotated[AuthKit, Depends(get_kit)]


def _user_read(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "email": user.email}


def _set_refresh_cookie(response: Response, settings: Settings, token: str) -> None:
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


def _clear_refresh_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        settings.refresh_cookie_name,
        path=settings.cookie_path,
        domain=settings.cookie_domain,
        secure=settings.secure_cookies,
        httponly=True,
        samesite=settings.cookie_samesite,
    )


def _check_origin(request: Request, settings: Settings) -> None:
    """Cookie-only endpoints: a browser request from a foreign site is refused (contract 0.4, D14)."""
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() not in settings.origins_allowed:
        raise Forbidden("Origin not allowed.")


async def _email_allowed(request: Request, scope: str, email_key: str) -> bool:
    """Per-address throttle of the mails we send, on top of the per-IP one (D4); silent when exceeded."""
    store: ThrottleStore | None = getattr(request.app.state, "throttle_store", None)
    if store is None:
        return True
    verdict = await store.hit(f"{scope}_email", f"email:{email_key}", store.rate_for(scope))
    return verdict.allowed


@router.post(
    "/api/auth/signup/", status_code=201, response_model=SignupResponse, dependencies=[Depends(Throttle("signup"))]
)
async def signup(body: SignupRequest, session: SessionDep, kit: KitDep) -> dict[str, Any]:
    """Create an account; the verification link goes out by e-mail (no session until it is used)."""
    try:
        user = await run_in_threadpool(
            service.signup,
            session,
            kit=kit,
            username=body.username,
            email=body.email,
            password=body.password,
            confirm_password=body.confirm_password,
        )
    except service.SignupRejected as exc:
        first = next(iter(exc.fields.values()))[0]
        raise BadRequest(first, **exc.fields) from exc
    return {"message": SIGNUP_MESSAGE, "user": _user_read(user)}


@router.post(
    "/api/auth/login/",
    response_model=AccessResponse,
    dependencies=[Depends(Throttle("login"))],
    responses=error_responses(401, 403),
)
async def login(body: LoginRequest, request: Request, session: SessionDep, kit: KitDep) -> Response:
    """Password sign-in: the access token in the body, the refresh token in the cookie."""
    try:
        signed_in = await run_in_threadpool(service.login, session, kit=kit, email=body.email, password=body.password)
    except service.InvalidCredentials as exc:
        raise Unauthorized(INVALID_CREDENTIALS) from exc
    except service.EmailNotVerified as exc:
        user = exc.user
        if user.email_key and await _email_allowed(request, "email_verification", user.email_key):
            await run_in_threadpool(service.send_verification, session, kit=kit, user=user)
        # Returned, not raised: the new link must be committed.
        return error_response(403, VERIFY_FIRST)
    response = JSONResponseUTF8({"access": signed_in.access})
    _set_refresh_cookie(response, kit.settings, signed_in.refresh_token)
    return response


@router.post(
    "/api/auth/google/",
    response_model=GoogleResponse,
    dependencies=[Depends(Throttle("login"))],
    responses=error_responses(401),
)
async def google(body: GoogleRequest, session: SessionDep, kit: KitDep) -> Response:
    """Sign in (or up) with a Google ID token."""
    if kit.google is None:
        raise AppError("Google OAuth not configured on server.", status_code=500)
    credential = (body.credential or body.id_token or "").strip()
    if not credential:
        raise BadRequest("Missing Google credential.")
    try:
        identity = await kit.google.verify(credential)
    except GoogleEmailNotVerified as exc:
        raise Unauthorized("Google account email is not verified.") from exc
    except GoogleTokenError as exc:
        raise Unauthorized("Invalid Google token.") from exc
    try:
        signed_in = await run_in_threadpool(service.google_sign_in, session, kit=kit, identity=identity)
    except service.InvalidCredentials as exc:
        raise Unauthorized("Invalid Google token.") from exc
    response = JSONResponseUTF8(
        {"user": _user_read(signed_in.user), "access": signed_in.access, "created": signed_in.created}
    )
    _set_refresh_cookie(response, kit.settings, signed_in.refresh_token)
    return response


@router.post(
    "/api/auth/magic/request/", response_model=DetailResponse, dependencies=[Depends(Throttle("password_reset"))]
)
async def magic_request(body: EmailRequest, request: Request, session: SessionDep, kit: KitDep) -> dict[str, str]:
    """E-mail a one-time sign-in link; the answer never tells whether the address has an account."""
    _, email_key = normalize_email(body.email)
    if await _email_allowed(request, "password_reset", email_key):
        await run_in_threadpool(service.request_sign_in_link, session, kit=kit, email_key=email_key)
    return {"detail": MAGIC_SENT}


@router.post("/api/auth/magic/consume/", response_model=SignedInResponse, dependencies=[Depends(Throttle("login"))])
async def magic_consume(body: TokenRequest, session: SessionDep, kit: KitDep) -> Response:
    """Sign in with a magic link's token (single use); verifies the account's e-mail on first use."""
    try:
        signed_in = await run_in_threadpool(service.consume_link, session, kit=kit, token=body.token)
    except links.LinkError as exc:
        raise BadRequest(exc.message) from exc
    response = JSONResponseUTF8({"access": signed_in.access, "user": _user_read(signed_in.user)})
    _set_refresh_cookie(response, kit.settings, signed_in.refresh_token)
    return response


@router.get(
    "/api/auth/verify-email/", response_model=SignedInResponse, dependencies=[Depends(Throttle("email_verification"))]
)
async def verify_email(session: WriteSessionDep, kit: KitDep, token: str = "", uid: str | None = None) -> Response:
    """The original's verification route: consume a verification link's token (`uid` is ignored)."""
    try:
        signed_in = await run_in_threadpool(service.verify_email, session, kit=kit, token=token)
    except links.LinkError as exc:
        raise BadRequest(exc.message) from exc
    body = {"message": "Email verified.", "access": signed_in.access, "user": _user_read(signed_in.user)}
    response = JSONResponseUTF8(body)
    _set_refresh_cookie(response, kit.settings, signed_in.refresh_token)
    return response


@router.post(
    "/api/auth/resend-verification/",
    response_model=MessageResponse,
    dependencies=[Depends(Throttle("email_verification"))],
)
async def resend_verification(body: EmailRequest, request: Request, session: SessionDep, kit: KitDep) -> dict[str, str]:
    """Send a new verification link; the answer is the same for unknown, unverified and verified addresses."""
    _, email_key = normalize_email(body.email)
    if await _email_allowed(request, "email_verification", email_key):
        await run_in_threadpool(service.resend_verification, session, kit=kit, email_key=email_key)
    return {"message": VERIFY_SENT, "detail": VERIFY_SENT}


@router.post(
    "/api/auth/logout/",
    response_model=DetailResponse,
    dependencies=[Depends(Throttle("anon", by="ip"))],
    responses=error_responses(403),
)
async def logout(request: Request, session: SessionDep, kit: KitDep) -> Response:
    """Revoke the cookie's refresh-token family and clear the cookie (always 200)."""
    _check_origin(request, kit.settings)
    token = request.cookies.get(kit.settings.refresh_cookie_name)
    if token:
        await run_in_threadpool(sessions.end_session, session, token=token)
    response = JSONResponseUTF8({"detail": "Logged out."})
    _clear_refresh_cookie(response, kit.settings)
    return response


@router.post(
    "/api/token/refresh/",
    response_model=AccessResponse,
    dependencies=[Depends(Throttle("anon", by="ip"))],
    responses=error_responses(401, 403),
)
async def refresh(request: Request, session: SessionDep, kit: KitDep) -> Response:
    """A new access token from the refresh cookie (any body is ignored); the cookie rotates."""
    _check_origin(request, kit.settings)
    token = request.cookies.get(kit.settings.refresh_cookie_name)
    if not token:
        return error_response(401, "No refresh token cookie.")
    try:
        refreshed = await run_in_threadpool(sessions.rotate, session, token=token, policy=kit.sessions)
    except sessions.InvalidRefreshToken:
        # Returned, not raised: a revocation decided here (reuse, deleted user) must be committed.
        response = error_response(401, "Invalid or expired refresh token.")
        _clear_refresh_cookie(response, kit.settings)
        return response
    response = JSONResponseUTF8({"access": kit.tokens.issue(refreshed.user_id)})
    _set_refresh_cookie(response, kit.settings, refreshed.token)
    return response


@router.post(
    "/api/auth/forgot-password/", response_model=MessageResponse, dependencies=[Depends(Throttle("password_reset"))]
)
async def forgot_password(body: EmailRequest, request: Request, session: SessionDep, kit: KitDep) -> dict[str, str]:
    """E-mail a password reset link; the answer never tells whether the address has an account."""
    _, email_key = normalize_email(body.email)
    if await _email_allowed(request, "password_reset", email_key):
        await run_in_threadpool(service.request_password_reset, session, kit=kit, email_key=email_key)
    return {"message": RESET_SENT, "detail": RESET_SENT}


@router.post("/api/auth/reset-password/", response_model=MessageResponse, dependencies=[Depends(Throttle("login"))])
async def reset_password(body: ResetPasswordRequest, session: SessionDep, kit: KitDep) -> dict[str, str]:
    """Set a new password with a reset link's token; signs out every session of the account."""
    try:
        await run_in_threadpool(
            service.reset_password, session, kit=kit, token=body.token, new_password=body.new_password
        )
    except links.LinkError as exc:
        raise BadRequest(exc.message) from exc
    except service.PasswordRejected as exc:
        raise BadRequest(exc.problems[0], new_password=exc.problems) from exc
    message = "Your password has been reset. You can now sign in."
    return {"message": message, "detail": message}


@router.delete("/api/auth/account/", status_code=204, dependencies=[Depends(Throttle("user"))])
async def delete_account(user_id: CurrentUserId, session: SessionDep, kit: KitDep) -> Response:
    """Delete the caller's account: personal data erased, sessions revoked, user.deleted published."""
    deleted = await run_in_threadpool(service.delete_account, session, user_id=user_id)
    if not deleted:
        raise Unauthorized("User not found or no longer active.")
    response = Response(status_code=204)
    _clear_refresh_cookie(response, kit.settings)
    return response


@router.get("/api/auth/users/count/", response_model=UserCount, dependencies=[Depends(Throttle("anon"))])
async def users_count(session: SessionDep) -> dict[str, int]:
    """How many accounts can sign in (home page figure)."""
    return {"user_count": await run_in_threadpool(service.count_users, session)}


@router.get("/api/auth/jwks/")
async def jwks(request: Request) -> JSONResponseUTF8:
    """The public keys that verify access tokens (current and previous)."""
    return JSONResponseUTF8(request.app.state.key_ring.jwks(), headers={"Cache-Control": "public, max-age=300"})
