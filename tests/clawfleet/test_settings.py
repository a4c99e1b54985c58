import ipaddress
import subprocess
import sys

import pytest

from clawfleet.configs import s3_config, web_config
from clawfleet.settings import Settings, SettingsError, load_settings

ENV_PREFIX = "CLAWFLEET_"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    import os

    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_follow_the_contract(tmp_path) -> None:
    settings = load_settings()
    assert settings.database_url == f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'clawfleet.db')}"
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert settings.runtime == "process"
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert settings.openclaw_image == f"clawfleet/openclaw:{settings.openclaw_version}"
    assert settings.memory_budget_mb > 0
    assert not settings.billing_enabled and not settings.bot_enabled


def test_environment_values_are_parsed(monkeypatch) -> None:
    monkeypatch.setenv("CLAWFLEET_HTTP_PORT", "9090")
    monkeypatch.setenv("CLAWFLEET_SECRET_KEYS", " key-one, key-two ")
    monkeypatch.setenv("CLAWFLEET_PROVIDER_URLS", "anthropic=http://127.0.0.1:9/a/,openai=http://127.0.0.1:9/o")
    monkeypatch.setenv("CLAWFLEET_ALLOWED_TELEGRAM_IDS", "1,22")
    monkeypatch.setenv("CLAWFLEET_TELEGRAM_BOT_TOKEN", "123:secret-token-value")
    settings = load_settings()
    assert settings.http_port == 9090
    assert [k.get_secret_value() for k in settings.secret_keys] == ["key-one", "key-two"]
    assert settings.provider_urls == {"anthropic": "http://127.0.0.1:9/a", "openai": "http://127.0.0.1:9/o"}
    assert settings.allowed_telegram_ids == [1, 22]
    assert settings.bot_enabled
    assert "secret-token-value" not in repr(settings)


def test_dotenv_file_is_read(tmp_path) -> None:
    (tmp_path / ".env").write_text("CLAWFLEET_RUNTIME=docker\n")
    assert load_settings().runtime == "docker"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CLAWFLEET_HTTP_PORT", "eighty", "CLAWFLEET_HTTP_PORT: Input should be a valid integer"),
        ("CLAWFLEET_HTTP_PORT", "70000", "CLAWFLEET_HTTP_PORT: Input should be less than or equal to 65535"),
        ("CLAWFLEET_RUNTIME", "kubernetes", "CLAWFLEET_RUNTIME: Input should be 'process' or 'docker'"),
        ("CLAWFLEET_PROVIDER_URLS", "anthropic", "CLAWFLEET_PROVIDER_URLS: expected provider=http(s)://url"),
        ("CLAWFLEET_PUBLIC_URL", "example.com", "CLAWFLEET_PUBLIC_URL: must start with http:// or https://"),
        ("CLAWFLEET_ALLOWED_TELEGRAM_IDS", "1,x", "CLAWFLEET_ALLOWED_TELEGRAM_IDS"),
        ("CLAWFLEET_MAX_CONCURRENT_STARTS", "0", "CLAWFLEET_MAX_CONCURRENT_STARTS"),
        ("CLAWFLEET_DEBIAN_MIRROR", "mirror.example.org/debian", "CLAWFLEET_DEBIAN_MIRROR: must start with http://"),
        ("CLAWFLEET_DEBIAN_MIRROR", "file:///srv/debian", "CLAWFLEET_DEBIAN_MIRROR: must start with http://"),
        ("CLAWFLEET_DEBIAN_MIRROR", "http:///debian", "CLAWFLEET_DEBIAN_MIRROR: must name a host"),
        ("CLAWFLEET_TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/33",
         "CLAWFLEET_TRUSTED_PROXIES: item 2 ('10.0.0.0/33') is not a network like 10.0.0.0/8"),
        ("CLAWFLEET_TRUSTED_PROXIES", "edge.example.com", "CLAWFLEET_TRUSTED_PROXIES: item 1 ('edge.example.com')"),
        ("CLAWFLEET_AUTH_FAILURES_PER_ACCOUNT", "0", "CLAWFLEET_AUTH_FAILURES_PER_ACCOUNT"),
        ("CLAWFLEET_AUTH_THROTTLE_WINDOW_S", "-1", "CLAWFLEET_AUTH_THROTTLE_WINDOW_S"),
        ("CLAWFLEET_READ_CACHE_TTL_S", "-1", "CLAWFLEET_READ_CACHE_TTL_S"),
        ("CLAWFLEET_INSTANCE_DOMAIN", "claws example.com", "CLAWFLEET_INSTANCE_DOMAIN: must be a domain name"),
        ("CLAWFLEET_INSTANCE_DOMAIN", "http://claws.example.com", "CLAWFLEET_INSTANCE_DOMAIN: must be a domain"),
    ],
)
def test_a_bad_value_is_named(monkeypatch, name, value, expected) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None),  # unset: the host's apt sources decide
    ("", None),
    ("https://mirror.example.org/debian/", "https://mirror.example.org/debian"),
    ("http://127.0.0.1:3142/debian", "http://127.0.0.1:3142/debian"),
])
def test_the_debian_mirror_is_an_http_url_or_unset(monkeypatch, value, expected) -> None:
    if value is not None:
        monkeypatch.setenv("CLAWFLEET_DEBIAN_MIRROR", value)
    assert load_settings().debian_mirror == expected


