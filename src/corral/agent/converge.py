"""Converge the engine to the desired set the server sent: level-triggered, idempotent.

Why split in two: `plan_convergence` is pure (desired + observed + start times -> actions, each with a reason), so
its rules are table- and property-tested without an engine; `Converger` observes, plans and applies through
`runtime/containers.py`, one failing action never stopping the others, and remembers per slot why it failed so
the session can tell the server (`slot` messages, see `SlotReporter`).

The rules (model/stack.py DesiredContainer): only containers labelled `io.corral.container` are ever touched, and
only those of this agent's environment (or labelled with a desired slot id) — anything else on the engine is
foreign and left alone, so two Corral installations can share one engine. Per desired slot: no copy -> create
(and start if `running`); several copies -> keep the best, remove the others; config hash differs (or the copy is
dead) -> recreate; `running` false -> stop a running copy; `running` true -> start a never-started copy, or an
exited one whose last start is older than `start_requested_at`. Corral containers no slot names -> remove.
Cattle keeps services at scale: an exited copy is also started again when its launch config leaves restarts to
Corral (restart policy "no") and it is not `start_once`; the Converger spaces these restarts with a bounded
backoff (`RestartBackoff`) so a crashing container costs little and its reason says when the next try comes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import itertools
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.agent.actions import Action, ActionKind
from corral.agent.files import ContainerFiles
from corral.agent.pulls import ImagePuller, WaitingForImage
from corral.agent.units import arrange_unit_actions
from corral.model.builds import is_built_image
from corral.model.entities import ObservedContainer
from corral.model.errors import CorralError, InvalidInput
from corral.model.registries import RegistryCredential, credential_for
from corral.model.stack import DesiredContainer, LaunchConfig
from corral.model.units import unit_references
from corral.runtime import containers as runtime
from corral.runtime import labels
from corral.runtime.docker_engine import DockerEngine

log = logging.getLogger("corral.agent.converge")

PARALLEL_ACTIONS = 4  # engine calls in flight per agent (the pool of its Docker client holds 10 connections)
ACTIVE_STATES = frozenset({"running", "restarting", "paused"})  # states `docker stop` acts on
_STATE_RANK = {"running": 6, "restarting": 5, "paused": 4, "created": 3, "exited": 2, "removing": 1, "dead": 0}
MAX_RETRY_SECONDS = 10.0
FIRST_RESTART_DELAY = 5.0  # the first automatic restart is immediate, the next after 5 s, then doubling ...
MAX_RESTART_DELAY = 300.0  # ... up to 5 minutes
RESTART_RESET_SECONDS = 60.0  # running this long after an automatic restart forgets the earlier ones


def is_ours(container: ObservedContainer, environment_id: str | None, desired_slots: Collection[str] = ()) -> bool:
    """A Corral container of this environment (or of a desired slot): the only kind convergence may touch."""
    slot_id = container.labels.get(labels.CONTAINER)
    if not slot_id:
        return False
    return (
        environment_id is None or container.labels.get(labels.ENVIRONMENT) == environment_id or slot_id in desired_slots
    )


def restarts_automatically(launch: LaunchConfig) -> bool:
    """Corral restarts an exited copy itself unless Docker's restart policy decides or it runs once."""
    return launch.restart == "no" and not (launch.run_once or labels.is_start_once(launch.labels))


def _rank(container: ObservedContainer, want: DesiredContainer) -> tuple[bool, int, bool, float, str]:
    """Higher is better: current config, liveliest state, the slot's own name, oldest, then a stable tie-break."""
    return (
        container.labels.get(labels.CONFIG_HASH) == want.slot.config_hash,
        _STATE_RANK.get(container.state, 0),
        container.name == want.slot.name,
        -container.created,
        container.docker_id,
    )


