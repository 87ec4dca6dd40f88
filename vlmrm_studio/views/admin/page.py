"""Admin: who may use this studio, and with which role (only with sign-in, only for admins)."""

from __future__ import annotations

import streamlit as st

from vlmrm_core.store.users import ROLES, list_users, remove_user, set_user_role
from vlmrm_studio.auth import current_identity
from vlmrm_studio.widgets.common import engine
from vlmrm_studio.widgets.text import md_escape

# (Comments, not docstrings: Streamlit's "magic" would render bare strings on the page.)
NOTICE = "admin-notice"
db = engine()
me = current_identity()

st.title("🔑 Admin")
if me.role != "admin" or not me.signed_in:
    st.info("User management needs sign-in and the admin role.")
    st.stop()

notice = st.session_state.pop(NOTICE, None)
if notice is not None:
    getattr(st, notice[0])(md_escape(notice[1]))


def _set_role(email_key: str, role_key: str) -> None:
    """Callback: add a user or change a role; the service layer checks the actor is admin."""
    email = st.session_state.get(email_key, "")
    role = st.session_state.get(role_key, "labeller")
    try:
        user = set_user_role(db, email, role, actor=me.email or "")
    except (ValueError, PermissionError) as exc:
        st.session_state[NOTICE] = ("error", str(exc))
        return
    st.session_state[NOTICE] = ("success", f"{user.email} is now {user.role}.")


def _remove(email: str) -> None:
    try:
        remove_user(db, email, actor=me.email or "")
    except (ValueError, KeyError, PermissionError) as exc:
        st.session_state[NOTICE] = ("error", str(exc))
        return
    st.session_state[NOTICE] = ("success", f"Removed {email}'s access; their labels stay.")


st.subheader("Add a user")
left, middle, right = st.columns([3, 1, 1], vertical_alignment="bottom")
left.text_input("Email (as the sign-in provider sends it)", key="admin-new-email")
middle.selectbox("Role", ROLES, index=ROLES.index("labeller"), key="admin-new-role")
right.button(
    "Add / change", type="primary", on_click=_set_role, args=("admin-new-email", "admin-new-role")
)

st.subheader("Users")
for user in list_users(db):
    email_col, role_col, save_col, remove_col = st.columns(
        [3, 1, 1, 1], vertical_alignment="bottom"
    )
    email_col.text(user.email)  # st.text renders no Markdown
    role_key = f"admin-role-{user.email}"
    st.session_state.setdefault(role_key, user.role)
    role_col.selectbox("Role", ROLES, key=role_key, label_visibility="collapsed")
    st.session_state[f"admin-email-{user.email}"] = user.email
    save_col.button(
        "Save role",
        key=f"admin-save-{user.email}",
        on_click=_set_role,
        args=(f"admin-email-{user.email}", role_key),
    )
    remove_col.button(
        "Remove",
        key=f"admin-remove-{user.email}",
        disabled=user.email == me.email,
        on_click=_remove,
        args=(user.email,),
    )
