"""The membership engine: one set-based code path that decides who is in which group.

`evaluate(groups, customer_ids=None, now=None)` computes the new member set of each group in SQL,
diffs it against the stored membership and writes Membership and MembershipChange rows, in one
statement per dependency level and one transaction (a large scope: a few plain statements per
level, and one transaction per chunk of customers). There is no per-customer Python anywhere.
`evaluate_active` is the event path over every active group, with their compiled rules kept.

Locks (PostgreSQL advisory transaction locks, released by commit or rollback):
- a full refresh takes its group's lock exclusively, so two refreshes never interleave;
- the event path takes the locks of all the groups it evaluates in shared mode, then locks the
  customer rows it evaluates; two event paths over the same customer queue up behind each other,
  and an event path waits for a refresh (and vice versa). Each statement that computes membership
  starts after its locks are held, so it sees every write committed before it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.numeric import Int8

from . import feed, history
from .dependencies import dependants_among, dependency_levels, dependency_order
from .models import CustomerGroup, Reason
from .rules import Catalogue, events_read
from .rules.compiler import Compiled, compile_template, customer_values_join, event_aggregates_join, resolve

logger = logging.getLogger(__name__)

# Event-path batches up to this size run as one prepared statement with a generic plan (planned
# once, reused by every write); larger ones stage their diff in a temporary table (_apply_staged).
PREPARED_BATCH = 200

# Customers of a write are evaluated over the groups their own new events can change, in at most
# this many separate evaluations (see _ActivePlan.scopes).
MAX_SCOPES = 4

# Memory for a staged diff (see _apply_staged): it hashes a whole group's members, or the target
# pairs of thousands of customers; with PostgreSQL's default 4 MB they spill to disk in batches.
STAGED_WORK_MEM = "64MB"

# First key of the two-key advisory locks, so ours never collide with another application's.
LOCK_NAMESPACE = 0x6772  # "gr"
# Second key of the lock on customers' due times: shared by evaluations that write them, exclusive
# for a full refresh's (see _lower_due_times). Above every group id, so that, taken with groups'
# locks in key order, it always comes last, as it does after a refresh's group lock.
DUE_LOCK = 2**31 - 1


@dataclass
class Outcome:
    """What an evaluation changed, per group id."""

    added: Counter = field(default_factory=Counter)
    removed: Counter = field(default_factory=Counter)
    changed_customers: dict[int, set[int]] = field(default_factory=dict)  # full refreshes only
    failed: dict[int, str] = field(default_factory=dict)

    def merge(self, other: Outcome) -> None:
        self.added.update(other.added)
        self.removed.update(other.removed)
        for group_id, ids in other.changed_customers.items():
            self.changed_customers.setdefault(group_id, set()).update(ids)
        self.failed.update(other.failed)


def evaluate(
    groups: Iterable[CustomerGroup],
    customer_ids: Sequence[int] | None = None,
    now: datetime | None = None,
    *,
    reason: str = Reason.EVENT,
    run_id: int | None = None,
    catalogue: Catalogue | None = None,
) -> Outcome:
    """Bring the groups' membership in line with their rules.

    `customer_ids=None` is a full refresh of each group; a list evaluates just those customers.
    Manual groups are left alone (their members change only by hand); inactive groups hold nobody.
    """
    now = now or timezone.now()
    catalogue = catalogue or Catalogue.load()
    groups = [g for g in groups if g.kind == CustomerGroup.Kind.DYNAMIC]
    if not groups or (customer_ids is not None and not customer_ids):
        return Outcome()
    outcome = Outcome()
    if customer_ids is None:
        for group in dependency_order(groups):
            with transaction.atomic():
                lock_groups([group.pk], shared=False)
                template = template_of(group, catalogue)
                conditions = {group.pk: template.at(now)}
                changed = _apply_staged([group], None, conditions, reason, run_id, now=None)
                _count_members(changed)
            if group.is_always_current and template.moment is not None:
                _lower_due_times(template.moment, now)
            outcome.merge(changed)
        return outcome
    templates, outcome.failed = _compile(groups, catalogue)
    groups = [g for g in groups if g.pk in templates]
    return _evaluate_customers([(dependency_levels(groups), customer_ids)], templates, now, reason, run_id, outcome)


def evaluate_active(
    customer_ids: Sequence[int],
    now: datetime | None = None,
    *,
    reason: str = Reason.EVENT,
    events: Mapping[int, frozenset[str] | None] | None = None,
) -> Outcome:
    """The event path: these customers in every active dynamic group, in dependency order.

    `events`, when given, says for each customer that new events of these names are all that
    changed (None: anything may have), so only the groups that count them (and the groups that
    depend on those) can change for that customer.

    The groups, their compiled rules and their dependency levels are kept per process and reused
    while one cheap query says that no group and no attribute declaration has changed, so a
    customer write pays for evaluating its groups, not for loading and compiling them.
    """
    if not customer_ids:
        return Outcome()
    plan = _active_plan()
    outcome = Outcome(failed=dict(plan.failed))
    now = now or timezone.now()
    # A large scope, such as an import, is evaluated in chunks, each in its own transaction (a
    # customer's groups are always evaluated together), several at once on their own connections,
    # so every core of the database works on it.
    size = settings.GROUPS_EVALUATION_CHUNK
    work = [
        (levels, ids[start : start + size])
        for levels, ids in plan.scopes(customer_ids, events)
        for start in range(0, len(ids), size)
    ]
    if sum(len(chunk) for _, chunk in work) <= size:
        # A write: all its scopes in one transaction.
        return _evaluate_customers(work, plan.templates, now, reason, None, outcome)
    if connection.in_atomic_block or settings.GROUPS_EVALUATION_WORKERS == 1:
        # Inside a transaction, other connections would not see its writes: evaluate here.
        for item in work:
            _evaluate_customers([item], plan.templates, now, reason, None, outcome)
        return outcome

    def evaluate_chunk(item) -> Outcome:
        try:
            return _evaluate_customers([item], plan.templates, now, reason, None, Outcome())
        finally:
            connection.close()  # this thread's own connection

    with ThreadPoolExecutor(max_workers=settings.GROUPS_EVALUATION_WORKERS) as pool:
        for chunk_outcome in pool.map(evaluate_chunk, work):
            outcome.merge(chunk_outcome)
    return outcome


def evaluate_due(customer_ids: Sequence[int], now: datetime) -> Outcome:
    """The sweep: these customers, whose next moment has come, in every active always-current group
    and the groups that depend on those, with the reason "time".

    Every always-current group is evaluated for them, so their due times are set anew rather than
    only lowered: each customer's is deleted and written again by the evaluation (none when time
    alone can no longer change any of their results).
    """
    plan = _active_plan()
    outcome = Outcome(failed=dict(plan.failed))
    levels = plan.always_current_levels()
    if not levels:
        _evaluate_none(customer_ids)
        return outcome
    scopes = [(levels, customer_ids)]
    return _evaluate_customers(scopes, plan.templates, now, Reason.TIME, None, outcome, exact_due=True)


def _evaluate_none(customer_ids: Sequence[int]) -> None:
    """No group is always current any more: nobody is due."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM groups_customerdue WHERE customer_id = ANY(%s::bigint[])", [list(customer_ids)])


