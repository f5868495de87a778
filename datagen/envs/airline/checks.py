"""Policy checks for the airline domain: each enforces one numbered rule of policy.md.

The state of a reservation *at the time of a call* is rebuilt from the start state and the results
of earlier successful calls in the trace (write tools return the full reservation), so a rule is
judged on what the agent could see when it acted, not on the final state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from datagen.envs.airline.database import CURRENT_TIME, flight_date_key, free_bags
from datagen.envs.policy import ActionRecord, policy_check
from datagen.envs.store import Tables

IDENTITY_TOOLS = ("verify_user", "find_user_by_email")
RESERVATION_WRITES = (
    "cancel_reservation",
    "update_reservation_cabin",
    "update_reservation_flights",
    "update_reservation_passengers",
    "update_reservation_baggages",
    "add_travel_insurance",
)
PAID_CHANGES = (
    "update_reservation_cabin",
    "update_reservation_flights",
    "update_reservation_baggages",
    "add_travel_insurance",
)
COMPENSATION_PER_PASSENGER = {
    "cancelled_flight": {"regular": 100, "silver": 150, "gold": 200},
    "delayed_flight": {"regular": 50, "silver": 75, "gold": 100},
}


def _now() -> datetime:
    return datetime.fromisoformat(CURRENT_TIME)


def _reservation_at(
    before: Tables, trace: Sequence[ActionRecord], index: int, reservation_id: Any
) -> dict | None:
    """The reservation as it stood just before ``trace[index]``."""
    for action in reversed(trace[:index]):
        result = action.result
        if (
            action.ok
            and isinstance(result, dict)
            and result.get("reservation_id") == reservation_id
            and "flights" in result
        ):
            return result
    found = before.get("reservations", {}).get(reservation_id) if isinstance(reservation_id, str) else None
    return found


def _target_user(before: Tables, trace: Sequence[ActionRecord], index: int) -> str | None:
    """The user whose records the write at ``trace[index]`` touches."""
    action = trace[index]
    if action.name in ("book_reservation", "send_certificate"):
        return action.arguments.get("user_id")
    if action.name in RESERVATION_WRITES:
        record = _reservation_at(before, trace, index, action.arguments.get("reservation_id"))
        return record["user_id"] if record else None
    return None


def _ok_writes(trace: Sequence[ActionRecord]) -> list[tuple[int, ActionRecord]]:
    return [(i, a) for i, a in enumerate(trace) if a.ok and a.kind == "write"]


def _authenticated_before(trace: Sequence[ActionRecord], index: int) -> str | None:
    for action in reversed(trace[:index]):
        if action.ok and action.name in IDENTITY_TOOLS and isinstance(action.result, dict):
            return action.result.get("user_id")
    return None


def _payment_source(before: Tables, user_id: Any, payment_id: Any) -> str | None:
    method = before.get("users", {}).get(user_id, {}).get("payment_methods", {}).get(payment_id)
    return method["source"] if method else None


def _flight_status(before: Tables, flight_number: str, day: str) -> str | None:
    return before.get("flight_dates", {}).get(flight_date_key(flight_number, day), {}).get("status")


@policy_check("R1", "Authenticate the user before any booking, change, cancellation or compensation.")
def identity_verified_before_writes(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    return [
        f"call {i} ({a.name}) changed records before any user was authenticated"
        for i, a in _ok_writes(trace)
        if _authenticated_before(trace, i) is None
    ]


@policy_check("R2", "Act only on the authenticated user's own reservations and payment methods.")
def writes_only_for_authenticated_user(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        who, target = _authenticated_before(trace, i), _target_user(before, trace, i)
        if who is not None and target != who:
            problems.append(
                f"call {i} ({a.name}) touched records of {target!r}, but the authenticated user is {who!r}"
            )
    return problems


@policy_check(
    "R4",
    "At most five passengers; at most one certificate, one credit card and three gift cards per booking.",
)
def booking_limits(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        if a.name != "book_reservation":
            continue
        if len(a.arguments.get("passengers", [])) > 5:
            problems.append(f"call {i} booked {len(a.arguments['passengers'])} passengers; the limit is 5")
        sources = [
            _payment_source(before, a.arguments.get("user_id"), p.get("payment_id"))
            for p in a.arguments.get("payment_methods", [])
        ]
        for source, limit in (("certificate", 1), ("credit_card", 1), ("gift_card", 3)):
            if sources.count(source) > limit:
                problems.append(f"call {i} paid with {sources.count(source)} {source}s; the limit is {limit}")
    return problems


@policy_check(
    "R5", "Paid bags are exactly the bags beyond the free allowance of the tier, cabin and passengers."
)
def baggage_fees_follow_allowance(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        if a.name == "book_reservation":
            user = before["users"].get(a.arguments["user_id"], {})
            cabin, count, current_paid = a.arguments["cabin"], len(a.arguments["passengers"]), 0
        elif a.name == "update_reservation_baggages":
            record = _reservation_at(before, trace, i, a.arguments["reservation_id"]) or {}
            user = before["users"].get(record.get("user_id"), {})
            cabin, count, current_paid = (
                record.get("cabin"),
                len(record.get("passengers", [])),
                record.get("nonfree_baggages", 0),
            )
        else:
            continue
        if not user or cabin is None:
            continue
        allowance = free_bags(user["membership"], cabin, count)
        expected = max(current_paid, a.arguments["total_baggages"] - allowance, 0)
        if a.arguments["nonfree_baggages"] != expected:
            problems.append(
                f"call {i} ({a.name}) set {a.arguments['nonfree_baggages']} paid bags for "
                f"{a.arguments['total_baggages']} bags; with a free allowance of {allowance} it should be {expected}"
            )
    return problems


def _cancellation_grounds(before: Tables, record: dict, reason: str) -> list[str]:
    grounds = []
    if _now() - datetime.fromisoformat(record["created_at"]) < timedelta(hours=24):
        grounds.append("booked within 24 hours")
    if any(_flight_status(before, s["flight_number"], s["date"]) == "cancelled" for s in record["flights"]):
        grounds.append("airline cancelled a flight")
    if record["cabin"] == "business":
        grounds.append("business cabin")
    if record["insurance"] and reason in ("health", "weather"):
        grounds.append("insured, covered reason")
    return grounds


@policy_check(
    "R6",
    "Cancel only if booked <24h ago, a flight was cancelled by the airline, business cabin, or insured with a health/weather reason.",
)
def cancellation_only_when_allowed(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        if a.name != "cancel_reservation":
            continue
        record = _reservation_at(before, trace, i, a.arguments["reservation_id"])
        if record and not _cancellation_grounds(before, record, a.arguments.get("reason", "")):
            problems.append(
                f"call {i} cancelled {record['reservation_id']} although none of the R6 conditions holds"
            )
    return problems


@policy_check("R7", "Flights of a basic economy reservation cannot be changed.")
def no_flight_changes_in_basic_economy(
    before: Tables, trace: Sequence[ActionRecord], after: Tables
) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        if a.name == "update_reservation_flights":
            record = _reservation_at(before, trace, i, a.arguments["reservation_id"])
            if record and record["cabin"] == "basic_economy":
                problems.append(
                    f"call {i} changed the flights of basic economy reservation {record['reservation_id']}"
                )
    return problems


@policy_check(
    "R8",
    "Insurance can be added after booking only within 24 hours of the booking and before the first flight.",
)
def insurance_only_in_window(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        if a.name != "add_travel_insurance":
            continue
        record = _reservation_at(before, trace, i, a.arguments["reservation_id"])
        if record is None:
            continue
        first = record["flights"][0]
        departs = before["flights"][first["flight_number"]]["departure_time"]
        late = _now() - datetime.fromisoformat(record["created_at"]) >= timedelta(hours=24)
        departed = datetime.fromisoformat(f"{first['date']}T{departs}:00") <= _now()
        if late or departed:
            problems.append(f"call {i} added insurance to {record['reservation_id']} outside the R8 window")
    return problems


@policy_check(
    "R9",
    "Compensation only for a real cancelled/delayed flight, eligible users, within the per-passenger limits, once per reservation.",
)
def compensation_within_rules(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    given = {
        m.get("issued_for")
        for u in before["users"].values()
        for m in u["payment_methods"].values()
        if m["source"] == "certificate" and m.get("issued_for")
    }
    for i, a in _ok_writes(trace):
        if a.name != "send_certificate":
            continue
        rid, reason = a.arguments["reservation_id"], a.arguments["reason"]
        record = _reservation_at(before, trace, i, rid)
        user = before["users"].get(a.arguments["user_id"])
        if record is None or user is None:
            continue
        wanted = "cancelled" if reason == "cancelled_flight" else "delayed"
        if not any(
            _flight_status(before, s["flight_number"], s["date"]) == wanted for s in record["flights"]
        ):
            problems.append(f"call {i}: reservation {rid} has no {wanted} flight")
        if not (
            user["membership"] in ("silver", "gold") or record["insurance"] or record["cabin"] == "business"
        ):
            problems.append(
                f"call {i}: a regular member without insurance in {record['cabin']} gets no compensation"
            )
        limit = COMPENSATION_PER_PASSENGER[reason][user["membership"]] * len(record["passengers"])
        if a.arguments["amount"] > limit:
            problems.append(f"call {i}: certificate of {a.arguments['amount']} exceeds the limit of {limit}")
        if rid in given:
            problems.append(f"call {i}: reservation {rid} was already compensated")
        given.add(rid)
    return problems


@policy_check(
    "R10", "Changes are paid with (and fare refunds go to) a credit card or gift card, never a certificate."
)
def no_certificates_for_changes(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    problems = []
    for i, a in _ok_writes(trace):
        if a.name not in PAID_CHANGES or a.arguments.get("payment_id") is None:
            continue
        record = _reservation_at(before, trace, i, a.arguments["reservation_id"])
        if record and _payment_source(before, record["user_id"], a.arguments["payment_id"]) == "certificate":
            problems.append(f"call {i} ({a.name}) used travel certificate {a.arguments['payment_id']}")
    return problems


@policy_check("R11", "After transferring to a human agent, make no further tool calls.")
def nothing_after_transfer(before: Tables, trace: Sequence[ActionRecord], after: Tables) -> list[str]:
    for i, a in enumerate(trace):
        if a.name == "transfer_to_human_agent" and a.ok and i + 1 < len(trace):
            return [f"{len(trace) - i - 1} tool call(s) after the transfer at call {i}"]
    return []
