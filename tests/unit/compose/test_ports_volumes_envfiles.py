"""Ports (short and long syntax, ranges), volumes (named, bind, relative, anonymous, long syntax) and env files."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.compose import ComposeFile, env_files_for_upload, load_stack, parse_answers
from corral.model.errors import InvalidInput
from corral.model.stack import PortSpec, VolumeSpec

from .helpers import DC, launch, service_error, warnings_of


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("'8080:80'", [PortSpec(80, 8080)]),
        ("8080:80", [PortSpec(80, 8080)]),
        ("'127.0.0.1:8080:80'", [PortSpec(80, 8080, host_ip="127.0.0.1")]),
        ("'8080:80/udp'", [PortSpec(80, 8080, "udp")]),
        ("'53:53/UDP'", [PortSpec(53, 53, "udp")]),
        ("'8000-8001:80-81'", [PortSpec(80, 8000), PortSpec(81, 8001)]),
        ("'[::1]:8080:80'", [PortSpec(80, 8080, host_ip="::1")]),
        ("'0.0.0.0:443:443/tcp'", [PortSpec(443, 443, host_ip="0.0.0.0")]),
        ("{target: 80, published: 8080}", [PortSpec(80, 8080)]),
        ("{target: 80, published: '8080', protocol: udp, host_ip: 10.0.0.1, mode: host}",
         [PortSpec(80, 8080, "udp", "10.0.0.1")]),
        ("{target: 80}", [PortSpec(80)]),
    ],
)  # fmt: skip
def test_published_ports(entry: str, expected: list[PortSpec]) -> None:
    assert list(launch(f"ports:\n  - {entry}\n").ports) == expected


def test_ports_without_host_port_are_published_on_a_port_the_server_picks() -> None:
    """No host port = a random one from CORRAL_HOST_PORT_RANGE (orchestrator/host_ports.py), without a warning."""
    assert launch("ports: [80, '9000-9001']\n").ports == (PortSpec(80), PortSpec(9000), PortSpec(9001))
    assert launch("ports: ['127.0.0.1::80']\n").ports == (PortSpec(80, host_ip="127.0.0.1"),)
    assert warnings_of("image: nginx\nports: ['127.0.0.1::80', '53/udp']\n") == ()


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("abc", "'abc' is not a port number or range"),
        ("70000", "70000 is outside 1-65535"),
        ("'8080:70000'", "70000 is outside 1-65535"),
        ("0", "0 is outside 1-65535"),
        ("'80:80/sctp'", "protocol 'sctp' is not supported"),
        ("'8000-8002:80-81'", "ranges must have the same size"),
        ("'8000-8001:80'", "ranges must have the same size"),
        ("'90-80'", "runs backwards"),
        ("'1-2000'", "limited to 1000 ports"),
        ("'300.1.1.1:80:80'", "is not an IP address"),
        ("'a:b:c:d'", "expected [IP:][HOST:]CONTAINER[/PROTOCOL]"),
        ("'[::1:80:80'", "expected [IPv6]:HOST:CONTAINER"),
        ("true", "must be a port string"),
        ("{published: 80}", "needs 'target'"),
        ("{target: 80, publish: 80}", "unknown port key 'publish'"),
        ("{target: 80, mode: swarm}", "must be 'host' or 'ingress'"),
        ("{target: 80, published: 8000-8001}", "must be an integer"),
    ],
)
def test_port_errors_name_the_entry(entry: str, reason: str) -> None:
    exc = service_error(f"image: nginx\nports:\n  - {entry}\n")
    assert exc.field is not None and exc.field.startswith(f"{DC}:services.web.ports[0]")
    assert exc.message.startswith(f"{DC}: service web: ports[0]")
    assert reason in exc.message


def test_same_host_port_twice_in_one_service_is_an_error() -> None:
    exc = service_error("image: nginx\nports: ['80:80', '80:8080']\n")
    assert exc.field == f"{DC}:services.web.ports[1]"
    assert "already published by ports[0]" in exc.message
    assert len(launch("ports: ['80:80', '80:80/udp', '127.0.0.1:80:80']\n").ports) == 3


def test_ports_must_be_a_list() -> None:
    assert service_error("image: nginx\nports: '80:80'\n").field == f"{DC}:services.web.ports"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("data:/var/lib/data", VolumeSpec("volume", "/var/lib/data", "app_data")),
        ("data:/var/lib/data:ro", VolumeSpec("volume", "/var/lib/data", "app_data", True)),
        ("/srv/www:/usr/share/nginx/html:rw", VolumeSpec("bind", "/usr/share/nginx/html", "/srv/www")),
        ("/run/docker.sock:/var/run/docker.sock", VolumeSpec("bind", "/var/run/docker.sock", "/run/docker.sock")),
        ("/cache", VolumeSpec("anonymous", "/cache")),
        ("'/srv//a/../b:/data/'", VolumeSpec("bind", "/data", "/srv/b")),
        ("{type: volume, source: data, target: /d, read_only: true}", VolumeSpec("volume", "/d", "app_data", True)),
        ("{type: bind, source: /srv, target: /d}", VolumeSpec("bind", "/d", "/srv")),
        ("{type: volume, target: /d}", VolumeSpec("anonymous", "/d")),
        ("{source: data, target: /d}", VolumeSpec("volume", "/d", "app_data")),
    ],
)  # fmt: skip
def test_volumes(entry: str, expected: VolumeSpec) -> None:
    assert launch(f"volumes:\n  - {entry}\n").volumes == (expected,)


def test_relative_bind_paths_resolve_against_base_dir() -> None:
    config = launch("volumes: ['./data:/data', '../shared:/shared:ro', '.:/src']\n", base_dir="/home/u/app")
    assert config.volumes == (
        VolumeSpec("bind", "/data", "/home/u/app/data"),
        VolumeSpec("bind", "/shared", "/home/u/shared", True),
        VolumeSpec("bind", "/src", "/home/u/app"),
    )


def test_relative_bind_paths_without_base_dir_are_errors() -> None:
    exc = service_error("image: nginx\nvolumes: ['./data:/data']\n")
    assert exc.field == f"{DC}:services.web.volumes[0]"
    assert "a relative host path needs the compose file's directory" in exc.message


def test_volume_modes_we_ignore_warn() -> None:
    assert warnings_of("image: nginx\nvolumes: ['/a:/a:ro,z']\n") == (
        f"{DC}: service web: volumes[0]: volume mode 'z' is not supported yet and was ignored",
    )
    assert warnings_of("image: nginx\nvolumes: [{type: tmpfs, target: /tmp}]\n") == (
        f"{DC}: service web: volumes[0]: volume type 'tmpfs' is not supported yet and was ignored",
    )


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("data:relative", "must be absolute"),
        ("relative", "must be absolute"),
        ("'~/x:/x'", "home-relative paths are not supported"),
        ("':/x'", "the source is empty"),
        ("'d:/x'", "is not a volume name"),
        ("'bad name:/x'", "is not a volume name"),
        ("'/a:/b:rx'", "unknown mode 'rx'"),
        ("'/a:/b:ro,rw'", "both ro and rw"),
        ("'a:b:c:d'", "expected [SOURCE:]TARGET[:MODE]"),
        ("{source: data}", "needs 'target'"),
        ("{type: bind, target: /x}", "a bind mount needs a source path"),
        ("{type: bind, source: data, target: /x}", "is not a host path"),
        ("{type: volume, source: /srv, target: /x}", "use type 'bind'"),
        ("{type: nfs, target: /x}", "unknown volume type 'nfs'"),
        ("{target: /x, readonly: true}", "unknown volume key 'readonly'"),
        ("5", "must be a string like 'data:/path' or a mapping"),
    ],
)
def test_volume_errors(entry: str, reason: str) -> None:
    exc = service_error(f"image: nginx\nvolumes:\n  - {entry}\n")
    assert exc.field is not None and exc.field.startswith(f"{DC}:services.web.volumes[0]")
    assert reason in exc.message


def test_same_target_twice_is_an_error() -> None:
    exc = service_error("image: nginx\nvolumes: ['a1:/x', '/srv:/x']\n")
    assert exc.field == f"{DC}:services.web.volumes[1]"


def test_top_level_volume_names_and_driver_warnings() -> None:
    from .helpers import stack

    spec = stack(
        """
        version: '2'
        services:
          web:
            image: nginx
            volumes: [data:/data, logs:/logs, other:/other]
        volumes:
          data:
            name: real-data
          logs:
            driver: rancher-nfs
          other:
            external: {name: pre-existing}
          unused:
        """
    )
    assert [v.source for v in spec.services[0].launch.volumes] == ["real-data", "app_logs", "pre-existing"]
    assert spec.warnings == (
        f"{DC}: volume logs: driver 'rancher-nfs' is not supported yet; Docker's local driver is used",
    )


def test_env_file_from_uploaded_contents_with_environment_winning() -> None:
    env_file = "# comment\n\nA=from-file\nB='quoted # not a comment'\nC=\"line\\nbreak\"\nexport D=4 # trailing\nE\n"
    config = launch(
        "env_file: conf/app.env\nenvironment:\n  A: from-environment\n",
        env_files={"conf/app.env": env_file},
        answers={"E": "answered"},
    )
    assert dict(config.environment) == {
        "A": "from-environment",
        "B": "quoted # not a comment",
        "C": "line\nbreak",
        "D": "4",
        "E": "answered",
    }


def test_env_file_list_later_files_win_and_optional_files_may_be_missing() -> None:
    config = launch(
        "env_file:\n  - one.env\n  - path: two.env\n  - path: missing.env\n    required: false\n",
        env_files={"one.env": "A=1\nB=1\n", "two.env": "B=2\n"},
    )
    assert dict(config.environment) == {"A": "1", "B": "2"}


def test_env_file_without_contents_or_base_dir_is_an_error() -> None:
    exc = service_error("image: nginx\nenv_file: app.env\n")
    assert exc.field == f"{DC}:services.web.env_file"
    assert "env file 'app.env' was not provided" in exc.message


def test_env_file_read_from_base_dir(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.env").write_text("A=1\n")
    config = launch("env_file: [conf/app.env]\n", base_dir=str(tmp_path))
    assert config.environment == (("A", "1"),)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../secret.env", "is outside the compose file's directory"),
        ("conf/../../secret.env", "is outside the compose file's directory"),
        ("/etc/passwd", "must be a path relative to the compose file's directory"),
        ("~/.env", "must be a path relative"),
        ("nope.env", "does not exist"),
        ("conf", "does not exist or is not a regular file"),
        ("link.env", "is outside the compose file's directory"),
    ],
)
def test_env_file_reading_stays_inside_base_dir(tmp_path: Path, path: str, reason: str) -> None:
    base = tmp_path / "app"
    (base / "conf").mkdir(parents=True)
    (tmp_path / "secret.env").write_text("SECRET=1\n")
    (base / "link.env").symlink_to(tmp_path / "secret.env")
    exc = service_error(f"image: nginx\nenv_file: '{path}'\n", base_dir=str(base))
    assert exc.field == f"{DC}:services.web.env_file"
    assert reason in exc.message


def test_env_file_syntax_errors_name_file_and_line() -> None:
    exc = service_error("image: nginx\nenv_file: a.env\n", env_files={"a.env": "A=1\nBAD KEY=2\n"})
    assert exc.message == "env file a.env: line 2: 'BAD KEY' is not a valid variable name"
    assert exc.field == "a.env:2"


def test_base_dir_must_be_absolute() -> None:
    with pytest.raises(InvalidInput, match="must be an absolute path"):
        load_stack("app", ComposeFile(DC, "web: {image: nginx}\n", "relative/dir"))


def test_parse_answers() -> None:
    text = "\ufeff# answers\nA=1\n\n  B = two words \nC=x=y\nEMPTY=\nA=again\r\n"
    assert parse_answers(text) == {"A": "again", "B": " two words ", "C": "x=y", "EMPTY": ""}


@pytest.mark.parametrize(("text", "line"), [("A=1\nnot a pair\n", 2), ("1A=x\n", 1), ("A-B=x\n", 1), ("=x\n", 1)])
def test_parse_answers_errors_name_file_and_line(text: str, line: int) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_answers(text, file_name="my-answers.txt")
    assert info.value.message.startswith(f"my-answers.txt: line {line}: ")
    assert info.value.field == f"my-answers.txt:{line}"


def test_env_files_for_upload_reads_what_the_server_needs(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "web.env").write_text("A=1\n")
    (tmp_path / "prod.env").write_text("B=2\n")
    text = (
        "version: '2'\nservices:\n"
        "  web: {image: nginx, env_file: conf/web.env}\n"
        "  api: {image: app, env_file: ['${STAGE}.env', {path: optional.env, required: false}]}\n"
    )
    compose = ComposeFile(DC, text, str(tmp_path))
    files = env_files_for_upload(compose, answers={"STAGE": "prod"})
    assert files == {"conf/web.env": "A=1\n", "prod.env": "B=2\n"}
    spec = load_stack("app", ComposeFile(DC, text), answers={"STAGE": "prod"}, env_files=files)
    assert [dict(s.launch.environment) for s in spec.services] == [{"B": "2"}, {"A": "1"}]


def test_env_files_for_upload_errors(tmp_path: Path) -> None:
    text = "web: {image: nginx, env_file: ../x.env}\n"
    with pytest.raises(InvalidInput) as info:
        env_files_for_upload(ComposeFile(DC, text, str(tmp_path)))
    assert info.value.field == f"{DC}:web.env_file"
    with pytest.raises(InvalidInput, match="absolute base_dir"):
        env_files_for_upload(ComposeFile(DC, text))
