"""The images of compose.yaml's other services, built here where no registry is reachable: a
PostgreSQL and a Caddy from Debian's packages, each keeping the contract of the official image
compose.yaml names (postgres:16: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA and
pg_isready; caddy:2: /etc/caddy/Caddyfile, its state in /data and /config). Each is tagged with a
hash of its recipe, so an unchanged recipe reuses the image."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provisioner.images.dockercli import docker
from tests.support.platform_image import debian_image

FILES = Path(__file__).resolve().parent / "compose"


@dataclass(frozen=True)
class StackImage:
    repository: str
    packages: tuple[str, ...]
    dockerfile: str  # after its FROM line, which names the Debian base
    files: tuple[str, ...] = ()  # from tests/support/compose/, copied into the build context


POSTGRES = StackImage(
    repository="clawfleet-test/postgres",
    packages=("postgresql-15", "ca-certificates"),
    dockerfile="""
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENV PGDATA=/var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
STOPSIGNAL SIGINT
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
""",
    files=("postgres-entrypoint.sh",),
)

EDGE = StackImage(
    repository="clawfleet-test/caddy",
    packages=("caddy", "ca-certificates"),
    dockerfile="""
ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data
RUN mkdir -p /config /data /etc/caddy /srv
WORKDIR /srv
EXPOSE 80 443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
""",
)


def stack_image(image: StackImage, docker_host: str | None, cache_dir: Path, mirror: str | None = None,
                log=print) -> str:
    """The tag of `image`, built when missing."""
    base = debian_image(docker_host, cache_dir, f"{image.repository}-base", image.packages, mirror, log)
    digest = hashlib.sha256(f"{base}\n{image.dockerfile}".encode())
    for name in image.files:
        digest.update((FILES / name).read_bytes())
    tag = f"{image.repository}:{digest.hexdigest()[:12]}"
    if docker(["image", "inspect", tag], docker_host, check=False).returncode == 0:
        return tag
    log(f"building {tag} over {base}")
    with tempfile.TemporaryDirectory(prefix="clawfleet-stack-image-") as context:
        for name in image.files:
            shutil.copy2(FILES / name, Path(context) / name)
        (Path(context) / "Dockerfile").write_text(f"FROM {base}\n{image.dockerfile}")
        docker(["build", "--quiet", "--force-rm", "--tag", tag, context], docker_host, DOCKER_BUILDKIT="0")
    return tag
