"""Demo data: believable customers, households, business accounts and a year of visits and purchases.

Rows are generated in memory from a seeded random generator and written with PostgreSQL's COPY,
so a few thousand customers and their tens of thousands of events load in a few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Model
from psycopg.types.json import Jsonb

from .models import Account, AccountMembership, AttributeDefinition, Customer, Event

# Told how many more units of work are done (a tqdm bar's `update`, in seed_demo).
Progress = Callable[[int], object] | None
# Rows written between two reports of progress while copying.
PROGRESS_ROWS = 1000

FIRST_NAMES = [
    "Ada", "Amir", "Ana", "Aoife", "Ben", "Bruno", "Chen", "Chloe", "Daniel", "Elena", "Emma", "Farah",
    "Felix", "Grace", "Hana", "Hugo", "Ines", "Isaac", "Jonas", "Julia", "Kenji", "Lara", "Leo", "Lina",
    "Lucas", "Maya", "Mei", "Nadia", "Noah", "Olga", "Omar", "Paul", "Priya", "Rosa", "Sam", "Sofia",
    "Tariq", "Theo", "Vera", "Wei", "Yara", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Adams", "Bauer", "Costa", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito", "Jensen", "Kim",
    "Lopez", "Martin", "Nakamura", "Novak", "Okafor", "Park", "Quinn", "Rossi", "Silva", "Tanaka",
    "Usman", "Varga", "Wang", "Weber", "Yilmaz", "Zhang",
]  # fmt: skip
BUSINESS_NAMES = [
    "Harbour Studio", "Northside Dental", "Bright Lane Legal", "Oak & Pine Architects", "Copperleaf Media",
    "Greenway Clinic", "Bluebird Logistics", "Summit Accounting",
]  # fmt: skip

# category -> (products, lowest and highest price)
CATALOGUE = {
    "Chinese tea": (["Tieguanyin 100 g", "Longjing 50 g", "Pu-erh cake", "Jasmine pearls 50 g"], (9, 48)),
    "Japanese tea": (["Sencha 100 g", "Gyokuro 50 g", "Matcha 30 g"], (12, 40)),
    "Coffee": (["Espresso", "Flat white", "Filter coffee", "House blend beans 250 g"], (3, 16)),
    "Pastry": (["Croissant", "Cinnamon bun", "Almond cake"], (3, 7)),
    "Teaware": (["Gaiwan", "Clay teapot", "Tea tray"], (18, 90)),
}
CATEGORY_WEIGHTS = {"Coffee": 45, "Pastry": 25, "Chinese tea": 14, "Japanese tea": 10, "Teaware": 6}
STORES = ["Downtown", "Riverside", "Airport"]
ONLINE_STORE = "Online"
SIGNUP_SOURCES = {"pos": 40, "online_order": 25, "signup_form": 20, "connection_link": 10, "import": 5}
STATUSES = {"active": 85, "inactive": 10, "blocked": 5}
TIERS = {"bronze": 50, "silver": 30, "gold": 15, "platinum": 5}
SUBSCRIPTION_STATUSES = {"active": 55, "paused": 15, "cancelled": 30}
HOUSEHOLD_PLANS = {"basic": 50, "family": 35, "premium": 15}

# Each customer follows one pattern of behaviour: (share of customers, visits in the year, price factor).
PROFILES = {
    "dormant": (15, (0, 0), 1.0),  # signed up, never came back
    "lapsed": (20, (2, 10), 1.0),  # came for a while, nothing in the last ~70 days
    "occasional": (40, (2, 10), 1.0),
    "regular": (20, (25, 70), 1.0),
    "big_spender": (5, (25, 70), 4.0),  # the VIPs of "Last month's VIPs"
}

CUSTOMER_ATTRIBUTES = [
    ("tier", "Loyalty tier", AttributeDefinition.Type.TEXT),
    ("points", "Loyalty points", AttributeDefinition.Type.NUMBER),
    ("vip", "VIP", AttributeDefinition.Type.BOOLEAN),
    ("last_survey", "Last survey answered", AttributeDefinition.Type.DATE),
]
ACCOUNT_ATTRIBUTES = [
    ("subscription_status", "Subscription status", AttributeDefinition.Type.TEXT),
    ("plan", "Plan", AttributeDefinition.Type.TEXT),
    ("renewal_date", "Renewal date", AttributeDefinition.Type.DATE),
    ("store_credit", "Store credit", AttributeDefinition.Type.NUMBER),
    ("tier", "Account tier", AttributeDefinition.Type.TEXT),
]


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class DemoData:
    """The generated rows, as dicts of model field names, ready to be copied into the database."""

    size: int
    seed: int
    now: datetime
    customers: list[dict] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)
    account_memberships: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def generate(self, customer_ids: list[int], account_ids: list[int], progress: Progress = None) -> DemoData:
        """Fill the rows; ids are allocated by the database beforehand so rows can refer to each other.

        `progress(n)` is told of each customer whose visits and purchases are generated.
        """
        rng = random.Random(self.seed)
        profiles = [self._customer(rng, index, customer_id) for index, customer_id in enumerate(customer_ids)]
        households = self._accounts(rng, account_ids)
        for customer, profile in zip(self.customers, profiles, strict=True):
            self._events(rng, customer, profile, households.get(customer["id"]))
            if progress is not None:
                progress(1)
        return self

    # Customers -------------------------------------------------------------------------------

    def _customer(self, rng: random.Random, index: int, customer_id: int) -> str:
        profile = rng.choices(list(PROFILES), weights=[p[0] for p in PROFILES.values()])[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        has_email = rng.random() > 0.08
        has_phone = rng.random() < 0.6
        # A few staff, some typed "Staff" as in a spreadsheet (rules compare text ignoring case).
        role = "customer"
        if index % 29 == 3:
            role = "staff" if index % 3 else "Staff"
        elif rng.random() < 0.02:
            role = ""
        attributes: dict = {}
        if rng.random() < 0.8:
            attributes["tier"] = "platinum" if profile == "big_spender" else _pick(rng, TIERS)
        if rng.random() < 0.7:
            attributes["points"] = rng.randint(0, 5000)
        if profile == "big_spender":
            attributes["vip"] = True
        elif rng.random() < 0.5:
            attributes["vip"] = rng.random() < 0.04
        if rng.random() < 0.25:
            attributes["last_survey"] = (self.now.date() - timedelta(days=rng.randint(1, 500))).isoformat()
        self.customers.append(
            {
                "id": customer_id,
                # Customers added in the back office have no id from another system: many NULLs.
                "external_id": f"C{index + 1:06d}" if rng.random() < 0.9 else None,
                "member_id": f"M{100000 + index}" if rng.random() < 0.7 else "",
                "email": f"{first}.{last}.{index + 1}@example.com".lower() if has_email else "",
                "phone": f"+44 7700 9{rng.randint(0, 99999):05d}" if has_phone else "",
                "first_name": first,
                "last_name": last,
                "status": _pick(rng, STATUSES),
                "role": role,
                "signup_source": _pick(rng, SIGNUP_SOURCES),
                "birthdate": self._birthdate(rng, index),
                "email_consent": has_email and rng.random() < 0.6,
                "sms_consent": has_phone and rng.random() < 0.3,
                "attributes": Jsonb(attributes),
                "created_at": self.now - timedelta(days=rng.randint(0, 3 * 365), minutes=rng.randint(0, 1440)),
                "updated_at": self.now,
            }
        )
        return profile

    @staticmethod
    def _birthdate(rng: random.Random, index: int) -> date | None:
        if index % 400 == 7:
            return date(rng.choice([1980, 1984, 1988, 1992, 1996, 2000, 2004]), 2, 29)  # recurs on 1 March
        if rng.random() < 0.15:
            return None
        return date(1945, 1, 1) + timedelta(days=rng.randint(0, 62 * 365))

    # Households and business accounts ----------------------------------------------------------

    def _accounts(self, rng: random.Random, account_ids: list[int]) -> dict[int, int]:
        """Group customers into accounts; returns each household member's household id."""
        pool = [c["id"] for c in self.customers]
        rng.shuffle(pool)
        ids = iter(account_ids)
        by_id = {c["id"]: c for c in self.customers}
        household_of: dict[int, int] = {}
        households = pool[: int(len(pool) * 0.35)]
        in_businesses = pool[len(households) : len(households) + int(len(pool) * 0.04)]
        position = 0
        while position < len(households):
            members = households[position : position + rng.randint(2, 4)]
            position += len(members)
            account_id = next(ids)
            status = _pick(rng, SUBSCRIPTION_STATUSES)
            attributes = {"subscription_status": status, "plan": _pick(rng, HOUSEHOLD_PLANS)}
            if status != "cancelled":
                attributes["renewal_date"] = (self.now.date() + timedelta(days=rng.randint(1, 365))).isoformat()
            if rng.random() < 0.3:
                attributes["store_credit"] = rng.randint(5, 80)
            self._account(
                account_id,
                f"H{len(self.accounts) + 1:05d}",
                f"{by_id[members[0]]['last_name']} household",
                "household",
                attributes,
            )
            for rank, customer_id in enumerate(members):
                self._membership(customer_id, account_id, "owner" if rank == 0 else "member")
                household_of[customer_id] = account_id
        position = 0
        while position < len(in_businesses):
            members = in_businesses[position : position + rng.randint(2, 6)]
            position += len(members)
            account_id = next(ids)
            attributes = {"plan": "business", "store_credit": rng.randint(0, 500), "tier": _pick(rng, TIERS)}
            self._account(
                account_id, f"B{len(self.accounts) + 1:05d}", rng.choice(BUSINESS_NAMES), "business", attributes
            )
            for rank, customer_id in enumerate(members):
                self._membership(customer_id, account_id, "admin" if rank == 0 else "employee")
        return household_of

    def _account(self, account_id: int, external_id: str, name: str, kind: str, attributes: dict) -> None:
        created = self.now - timedelta(days=400)
        self.accounts.append(
            {
                "id": account_id,
                "external_id": external_id,
                "name": name,
                "kind": kind,
                "attributes": Jsonb(attributes),
                "created_at": created,
                "updated_at": self.now,
            }
        )

    def _membership(self, customer_id: int, account_id: int, role: str) -> None:
        self.account_memberships.append(
            {"customer_id": customer_id, "account_id": account_id, "role": role, "created_at": self.now}
        )

    # Visits and purchases ----------------------------------------------------------------------

    def _events(self, rng: random.Random, customer: dict, profile: str, household_id: int | None) -> None:
        _, (low, high), price_factor = PROFILES[profile]
        visits = rng.randint(low, high)
        if not visits:
            return
        # Lapsed customers stopped coming 70 to 300 days ago; the others are active up to today.
        latest = rng.randint(70, 300) if profile == "lapsed" else 0
        store = rng.choice(STORES)  # people mostly go to one store
        for _ in range(visits):
            days_ago = rng.uniform(latest, 365)
            occurred = (self.now - timedelta(days=days_ago)).replace(hour=rng.randint(7, 19), second=0, microsecond=0)
            if occurred > self.now:
                occurred -= timedelta(days=1)
            visit_store = store if rng.random() < 0.8 else rng.choice(STORES)
            self._event(customer, None, "check_in", occurred, None, {"store": visit_store})
            if rng.random() < 0.75:
                self._purchase(rng, customer, household_id, occurred + timedelta(minutes=3), visit_store, price_factor)
        for _ in range(rng.randint(0, visits // 5)):  # online orders come without a visit
            occurred = self.now - timedelta(days=rng.uniform(latest, 365))
            self._purchase(rng, customer, household_id, occurred, ONLINE_STORE, price_factor)

    def _purchase(self, rng, customer, household_id, occurred, store, price_factor) -> None:
        category = _pick(rng, CATEGORY_WEIGHTS)
        products, (lowest, highest) = CATALOGUE[category]
        amount = Decimal(str(round(rng.uniform(lowest, highest) * price_factor, 2))).quantize(Decimal("0.01"))
        properties = {
            "category": category,
            "product": rng.choice(products),
            "store": store,
            "quantity": rng.randint(1, 3),
        }
        # Some household purchases are made on the household's account.
        account_id = household_id if household_id and rng.random() < 0.3 else None
        self._event(customer, account_id, "purchase", occurred, amount, properties)

    def _event(self, customer, account_id, name, occurred, amount, properties) -> None:
        occurred = min(occurred, self.now)  # a purchase minutes after a check-in just now
        self.events.append(
            {
                "customer_id": customer["id"],
                "account_id": account_id,
                "name": name,
                "occurred_at": occurred,
                "amount": amount,
                "properties": Jsonb(properties),
                "created_at": occurred,
            }
        )


def attribute_definitions() -> list[AttributeDefinition]:
    return [
        AttributeDefinition(entity=entity, key=key, label=label, type=type_)
        for entity, catalogue in (("customer", CUSTOMER_ATTRIBUTES), ("account", ACCOUNT_ATTRIBUTES))
        for key, label, type_ in catalogue
    ]


def allocate_ids(model: type[Model], count: int) -> list[int]:
    """Reserve primary keys from the table's own sequence, so COPY can write rows that refer to each other."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_rows(model: type[Model], rows: list[dict], progress: Progress = None) -> int:
    """Write rows (dicts of field names) with COPY: one round trip, no per-row statements.

    `progress(n)` is told of every PROGRESS_ROWS rows written, and of the rest at the end.
    """
    if not rows:
        return 0
    names = list(rows[0])
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in names)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for index, row in enumerate(rows, 1):
                copy.write_row([row[name] for name in names])
                if progress is not None and index % PROGRESS_ROWS == 0:
                    progress(PROGRESS_ROWS)
    if progress is not None:
        progress(len(rows) % PROGRESS_ROWS)
    return len(rows)


def load(
    size: int,
    seed: int,
    now: datetime,
    *,
    generating: Progress = None,
    writing: Callable[[int], Progress] | None = None,
) -> dict[str, int]:
    """Generate and insert the demo data; call inside a transaction. Returns counts per kind of row.

    `generating(n)` is told of each customer generated; `writing(total)` is called once the rows are
    generated, with how many there are to write, and returns what is told of each batch written.
    """
    AttributeDefinition.objects.bulk_create(attribute_definitions(), ignore_conflicts=True)
    # Every account has at least one member, so half the customers plus two is always enough
    # account ids; the unused ones only leave a gap in the sequence.
    data = DemoData(size=size, seed=seed, now=now)
    data.generate(allocate_ids(Customer, size), allocate_ids(Account, size // 2 + 2), generating)
    tables = [
        ("customers", Customer, data.customers),
        ("accounts", Account, data.accounts),
        ("account memberships", AccountMembership, data.account_memberships),
        ("events", Event, data.events),
    ]
    written = writing(sum(len(rows) for _, _, rows in tables)) if writing is not None else None
    counts = {name: copy_rows(model, rows, written) for name, model, rows in tables}
    with connection.cursor() as cursor:
        # Fresh statistics, so the first group refresh gets good query plans on the new rows.
        for model in (Customer, Account, AccountMembership, Event):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
    return counts
