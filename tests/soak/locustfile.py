"""The load of `make soak` (Locust): clients posting event batches, and staff browsing the back office.

Each kind of user acts at a constant rate (constant_throughput), so the load is what the test states,
not whatever the server can take. Settings come from the environment the test sets.
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, constant_throughput, task

KEY = os.environ["LOAD_API_KEY"]
CUSTOMERS = [int(i) for i in os.environ["LOAD_CUSTOMER_IDS"].split(",")]
BATCH = int(os.environ.get("LOAD_BATCH", "100"))
GROUP = os.environ["LOAD_GROUP_ID"]


class EventClient(HttpUser):
    """A point of sale or an app sending check-ins and purchases in batches."""

    wait_time = constant_throughput(float(os.environ.get("LOAD_BATCHES_PER_S_PER_CLIENT", "1")))
    weight = int(os.environ.get("LOAD_EVENT_CLIENTS", "4"))

    @task
    def post_batch(self) -> None:
        events = []
        for customer_id in random.sample(CUSTOMERS, BATCH):
            if random.random() < 0.5:
                events.append({"customer_id": customer_id, "name": "check_in", "occurred_at": "2025-05-20T10:00:00Z"})
            else:
                events.append({"customer_id": customer_id, "name": "purchase", "occurred_at": "2025-05-20T10:05:00Z",
                               "amount": random.choice(["4.50", "12.00", "60.00"])})  # fmt: skip
        with self.client.post(
            "/api/events/batch/", json={"events": events}, headers={"Authorization": f"Token {KEY}"},
            name="POST /api/events/batch/", catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
            else:
                self.environment.events_accepted = getattr(self.environment, "events_accepted", 0) + len(events)


class Staff(HttpUser):
    """A member of staff moving between the group list, a group's pages and the customer list."""

    wait_time = constant_throughput(float(os.environ.get("LOAD_PAGES_PER_S_PER_STAFF", "1")))
    weight = int(os.environ.get("LOAD_STAFF", "2"))

    def on_start(self) -> None:
        self.client.get("/admin/login/", name="GET /admin/login/")
        self.client.post(
            "/admin/login/?next=/admin/",
            data={"username": os.environ["LOAD_USERNAME"], "password": os.environ["LOAD_PASSWORD"],
                  "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", "")},
            headers={"Referer": f"{self.host}/admin/login/"}, name="POST /admin/login/",
        )  # fmt: skip

    def page(self, path: str, name: str) -> None:
        with self.client.get(path, name=name, catch_response=True) as response:
            # A page sent back to the login form was not the page asked for.
            if response.status_code != 200 or "/admin/login/" in response.url:
                response.failure(f"{response.status_code} at {response.url}")

    @task(3)
    def group_list(self) -> None:
        self.page("/admin/groups/customergroup/", "GET group list")

    @task(2)
    def group_members(self) -> None:
        self.page(f"/admin/groups/customergroup/{GROUP}/change/", "GET a group's members")

    @task(2)
    def group_history(self) -> None:
        self.page(f"/admin/groups/customergroup/{GROUP}/change/?tab=history", "GET a group's history")

    @task(1)
    def customer_list(self) -> None:
        self.page("/admin/customers/customer/?q=example", "GET customer search")