def test_trusted_proxies_are_networks_and_none_by_default(monkeypatch) -> None:
    assert load_settings().trusted_proxies == []
    monkeypatch.setenv("CLAWFLEET_TRUSTED_PROXIES", " 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32")
    settings = load_settings()
    assert settings.trusted_proxies == ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
    assert web_config(settings).trusted_proxies == tuple(map(ipaddress.ip_network, settings.trusted_proxies))


def test_webhook_mode_needs_its_secret(monkeypatch) -> None:
    monkeypatch.setenv("CLAWFLEET_TELEGRAM_MODE", "webhook")
    with pytest.raises(SettingsError, match="CLAWFLEET_TELEGRAM_WEBHOOK_SECRET"):
        load_settings()


def test_the_key_ring_can_come_from_a_file(monkeypatch, tmp_path) -> None:
    from db.keyfile import key_file, load_keyring
    from db.sealing import generate_key

    first, second = generate_key(), generate_key()
    path = tmp_path / "run" / "clawfleet_secret_keys"  # as compose mounts a Docker secret
    path.parent.mkdir()
    path.write_text(f"# the first seals\n{first}\n\n{second}\n")
    path.chmod(0o600)
    monkeypatch.setenv("CLAWFLEET_SECRET_KEYS_FILE", str(path))
    settings = load_settings()
    assert [key.get_secret_value() for key in settings.secret_keys] == [first, second]
    assert first not in repr(settings)
    ring = load_keyring(settings.data_dir, [key.get_secret_value() for key in settings.secret_keys])
    assert ring.primary_id == load_keyring(tmp_path / "other", [first]).primary_id
    assert not key_file(settings.data_dir).exists()  # nothing generated: the file's keys are the ring


@pytest.mark.parametrize(("content", "also_in_env", "expected"), [
    (None, False, "CLAWFLEET_SECRET_KEYS_FILE: cannot read .*No such file"),
    ("# only a comment\n\n", False, "CLAWFLEET_SECRET_KEYS_FILE: .* holds no key"),
    ("a-key\n", True, "CLAWFLEET_SECRET_KEYS or CLAWFLEET_SECRET_KEYS_FILE, not both"),
])
def test_a_key_file_that_cannot_be_used_stops_start_up(monkeypatch, tmp_path, content, also_in_env,
                                                         expected) -> None:
    path = tmp_path / "secret.keys"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("CLAWFLEET_SECRET_KEYS_FILE", str(path))
    if also_in_env:
        monkeypatch.setenv("CLAWFLEET_SECRET_KEYS", "another-key")
    with pytest.raises(SettingsError, match=expected):
        load_settings()


def test_settings_are_read_only() -> None:
    settings = Settings()
    with pytest.raises(Exception):
        settings.http_port = 1  # type: ignore[misc]