def _lower_due_times(moment: Compiled, now: datetime) -> None:
    """A full refresh of an always-current group: each customer's due time lowered to the group's
    next moment for them where that is earlier (the other groups' moments did not change).

    In its own transaction, under the due times' lock held exclusively: it writes the due rows of
    every customer, in another order than the event path writes a batch's, and two such writers
    holding rows the other wants would deadlock. Moments computed before later writes are only
    earlier than needed, since those writes lowered the due times themselves.
    """
    text, params = moment.at(now)
    with transaction.atomic(), connection.cursor() as cursor:
        lock_groups([DUE_LOCK], shared=False)
        cursor.execute(
            f"""INSERT INTO groups_customerdue (customer_id, due_at)
                SELECT c.id, x.due_at FROM customers_customer c CROSS JOIN LATERAL (SELECT {text} AS due_at) x
                WHERE x.due_at IS NOT NULL
                {_LOWER_DUE}""",
            params,
        )


# Early is safe, late is not: a subset of the groups can only bring a customer's due time forward.
_LOWER_DUE = """ON CONFLICT (customer_id) DO UPDATE SET due_at = EXCLUDED.due_at
                WHERE EXCLUDED.due_at < groups_customerdue.due_at"""


def _evaluate_customers(scopes, templates, now, reason, run_id, outcome: Outcome, *, exact_due=False) -> Outcome:
    """Evaluate each scope's customers in its levels of groups, each customer under its row lock, so
    two evaluations of one customer never overlap. `scopes` holds (levels, customer ids) pairs with
    no customer in two; they are evaluated in one transaction.

    Two batches often share a customer or two, and waiting for each lock in turn would make every
    batch wait for the whole evaluation of another. So the customers free now are evaluated first, and the few
    that another evaluation holds are evaluated after, once it has committed.
    """
    scopes = [(levels, sorted({int(i) for i in ids})) for levels, ids in scopes if levels and ids]
    if not scopes:
        return outcome
    busy = _evaluate_locked(scopes, templates, now, reason, run_id, outcome, skip_locked=True, exact_due=exact_due)
    if busy:
        held = [(levels, [i for i in ids if i in busy]) for levels, ids in scopes]
        held = [(levels, ids) for levels, ids in held if ids]
        _evaluate_locked(held, templates, now, reason, run_id, outcome, skip_locked=False, exact_due=exact_due)
    return outcome


