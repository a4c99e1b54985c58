"""/onboard: the web twin of the bot's onboarding (bot/onboarding.py), from a new account to a
running assistant. Four steps (provider and model, API key, Telegram, review and deploy), each a
plain form; the answers are kept server-side (provisioner.drafts), so /onboard resumes at the
first unfinished step in any browser. Then the deploy's progress, live with JavaScript and
refreshed by the page without it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from db.errors import ServiceError
from db.models import Instance, User
from db.status import Status
from provisioner.drafts import DraftView, OnboardingDrafts
from provisioner.providers import PROVIDERS, get_provider
from web.api.instances import checkout_for
from web.errors import STATUS_OF
from web.forms import form_fields
from web.keys import SERVICES
from web.pages.account import new_telegram_link
from web.pages.billing_links import allowing_stripe_forms, billing_of_pages
from web.pages.guard import signed_in
from web.pages.progress import events_so_far
from web.pages.render import redirect, render

routes = web.RouteTableDef()


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    path: str
    template: str


STEPS = (
    Step("provider", "Provider and model", "/onboard/provider", "onboard/provider.html"),
    Step("key", "API key", "/onboard/key", "onboard/key.html"),
    Step("telegram", "Telegram", "/onboard/telegram", "onboard/telegram.html"),
    Step("review", "Review and deploy", "/onboard/review", "onboard/review.html"),
)
STEP = {step.name: step for step in STEPS}
# Which step asks for the field a refusal names, so the error is shown next to it.
STEP_OF_FIELD = {"model_provider": "provider", "model": "provider", "api_key": "key",
                 "telegram_bot_token": "telegram", "telegram_user_id": "telegram"}

# One line on each provider, beside its name (the key's shape and where to get one is its hint).
ABOUT = {
    "anthropic": "Claude models, from console.anthropic.com.",
    "openai": "GPT models, from platform.openai.com.",
    "moonshot": "Kimi models on the Moonshot platform (platform.moonshot.ai).",
    "kimi-coding": "Kimi's coding plan, with its own sk-kimi- keys (kimi.com/code).",
}
MODEL_FIELDS = {f"model_{provider.id}": provider.id for provider in PROVIDERS}


def _drafts(request: web.Request) -> OnboardingDrafts:
    return OnboardingDrafts(request.app[SERVICES].instances)


def first_unfinished(draft: DraftView, user: User) -> Step:
    if draft.model_provider is None:
        return STEP["provider"]
    if not draft.has_key:
        return STEP["key"]
    owner_known = user.telegram_user_id is not None or draft.telegram_user_id is not None or draft.pairing_later
    if not draft.has_bot_token or not owner_known:
        return STEP["telegram"]
    return STEP["review"]


async def _open_step(request: web.Request, name: str) -> tuple[User, DraftView, ServiceError | None]:
    """The signed-in user and their draft, once they may be on this step: a step whose earlier
    ones are unfinished sends them to the first of those."""
    user = signed_in(request)
    drafts = _drafts(request)
    draft = await drafts.view(user)
    if STEPS.index(first_unfinished(draft, user)) < STEPS.index(STEP[name]):
        raise redirect(first_unfinished(draft, user).path)
    return user, draft, await drafts.why_not(user)


async def _step_page(request: web.Request, name: str, user: User, draft: DraftView, *, values: dict | None = None,
                     errors: dict | None = None, refused: ServiceError | None = None, status: int = 200,
                     telegram_link: dict | None = None, waiting: Instance | None = None) -> web.Response:
    step = STEP[name]
    billing = billing_of_pages(request)
    # With billing on and nothing paid for yet, the review step is also the plan step.
    plans = list(billing.plans) if billing is not None and name == "review" and \
        not (await billing.view(user)).entitled else None
    if plans is not None and draft.use_platform_key:  # on ClawFleet's key: the plans that include usage
        plans = [plan for plan in plans if plan.included_usage_usd]
    platform_key = name == "key" and draft.model_provider is not None and \
        await _drafts(request).instances.offers_platform_key(user, draft.model_provider)
    response = render(request, step.template, {
        "steps": STEPS, "current": step, "reachable": STEPS.index(first_unfinished(draft, user)),
        "draft": draft, "values": values or {}, "errors": errors or {}, "refused": refused,
        "providers": PROVIDERS, "about": ABOUT, "provider": _chosen_provider(draft),
        "linked_telegram_id": user.telegram_user_id, "telegram_link": telegram_link,
        "plans": plans, "chosen_plan": (values or {}).get("plan") or (billing.plans.default if billing else None),
        "waiting": waiting, "platform_key": platform_key,
    }, status=status)
    return allowing_stripe_forms(response, billing) if plans else response


def _chosen_provider(draft: DraftView):
    return get_provider(draft.model_provider) if draft.model_provider else None


def _field_error(exc: ServiceError, fields: set[str], fallback: str) -> dict:
    return {exc.field if exc.field in fields else fallback: exc.message}


@routes.get("/onboard")
async def resume(request: web.Request) -> web.Response:
    """The first unfinished step, shown here (sign-up lands on this address)."""
    user = signed_in(request)
    drafts = _drafts(request)
    draft = await drafts.view(user)
    return await _step_page(request, first_unfinished(draft, user).name, user, draft,
                            refused=await drafts.why_not(user))


@routes.get("/onboard/{step:provider|key|telegram|review}")
async def step_page(request: web.Request) -> web.Response:
    name = request.match_info["step"]
    user, draft, refused = await _open_step(request, name)
    return await _step_page(request, name, user, draft, refused=refused)


# -- step 1: provider and model ---------------------------------------------------------------
@routes.post("/onboard/provider")
async def choose_provider(request: web.Request) -> web.Response:
    user = signed_in(request)
    form = await form_fields(request, {"model_provider", *MODEL_FIELDS})
    provider_id = form.get("model_provider", "")
    try:
        await _drafts(request).choose_model(user, provider_id, form.get(f"model_{provider_id}"))
    except ServiceError as exc:
        draft = await _drafts(request).view(user)
        return await _step_page(request, "provider", user, draft, values=form, status=STATUS_OF.get(type(exc), 400),
                          errors=_field_error(exc, {"model_provider", "model"}, "model_provider"))
    raise redirect(STEP["key"].path)


# -- step 2: API key --------------------------------------------------------------------------
@routes.post("/onboard/key")
async def save_key(request: web.Request) -> web.Response:
    user, draft, _ = await _open_step(request, "key")
    form = await form_fields(request, {"api_key", "use_platform_key"})
    key = form.get("api_key", "")
    if not key.strip() and draft.has_key and not form.get("use_platform_key"):
        raise redirect(STEP["telegram"].path)  # the saved key is kept
    try:
        if form.get("use_platform_key") and not key.strip():
            await _drafts(request).use_platform_key(user)
        else:
            await _drafts(request).save_api_key(user, key)
    except ServiceError as exc:
        return await _step_page(request, "key", user, draft, errors=_field_error(exc, {"api_key"}, "api_key"),
                          status=STATUS_OF.get(type(exc), 400))
    raise redirect(STEP["telegram"].path)


# -- step 3: Telegram -------------------------------------------------------------------------
@routes.post("/onboard/telegram")
async def save_telegram(request: web.Request) -> web.Response:
    user, draft, _ = await _open_step(request, "telegram")
    form = await form_fields(request, {"telegram_bot_token", "owner", "telegram_user_id"})
    drafts = _drafts(request)
    errors: dict[str, str] = {}
    statuses: list[int] = []
    token = form.get("telegram_bot_token", "")
    if token.strip() or not draft.has_bot_token:  # an empty field keeps the saved bot
        try:
            await drafts.save_bot_token(user, token)
        except ServiceError as exc:
            errors.update(_field_error(exc, {"telegram_bot_token"}, "telegram_bot_token"))
            statuses.append(STATUS_OF.get(type(exc), 400))
    if user.telegram_user_id is None:  # a linked account is who it answers
        try:
            await drafts.save_owner(user, form.get("telegram_user_id", ""), pairing_later=form.get("owner") == "pairing")
        except ServiceError as exc:
            errors.update(_field_error(exc, {"telegram_user_id"}, "telegram_user_id"))
            statuses.append(STATUS_OF.get(type(exc), 400))
    if errors:
        values = {"owner": form.get("owner", ""), "telegram_user_id": form.get("telegram_user_id", "")}
        return await _step_page(request, "telegram", user, await drafts.view(user), values=values, errors=errors,
                          status=statuses[0])
    raise redirect(STEP["review"].path)


@routes.post("/onboard/telegram/link")
async def telegram_link_code(request: web.Request) -> web.Response:
    """A code that links this account to Telegram, shown on the step; once the bot has it, the
    step shows the linked account."""
    user, draft, refused = await _open_step(request, "telegram")
    await form_fields(request, set())
    return await _step_page(request, "telegram", user, draft, refused=refused,
                      telegram_link=await new_telegram_link(request, user))


# -- step 4: review and deploy ----------------------------------------------------------------
@routes.post("/onboard/deploy")
async def deploy(request: web.Request) -> web.Response:
    user, draft, _ = await _open_step(request, "review")
    billing = billing_of_pages(request)
    form = await form_fields(request, {"plan"} if billing is not None else set())
    plan = form.get("plan") or None
    try:
        if billing is not None:
            billing.plan(plan)  # a plan that does not exist is refused before anything is made
        instance = await _drafts(request).deploy(user)
    except ServiceError as exc:
        # Shown next to the field it names, on the step that asks for it; the draft is kept.
        name = STEP_OF_FIELD.get(exc.field or "", "review")
        errors = {exc.field: exc.message} if name != "review" else {"form": exc.message}
        return await _step_page(request, name, user, draft, errors=errors, values=form,
                                status=STATUS_OF.get(type(exc), 400))
    url, problem = await checkout_for(request, user, instance, plan)
    if problem is not None:  # the assistant is kept, waiting: its page lets them pay later
        return await _step_page(request, "review", user, draft, errors={"form": problem.message}, values=form,
                                waiting=instance, status=503 if problem.code == "unavailable" else 409)
    raise redirect(url or f"/onboard/deploying/{instance.id}")


# -- the deploy's progress --------------------------------------------------------------------
@routes.get("/onboard/deploying/{id}")
async def deploying(request: web.Request) -> web.Response:
    user = signed_in(request)
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])
    events, final = await events_so_far(request, user, instance.id)
    return _progress_page(request, instance, events, final)


@routes.post("/onboard/deploying/{id}/retry")
async def retry(request: web.Request) -> web.Response:
    """A deploy that failed after it was accepted: the instance exists, so it is started again."""
    user = signed_in(request)
    await form_fields(request, set())
    service = request.app[SERVICES].instances
    instance = await service.get(user, request.match_info["id"])
    try:
        await service.start(user, instance.id)
    except ServiceError as exc:
        events, final = await events_so_far(request, user, instance.id)
        return _progress_page(request, instance, events, final, problem=exc.message,
                              status=STATUS_OF.get(type(exc), 400))
    raise redirect(f"/onboard/deploying/{instance.id}")


@routes.post("/onboard/deploying/{id}/pay")
async def pay(request: web.Request) -> web.Response:
    """Stripe Checkout for the assistant that waits for payment (a checkout left, or not made)."""
    user = signed_in(request)
    form = await form_fields(request, {"plan"})
    instance = await request.app[SERVICES].instances.get(user, request.match_info["id"])
    url, problem = await checkout_for(request, user, instance, form.get("plan") or None)
    if problem is not None:
        events, final = await events_so_far(request, user, instance.id)
        return _progress_page(request, instance, events, final, problem=problem.message,
                              status=503 if problem.code == "unavailable" else 409)
    raise redirect(url or f"/onboard/deploying/{instance.id}")


def _progress_page(request: web.Request, instance: Instance, events: list[dict], final: bool, *,
                   problem: str | None = None, status: int = 200) -> web.Response:
    last = events[-1] if events else None
    billing = billing_of_pages(request)
    # Waiting for payment: nothing is recorded yet; the page waits for the deploy to begin
    # (billing starts it when Stripe's webhook comes), then follows it live.
    awaiting = billing is not None and instance.status == Status.AWAITING_PAYMENT
    response = render(request, "onboard/deploying.html", {
        "instance": instance, "events": events, "final": final and not awaiting, "problem": problem,
        "succeeded": final and last is not None and last["done"] and not last["failed"],
        "failure": (last.get("reason") or last["message"]) if final and last is not None and last["failed"] else None,
        "progress_url": f"/api/instances/{instance.id}/progress", "awaiting": awaiting,
        "plan": billing.plans.default if billing else None,
    }, status=status)
    return allowing_stripe_forms(response, billing) if awaiting else response
