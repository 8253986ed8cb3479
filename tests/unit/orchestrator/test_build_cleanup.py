"""The choice of superseded built images and build files to remove (orchestrator/build_cleanup.py): never a kept
one, never one in use, never one of a service with no newer build; and the build log's bounds and masking
(model/build_log.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from corral.model.build_log import MASK, MAX_LINE_CHARS, MAX_LOG_BYTES, MAX_LOG_LINES, BuildLog, redact, secret_values
from corral.orchestrator.build_cleanup import files_to_remove, images_to_remove, repository

REPOS = ["corral-build/shop-web", "corral-build/shop-worker", "corral-build/blog-app"]
TAGS = ["000000000001", "000000000002", "000000000003", "000000000004"]
built = st.builds(lambda r, t: f"{r}:{t}", st.sampled_from(REPOS), st.sampled_from(TAGS))
others = st.sampled_from(["busybox:latest", "corral/haproxy:latest", "sha256:" + "a" * 64])
images = st.sets(built | others, max_size=12)


def test_a_superseded_image_nobody_uses_is_removed_and_the_current_and_previous_stay() -> None:
    on_host = ["corral-build/shop-web:000000000001", "corral-build/shop-web:000000000002",
               "corral-build/shop-web:000000000003", "busybox:latest"]  # fmt: skip
    kept = ["corral-build/shop-web:000000000003", "corral-build/shop-web:000000000002"]  # current, previous
    assert images_to_remove(on_host, [], kept) == ["corral-build/shop-web:000000000001"]
    assert images_to_remove(on_host, ["corral-build/shop-web:000000000001"], kept) == []  # a container uses it


def test_images_of_a_service_without_a_newer_build_stay() -> None:
    on_host = ["corral-build/gone-app:000000000001", "corral-build/shop-web:000000000001"]
    assert images_to_remove(on_host, [], ["corral-build/shop-web:000000000002"]) == [
        "corral-build/shop-web:000000000001"
    ]
    assert images_to_remove(on_host, [], []) == []


def test_the_repository_of_a_built_image() -> None:
    assert repository("corral-build/shop-web:0123456789ab") == "corral-build/shop-web"
    assert repository("docker.io/corral-build/shop-web:0123456789ab") == "corral-build/shop-web"


@given(images, st.sets(built, max_size=6), st.sets(built, max_size=6))
def test_never_removes_a_kept_or_used_image_nor_one_corral_did_not_build(
    on_host: set[str], in_use: set[str], kept: set[str]
) -> None:
    chosen = images_to_remove(on_host, in_use, kept)
    assert set(chosen) <= on_host
    assert not set(chosen) & (in_use | kept)
    assert all(c.startswith("corral-build/") for c in chosen)
    kept_repos = {repository(k) for k in kept}
    assert all(repository(c) in kept_repos for c in chosen)  # a newer build of the same service exists
    # everything else that qualifies is chosen, and choosing again after the removal chooses nothing
    rest = on_host - set(chosen)
    assert images_to_remove(rest, in_use, kept) == []
    assert chosen == images_to_remove(on_host, in_use, kept)


@given(
    st.dictionaries(
        st.sampled_from(["a" * 64 + ".tar", "b" * 64 + ".tar", "c1-x86_64.tar", "c2-aarch64.tar"]),
        st.floats(min_value=0, max_value=10_000),
    ),
    st.sets(st.sampled_from(["a" * 64, "b" * 64, "c1-", "c2-"])),
    st.floats(min_value=0, max_value=10_000),
)
def test_files_kept_or_young_stay(files: dict[str, float], kept: set[str], now: float) -> None:
    chosen = files_to_remove(files, kept, now, grace=600)
    for name in files:
        named = any(name.startswith(k) for k in kept)
        assert (name in chosen) == (not named and now - files[name] > 600)


@given(st.lists(st.text(alphabet="ab \n\u00e9", max_size=6000), max_size=40))
def test_the_log_stays_bounded_and_counts_every_line(chunks: list[str]) -> None:
    log = BuildLog()
    every: list[str] = []
    for chunk in chunks:
        log.add(chunk)
        every.extend(chunk.splitlines())
    assert log.total == len(every)
    assert len(log.lines) <= MAX_LOG_LINES
    assert sum(len(line.encode()) for line in log.lines) == log.size <= MAX_LOG_BYTES
    kept = every[log.first :]  # the kept lines are the newest ones, each cut to MAX_LINE_CHARS
    assert list(log.lines) == [x if len(x) <= MAX_LINE_CHARS else x[:MAX_LINE_CHARS] + " [line cut]" for x in kept]
    start, page = log.after(0, 10)
    assert start == log.first and page == kept[:10]
    assert log.after(log.total) == (log.total, [])


def test_a_long_log_keeps_its_end() -> None:
    log = BuildLog()
    log.add("\n".join(f"line {i}" for i in range(MAX_LOG_LINES + 5)))
    assert log.first == 5 and log.lines[0] == "line 5" and log.total == MAX_LOG_LINES + 5
    assert log.after(2, 2) == (5, ["line 5", "line 6"])


secret = st.text(alphabet="abcdefXYZ019", min_size=3, max_size=12)


@given(st.lists(secret, max_size=4), st.lists(st.sampled_from(["x", " ", "-", "abc", "XY", "\t"]), max_size=30))
def test_no_secret_survives_masking(secrets: list[str], pieces: list[str]) -> None:
    text = "".join(p for pair in zip(pieces, secrets * 10, strict=False) for p in pair) + "".join(pieces)
    masked = redact(text, secrets)
    assert not any(s in masked for s in secrets)
    log = BuildLog(secrets=tuple(secrets))
    log.add(text)
    assert not any(s in line for line in log.lines for s in secrets)


def test_secret_named_build_args_and_given_values_are_masked_short_ones_are_not() -> None:
    values = secret_values([("DB_PASSWORD", "hunter22"), ("GREETING", "hello"), ("API_KEY", "on")], ["s3cr3t"])
    assert values == ("hunter22", "s3cr3t")
    assert redact("echo hunter22 hello s3cr3t on", values) == f"echo {MASK} hello {MASK} on"
