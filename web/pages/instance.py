"""/instances/{id}: one assistant, live (status, health, progress, logs), its actions as plain
forms, and deleting it. Another person's instance is a 404 everywhere: the service says so."""

from __future__ import annotations

from aiohttp import web

from datetime import timedelta

from db.errors import InvalidInput, ServiceError
from db.models import Instance, User
from db.status import Status
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import CONFIG, SERVICES
from web.pages.backups_panel import backups_panel
from web.pages.billing_links import allowing_stripe_forms, billing_of_pages, date_text, payment_failed
from web.pages.guard import signed_in
from web.pages.instance_view import instance_view
from web.pages.pairing import pairing_form
from web.pages.progress import events_so_far
from web.pages.render import redirect, render
from web.pages.resource_panel import resource_panel
from web.pages.status_words import BUTTONS, for_scripts
from web.pages.usage_panel import usage_panel

routes = web.RouteTableDef()

LOG_TAIL = 200
# Notices a redirect here may ask for, by name: the query never supplies the words.
NOTICES = {
    "start": "Starting it: follow the steps below.",
    "stop": "Stopping it.",
    "restart": "Restarting it: follow the steps below.",
    "saved": "Saved. It is used the next time your assistant starts.",
    "saved_restart": "Saved. Restart to apply.",
    "unchanged": "Nothing changed: the settings were already these.",
    "cap_saved": "Saved: your monthly spending cap, for all your assistants together, is updated.",
    "cap_removed": "Your own monthly spending cap is removed.",
    "backup": "Backing up: follow the steps below. Your assistant keeps running meanwhile.",
    "restore": "Restoring the backup: follow the steps below.",
    "restore_new": "This is your new assistant: the backup is being restored into it. Follow the steps below.",
    "backup_deleted": "The backup is deleted.",
}
# notices that follow an action: its progress is shown
ACTED = {"start", "stop", "restart", "backup", "restore", "restore_new"}
PURGE_CHOICES = {"keep": False, "erase": True}
CAP_FIELD = "spend_cap_usd"


@routes.get("/instances/{id}")
async def instance_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    return await instance_response(request, user, notice=request.query.get("notice", ""))


@routes.post("/instances/{id}/{action:start|stop|restart}")
async def instance_action(request: web.Request) -> web.Response:
    user = signed_in(request)
    await form_fields(request, set())
    action = request.match_info["action"]
    service = request.app[SERVICES].instances
    try:
        instance = await getattr(service, action)(user, request.match_info["id"])
    except ServiceError as exc:
        if STATUS_OF.get(type(exc)) == 404:
            raise
        return await instance_response(request, user, problem=f"{BUTTONS[action]} refused: {exc.message}",
                                       status=STATUS_OF.get(type(exc), 400))
    raise redirect(f"/instances/{instance.id}?notice={action}")


@routes.post("/instances/{id}/pay")
async def pay(request: web.Request) -> web.Response:
    """Stripe Checkout for an assistant that waits for payment or was suspended: 303 there."""
    user = signed_in(request)
    form = await form_fields(request, {"plan"})
    billing = billing_of_pages(request)
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])
    if billing is None or not waits_for_payment(instance):
        raise redirect(f"/instances/{instance.id}")
    try:
        url = await billing.checkout_url(user, form.get("plan") or None, via="web")
    except ServiceError as exc:
        return await instance_response(request, user, problem=f"Payment: {exc.message}",
                                       status=STATUS_OF.get(type(exc), 400))
    raise redirect(url)


WAITS_FOR_PAYMENT = (Status.AWAITING_PAYMENT, Status.SUSPENDED)


def waits_for_payment(instance: Instance) -> bool:
    """Held back by billing alone: an operator's suspension is not lifted by paying."""
    return instance.status in WAITS_FOR_PAYMENT and instance.admin_suspended_at is None


