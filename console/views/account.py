"""Sign-in, sign-out and the language switch."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for

from api.errors import DomainError
from api.extensions import db
from api.services import staff as staff_service
from console import throttle
from console.blueprint import bp
from console.i18n import LOCALES, translate
from console.security import end_session, safe_next, start_session


@bp.get("/login")
def login():  # type: ignore[no-untyped-def]
    """The sign-in form (signed in already: the worklist)."""
    if g.get("console_staff") is not None:
        return redirect(safe_next(request.args.get("next")))
    ended = session.pop("ended", None)
    return render_template("login.html", ended=ended, next=request.args.get("next", ""))


@bp.post("/login")
def login_submit():  # type: ignore[no-untyped-def]
    """Check the password the API's way, under the API's failed-login limits."""
    email = request.form.get("email", "")[:254]
    password = request.form.get("password", "")[:1024]
    target = request.form.get("next", "")
    try:
        staff = throttle.sign_in(email, password)
    except DomainError as exc:
        if exc.status_code not in (401, 429):
            raise
        return _login_refused(exc.error, email, target, exc.status_code)
    db.session.commit()  # a rehashed password, the time of this sign-in
    start_session(staff)
    if staff.must_change_password:
        return redirect(url_for("console.password"), code=303)
    return redirect(safe_next(target), code=303)


def _login_refused(error: str, email: str, target: str, status: int):  # type: ignore[no-untyped-def]
    page = render_template("login.html", error=error, email=email, next=target)
    return page, status


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """End the session (the cookie is emptied; the next page is the sign-in form)."""
    end_session()
    session["ended"] = "session.signed_out"
    return redirect(url_for("console.login"), code=303)


@bp.post("/locale")
def set_locale():  # type: ignore[no-untyped-def]
    """Keep the chosen language on the account (signed out: in the session)."""
    choice = request.form.get("locale")
    if choice in LOCALES:
        session["locale"] = choice
        staff = g.get("console_staff")
        if staff is not None and staff.locale != choice:
            staff.locale = choice
            db.session.commit()
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.get("/password")
def password():  # type: ignore[no-untyped-def]
    """Change your own password (the only page until an admin's reset is replaced)."""
    return render_template("password.html", errors={})


@bp.post("/password")
def password_submit():  # type: ignore[no-untyped-def]
    """The API's own-password rule; every other session ends, this one continues."""
    staff = g.console_staff
    current = request.form.get("current_password", "")[:1024]
    new = request.form.get("new_password", "")[:1024]
    try:
        throttle.check_password_guess(staff.id)
        changed = staff_service.change_own_password(staff.id, current, new)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.error == "wrong_password":
            throttle.count_password_guess(staff.id)
        errors = exc.errors or {"_schema": [exc.error]}
        page = render_template("password.html", errors=errors, error=exc.error)
        return page, exc.status_code
    start_session(changed)
    flash(translate("password.changed"), "success")
    return redirect(url_for("console.today"), code=303)