def _evaluate_locked(
    scopes, templates, now, reason, run_id, outcome: Outcome, *, skip_locked: bool, exact_due: bool
) -> set[int]:
    """Lock the customers' rows and evaluate the locked ones; returns those skipped as locked elsewhere.

    With `exact_due` (the sweep), their due times are deleted first, under the same locks, and the
    evaluation writes them anew.
    """
    ids = sorted(i for _, scope in scopes for i in scope)
    with transaction.atomic():
        groups = {g for levels, _ in scopes for level in levels for g in level}
        due = [DUE_LOCK] if any(g.is_always_current and templates[g.pk].moment is not None for g in groups) else []
        lock_groups(sorted({*due, *(g.pk for g in groups)}), shared=True)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM customers_customer WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE"
                + (" SKIP LOCKED" if skip_locked else ""),
                [ids],
            )
            locked = {row[0] for row in cursor.fetchall()}
            if exact_due:
                # The waiting pass also clears customers deleted meanwhile, so they are not due again.
                cleared = sorted(locked) if skip_locked else ids
                cursor.execute("DELETE FROM groups_customerdue WHERE customer_id = ANY(%s::bigint[])", [cleared])
            # One plan for any parameters, made once per connection: see _preparing_cursor.
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        changed = Outcome()
        for levels, scope in scopes:
            # The waiting pass keeps every id: one with no customer row left (deleted meanwhile)
            # still has its stale memberships removed.
            scope = [i for i in scope if i in locked] if skip_locked else scope
            if scope:
                apply = _apply_prepared if len(scope) <= PREPARED_BATCH else _apply_staged
                for level in levels:
                    changed.merge(apply(level, scope, templates, reason, run_id, now=now))
        _count_members(changed)
    outcome.merge(changed)
    return set(ids) - locked if skip_locked else set()


def _count_members(changed: Outcome) -> None:
    """Add a transaction's membership changes to the groups' member counts, once, as its last write.

    The group rows are locked in id order, so two evaluations that change the same groups queue up
    rather than deadlock, and each holds them only from here to its commit.
    """
    delta = {g: changed.added[g] - changed.removed[g] for g in changed.added.keys() | changed.removed.keys()}
    feed.announce(g for g in delta if changed.added[g] or changed.removed[g])
    ids = sorted(g for g, n in delta.items() if n)
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM groups_customergroup WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE", [ids])
        cursor.execute(
            """UPDATE groups_customergroup g SET member_count = g.member_count + d.n
               FROM unnest(%s::bigint[], %s::bigint[]) AS d(id, n) WHERE g.id = d.id""",
            [ids, [delta[g] for g in ids]],
        )


