"""What every page shares within one viewer's session: signing in, and the view.

The view lives in the session and in the URL. A session starts from its URL; afterwards
the sidebar's filters are the truth and are written back to the URL on every run, so the
address bar always holds a link to what is shown. A URL that changes under the session
with parameters (a link inside the explorer) is adopted; one that loses them (moving to
another page) is not.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard.config import DashboardConfig
from dashboard.view import CHANNELS, DEFAULT_WINDOW, PARAMETERS, STATUSES, WINDOWS, View, read_view

_VIEW = "qlara_view"
_WRITTEN = "qlara_written_query"
_USER = "qlara_user"
_PROBLEMS = "qlara_link_problems"
_ANY = "all"
_CUSTOM = "custom"


def signed_in(config: DashboardConfig) -> bool:
    """Whether the viewer may see the explorer; shows the sign-in page when not yet: single
    sign-on (when configured) and the password form (when a password is set)."""
    if not config.signs_in or st.session_state.get(_USER):
        return True
    if config.sso and st.user.is_logged_in:
        email = st.user.get("email")
        if config.sso_admits(
            str(email) if email else None, _verified(st.user.get("email_verified"))
        ):
            st.session_state[_USER] = str(email or st.user.get("sub") or "signed in")
            return True
        st.title("Qlara delivery explorer")
        st.error(
            f"{email or 'This account'} may not use this explorer "
            "(QLARA_SIDECAR_DASHBOARD_OIDC_ALLOWED). Sign out, then in with another account."
        )
        st.button("Sign out", on_click=st.logout)
        return False
    st.title("Qlara delivery explorer")
    if config.sso:
        st.button("Sign in with single sign-on", type="primary", on_click=st.login)
    if config.password is not None:
        with st.form("sign_in"):
            user = st.text_input("User name")
            password = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Sign in")
        if submitted:
            if config.admits(user, password):
                st.session_state[_USER] = user.strip()
                st.rerun()
            st.warning("Wrong user name or password.")
    return False


def _verified(claim: object) -> bool | None:
    """The ``email_verified`` claim as a boolean (some providers send a string)."""
    if claim is None:
        return None
    if isinstance(claim, str):
        return claim.strip().lower() == "true"
    return bool(claim)


def user() -> str | None:
    """Who signed in (``None`` when no password is asked)."""
    value = st.session_state.get(_USER)
    return str(value) if value else None


def _url_query() -> dict[str, str]:
    return {k: str(st.query_params[k]) for k in st.query_params if k in PARAMETERS}


def _adopt(view: View) -> None:
    st.session_state[_VIEW] = view
    st.session_state[_PROBLEMS] = view.problems
    state = st.session_state
    state["f_channel"] = view.channel or _ANY
    state["f_status"] = view.status or _ANY
    state["f_search"] = view.search or ""
    if view.start is not None and view.end is not None:
        state["f_window"] = _CUSTOM
        state["f_from"] = view.start.isoformat()
        state["f_to"] = view.end.isoformat()
    else:
        state["f_window"] = view.window


def current_view(*, show_problems: bool = True) -> View:
    """The view of this run, after the sidebar's filters; the URL is updated to match.

    Problems with the URL's parameters are shown once, as a warning, on the first run that
    may show them.
    """
    query = _url_query()
    if _VIEW not in st.session_state or (query and query != st.session_state.get(_WRITTEN)):
        _adopt(read_view(query))
    view: View = st.session_state[_VIEW]
    if show_problems:
        for problem in st.session_state.pop(_PROBLEMS, ()):
            st.warning(f"Ignored in the link: {problem}")
    view = _sidebar(view)
    st.session_state[_VIEW] = view
    written = view.to_query()
    if written != query:
        st.query_params.from_dict(written)
    st.session_state[_WRITTEN] = written
    return view


def set_message(message_id: str | None) -> None:
    """Make ``message_id`` the view's message (the detail page's input)."""
    view: View = st.session_state[_VIEW]
    st.session_state[_VIEW] = view.with_changes(message=message_id or None)
    written = st.session_state[_VIEW].to_query()
    st.query_params.from_dict(written)
    st.session_state[_WRITTEN] = written


def _sidebar(view: View) -> View:
    windows = list(WINDOWS)
    if view.window not in windows:
        windows.append(view.window)
    with st.sidebar:
        channel = st.selectbox("Channel", [_ANY, *CHANNELS], key="f_channel")
        window = st.selectbox("Window", [*windows, _CUSTOM], key="f_window")
        start = end = None
        if window == _CUSTOM:
            now = datetime.now(UTC).replace(microsecond=0)
            st.session_state.setdefault("f_from", (now.replace(hour=0, minute=0)).isoformat())
            st.session_state.setdefault("f_to", now.isoformat())
            custom = read_view(
                {
                    "from": st.text_input("From (ISO 8601, UTC)", key="f_from"),
                    "to": st.text_input("To (ISO 8601, UTC)", key="f_to"),
                }
            )
            for problem in custom.problems:
                st.warning(problem)
            start, end = custom.start, custom.end
        status = st.selectbox("Status", [_ANY, *STATUSES], key="f_status")
        search = st.text_input(
            "Search",
            key="f_search",
            help="A message id, a customer message id, or the last digits of a phone number "
            "(four at least), looked up in the whole ledger.",
        )
    return view.with_changes(
        channel=None if channel == _ANY else channel,
        window=window if window != _CUSTOM else (view.window or DEFAULT_WINDOW),
        start=start,
        end=end,
        status=None if status == _ANY else status,
        search=search.strip() or None,
    )


def view() -> View:
    """The view :func:`current_view` settled on in this run."""
    value: View = st.session_state[_VIEW]
    return value
