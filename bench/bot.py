"""The provisioning bot's speed: updates per second through the onboarding steps, and the
median latency from a user's message to the bot's reply; side by side with a bare
python-telegram-bot echo bot polling the same fake Bot API in the same run.

Every onboarding step of ClawFleet's bot does real work (database persistence, sealing, a getMe
check of the token, deleting the user's message); the echo bot answers each message with its
text. Both long-poll the loopback fake, so the ratio is the cost of ClawFleet's handlers.
ClawFleet's bot also paces its messages to Telegram's limits (bot/pacing.py: about 30 a second
overall, one a second in a chat after a short burst), which bounds its throughput here as it
will in production; the fake holds ClawFleet's bot (not the echo bot) to those limits as
Telegram does, and the table counts the 429s it answered. The bare echo bot is not paced, so it
answers faster than Telegram would let any bot; a second echo bot paced the same way (the same
rate limiter, held to the same limits by the fake) is the like-for-like floor at Telegram's
limits. Also counted: the Bot API calls per onboarding step, by method, and the user's own
bot's calls (the token check).

    .venv/bin/python -m bench.bot [--users 40] [--rounds 3] [--out bench/results/bot.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import tempfile
import time
from pathlib import Path

from telegram import Update
from telegram.ext import Application, MessageHandler, filters

from bench.table import print_table, write_json
from bot.pacing import TelegramPacing
from clawfleet.settings import Settings
from db.engine import create_engine
from db.migrate import upgrade
from provisioner.providers import get_provider
from tests.support.bot_chat import Chat, running_platform
from tests.fakes.telegram import MESSAGE_METHODS, FakeBot, FakeTelegram, FloodLimits
from tests.support.memory_runtime import MemoryRuntime

API_KEY = "sk-proj-benchBENCHbenchBENCH0123456789"
STEP_NAMES = ("/start", "provider", "model", "API key", "bot token")  # each one update and one reply
STEPS = len(STEP_NAMES)


async def clawfleet_onboarding(chat: Chat, own_bot: FakeBot) -> list[float]:
    """One user's onboarding up to the Deploy button; the latency of each step."""
    latencies = []

    async def step(action, expect: str) -> dict:
        began = time.perf_counter()
        await action
        reply = await chat.reply(expect, timeout=60)
        latencies.append(time.perf_counter() - began)
        return reply

    welcome = await step(chat.send("/start"), "Welcome")
    models = await step(chat.press(welcome, "provider:openai"), "which model?")
    await step(chat.press(models, f"model:{get_provider('openai').default_model}"), "API key")
    await step(chat.send(API_KEY), "Key received")
    await step(chat.send(own_bot.token), "Ready to deploy")
    return latencies


async def echo_conversation(chat: Chat) -> list[float]:
    latencies = []
    for n in range(STEPS):
        began = time.perf_counter()
        await chat.send(f"echo {n}")
        await chat.reply(f"echo {n}", timeout=60)
        latencies.append(time.perf_counter() - began)
    return latencies


async def echo(update: Update, context) -> None:
    await update.effective_chat.send_message(update.effective_message.text)