def test_start_up_stops_with_one_line(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CLAWFLEET_HTTP_PORT": "eighty", "CLAWFLEET_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "clawfleet.cli", "serve"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "clawfleet: invalid configuration: CLAWFLEET_HTTP_PORT: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]
    assert not (tmp_path / "clawfleet.db").exists()


@pytest.mark.parametrize(("url", "sender", "expected"), [
    ("http://mail.example.com", "cf@example.com", "CLAWFLEET_SMTP_URL: must start with smtp:// or smtps://"),
    ("smtp://mail.example.com:0x19", "cf@example.com", "CLAWFLEET_SMTP_URL: has a port that is not a number"),
    ("smtp://:secret-password@", "cf@example.com", "CLAWFLEET_SMTP_URL: must name a host"),
    ("smtp://mail.example.com/inbox", "cf@example.com", "CLAWFLEET_SMTP_URL: must be only smtp(s)://"),
    ("smtp://mail.example.com", None, "CLAWFLEET_SMTP_URL needs CLAWFLEET_SMTP_FROM"),
    ("smtp://mail.example.com", "not an address", "CLAWFLEET_SMTP_FROM: must be an email address"),
])
def test_a_bad_smtp_setting_is_named_and_its_password_never_echoed(monkeypatch, url, sender, expected) -> None:
    monkeypatch.setenv("CLAWFLEET_SMTP_URL", url)
    if sender is not None:
        monkeypatch.setenv("CLAWFLEET_SMTP_FROM", sender)
    with pytest.raises(SettingsError) as refused:
        load_settings()
    assert expected in str(refused.value) and "secret-password" not in str(refused.value)


def test_the_smtp_url_is_taken_apart(monkeypatch) -> None:
    from clawfleet.configs import mail_config

    monkeypatch.setenv("CLAWFLEET_SMTP_URL", "smtps://cf%40example.com:p%3Ass@mail.example.com")
    monkeypatch.setenv("CLAWFLEET_SMTP_FROM", "ClawFleet <cf@example.com>")
    mail = mail_config(load_settings())
    assert (mail.server.host, mail.server.port, mail.server.implicit_tls) == ("mail.example.com", 465, True)
    assert (mail.server.username, mail.server.password, mail.sender) == ("cf@example.com", "p:ss",
                                                                         "ClawFleet <cf@example.com>")
    monkeypatch.setenv("CLAWFLEET_SMTP_URL", "smtp://mail.example.com")
    assert mail_config(load_settings()).server.port == 587  # STARTTLS's submission port
    monkeypatch.delenv("CLAWFLEET_SMTP_URL")
    assert mail_config(load_settings()) is None  # no mail: links go by the bot or the operator


def test_the_dashboard_may_not_sit_where_an_instance_would(monkeypatch) -> None:
    monkeypatch.setenv("CLAWFLEET_PUBLIC_URL", "https://app.claws.example.com")
    monkeypatch.setenv("CLAWFLEET_INSTANCE_DOMAIN", "claws.example.com")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "app.claws.example.com would be an instance's host" in str(info.value)
    monkeypatch.setenv("CLAWFLEET_INSTANCE_DOMAIN", "Claws.Example.COM.")
    monkeypatch.setenv("CLAWFLEET_PUBLIC_URL", "https://clawfleet.example.com")
    assert load_settings().instance_domain == "claws.example.com"


def test_the_metrics_token_is_secret_and_empty_means_none(monkeypatch) -> None:
    monkeypatch.setenv("CLAWFLEET_METRICS_TOKEN", "  scrape-me-please  ")
    settings = load_settings(_env_file=None)
    assert settings.metrics_token.get_secret_value() == "scrape-me-please"
    assert "scrape-me-please" not in repr(settings)
    monkeypatch.setenv("CLAWFLEET_METRICS_TOKEN", " ")
    assert load_settings(_env_file=None).metrics_token is None


def test_a_resource_sample_interval_too_short_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("CLAWFLEET_RESOURCE_SAMPLE_INTERVAL_S", "1")
    with pytest.raises(SettingsError, match="CLAWFLEET_RESOURCE_SAMPLE_INTERVAL_S"):
        load_settings(_env_file=None)


def test_the_backup_bucket_is_off_by_default_and_its_keys_are_secret(monkeypatch) -> None:
    settings = load_settings(_env_file=None)
    assert settings.instance_backup_s3_bucket is None and s3_config(settings) is None
    assert (settings.instance_backup_every_hours, settings.instance_backups_kept) == (24, 7)
    monkeypatch.setenv("CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET", "fleet-backups")
    monkeypatch.setenv("CLAWFLEET_INSTANCE_BACKUP_S3_ENDPOINT_URL", "https://s3.example.net/")
    monkeypatch.setenv("CLAWFLEET_INSTANCE_BACKUP_S3_ACCESS_KEY_ID", "AKIAEXAMPLEKEYID")
    monkeypatch.setenv("CLAWFLEET_INSTANCE_BACKUP_S3_SECRET_ACCESS_KEY", "very-secret-key-material")
    monkeypatch.setenv("CLAWFLEET_INSTANCE_BACKUP_S3_PREFIX", "/prod/")
    settings = load_settings(_env_file=None)
    config = s3_config(settings)
    assert (config.bucket, config.endpoint_url, config.prefix, config.region) == \
        ("fleet-backups", "https://s3.example.net", "prod", "us-east-1")
    assert config.secret_access_key.get_secret_value() == "very-secret-key-material"
    assert "very-secret-key-material" not in repr(settings) + repr(config)
    assert "AKIAEXAMPLEKEYID" not in repr(settings) + repr(config)


@pytest.mark.parametrize(("env", "expected"), [
    ({"CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET": "fleet-backups"}, "needs CLAWFLEET_INSTANCE_BACKUP_S3_ACCESS_KEY_ID"),
    ({"CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET": "fleet-backups", "CLAWFLEET_INSTANCE_BACKUP_S3_ACCESS_KEY_ID": "AKIA1"},
     "needs CLAWFLEET_INSTANCE_BACKUP_S3_SECRET_ACCESS_KEY"),
    ({"CLAWFLEET_INSTANCE_BACKUP_S3_SECRET_ACCESS_KEY": "s"}, "CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET is not set"),
    ({"CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET": "Fleet_Backups"}, "CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET: must be a bucket"),
    ({"CLAWFLEET_INSTANCE_BACKUP_EVERY_HOURS": "-1"}, "CLAWFLEET_INSTANCE_BACKUP_EVERY_HOURS"),
], ids=["no-keys", "no-secret", "keys-without-bucket", "bad-name", "negative-interval"])
def test_a_half_set_backup_bucket_stops_start_up_naming_what_is_missing(monkeypatch, env, expected) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=expected):
        load_settings(_env_file=None)