def plan_convergence(
    desired: Sequence[DesiredContainer],
    observed: Sequence[ObservedContainer],
    started_at: Mapping[str, float],
    *,
    environment_id: str | None = None,
    restart_held: Collection[str] = (),
) -> list[Action]:
    """The actions that make `observed` what `desired` says, each with its reason (pure).

    `started_at` maps docker ids to their last start (epoch seconds); a container missing from it is taken to
    have started at its creation time (a lower bound). `environment_id` limits removals to that environment's
    containers (None: every Corral-labelled container is this agent's). `restart_held` names the slots whose
    automatic restart must wait (backoff). Order: removals first (they free names
    and ports), then stops, recreates, creates and starts; within a kind by container name.
    """
    wanted: dict[str, DesiredContainer] = {}
    for entry in desired:
        wanted.setdefault(entry.slot.id, entry)  # a repeated slot id: the first entry counts
    copies: dict[str, list[ObservedContainer]] = {}
    for container in observed:
        if is_ours(container, environment_id, wanted):
            copies.setdefault(container.labels[labels.CONTAINER], []).append(container)

    removes: list[Action] = []
    stops: list[Action] = []
    recreates: list[Action] = []
    creates: list[Action] = []
    starts: list[Action] = []

    for slot_id, found in copies.items():
        if slot_id not in wanted:
            for container in found:
                removes.append(
                    Action(ActionKind.REMOVE, slot_id, "no longer desired", container.docker_id, name=container.name)
                )

    for slot_id, want in wanted.items():
        found = copies.get(slot_id, [])
        name = want.slot.name
        if not found:
            reason = "not present" + ("" if want.running else " (created stopped)")
            creates.append(Action(ActionKind.CREATE, slot_id, reason, desired=want, name=name))
            continue
        best = max(found, key=lambda c: _rank(c, want))
        for extra in found:
            if extra is not best:
                reason = f"duplicate of {runtime.short(best.docker_id)} for the same slot"
                removes.append(Action(ActionKind.REMOVE, slot_id, reason, extra.docker_id, want, extra.name))
        have_hash = best.labels.get(labels.CONFIG_HASH, "")
        if have_hash != want.slot.config_hash:
            reason = f"config changed ({have_hash[:8] or 'none'} -> {want.slot.config_hash[:8]})"
            recreates.append(Action(ActionKind.RECREATE, slot_id, reason, best.docker_id, want, name))
        elif best.state == "dead":
            recreates.append(Action(ActionKind.RECREATE, slot_id, "container is dead", best.docker_id, want, name))
        elif want.ip and runtime.on_overlay(want) and best.labels.get(labels.OVERLAY_IP, "") != want.ip:
            reason = f"overlay address changed ({best.labels.get(labels.OVERLAY_IP) or 'none'} -> {want.ip})"
            recreates.append(Action(ActionKind.RECREATE, slot_id, reason, best.docker_id, want, name))
        elif best.labels.get(labels.HOST_PORTS, "") != runtime.host_ports_label(want.host_ports):
            reason = f"host ports changed ({best.labels.get(labels.HOST_PORTS) or 'none'} -> "
            reason += f"{runtime.host_ports_label(want.host_ports) or 'none'})"
            recreates.append(Action(ActionKind.RECREATE, slot_id, reason, best.docker_id, want, name))
        elif not want.running:
            if best.state in ACTIVE_STATES:
                stops.append(Action(ActionKind.STOP, slot_id, "desired stopped", best.docker_id, want, name))
        elif best.state == "created":
            starts.append(Action(ActionKind.START, slot_id, "never started", best.docker_id, want, name))
        elif best.state == "exited" and started_at.get(best.docker_id, best.created) < want.start_requested_at:
            starts.append(Action(ActionKind.START, slot_id, "start requested", best.docker_id, want, name))
        elif best.state == "exited" and restarts_automatically(want.launch) and slot_id not in restart_held:
            code = "" if best.exit_code is None else f" with code {best.exit_code}"
            reason = f"exited{code}; restarting to keep the service at scale"
            starts.append(Action(ActionKind.START, slot_id, reason, best.docker_id, want, name, automatic=True))

    def ordered(actions: list[Action]) -> list[Action]:
        return sorted(actions, key=lambda a: (a.name, a.slot_id, a.docker_id))

    return [*ordered(removes), *ordered(stops), *ordered(recreates), *ordered(creates), *ordered(starts)]


def parse_desired(data: Mapping[str, object]) -> list[DesiredContainer]:
    """The containers of a `desired` message; InvalidInput if any entry is malformed (then none is used: a
    partial set would make the agent remove the containers of the entries it could not read)."""
    entries = data.get("containers")
    if not isinstance(entries, list):
        raise InvalidInput("desired: containers must be a list", field="containers")
    result: list[DesiredContainer] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidInput(f"desired: containers[{index}] must be an object", field=f"containers[{index}]")
        try:
            result.append(DesiredContainer.from_dict(entry))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput(
                f"desired: containers[{index}] is malformed: {exc!r}", field=f"containers[{index}]"
            ) from exc
    return result


# -- applying


