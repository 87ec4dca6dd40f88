"""Users of a deployment with sign-in: verified email -> role, and the permission checks.

Roles:

- ``admin``: everything, including user management and deleting datasets.
- ``researcher``: everything but user management.
- ``labeller``: the Label page only, and only the tasks assigned to them.

An email with no row is *unknown*: it sees no data until an admin adds it. The first admins come
from the ``VLMRM_ADMINS`` setting (:func:`ensure_admins`). Without sign-in none of this applies:
the app runs as one local user.

Every function that changes something takes the ``actor`` (the signed-in email) and checks the
actor's role here, in the service layer, not only in the interface.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from vlmrm_core.errors import InvalidInputError, NotFoundError, VlmrmError
from vlmrm_core.store.db import session_scope, transact
from vlmrm_core.store.labels import check_person_name
from vlmrm_core.store.schema import User

__all__ = [
    "ADMINS_VAR",
    "ROLES",
    "AccessError",
    "UserRecord",
    "admins_from_settings",
    "check_email",
    "ensure_admins",
    "get_user",
    "list_users",
    "remove_user",
    "require_owner_or_admin",
    "require_researcher",
    "require_role",
    "set_user_role",
]

ROLES = ("admin", "researcher", "labeller")
"""The roles, most powerful first."""

ADMINS_VAR = "VLMRM_ADMINS"
"""Comma-separated emails made admins on start (the first admins of a new deployment)."""

MAX_EMAIL = 320


class AccessError(VlmrmError, PermissionError):
    """The signed-in user's role does not allow the action (or they have no access at all)."""


@dataclass(frozen=True)
class UserRecord:
    """A user row."""

    email: str
    role: str
    created_at: datetime
    created_by: str | None


def check_email(email: str) -> str:
    """The email, stripped and lower-cased.

    Raises:
        InvalidInputError: Empty, too long, no ``@``, control / space characters, or the
            machine labellers' prefix (:func:`~vlmrm_core.store.labels.check_person_name`).
    """
    cleaned = (email or "").strip().lower()
    if (
        not cleaned
        or len(cleaned) > MAX_EMAIL
        or cleaned.count("@") != 1
        or cleaned.startswith("@")
        or cleaned.endswith("@")
        or any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in cleaned)
    ):
        raise InvalidInputError(f"{email!r} is not an email address (name@example.org).")
    # An email labels under its own name: the machine labellers' prefix would hide the answers.
    return check_person_name(cleaned)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}: use one of {', '.join(ROLES)}.")
    return role


def _record(row: User) -> UserRecord:
    return UserRecord(row.email, row.role, row.created_at, row.created_by)


def get_user(engine: Engine, email: str | None) -> UserRecord | None:
    """The user with this email, or None when unknown (or ``email`` is empty)."""
    if not email:
        return None
    try:
        email = check_email(email)
    except InvalidInputError:
        return None
    with session_scope(engine) as session:
        row = session.scalar(select(User).where(User.email == email))
        return None if row is None else _record(row)


def list_users(engine: Engine) -> list[UserRecord]:
    """Every user, by role (admins first) then email."""
    order = {r: i for i, r in enumerate(ROLES)}
    with session_scope(engine) as session:
        rows = [_record(r) for r in session.scalars(select(User))]
    return sorted(rows, key=lambda u: (order.get(u.role, 99), u.email))


def require_role(engine: Engine, actor: str | None, *roles: str) -> UserRecord:
    """The actor's user row if their role is one of ``roles`` (any role when none given).

    Raises:
        AccessError: Unknown email, or a role not in ``roles``.
    """
    user = get_user(engine, actor)
    if user is None:
        raise AccessError("You have no access to this studio yet: ask an admin for access.")
    if roles and user.role not in roles:
        raise AccessError(
            f"Your role ({user.role}) does not allow this; it needs {' or '.join(roles)}."
        )
    return user


def require_researcher(engine: Engine, actor: str | None) -> None:
    """Check that the actor may change research state: start, cancel or resume training runs
    and sweeps, save or delete prompt sets (admins and researchers; labellers only label).

    ``actor`` None is the local user without sign-in (the CLI, the app without ``[auth]``),
    who has every role.

    Raises:
        AccessError: A signed-in actor who is unknown or a labeller.
    """
    if actor is not None:
        require_role(engine, actor, "admin", "researcher")


def _admin_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(User.role == "admin")) or 0)


def set_user_role(engine: Engine, email: str, role: str, *, actor: str) -> UserRecord:
    """Add a user or change their role (admins only).

    Raises:
        AccessError: The actor is not an admin.
        InvalidInputError: Bad email or role, or the change would leave no admin.
    """
    require_role(engine, actor, "admin")
    email, role = check_email(email), _check_role(role)

    def body(session: Session) -> UserRecord:
        row = session.scalar(select(User).where(User.email == email))
        if row is None:
            row = User(email=email, role=role, created_by=check_email(actor))
            session.add(row)
        else:
            if row.role == "admin" and role != "admin" and _admin_count(session) <= 1:
                raise InvalidInputError("This is the last admin: make someone else admin first.")
            row.role = role
        session.flush()
        return _record(row)

    return transact(engine, body)


def remove_user(engine: Engine, email: str, *, actor: str) -> None:
    """Remove a user's access (admins only). Their labels stay, under their email.

    Raises:
        AccessError: The actor is not an admin.
        NotFoundError: No such user.
        InvalidInputError: The last admin.
    """
    require_role(engine, actor, "admin")
    email = check_email(email)

    def body(session: Session) -> None:
        row = session.scalar(select(User).where(User.email == email))
        if row is None:
            raise NotFoundError(f"no user {email!r}")
        if row.role == "admin" and _admin_count(session) <= 1:
            raise InvalidInputError("This is the last admin: make someone else admin first.")
        session.delete(row)

    transact(engine, body)


def admins_from_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """The emails of ``VLMRM_ADMINS`` (checked, lower-cased)."""
    raw = (environ if environ is not None else os.environ).get(ADMINS_VAR, "")
    return [check_email(e) for e in raw.split(",") if e.strip()]


def ensure_admins(engine: Engine, emails: Iterable[str]) -> list[str]:
    """Make every listed email an admin (added if new, promoted otherwise).

    Returns:
        The emails that were added or promoted.
    """
    wanted = [check_email(e) for e in emails]

    def body(session: Session) -> list[str]:
        changed = []
        for email in wanted:
            row = session.scalar(select(User).where(User.email == email))
            if row is None:
                session.add(User(email=email, role="admin", created_by=ADMINS_VAR))
                changed.append(email)
            elif row.role != "admin":
                row.role = "admin"
                changed.append(email)
        return changed

    return transact(engine, body) if wanted else []


def require_owner_or_admin(engine: Engine, actor: str | None, owner: str | None, what: str) -> None:
    """With sign-in (``actor`` set): only the creator of ``what`` or an admin may change it.

    Things created without sign-in (``owner`` None) may be changed by researchers and admins.

    Raises:
        AccessError: Someone else's, and the actor is not an admin (or a labeller at all).
    """
    if actor is None:
        return
    user = require_role(engine, actor, "admin", "researcher")
    if user.role != "admin" and owner is not None and owner != user.email:
        raise AccessError(f"{what} belongs to {owner}: only they or an admin can change it.")
