"""Sign-in and roles for the app (Streamlit's OpenID Connect ``st.login``).

Off by default: without an ``[auth]`` section in ``.streamlit/secrets.toml`` the app is one local
user with every page (``make run`` on a laptop). With it, every visitor signs in with the
configured provider; the provider's verified email is the identity (a missing
``email_verified`` claim counts as unverified unless ``VLMRM_TRUST_UNVERIFIED_EMAIL=1``), and
the ``users`` table (:mod:`vlmrm_core.store.users`) gives its role. Unknown emails see "ask an admin for access" and
no data. The first admins come from ``VLMRM_ADMINS``.

The permission checks that matter are in the service layer (``vlmrm_core.store.users`` /
``tasks``); this module decides which pages a role sees and who writes labels.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from vlmrm_core.store import Engine
from vlmrm_core.store.users import admins_from_settings, ensure_admins, get_user
from vlmrm_studio.widgets.text import md_escape

TRUST_UNVERIFIED_VAR = "VLMRM_TRUST_UNVERIFIED_EMAIL"
"""Set to ``1`` when the provider returns verified emails only but sends no
``email_verified`` claim: a missing claim then counts as verified."""

IDENTITY = "auth-identity"
"""Session-state key of the :class:`Identity` of this browser session."""

PAGES_BY_ROLE: dict[str, tuple[str, ...]] = {
    "admin": ("home", "frames", "prompt_lab", "label", "evaluate", "train", "tasks", "admin"),
    "researcher": ("home", "frames", "prompt_lab", "label", "evaluate", "train", "tasks"),
    "labeller": ("label",),
}
"""Pages (view file stems) each role may open; the local user without sign-in gets the
researcher's pages (no user management: there are no users)."""


@dataclass(frozen=True)
class Identity:
    """Who is using this browser session."""

    email: str | None
    """Verified email when signed in; None for the local user without sign-in."""
    role: str
    """``admin``, ``researcher`` or ``labeller`` (``researcher`` for the local user)."""

    @property
    def signed_in(self) -> bool:
        return self.email is not None

    @property
    def pages(self) -> tuple[str, ...]:
        return PAGES_BY_ROLE.get(self.role, ())


LOCAL_USER = Identity(email=None, role="researcher")


def auth_configured() -> bool:
    """Whether ``.streamlit/secrets.toml`` has an ``[auth]`` section (sign-in is on)."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all
        return False


def current_identity() -> Identity:
    """The session's identity (stored in session state by :func:`require_sign_in`)."""
    return st.session_state.get(IDENTITY, LOCAL_USER)


def trust_unverified_email(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``VLMRM_TRUST_UNVERIFIED_EMAIL`` says a missing ``email_verified`` claim is fine."""
    raw = (environ if environ is not None else os.environ).get(TRUST_UNVERIFIED_VAR, "")
    return raw.strip().lower() in ("1", "true", "yes", "on")


def verified_email(claims: Mapping[str, Any], *, trust_missing_claim: bool = False) -> str | None:
    """The lower-cased email of the provider's claims, if the provider says it is verified.

    ``email_verified`` must be true (the boolean, or the string ``"true"`` some providers
    send); a missing claim counts as unverified unless ``trust_missing_claim`` (see
    :func:`trust_unverified_email`).

    Returns:
        The email, or None when there is none or it is not verified.
    """
    email = str(claims.get("email") or "").strip().lower()
    if not email:
        return None
    flag = claims.get("email_verified")
    if flag is None:
        return email if trust_missing_claim else None
    if flag is True or (isinstance(flag, str) and flag.strip().lower() == "true"):
        return email
    return None


def require_sign_in(engine: Engine) -> Identity:
    """Gate the app: returns the identity, or shows a sign-in / no-access page and stops.

    Without sign-in configured this returns the local user at once.
    """
    if not auth_configured():
        st.session_state[IDENTITY] = LOCAL_USER
        return LOCAL_USER
    st.session_state.pop(IDENTITY, None)
    if not st.user.is_logged_in:
        st.title("VLM-RM Studio")
        st.write("Sign in to continue.")
        if st.button("Sign in", type="primary", key="auth-login"):
            st.login()
        st.stop()
    claims = {"email": st.user.get("email"), "email_verified": st.user.get("email_verified")}
    email = verified_email(claims, trust_missing_claim=trust_unverified_email())
    if email is None:
        st.title("VLM-RM Studio")
        address = str(claims["email"] or "").strip()
        if not address:
            st.error(
                "Your sign-in provider sent no email address; this studio needs one. "
                "Sign in with an account that has an email, or ask an admin."
            )
        else:
            st.error(
                md_escape(f"Your sign-in provider has not confirmed that {address} is yours.")
                + " Verify the address with your provider (e.g. the link in its confirmation "
                "email), then sign out and sign in again. If the provider only ever returns "
                f"verified emails, an admin can set `{TRUST_UNVERIFIED_VAR}=1`."
            )
        st.button("Sign out", key="auth-logout", on_click=st.logout)
        st.stop()
    ensure_admins(engine, admins_from_settings())
    user = get_user(engine, email)
    if user is None:
        st.title("VLM-RM Studio")
        st.info(
            md_escape(f"You are signed in as {email}, but you have no access yet.")
            + " Ask an admin for access."
        )
        st.button("Sign out", key="auth-logout", on_click=st.logout)
        st.stop()
    identity = Identity(email=user.email, role=user.role)
    st.session_state[IDENTITY] = identity
    return identity


def sidebar_account(identity: Identity) -> None:
    """Who is signed in, their role, and a sign-out button (only with sign-in)."""
    if not identity.signed_in:
        return
    with st.sidebar:
        st.caption(md_escape(f"{identity.email} · {identity.role}"))
        st.button("Sign out", key="auth-sidebar-logout", on_click=st.logout)