@dataclass(frozen=True)
class ActionResult:
    action: Action
    error: str = ""  # empty when the action worked
    docker_id: str = ""  # the container the action left (the new one after CREATE / RECREATE)


NetworkGate = Callable[[DesiredContainer], str]  # why a container cannot be created yet ("" when it can)


def unassigned_random_ports(desired: DesiredContainer) -> str:
    """The `ports: ["80"]` entries the server has not given a host port yet ("80/tcp, 53/udp"), "" when none."""
    assigned = {(container, protocol) for container, protocol, _ in desired.host_ports}
    wanted = dict.fromkeys((p.container_port, p.protocol) for p in desired.launch.ports if p.host_port is None)
    return ", ".join(f"{c}/{p}" for c, p in wanted if (c, p) not in assigned)


FilePreparer = Callable[[DesiredContainer], list[tuple[str, str]]]  # writes a container's files (agent/files.py)
Drain = Callable[[str, str], float]  # (docker id, name): waits until an LB target may stop (agent/drain.py)


@dataclass(frozen=True)
class ApplyContext:
    """What applying an action may need besides the engine.

    `protected_slots`: the slots still desired (a create may remove a stale holder of its name only if it is not
    one of them). `gate` (agent/network.py) holds back a create or recreate whose network is not ready (its
    reason is raised). `registries` (server -> credential, from the server's `desired` message) authenticate image
    pulls. With a `puller` (agent/pulls.py) a missing image is pulled in the background and the action waits
    (raises `WaitingForImage`) instead of blocking on the pull. `files` writes the container's secrets, configs
    and uploads and returns their read-only binds. `drain` runs before a stop or removal (an LB's target leaves
    the load balancers and finishes its requests first)."""

    protected_slots: Collection[str] = ()
    gate: NetworkGate | None = None
    registries: Mapping[str, RegistryCredential] = field(default_factory=dict)
    puller: ImagePuller | None = None
    files: FilePreparer | None = None
    drain: Drain | None = None


def apply_action(engine: DockerEngine, action: Action, context: ApplyContext | None = None) -> str:
    """Apply one action; return the docker id of the container it leaves ("" after REMOVE). Raises CorralError."""
    context = context if context is not None else ApplyContext()
    want = action.desired
    gate = context.gate
    if gate is not None and want is not None and action.kind in (ActionKind.CREATE, ActionKind.RECREATE):
        waiting = gate(want)
        if waiting:
            raise CorralError(waiting)
    if want is not None and action.kind in (ActionKind.CREATE, ActionKind.RECREATE):
        missing = unassigned_random_ports(want)
        if missing:  # never create it without a port it publishes
            raise CorralError(
                f"waiting for a host port for {missing}: the server has not assigned one (its range may be full)"
            )
    if context.drain is not None and action.kind in (ActionKind.REMOVE, ActionKind.STOP):
        context.drain(action.docker_id, action.name)
    if action.kind is ActionKind.REMOVE:
        runtime.remove_container(engine, action.docker_id, name=action.name)
        return ""
    if action.kind is ActionKind.STOP:
        grace = want.launch.stop_grace_seconds if want is not None else None
        runtime.stop_container(engine, action.docker_id, grace, name=action.name)
        return action.docker_id
    if action.kind is ActionKind.START:
        runtime.start_container(engine, action.docker_id, name=action.name)
        return action.docker_id
    assert want is not None, f"{action.kind} needs a desired container"
    # never remove what cannot be created again
    image = want.launch.image
    credential = credential_for(image, context.registries)
    always = runtime.wants_image_pull(want.launch)
    if is_built_image(image) and not runtime.image_present(engine, image):
        raise WaitingForImage(f"waiting for image {image}: built by Corral, the server sends it to this host")
    if context.puller is None:
        runtime.ensure_image(engine, image, always_pull=always, credential=credential)
    else:
        present = functools.partial(runtime.image_present, engine, image)
        context.puller.require(image, present=present, always=always, credential=credential, requester=action.slot_id)
    binds = context.files(want) if context.files is not None and want.launch.files else []
    if action.kind is ActionKind.RECREATE:
        runtime.remove_container(engine, action.docker_id, name=action.name)
    create = functools.partial(runtime.create_container, protected_slots=context.protected_slots, image_ready=True)
    docker_id = create(engine, want, file_binds=binds) if binds else create(engine, want)
    if want.running:
        runtime.start_container(engine, docker_id, name=want.slot.name)
    return docker_id