@dataclass(frozen=True)
class _ActivePlan:
    fingerprint: str
    groups: list[CustomerGroup]  # active, dynamic, and their rules compile
    templates: dict[int, Compiled]
    failed: dict[int, str]
    _levels: dict = field(default_factory=dict)  # by the event names of a write, None for any write

    def scopes(self, customer_ids, events) -> list[tuple[list[list[CustomerGroup]], list[int]]]:
        """The customers split by the groups their writes can change: (levels, sorted ids) each.

        A batch of check-ins and purchases evaluates the check-in groups for the customers who
        checked in and the purchase groups for those who bought, and nothing for a customer whose
        new events no group reads. Beyond a few kinds of customers, they are evaluated together
        over every group any of them can change, so a batch stays a few statements.
        """
        ids = sorted({int(i) for i in customer_ids})
        if events is None:
            return [(self.levels(None), ids)] if self.levels(None) else []
        by_names: dict[frozenset[str] | None, list[int]] = {}
        for customer_id in ids:
            by_names.setdefault(events.get(customer_id), []).append(customer_id)
        by_groups: dict[tuple[int, ...], tuple[list, list[int]]] = {}
        for names, members in by_names.items():
            levels = self.levels(names)
            if levels:
                key = tuple(g.pk for level in levels for g in level)
                by_groups.setdefault(key, (levels, []))[1].extend(members)
        if len(by_groups) > MAX_SCOPES:
            names = None if None in by_names else frozenset().union(*by_names)
            members = sorted(m for _, scope in by_groups.values() for m in scope)
            return [(self.levels(names), members)]
        return [(levels, sorted(members)) for levels, members in by_groups.values()]

    def always_current_levels(self) -> list[list[CustomerGroup]]:
        """The groups the sweep evaluates: the always-current ones and the groups that depend on them."""
        if "time" not in self._levels:
            chosen = {g.pk for g in self.groups if g.is_always_current}
            chosen |= {g.pk for g in dependants_among(chosen, self.groups)}
            self._levels["time"] = dependency_levels([g for g in self.groups if g.pk in chosen])
        return self._levels["time"]

    def levels(self, events: frozenset[str] | None) -> list[list[CustomerGroup]]:
        """The groups a write can change, in dependency levels."""
        if events not in self._levels:
            groups = self.groups
            if events is not None:
                chosen = {g.pk for g in groups if events_read(g.rules) & events}
                chosen |= {g.pk for g in dependants_among(chosen, groups)}
                groups = [g for g in groups if g.pk in chosen]
            self._levels[events] = dependency_levels(groups)
        return self._levels[events]


_active: dict[str, _ActivePlan] = {}  # per database alias

# Everything the event path's SQL depends on: the active dynamic groups' rules, zones and refresh
# modes (an always-current group's statement also writes due times), and the
# attribute types (a declared type changes how a rule reads an attribute).
_FINGERPRINT = """
    SELECT md5(concat(
        (SELECT string_agg(concat_ws('|', id, rule_version, time_zone, rules_digest, refresh_mode), ',' ORDER BY id)
         FROM groups_customergroup WHERE kind = 'dynamic' AND is_active),
        '#',
        (SELECT string_agg(concat_ws('|', entity, key, type), ',' ORDER BY entity, key)
         FROM customers_attributedefinition)))
"""


def _active_plan() -> _ActivePlan:
    with connection.cursor() as cursor:
        cursor.execute(_FINGERPRINT)
        (fingerprint,) = cursor.fetchone()
    plan = _active.get(connection.alias)
    if plan is None or plan.fingerprint != fingerprint:
        groups = list(CustomerGroup.objects.active_dynamic())
        templates, failed = _compile(groups, Catalogue.load())
        compiled = [g for g in groups if g.pk in templates]
        # Loaded after the fingerprint: if a group changed in between, the next write reloads again.
        plan = _active[connection.alias] = _ActivePlan(fingerprint, compiled, templates, failed)
    return plan


def lock_groups(group_ids: list[int], *, shared: bool) -> None:
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        # unnest keeps the array's (sorted) order, so every run takes locks in the same order.
        cursor.execute(
            f"SELECT {function}(%s, g::int) FROM unnest(%s::bigint[]) AS g",
            [LOCK_NAMESPACE, group_ids],
        )


def _apply_prepared(groups, customer_ids, conditions, reason, run_id, *, now) -> Outcome:
    """A small scope (a write): one prepared statement per level, see _diff_statement."""
    sql, params = _diff_statement(groups, conditions)
    params = _bind(params, ids=customer_ids, reason=reason, run_id=run_id, now=now)
    outcome = Outcome()
    with _preparing_cursor() as cursor:
        cursor.execute(sql, params)
        for group_id, change, count in cursor.fetchall():
            (outcome.added if change == "added" else outcome.removed)[group_id] += count
    return outcome