async def run(users: int, rounds: int, out: Path, database_url: str = "", flood_limits: bool = True) -> dict:
    results: dict[str, list[float]] = {"clawfleet_updates_per_s": [], "echo_updates_per_s": [],
                                       "paced_echo_updates_per_s": [],
                                       "clawfleet_api_calls_per_s": [], "clawfleet_message_sends_per_s": []}
    latencies: dict[str, list[float]] = {"clawfleet": [], "echo": [], "paced_echo": []}
    by_method: collections.Counter[str] = collections.Counter()
    too_many_requests = 0
    with tempfile.TemporaryDirectory(prefix="clawfleet-bench-bot-") as tmp:
        async with FakeTelegram() as telegram:
            clawfleet_bot = telegram.add_bot(username="clawfleet_bot",
                                             flood_limits=FloodLimits() if flood_limits else None)
            echo_bot = telegram.add_bot(username="echo_bot")
            paced_echo_bot = telegram.add_bot(username="paced_echo_bot",
                                              flood_limits=FloodLimits() if flood_limits else None)
            settings = Settings(_env_file=None, data_dir=Path(tmp), database_url=database_url,
                                telegram_api_url=telegram.api_url, telegram_bot_token=clawfleet_bot.token)
            engine = create_engine(settings.database_url)
            await upgrade(engine)
            await engine.dispose()
            bare = (Application.builder().token(echo_bot.token).base_url(f"{telegram.api_url}/bot")
                    .concurrent_updates(False).build())
            bare.add_handler(MessageHandler(filters.TEXT, echo))
            paced = (Application.builder().token(paced_echo_bot.token).base_url(f"{telegram.api_url}/bot")
                     .concurrent_updates(False).rate_limiter(TelegramPacing()).build())
            paced.add_handler(MessageHandler(filters.TEXT, echo))
            runtime = MemoryRuntime()
            async with running_platform(settings, runtime), bare, paced:
                for echo_app in (bare, paced):
                    await echo_app.start()
                    await echo_app.updater.start_polling(timeout=5)
                while not clawfleet_bot.calls_to("getUpdates"):  # its start-up calls are not a step's
                    await asyncio.sleep(0.05)
                for round_ in range(rounds):  # interleaved: each round measures both, one after the other
                    chats = [Chat(clawfleet_bot, telegram.user()) for _ in range(users)]
                    own = [telegram.add_bot() for _ in range(users)]
                    calls_before, began = len(clawfleet_bot.calls), time.perf_counter()
                    measured = await asyncio.gather(*(clawfleet_onboarding(c, b) for c, b in zip(chats, own)))
                    elapsed = time.perf_counter() - began
                    results["clawfleet_updates_per_s"].append(users * STEPS / elapsed)
                    calls = [c for c in clawfleet_bot.calls[calls_before:] if c.method.lower() != "getupdates"]
                    results["clawfleet_api_calls_per_s"].append(len(calls) / elapsed)
                    sent = [c for c in calls if c.method.lower() in MESSAGE_METHODS and c.status == 200]
                    results["clawfleet_message_sends_per_s"].append(len(sent) / elapsed)
                    too_many_requests += sum(c.status == 429 for c in calls)
                    by_method.update(c.method for c in calls)
                    by_method.update(f"{c.method} (user's own bot)" for b in own for c in b.calls)
                    latencies["clawfleet"] += [s for steps in measured for s in steps]

                    for name, bot in (("echo", echo_bot), ("paced_echo", paced_echo_bot)):
                        chats = [Chat(bot, telegram.user()) for _ in range(users)]
                        began = time.perf_counter()
                        measured = await asyncio.gather(*(echo_conversation(c) for c in chats))
                        results[f"{name}_updates_per_s"].append(users * STEPS / (time.perf_counter() - began))
                        latencies[name] += [s for steps in measured for s in steps]
                    print(f"round {round_ + 1}/{rounds}: clawfleet {results['clawfleet_updates_per_s'][-1]:.1f} "
                          f"updates/s, echo {results['echo_updates_per_s'][-1]:.1f}, paced echo "
                          f"{results['paced_echo_updates_per_s'][-1]:.1f}", flush=True)
                for echo_app in (bare, paced):
                    await echo_app.updater.stop()
                    await echo_app.stop()
            await runtime.close()
    clawfleet_rate = statistics.median(results["clawfleet_updates_per_s"])
    echo_rate = statistics.median(results["echo_updates_per_s"])
    clawfleet_ms = statistics.median(latencies["clawfleet"]) * 1000
    echo_ms = statistics.median(latencies["echo"]) * 1000
    paced_rate = statistics.median(results["paced_echo_updates_per_s"])
    paced_ms = statistics.median(latencies["paced_echo"]) * 1000
    result = {
        "users": users, "rounds": rounds, "steps_per_user": STEPS,
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "clawfleet_updates_per_s_median": round(clawfleet_rate, 1),
        "echo_updates_per_s_median": round(echo_rate, 1),
        "throughput_ratio_clawfleet_over_echo": round(clawfleet_rate / echo_rate, 3),
        "clawfleet_api_calls_per_s_median": round(statistics.median(results["clawfleet_api_calls_per_s"]), 1),
        "clawfleet_message_sends_per_s_median": round(statistics.median(results["clawfleet_message_sends_per_s"]), 1),
        "flood_limits_enforced": flood_limits,
        "clawfleet_429_answers": too_many_requests,
        "clawfleet_api_calls_per_step": {method: round(count / (users * STEPS * rounds), 2)
                                         for method, count in sorted(by_method.items())},
        "clawfleet_reply_latency_ms_median": round(clawfleet_ms, 1),
        "echo_reply_latency_ms_median": round(echo_ms, 1),
        "latency_ratio_clawfleet_over_echo": round(clawfleet_ms / echo_ms, 2),
        "paced_echo_updates_per_s_median": round(paced_rate, 1),
        "paced_echo_reply_latency_ms_median": round(paced_ms, 1),
        "throughput_ratio_clawfleet_over_paced_echo": round(clawfleet_rate / paced_rate, 3),
        "latency_ratio_clawfleet_over_paced_echo": round(clawfleet_ms / paced_ms, 2),
        "clawfleet_reply_latency_ms_median_by_step": {
            name: round(statistics.median(latencies["clawfleet"][n::STEPS]) * 1000, 1)
            for n, name in enumerate(STEP_NAMES)},
        "per_round": results,
    }
    report(result)
    write_json(result, out)
    return result