def apply_actions(
    engine: DockerEngine, actions: Iterable[Action], context: ApplyContext | None = None
) -> list[ActionResult]:
    """Apply every action in order; a failure is recorded in its result and the next action still runs.

    Removals and stops come first (they free names and ports). Then each stack whose containers form sidekick
    units gets a lane of its own, applied in order (targets first) beside the others, so one stack's unit never
    waits for another's; the remaining actions run in batches of one kind, `PARALLEL_ACTIONS` at a time (an engine
    creates and starts containers concurrently: 20 serial starts cost 20 network set-ups in a row)."""
    todo = list(actions)
    context = context if context is not None else ApplyContext()

    def apply(action: Action) -> ActionResult:
        return _applied(engine, action, context)

    early = [a for a in todo if a.kind in (ActionKind.REMOVE, ActionKind.STOP)]
    later = [a for a in todo if a.kind not in (ActionKind.REMOVE, ActionKind.STOP)]
    unit_stacks = {_stack_of(a) for a in later if a.desired is not None and unit_references(a.desired.launch)}
    lanes: dict[tuple[str, str], list[Action]] = {}
    for action in later:
        if _stack_of(action) in unit_stacks:
            lanes.setdefault(_stack_of(action), []).append(action)
    batched = [a for a in later if _stack_of(a) not in unit_stacks]
    done: dict[int, ActionResult] = {}
    with concurrent.futures.ThreadPoolExecutor(PARALLEL_ACTIONS, thread_name_prefix="apply") as pool:
        for action, result in zip(early, _in_batches(pool, apply, early), strict=True):
            done[id(action)] = result
        with concurrent.futures.ThreadPoolExecutor(max(len(lanes), 1), thread_name_prefix="unit") as unit_pool:
            lane_results = [unit_pool.submit(lambda lane: [apply(a) for a in lane], lane) for lane in lanes.values()]
            for action, result in zip(batched, _in_batches(pool, apply, batched), strict=True):
                done[id(action)] = result
            for lane, future in zip(lanes.values(), lane_results, strict=True):
                for action, result in zip(lane, future.result(), strict=True):
                    done[id(action)] = result
    return [done[id(a)] for a in todo]


def _stack_of(action: Action) -> tuple[str, str]:
    slot = action.desired.slot if action.desired is not None else None
    return (slot.environment_id, slot.stack) if slot is not None else ("", "")


def _in_batches(
    pool: concurrent.futures.Executor, apply: Callable[[Action], ActionResult], actions: list[Action]
) -> list[ActionResult]:
    """Consecutive actions of one kind touch different slots: each such batch runs on the pool, in parallel."""
    results: list[ActionResult] = []
    for _, group in itertools.groupby(actions, key=lambda a: a.kind):
        results += pool.map(apply, list(group))
    return results


def _applied(engine: DockerEngine, action: Action, context: ApplyContext) -> ActionResult:
    try:
        docker_id = apply_action(engine, action, context)
    except CorralError as exc:
        return ActionResult(action, exc.message or type(exc).__name__, action.docker_id)
    except Exception as exc:  # a bug costs this action, not the others
        log.exception("%s %s failed", action.kind, action.name)
        return ActionResult(action, f"{action.kind} failed: {exc!r}", action.docker_id)
    log.info(
        "%s %s (slot %s, %s): %s",
        _PAST[action.kind],
        action.name or runtime.short(action.docker_id),
        action.slot_id,
        runtime.short(docker_id or action.docker_id),
        action.reason,
    )
    return ActionResult(action, "", docker_id)


_PAST = {
    ActionKind.CREATE: "created",
    ActionKind.START: "started",
    ActionKind.STOP: "stopped",
    ActionKind.REMOVE: "removed",
    ActionKind.RECREATE: "recreated",
}


@dataclass(frozen=True)
class ConvergeReport:
    actions: tuple[Action, ...]  # planned (including those deferred by the retry delay)
    results: tuple[ActionResult, ...]  # applied
    problems: Mapping[str, str] = field(default_factory=dict)  # desired slot id -> why it is not converged