class _PreparingCursor(psycopg.RawCursor):
    """Binds parameters on the server and prepares every statement it runs.

    A raw cursor takes PostgreSQL's own $n placeholders, so the long event-path statement is
    converted from %s once (cached) instead of being re-parsed on the client at every write.
    """

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(_numbered(query), params, prepare=True if prepare is None else prepare, binary=binary)

    def _send_query_prepared(self, name, pgq, *, binary=None):
        self._query = pgq  # psycopg records only unprepared statements; query logs need this one too
        return super()._send_query_prepared(name, pgq, binary=binary)


@functools.lru_cache(maxsize=32)
def _numbered(query: str) -> str:
    counter = itertools.count(1)
    return re.sub(r"%[s%]", lambda m: f"${next(counter)}" if m.group() == "%s" else "%", query)


def _preparing_cursor():
    """A cursor whose statements PostgreSQL plans once per connection and then reuses.

    Django's cursors bind parameters on the client, so PostgreSQL plans every statement anew; for
    the event path's one statement over all groups, planning costs several times the execution.
    Its text depends only on the groups' rules (time and ids are parameters), so once prepared,
    every later write on the connection reuses the plan.
    """
    connection.ensure_connection()
    raw = _PreparingCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def condition_of(group: CustomerGroup, now: datetime, catalogue: Catalogue) -> tuple[str, list]:
    """The SQL condition of a group's members; an inactive group holds nobody."""
    return template_of(group, catalogue).at(now)


def template_of(group: CustomerGroup, catalogue: Catalogue, *, shared: bool = False) -> Compiled:
    if not group.is_active:
        return Compiled("FALSE", ())
    return compile_template(group.rules, tz=group.zone, catalogue=catalogue, alias="c", shared=shared)


def _compile(groups: list[CustomerGroup], catalogue: Catalogue) -> tuple[dict[int, Compiled], dict[int, str]]:
    """Compiled rules per group id, leaving out (with the error) groups whose stored rules no longer
    compile (e.g. edited by hand in the database): one broken group must not stop every customer
    write from updating all the other groups."""
    templates, failed = {}, {}
    for group in groups:
        try:
            template = template_of(group, catalogue, shared=True)
            template.at(timezone.now())  # values computed from now can fail too, e.g. a malformed window
            templates[group.pk] = template
        except (ValueError, KeyError, TypeError) as exc:
            failed[group.pk] = f"{type(exc).__name__}: {exc}"
            logger.error("Group %s skipped on the event path: its rules do not compile: %s", group.pk, exc)
    return templates, failed


# Placeholders in a cached statement's parameters, filled in at each evaluation (see _bind).
SCOPE, REASON, RUN = object(), object(), object()


def _bind(params, *, ids, reason, run_id, now) -> list:
    """A statement's parameters for one evaluation: the scope, reason and run, and the rules' values
    computed from now (each window once)."""
    # Int8: the same parameter types whatever the ids, so a prepared statement is always reused.
    scope = [Int8(i) for i in ids] if ids is not None else None
    filled = [scope if p is SCOPE else reason if p is REASON else run_id if p is RUN else p for p in params]
    return resolve(filled, now) if now is not None else filled


def _diff_query(groups, customer_ids, conditions) -> tuple[str, list]:
    """The WITH clauses that end in `diff`: the (group, customer) pairs to add, and to remove (leaving).

    The diff is a full join between the target set and the current members, so each side is read
    once, and only the pairs that differ come out.
    """
    if customer_ids is None:
        (group,) = groups
        sets, params = _refresh_sets(group, conditions[group.pk])
    else:
        sets, params = _scoped_sets(groups, conditions)
    sql = f"""
        WITH {sets},
        diff AS (
            SELECT COALESCE(t.group_id, m.group_id) AS group_id,
                   COALESCE(t.customer_id, m.customer_id) AS customer_id,
                   t.customer_id IS NULL AS leaving
            FROM target t
            FULL JOIN current_members m ON m.group_id = t.group_id AND m.customer_id = t.customer_id
            WHERE t.customer_id IS NULL OR m.customer_id IS NULL
        )"""
    return sql, params