def report(result: dict) -> None:
    print_table([
        ("ClawFleet onboarding: updates/s (median of rounds)", f"{result['clawfleet_updates_per_s_median']}"),
        ("bare echo bot: updates/s (median of rounds)", f"{result['echo_updates_per_s_median']}"),
        ("throughput ratio ClawFleet / echo", f"{result['throughput_ratio_clawfleet_over_echo']}"),
        ("ClawFleet: Bot API calls/s", f"{result['clawfleet_api_calls_per_s_median']}"),
        ("ClawFleet: messages sent or edited/s (Telegram allows about 30)",
         f"{result['clawfleet_message_sends_per_s_median']}"),
        ("ClawFleet: 429 answers" + ("" if result["flood_limits_enforced"] else " (flood limits off)"),
         f"{result['clawfleet_429_answers']}"),
        ("ClawFleet: message -> reply (median)", f"{result['clawfleet_reply_latency_ms_median']} ms"),
        ("echo: message -> reply (median)", f"{result['echo_reply_latency_ms_median']} ms"),
        ("latency ratio ClawFleet / echo", f"{result['latency_ratio_clawfleet_over_echo']}"),
        ("echo bot paced as ClawFleet's: updates/s", f"{result['paced_echo_updates_per_s_median']}"),
        ("echo bot paced as ClawFleet's: message -> reply (median)",
         f"{result['paced_echo_reply_latency_ms_median']} ms"),
        ("throughput ratio ClawFleet / paced echo", f"{result['throughput_ratio_clawfleet_over_paced_echo']}"),
        ("latency ratio ClawFleet / paced echo", f"{result['latency_ratio_clawfleet_over_paced_echo']}"),
    ], heading=f"{result['users']} users at once, {result['steps_per_user']} steps each, {result['rounds']} rounds")
    print_table([(f"step {n + 1} ({name})", f"{ms} ms") for n, (name, ms)
                 in enumerate(result["clawfleet_reply_latency_ms_median_by_step"].items())],
                heading="ClawFleet: message -> reply (median), by step")
    per_step = result["clawfleet_api_calls_per_step"]
    print_table([(method, f"{count}") for method, count in per_step.items()]
                + [("all of ClawFleet's bot", f"{sum(c for m, c in per_step.items() if '(' not in m):.2f}")],
                heading="Bot API calls per onboarding step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/bot.json"))
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary directory")
    parser.add_argument("--no-flood-limits", dest="flood_limits", action="store_false",
                        help="the fake answers ClawFleet's bot without Telegram's flood control")
    args = parser.parse_args()
    asyncio.run(run(args.users, args.rounds, args.out, args.database_url, args.flood_limits))


if __name__ == "__main__":
    main()