class RestartBackoff:
    """When Corral may restart an exited container again: the first time at once, then after FIRST_RESTART_DELAY,
    doubling up to MAX_RESTART_DELAY; a slot whose copy has been running RESTART_RESET_SECONDS since its last
    automatic restart starts afresh."""

    def __init__(self) -> None:
        self._restarts: dict[str, tuple[int, float]] = {}  # slot id -> (automatic restarts so far, time of the last)

    @staticmethod
    def delay(count: int) -> float:
        return 0.0 if count == 0 else min(FIRST_RESTART_DELAY * 2.0 ** (count - 1), MAX_RESTART_DELAY)

    def held(self, now: float) -> dict[str, float]:
        """Slot id -> seconds until its next automatic restart is allowed (only slots that must wait)."""
        waits = {slot: last + self.delay(count) - now for slot, (count, last) in self._restarts.items()}
        return {slot: wait for slot, wait in waits.items() if wait > 0}

    def count(self, slot_id: str) -> int:
        return self._restarts.get(slot_id, (0, 0.0))[0]

    def restarted(self, slot_id: str, now: float) -> None:
        self._restarts[slot_id] = (self.count(slot_id) + 1, now)

    def observe(self, wanted: Collection[str], running: Collection[str], now: float) -> None:
        """Forget slots no longer desired, and those running long enough since their last automatic restart."""
        self._restarts = {
            slot: (count, last)
            for slot, (count, last) in self._restarts.items()
            if slot in wanted and not (slot in running and now - last >= RESTART_RESET_SECONDS)
        }


class Converger:
    """Observe, plan, apply on one engine; remembers failures (retry delay, reasons) and honoured start requests.

    `converge` blocks (engine calls); `run` calls it on the converger's own thread so that a long stop grace never
    holds up the session's snapshots and deltas, and so that two converges never overlap.
    """

    def __init__(
        self,
        engine: DockerEngine,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
        puller: ImagePuller | None = None,
        files: ContainerFiles | None = None,
    ) -> None:
        self.engine = engine
        self._clock = clock
        self._max_retry = max_retry_seconds
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="converge")
        self._problems: dict[str, str] = {}
        self._failures: dict[str, tuple[int, float]] = {}  # slot id -> (consecutive failures, retry not before)
        # docker id -> the start_requested_at it was started for: the engine's clock may lag the server's, and a
        # container started for a request must not count as "older than the request" because of that.
        self._honoured: dict[str, float] = {}
        self._removal_errors: dict[str, str] = {}  # undesired slot id -> last error (logged once)
        self._restarts = RestartBackoff()
        self.network_gate: NetworkGate | None = None  # set by the agent's NetworkManager (agent/network.py)
        self.drain: Drain | None = None  # set by the agent: LB targets drain before they stop (agent/drain.py)
        # registry server -> credential for pulls, replaced by each `desired` message (agent/session.py)
        self.registries: Mapping[str, RegistryCredential] = {}
        self.puller = puller  # background pulls (agent/pulls.py); None: a create waits for its pull
        self.files = files  # where containers' secrets, configs and uploads are written (agent/files.py)
        self.secrets: Mapping[str, str] = {}  # secret name -> value, replaced by each `desired` message (never logged)

    async def run(self, desired: Sequence[DesiredContainer], environment_id: str | None) -> ConvergeReport:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.converge, list(desired), environment_id)

    def _prepare_files(self, desired: DesiredContainer) -> list[tuple[str, str]]:
        if self.files is None:
            raise CorralError("this agent has no directory for container files (secrets, configs)")
        return self.files.prepare(desired, self.secrets)

    def retry_now(self) -> None:
        """Forget retry delays (the server sent a new desired set: try everything again)."""
        self._failures.clear()

    def converge(self, desired: Sequence[DesiredContainer], environment_id: str | None) -> ConvergeReport:
        """One round. Raises `Unavailable` when the engine cannot even be listed (nothing was changed then)."""
        observed = self.engine.containers(restart_counts=False)
        wanted = {d.slot.id: d for d in reversed(desired)}  # the first entry of a repeated slot id wins
        live = {c.docker_id for c in observed}
        self._honoured = {k: v for k, v in self._honoured.items() if k in live}
        now = self._clock()
        running = {c.labels.get(labels.CONTAINER, "") for c in observed if c.state == "running"}
        self._restarts.observe(wanted, running, now)
        held = self._restarts.held(now)
        actions = plan_convergence(
            desired,
            observed,
            self._start_times(wanted, observed, environment_id),
            environment_id=environment_id,
            restart_held=held,
        )
        actions = arrange_unit_actions(actions, desired, observed)  # a sidekick unit: targets first
        due = [a for a in actions if self._failures.get(a.slot_id, (0, 0.0))[1] <= now]
        deferred = {a.slot_id for a in actions} - {a.slot_id for a in due}
        context = ApplyContext(
            wanted, self.network_gate, self.registries, self.puller, self._prepare_files, drain=self.drain
        )
        results = apply_actions(self.engine, due, context)
        if self.puller is not None:
            self.puller.forget(wanted.__contains__)
        if self.files is not None:
            self.files.prune(wanted)

        errors: dict[str, str] = {}
        for result in results:
            if result.error:
                errors.setdefault(result.action.slot_id, result.error)
            elif result.action.starts and result.action.desired is not None:
                self._honoured[result.docker_id] = result.action.desired.start_requested_at
                if result.action.automatic:
                    self._restarts.restarted(result.action.slot_id, now)
        problems: dict[str, str] = {}
        for slot_id in wanted:
            if slot_id in errors:
                problems[slot_id] = errors[slot_id]
                if errors[slot_id] != self._problems.get(slot_id):
                    log.warning("container %s (slot %s): %s", wanted[slot_id].slot.name, slot_id, errors[slot_id])
                count = self._failures.get(slot_id, (0, 0.0))[0] + 1
                self._failures[slot_id] = (count, now + min(2.0 ** (count - 1), self._max_retry))
            elif slot_id in deferred and slot_id in self._problems:
                problems[slot_id] = self._problems[slot_id]
            else:
                self._failures.pop(slot_id, None)
        exited = {c.labels.get(labels.CONTAINER, "") for c in observed if c.state == "exited"}
        for slot_id, wait in held.items():
            if slot_id in wanted and slot_id in exited and slot_id not in problems:
                count = self._restarts.count(slot_id)
                problems[slot_id] = f"exited again after {count} automatic restarts; next try in {wait:.0f} s"
        removal_errors = {k: v for k, v in errors.items() if k not in wanted}
        for slot_id, error in removal_errors.items():
            if self._removal_errors.get(slot_id) != error:
                log.warning("cannot remove the container of slot %s: %s", slot_id, error)
        self._removal_errors = removal_errors
        self._failures = {k: v for k, v in self._failures.items() if k in wanted}
        self._problems = problems
        return ConvergeReport(tuple(actions), tuple(results), dict(problems))

    def _start_times(
        self, wanted: Mapping[str, DesiredContainer], observed: Sequence[ObservedContainer], environment_id: str | None
    ) -> dict[str, float]:
        """Last start times of the exited containers a start request may concern (only those are inspected)."""
        result: dict[str, float] = {}
        for container in observed:
            want = wanted.get(container.labels.get(labels.CONTAINER, ""))
            if want is None or container.state != "exited" or not is_ours(container, environment_id, wanted):
                continue
            requested = want.start_requested_at
            honoured = self._honoured.get(container.docker_id, 0.0)
            if honoured >= requested or container.created >= requested:
                result[container.docker_id] = max(honoured, container.created)
                continue
            try:
                started = runtime.started_at(self.engine, container.docker_id)
            except CorralError as exc:
                log.debug("cannot read when %s started: %s", container.name, exc.message)
                started = None
            if started is not None:
                result[container.docker_id] = max(started, honoured)
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.engine.close()