def _refresh_sets(group, condition: tuple[str, list]) -> tuple[str, list]:
    """A full refresh: `target`, every customer the group's rules select, and `current_members`, all its
    members. The customers are scanned in parallel when the diff is staged by a plain CREATE TABLE AS,
    which PostgreSQL may run in parallel, unlike a statement with data-modifying CTEs."""
    text, params = condition
    sql = f"""target AS (
            SELECT {int(group.pk)}::bigint AS group_id, c.id AS customer_id FROM customers_customer c WHERE {text}
        ),
        current_members AS (
            SELECT m.group_id, m.customer_id FROM groups_membership m WHERE m.group_id IN ({_id_list([group])})
        )"""
    return sql, list(params)


# The scope's customers and their memberships, the first clauses of every event-path statement (see
# _scoped_sets for why the lookup is written this way).
_SCOPED_MEMBERS = """scope AS (SELECT unnest(%s::bigint[]) AS id),
        scoped_members AS MATERIALIZED (
            SELECT m.group_id, m.customer_id FROM scope s CROSS JOIN LATERAL (
                SELECT m.group_id, m.customer_id FROM groups_membership m WHERE m.customer_id = s.id OFFSET 0
            ) m
        ),"""


def _scoped_sets(groups, conditions) -> tuple[str, list]:
    """The event path: `target`, the (group, customer) pairs the scope's customers match, and
    `current_members`, their memberships of these groups. The scope's ids are the first parameter."""
    # Each customer in scope is read once, with one row of the event counts and sums that the
    # groups' rules compare and one row of the values they derive from the customer (typed
    # attributes, lower-cased text, birthdays), and every group's condition is evaluated on
    # those rows: one plan subtree for all groups rather than one per group, each customer's
    # events read once, and each derived value computed once. The ids of the groups a customer
    # matches come out as one array, so only matches become rows rather than one row per group
    # and customer, filtered.
    aggregates, values = {}, {}
    for group in groups:
        aggregates.update(conditions[group.pk].aggregates)
        values.update(conditions[group.pk].values)
    # Always-current groups' next moments read the same rows: their own aggregates (the earliest
    # counted event of a rolling window, ...) join the customer's one row, so events are read once.
    moments = [conditions[g.pk].moment for g in groups if g.always_current and conditions[g.pk].moment is not None]
    for moment in moments:
        aggregates.update(moment.aggregates)
        values.update(moment.values)
    events = event_aggregates_join(aggregates, alias="c")
    derived = customer_values_join(values, alias="c")
    params = [SCOPE, *events.params, *derived.params]
    matches = []
    for group in groups:
        matches.append(f"CASE WHEN ({conditions[group.pk].text}) THEN {int(group.pk)} END")
        params.extend(conditions[group.pk].params)
    # The scoped customers' memberships first, looked up customer by customer in the customer
    # index, then the level's groups among them. Given both filters at once, a plan made for
    # any parameters may read every member of every group through the group index instead;
    # and given the scope as one list, the planner trusts its statistics of memberships per
    # customer, which sampling overestimates many times over (rows come clustered by customer,
    # so it undercounts the customers), and reads the whole table.
    # OFFSET 0 keeps the lookup a lookup.
    if moments:
        return _timed_sets(groups, matches, moments, events, derived, params)
    sql = f"""{_SCOPED_MEMBERS}
        target AS (
            SELECT v.group_id, c.id AS customer_id FROM customers_customer c JOIN scope s ON s.id = c.id
            {events.text} {derived.text}
            CROSS JOIN LATERAL unnest(array_remove(ARRAY[{", ".join(matches)}]::bigint[], NULL)) AS v(group_id)
        ),
        current_members AS (
            SELECT m.group_id, m.customer_id FROM scoped_members m WHERE m.group_id IN ({_id_list(groups)})
        )"""
    return sql, params


def _timed_sets(groups, matches, moments, events, derived, params) -> tuple[str, list]:
    """`_scoped_sets` for a level with always-current groups: each customer's matched groups and next
    moment (the earliest over those groups) come from the same rows, and the moment lowers the
    customer's stored due time in the same statement (see _LOWER_DUE)."""
    params = [*params, *(p for moment in moments for p in moment.params)]
    due = "LEAST(" + ", ".join(moment.text for moment in moments) + ")"
    sql = f"""{_SCOPED_MEMBERS}
        evaluated AS (
            SELECT c.id, x.matched, x.due_at FROM customers_customer c JOIN scope s ON s.id = c.id
            {events.text} {derived.text}
            CROSS JOIN LATERAL (SELECT ARRAY[{", ".join(matches)}]::bigint[] AS matched, {due} AS due_at) x
        ),
        target AS (
            SELECT v.group_id, e.id AS customer_id FROM evaluated e
            CROSS JOIN LATERAL unnest(array_remove(e.matched, NULL)) AS v(group_id)
        ),
        due AS (
            INSERT INTO groups_customerdue (customer_id, due_at)
            SELECT e.id, e.due_at FROM evaluated e LEFT JOIN groups_customerdue d ON d.customer_id = e.id
            -- Only the due times that come forward: the others' rows are not even locked.
            WHERE e.due_at < d.due_at OR (d.customer_id IS NULL AND e.due_at IS NOT NULL)
            {_LOWER_DUE}
        ),
        current_members AS (
            SELECT m.group_id, m.customer_id FROM scoped_members m WHERE m.group_id IN ({_id_list(groups)})
        )"""
    return sql, params


