"""Instance addresses, built for links and parsed for routing by one module."""

import pytest

from provisioner.instance_urls import InstanceUrls

LAPTOP = InstanceUrls("http://localhost:8080", "localhost")
SERVER = InstanceUrls("https://clawfleet.example.com", "claws.example.com")


def test_a_link_has_the_scheme_and_port_of_the_public_url() -> None:
    assert LAPTOP.url("claw-1a2b3c4d5e") == "http://claw-1a2b3c4d5e.localhost:8080"
    assert SERVER.url("claw-1a2b3c4d5e") == "https://claw-1a2b3c4d5e.claws.example.com"
    assert InstanceUrls("https://example.com:8443/", "Example.COM").url("a") == "https://a.example.com:8443"


@pytest.mark.parametrize("urls", [LAPTOP, SERVER])
def test_what_a_link_names_routes_back_to_its_subdomain(urls: InstanceUrls) -> None:
    for subdomain in ("claw-1a2b3c4d5e", "a", "x" * 63):
        assert urls.subdomain_of(urls.host(subdomain)) == subdomain
        assert urls.subdomain_of(urls.host(subdomain).upper()) == subdomain


@pytest.mark.parametrize("host", [
    "localhost:8080", "localhost", "127.0.0.1:8080", "[::1]:8080", "",  # the dashboard
    "a.b.localhost:8080",  # two labels deep
    "evil-localhost:8080", "claw-1.localhost.evil.com",  # look-alikes
    ".localhost", "-a.localhost", "a-.localhost", "a_b.localhost", "x" * 64 + ".localhost",
    "cläw.localhost",
])
def test_every_other_host_is_the_dashboard(host: str) -> None:
    assert LAPTOP.subdomain_of(host) is None


def test_the_port_and_a_trailing_dot_do_not_matter() -> None:
    assert SERVER.subdomain_of("claw-1.claws.example.com:443") == "claw-1"
    assert SERVER.subdomain_of("claw-1.claws.example.com.") == "claw-1"
    assert SERVER.subdomain_of("claw-1.example.com") is None