class SlotReporter:
    """Which `slot` messages to send: a slot's reason when it changes, "" once its problem is gone.

    Lives as long as the agent. Each new connection re-sends, once, the current reason of every slot that had a
    problem at any time (even if it is "" now), so a server that missed a message or restarted is corrected.
    """

    def __init__(self) -> None:
        self._sent: dict[str, str] = {}
        self._ever_failed: set[str] = set()
        self._stale: set[str] = set()

    def new_connection(self) -> None:
        self._sent = {}
        self._stale = set(self._ever_failed)

    def updates(self, problems: Mapping[str, str], desired_slots: Iterable[str]) -> list[tuple[str, str]]:
        """The (slot_id, reason) pairs to send now, and remember them as sent."""
        slots = list(dict.fromkeys(desired_slots))
        out: list[tuple[str, str]] = []
        for slot_id in slots:
            reason = problems.get(slot_id, "")
            previous = self._sent.get(slot_id, "?" if slot_id in self._stale else "")
            if previous != reason:
                out.append((slot_id, reason))
            self._sent[slot_id] = reason
            self._stale.discard(slot_id)
            if reason:
                self._ever_failed.add(slot_id)
        keep = set(slots)
        self._sent = {k: v for k, v in self._sent.items() if k in keep}
        self._ever_failed &= keep
        self._stale &= keep
        return out