# Group ids and rule versions are written into the text: they are fixed for the level's groups,
# which the text depends on anyway, and the planner sees them.
def _id_list(groups) -> str:
    return ",".join(str(int(g.pk)) for g in groups)


def _versions(groups) -> str:
    versions = ",".join(str(int(g.rule_version)) for g in groups)
    return (
        f"SELECT unnest(ARRAY[{_id_list(groups)}]::bigint[]) AS group_id, "
        f"unnest(ARRAY[{versions}]::int[]) AS rule_version"
    )


def _diff_statement(groups, conditions) -> tuple[str, tuple]:
    """One statement: compute the target set, diff it with the stored membership, write both tables.

    Only the pairs that differ are written, so a run that changes nothing writes nothing. The text
    depends only on the groups and their compiled rules, so it is built once (see _bind).
    """
    return _cached_diff_statement(_level_key(groups, conditions))


def _level_key(groups, conditions) -> tuple:
    """What a cached statement's text depends on: each group's id, rule version, compiled rules and
    whether it is always current."""
    return tuple((g.pk, g.rule_version, conditions[g.pk], g.is_always_current) for g in groups)


def _scoped_diff_query(key: tuple) -> tuple[list[_Level], str, list]:
    groups = [_Level(pk, version, timed) for pk, version, _, timed in key]
    diff, params = _diff_query(groups, SCOPE, {pk: condition for pk, _, condition, _ in key})
    return groups, diff, params


@functools.lru_cache(maxsize=64)
def _cached_diff_statement(key: tuple) -> tuple[str, tuple]:
    groups, diff, params = _scoped_diff_query(key)
    recorded = history.insert_changes(
        "SELECT ch.group_id, ch.customer_id, ch.change, v.rule_version "
        "FROM changes ch JOIN versions v ON v.group_id = ch.group_id"
    )
    sql = f"""
        {diff},
        removed AS (
            DELETE FROM groups_membership m USING diff d
            WHERE d.leaving AND m.group_id = d.group_id AND m.customer_id = d.customer_id
            RETURNING m.group_id, m.customer_id
        ),
        added AS (
            INSERT INTO groups_membership (group_id, customer_id, added_at)
            SELECT d.group_id, d.customer_id, statement_timestamp() FROM diff d WHERE NOT d.leaving
            ON CONFLICT (group_id, customer_id) DO NOTHING
            RETURNING group_id, customer_id
        ),
        changes AS (
            SELECT group_id, customer_id, 'added' AS change FROM added
            UNION ALL
            SELECT group_id, customer_id, 'removed' AS change FROM removed
        ),
        versions AS ({_versions(groups)}),
        history AS ({recorded})
        SELECT group_id, change, count(*) FROM changes GROUP BY group_id, change
    """
    return sql, (*params, REASON, RUN, None)


@dataclass(frozen=True)
class _Level:
    """What a statement needs of a group."""

    pk: int
    rule_version: int
    always_current: bool = False


# The staged diff of the event path and imports: one table per connection, created on first use,
# so that the diff statement can be prepared once and planned once (planning it costs about as much
# as running it), and no table is created and dropped per evaluation.
_SCOPED_DIFF = """CREATE TEMPORARY TABLE IF NOT EXISTS scoped_diff
    (group_id bigint NOT NULL, customer_id bigint NOT NULL, leaving boolean NOT NULL) ON COMMIT DELETE ROWS"""


