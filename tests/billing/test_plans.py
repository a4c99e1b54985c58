"""The plans file: the example in the repository is valid, and each mistake an operator can make
is refused with the line and the field named (the platform then does not start)."""

from __future__ import annotations

import pytest

from billing.plans import PlansError, load_plans, parse_plans
from clawfleet.settings import SettingsError, load_settings

GOOD = """\
default = "solo"

[plans.solo]
name = "Solo"
stripe_price = "price_solo"
instances = 1
memory_mb = 1024
cpus = 1
"""


def test_the_example_file_holds_two_plans_with_everything_set(repo_root):
    plans = load_plans(repo_root / "plans.example.toml")
    assert [plan.id for plan in plans] == ["personal", "team"]
    assert plans.default == "personal"
    team = plans.get("team")
    assert (team.name, team.instances, team.memory_mb, team.cpus, team.trial_days) == ("Team", 3, 2048, 2.0, 7)
    assert (team.backup_every_hours, team.backups_kept) == (6, 28)
    assert plans.by_price("price_personal").id == "personal"
    assert plans.get("nope") is None and plans.by_price("price_nope") is None


def test_optional_fields_default_and_integers_are_accepted_as_cpus():
    plan = parse_plans(GOOD).get("solo")
    assert plan.cpus == 1.0 and plan.trial_days == 0 and plan.price_label == ""
    assert plan.included_usage_usd == 0.0 and (plan.backup_every_hours, plan.backups_kept) == (24, 7)
    off = parse_plans(GOOD + "backup_every_hours = 0\nbackups_kept = 1\n").get("solo")
    assert (off.backup_every_hours, off.backups_kept) == (0, 1)


@pytest.mark.parametrize(("text", "line", "words"), [
    (GOOD.replace("instances = 1", "instances = 0"), 6, "instances must be a whole number from 1"),
    (GOOD.replace("memory_mb = 1024", 'memory_mb = "lots"'), 7, "memory_mb must be a whole number"),
    (GOOD.replace("cpus = 1", "cpus = nan"), 8, "cpus must be a number"),
    (GOOD.replace('name = "Solo"\n', ""), 3, "name is missing"),
    (GOOD + "colour = 3\n", 9, "unknown field 'colour'"),
    (GOOD + "backups_kept = 0\n", 9, "backups_kept must be a whole number from 1 to 1000"),
    (GOOD + "backup_every_hours = 1.5\n", 9, "backup_every_hours must be a whole number from 0"),
    (GOOD + "backup_retention_days = 30\n", 9, "backup_retention_days is replaced by backups_kept"),
    (GOOD.replace('default = "solo"', 'default = "gold"'), 1, "default must name one of the plans"),
    ("mode = 1\n" + GOOD, 1, "unknown setting 'mode'"),
    (GOOD.replace("[plans.solo]", "[plans.Solo!]"), None, "not valid TOML"),
    (GOOD.replace("[plans.solo]", '[plans."Big Plan"]'), 3, "must be 1-32 lowercase"),
    (GOOD + '\n[plans.duo]\nname = "Duo"\nstripe_price = "price_solo"\ninstances = 2\nmemory_mb = 1024\ncpus = 1\n',
     12, "stripe_price 'price_solo' is used by more than one plan"),
])
def test_each_mistake_names_its_line_and_field(text, line, words):
    with pytest.raises(PlansError) as refused:
        parse_plans(text, "plans.toml")
    message = str(refused.value)
    assert message.startswith("plans.toml")
    assert words in message
    if line is not None:
        assert f"line {line}:" in message
    else:
        assert "(at line 3" in message  # tomllib's own position


BILLED = GOOD + """included_usage_usd = 10
overage = "bill"
overage_price = "price_solo_overage"
spend_cap_ceiling_usd = 100
"""


def test_a_billed_overage_plan_keeps_its_metered_price_apart_from_its_plan_price():
    plans = parse_plans(BILLED)
    plan = plans.get("solo")
    assert plan.bills_overage and plan.overage_price == "price_solo_overage"
    assert plans.by_price("price_solo") is plan and plans.by_price("price_solo_overage") is None
    assert parse_plans(GOOD).get("solo").overage == "stop" and parse_plans(GOOD).get("solo").overage_price is None


@pytest.mark.parametrize(("text", "line", "words"), [
    (BILLED.replace('overage_price = "price_solo_overage"\n', ""), 10, "needs overage_price"),
    (BILLED.replace('overage = "bill"', 'overage = "stop"'), 11, "overage_price is only used with"),
    (BILLED.replace('overage = "bill"', 'overage = "charge"'), 10, 'overage must be "stop" or "bill"'),
    (BILLED.replace('overage_price = "price_solo_overage"', 'overage_price = ""'), 11,
     "overage_price must be a non-empty string"),
    (BILLED.replace('overage_price = "price_solo_overage"', 'overage_price = "price_solo"'), 11,
     "is a plan's stripe_price"),
    (BILLED.replace("spend_cap_ceiling_usd = 100\n", ""), 10, "needs spend_cap_ceiling_usd above 0"),
    (BILLED.replace("spend_cap_ceiling_usd = 100", "spend_cap_ceiling_usd = 0"), 12,
     "needs spend_cap_ceiling_usd above 0"),
    (BILLED.replace("spend_cap_ceiling_usd = 100", "spend_cap_ceiling_usd = 10"), 12,
     "must be above included_usage_usd"),
    (BILLED.replace("included_usage_usd = 10\n", ""), 9, "set it above 0"),
])
def test_each_billed_overage_mistake_names_its_line_and_field(text, line, words):
    with pytest.raises(PlansError) as refused:
        parse_plans(text, "plans.toml")
    assert words in str(refused.value)
    assert f"line {line}:" in str(refused.value)


def test_a_file_with_no_plans_is_refused():
    with pytest.raises(PlansError, match="no plans"):
        parse_plans('default = "x"\n')


def test_billing_on_without_a_plans_file_or_with_a_bad_one_stops_at_start(tmp_path):
    with pytest.raises(SettingsError, match="CLAWFLEET_PLANS_FILE"):
        load_settings(data_dir=tmp_path, stripe_secret_key="sk_test_1", stripe_webhook_secret="whsec_1",
                      _env_file=None)
    bad = tmp_path / "plans.toml"
    bad.write_text(GOOD.replace("instances = 1", "instances = -1"))
    with pytest.raises(SettingsError) as refused:
        load_settings(data_dir=tmp_path, stripe_secret_key="sk_test_1", stripe_webhook_secret="whsec_1",
                      plans_file=bad, _env_file=None)
    assert "line 6" in str(refused.value) and "plans.solo.instances" in str(refused.value)
    with pytest.raises(SettingsError, match="CLAWFLEET_STRIPE_WEBHOOK_SECRET"):
        load_settings(data_dir=tmp_path, stripe_secret_key="sk_test_1", plans_file=bad, _env_file=None)


def test_billing_stays_off_without_a_stripe_key(tmp_path):
    settings = load_settings(data_dir=tmp_path, _env_file=None)
    assert not settings.billing_enabled