@routes.post("/instances/{id}/spend-cap")
async def save_spend_cap(request: web.Request) -> web.Response:
    """The owner's monthly cap (across their assistants): an amount in dollars, or empty for none."""
    user = signed_in(request)
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])  # another's: 404
    form = await form_fields(request, {CAP_FIELD})
    typed = form.get(CAP_FIELD, "").strip()
    caps = request.app[SERVICES].caps
    if caps is None:
        raise web.HTTPNotFound()  # the section is not shown: nothing posts here
    try:
        await caps.set_cap(user, typed or None)
    except InvalidInput as exc:
        return await instance_response(request, user, cap_form=(typed[:32], exc.message), status=400)
    raise redirect(f"/instances/{instance.id}?notice={'cap_saved' if typed else 'cap_removed'}")


def payment_panel(request: web.Request, instance: Instance) -> dict | None:
    """What an assistant billing holds back says, and where to pay (with billing on only)."""
    billing = billing_of_pages(request)
    if billing is None or not waits_for_payment(instance):
        return None
    kept_until = None
    if instance.status == Status.SUSPENDED:
        kept_until = date_text(instance.updated_at + timedelta(days=request.app[CONFIG].data_retention_days))
    return {"status": instance.status, "kept_until": kept_until, "plan": billing.plans.default}


async def instance_response(request: web.Request, user: User, *, notice: str = "", problem: str | None = None,
                            cap_form: tuple[str, str] | None = None, backup_problem: str | None = None,
                            status: int = 200) -> web.Response:
    """The page; `cap_form`: what was typed in the cap form and why it was refused;
    `backup_problem`: why a request of the Backups section was refused."""
    service = request.app[SERVICES].instances
    instance = await service.get(user, request.match_info["id"])
    shown = instance_view(service, instance)
    progress = None
    if shown["action"] or notice in ACTED:
        events, final = await events_so_far(request, user, instance.id)
        progress = {"progress_url": shown["progress_url"], "events": events, "final": final}
    response = render(request, "instances/page.html", {
        "instance": shown,
        "health": await service.health(user, instance.id),
        "notice_text": NOTICES.get(notice),
        "offer_restart": notice == "saved_restart" and "restart" in shown["offers"],
        "buttons": BUTTONS,
        "problem_text": problem,
        "progress": progress,
        "pairing": pairing_form(request, instance),
        "log_tail": LOG_TAIL,
        "words": for_scripts(),
        "payment": payment_panel(request, instance),
        "payment_banner": await payment_failed(request, user),
        "usage": await usage_panel(request, user, instance, typed=cap_form[0] if cap_form else None,
                                   error=cap_form[1] if cap_form else None),
        "resources": await resource_panel(request, instance),
        "backups": await backups_panel(request, user, instance, busy=shown["action"] is not None,
                                       problem=backup_problem),
    }, status=status)
    return allowing_stripe_forms(response, billing_of_pages(request))


@routes.get("/instances/{id}/delete")
async def delete_page(request: web.Request) -> web.Response:
    user = signed_in(request)
    service = request.app[SERVICES].instances
    instance = await service.get(user, request.match_info["id"])
    return _delete_form(request, instance_view(service, instance))


@routes.post("/instances/{id}/delete")
async def delete_instance(request: web.Request) -> web.Response:
    user = signed_in(request)
    form = await form_fields(request, {"data"})
    service = request.app[SERVICES].instances
    instance = await service.get(user, request.match_info["id"])
    if form.get("data") not in PURGE_CHOICES:
        return _delete_form(request, instance_view(service, instance),
                            error="Choose whether to keep the data or erase it.", status=400)
    try:
        await service.delete(user, instance.id, purge=PURGE_CHOICES[form["data"]])
    except ServiceError as exc:
        if STATUS_OF.get(type(exc)) == 404:
            raise
        return _delete_form(request, instance_view(service, instance), error=exc.message,
                            status=STATUS_OF.get(type(exc), 400))
    raise redirect("/dashboard?notice=deleted")


def _delete_form(request: web.Request, shown: dict, *, error: str | None = None, status: int = 200) -> web.Response:
    return render(request, "instances/delete.html", {
        "instance": shown, "error": error, "retention_days": request.app[CONFIG].data_retention_days,
    }, status=status)