def _apply_staged(groups, customer_ids, conditions, reason, run_id, *, now) -> Outcome:
    """A full refresh or a large scope: the diff goes to a temporary table, then plain statements apply it.

    Cheaper per change than the one statement of chained data-modifying CTEs, which matters when a
    refresh, an import or a batch changes many memberships. No ON CONFLICT is
    needed: the caller holds the groups' locks (exclusive for a refresh) and, on the event path, the
    customers' row locks, so no one else can add these (group, customer) pairs meanwhile; the
    unique constraint still stands guard.

    Rows are inserted in customer order: the scope is a sorted list of customers (a contiguous range
    of ids in an import), so each index page is visited once rather than at random.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{STAGED_WORK_MEM}'")
        if customer_ids is None:
            # A full refresh: CREATE TABLE AS, which PostgreSQL may run in parallel (INSERT does not).
            table = "refresh_diff"
            diff, params = _diff_query(groups, None, conditions)
            cursor.execute(f"CREATE TEMPORARY TABLE {table} ON COMMIT DROP AS {diff} SELECT * FROM diff", params)
            staged = cursor.rowcount
        else:
            table = "scoped_diff"
            cursor.execute(_SCOPED_DIFF)
            sql, params = _stage_statement(groups, conditions)
            with _preparing_cursor() as preparing:
                preparing.execute(sql, _bind(params, ids=customer_ids, reason=reason, run_id=run_id, now=now))
                staged = preparing.rowcount
        outcome = _apply_diff(cursor, table, groups, customer_ids, reason, run_id) if staged else Outcome()
        # The full refresh's table is dropped now, not at commit, as the next level of this transaction
        # makes its own; the scoped one is emptied for the next level or scope.
        cursor.execute(f"DROP TABLE {table}" if customer_ids is None else f"DELETE FROM {table}")
    return outcome


def _stage_statement(groups, conditions) -> tuple[str, tuple]:
    return _cached_stage_statement(_level_key(groups, conditions))


@functools.lru_cache(maxsize=64)
def _cached_stage_statement(key: tuple) -> tuple[str, tuple]:
    _, diff, params = _scoped_diff_query(key)
    insert = "INSERT INTO scoped_diff (group_id, customer_id, leaving) SELECT group_id, customer_id, leaving FROM diff"
    return f"{diff} {insert}", tuple(params)


def _apply_diff(cursor, table: str, groups, customer_ids, reason, run_id) -> Outcome:
    """Write the staged diff: memberships removed and added, and their history."""
    # The planner knows nothing of the staged table's rows, and once it guesses a few thousand leaving
    # it prefers hashing every membership of every group to probing the index per row. Naming the
    # scope's customers lets it start from their memberships instead.
    in_scope = "" if customer_ids is None else "AND m.customer_id = ANY(%s::bigint[])"
    writes = [
        (
            f"""DELETE FROM groups_membership m USING {table} d
               WHERE d.leaving AND m.group_id = d.group_id AND m.customer_id = d.customer_id {in_scope}""",
            [] if customer_ids is None else [list(customer_ids)],
        ),
        (
            f"""INSERT INTO groups_membership (group_id, customer_id, added_at)
               SELECT group_id, customer_id, statement_timestamp() FROM {table} WHERE NOT leaving
               ORDER BY customer_id, group_id""",
            [],
        ),
        (
            history.insert_changes(
                f"""SELECT d.group_id, d.customer_id, CASE WHEN d.leaving THEN 'removed' ELSE 'added' END AS change,
                           v.rule_version
                    FROM {table} d JOIN ({_versions(groups)}) v ON v.group_id = d.group_id
                    ORDER BY d.customer_id, d.group_id"""
            ),
            [reason, run_id, None],
        ),
    ]
    for sql, statement_params in writes:
        cursor.execute(sql, statement_params)
    # Only a full refresh passes its changed customers on, to the groups that depend on it; the
    # event path evaluates dependants for its whole scope.
    changed_ids = "array_agg(customer_id)" if customer_ids is None else "NULL::bigint[]"
    cursor.execute(f"SELECT group_id, leaving, count(*), {changed_ids} FROM {table} GROUP BY group_id, leaving")
    outcome = Outcome()
    for group_id, leaving, count, changed in cursor.fetchall():
        (outcome.removed if leaving else outcome.added)[group_id] += count
        if changed is not None:
            outcome.changed_customers.setdefault(group_id, set()).update(changed)
    return outcome
