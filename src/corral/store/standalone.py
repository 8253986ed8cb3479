"""Standalone containers in the store: services of an environment's hidden stack (model/standalone.py).

Why its own writes instead of `StackStore.update_stack`: that replaces a stack's whole service list, so two
`corral run` at once would race (the second write forgets the first). Here each run inserts one service row (the
unique (stack, name) constraint refuses a taken name) and each removal deletes one, with its slot kept as a
leftover until the agent has removed the container, as for any removed service.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from corral.model import ids
from corral.model.errors import Conflict, NotFound
from corral.model.stack import STANDALONE_STACK, Service, ServiceSpec
from corral.store.plan_writes import drop_slots
from corral.store.stacks import StackStore, _new_service_row, _service
from corral.store.tables import ServiceRow, SlotRow, StackRow


class StandaloneStore:
    def __init__(self, stacks: StackStore) -> None:
        self.session = stacks.session

    def _stack_row(self, environment_id: str) -> StackRow:
        """The environment's hidden stack, created on first use (a concurrent creation wins: read it back)."""
        query = select(StackRow).where(StackRow.environment_id == environment_id, StackRow.name == STANDALONE_STACK)
        with self.session() as session:
            row = session.scalars(query).first()
            if row is not None:
                return row
        now = time.time()
        try:
            with self.session() as session:
                row = StackRow(
                    id=ids.new_id("stack"),
                    environment_id=environment_id,
                    name=STANDALONE_STACK,
                    files={},
                    warnings=[],
                    created_at=now,
                    updated_at=now,
                    catalog={},
                )
                session.add(row)
                return row
        except IntegrityError:
            with self.session() as session:
                return session.scalars(query).one()

    def add(self, environment_id: str, spec: ServiceSpec) -> Service:
        """Store a standalone container; Conflict naming `name` when the environment has one of that name."""
        stack = self._stack_row(environment_id)
        now = time.time()
        try:
            with self.session() as session:
                position = len(session.scalars(select(ServiceRow.id).where(ServiceRow.stack_id == stack.id)).all())
                row = _new_service_row(stack, spec, position, now)
                session.add(row)
                session.flush()
                return _service(row, STANDALONE_STACK)
        except IntegrityError as exc:
            raise Conflict(
                f"a standalone container named {spec.name!r} already exists in this environment", field="name"
            ) from exc

    def list(self, environment_id: str | None) -> list[Service]:
        query = (
            select(ServiceRow)
            .join(StackRow, StackRow.id == ServiceRow.stack_id)
            .where(StackRow.name == STANDALONE_STACK)
            .order_by(ServiceRow.name)
        )
        if environment_id is not None:
            query = query.where(ServiceRow.environment_id == environment_id)
        with self.session() as session:
            return [_service(row, STANDALONE_STACK) for row in session.scalars(query)]

    def get(self, service_id: str) -> Service:
        """The standalone container whose id (its service's) is `service_id`; NotFound for anything else."""
        with self.session() as session:
            result = session.execute(
                select(ServiceRow, StackRow.name)
                .join(StackRow, StackRow.id == ServiceRow.stack_id)
                .where(ServiceRow.id == service_id, StackRow.name == STANDALONE_STACK)
            ).first()
            if result is None:
                raise NotFound(f"standalone container {service_id!r} not found", field="container")
            return _service(result[0], STANDALONE_STACK)

    def remove(self, service_id: str) -> None:
        """Forget the container; its slot stays a leftover until the agent removed it from the engine."""
        with self.session() as session:
            row = session.get(ServiceRow, service_id)
            if row is None:
                raise NotFound(f"standalone container {service_id!r} not found", field="container")
            drop_slots(session, SlotRow.service_id == service_id, time.time())
            session.delete(row)
