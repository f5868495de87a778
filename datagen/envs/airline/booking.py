"""Booking rules shared by the airline tools: argument and result types, lookups that fail with a
readable ToolError, itinerary and seat validation, and moving money between saved payment methods.

Nothing here mutates state except ``move_money``, ``adjust_seats`` and ``reprice``, which the write
tools call only after every check has passed.
"""

from __future__ import annotations

import hashlib
from datetime import date as date_type
from datetime import datetime
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict

from datagen.envs.airline.database import (
    CURRENT_TIME,
    flight_date_key,
    flight_departure,
)
from datagen.envs.store import Store
from datagen.envs.tools import Money, ToolError

BOOKABLE = "available"
FLOWN = ("flying", "landed")


class FlightRef(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    flight_number: str
    date: str


class PassengerInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    first_name: str
    last_name: str
    date_of_birth: str


class PaymentSplit(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    payment_id: str
    amount: Money


class UserIdentity(TypedDict):
    user_id: str
    first_name: str
    last_name: str
    membership: str


class PaymentMethodInfo(TypedDict, total=False):
    payment_id: str
    source: str
    brand: str
    last_four: str
    balance: float
    amount: float


class UserDetails(TypedDict):
    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    date_of_birth: str
    membership: str
    payment_methods: list[PaymentMethodInfo]
    saved_passengers: list[dict[str, str]]


class ReservationSummary(TypedDict):
    reservation_id: str
    origin: str
    destination: str
    trip_type: str
    cabin: str
    first_flight_date: str
    status: str


class AirportInfo(TypedDict):
    code: str
    city: str


class FlightOption(TypedDict):
    flight_number: str
    date: str
    origin: str
    destination: str
    departure_time: str
    arrival_time: str
    status: str
    available_seats: dict[str, int]
    prices: dict[str, float]


class Connection(TypedDict):
    flights: list[FlightOption]
    layover_minutes: int


class CancellationResult(TypedDict):
    reservation_id: str
    status: str
    refunds: list[dict[str, Any]]
    refund_total: float


class CertificateIssued(TypedDict):
    user_id: str
    reservation_id: str
    payment_id: str
    amount: float


class Transfer(TypedDict):
    transferred: bool
    summary: str


# -- helpers -----------------------------------------------------------------------------------
def now() -> datetime:
    return datetime.fromisoformat(CURRENT_TIME)


def money(value: float) -> float:
    return round(value + 0.0, 2)


def get_user(db: Store, user_id: str) -> dict[str, Any]:
    record = db.get("users", user_id)
    if record is None:
        raise ToolError(f"no user with id {user_id!r}; ids look like 'first_last_1234'")
    return record


def get_reservation(db: Store, reservation_id: str) -> dict[str, Any]:
    record = db.get("reservations", reservation_id)
    if record is None:
        raise ToolError(f"no reservation with id {reservation_id!r}; ids are 6 characters like 'K3V9QX'")
    return record


def active_reservation(db: Store, reservation_id: str) -> dict[str, Any]:
    record = get_reservation(db, reservation_id)
    if record["status"] != "active":
        raise ToolError(
            f"reservation {reservation_id} is {record['status']}; only active reservations can be changed"
        )
    return record


def parse_date(value: str, what: str) -> str:
    try:
        return date_type.fromisoformat(value).isoformat()
    except ValueError:
        raise ToolError(f"{what} must be a date like 2026-05-20, got {value!r}") from None


def get_flight(db: Store, flight_number: str) -> dict[str, Any]:
    record = db.get("flights", flight_number)
    if record is None:
        raise ToolError(f"no flight {flight_number!r}; flight numbers look like 'BW0123'")
    return record


def flight_day(db: Store, flight_number: str, day: str) -> dict[str, Any]:
    found = db.get("flight_dates", flight_date_key(flight_number, day))
    if found is None:
        get_flight(db, flight_number)
        raise ToolError(
            f"flight {flight_number} has no schedule on {day!r}; dates run 2026-05-01 to 2026-05-30"
        )
    return found


def flight_option(flight: dict[str, Any], info: dict[str, Any]) -> FlightOption:
    return {
        "flight_number": flight["flight_number"],
        "date": info["date"],
        "origin": flight["origin"],
        "destination": flight["destination"],
        "departure_time": flight["departure_time"],
        "arrival_time": flight["arrival_time"],
        "status": info["status"],
        "available_seats": info["available_seats"],
        "prices": info["prices"],
    }


def bookable_options(db: Store, day: str, keep: Any) -> list[FlightOption]:
    """Options for the flights that ``keep`` accepts and that can be booked on ``day``."""
    found: list[FlightOption] = []
    for flight in db.scan("flights", keep):
        info = db.get("flight_dates", flight_date_key(flight["flight_number"], day))
        if info is not None and info["status"] == BOOKABLE:
            found.append(flight_option(flight, info))
    return found


def payment_method(user: dict[str, Any], payment_id: str) -> dict[str, Any]:
    method = user["payment_methods"].get(payment_id)
    if method is None:
        raise ToolError(
            f"payment method {payment_id!r} is not on file for {user['user_id']}; "
            f"saved methods: {', '.join(sorted(user['payment_methods'])) or 'none'}"
        )
    return method


def check_can_pay(user: dict[str, Any], payment_id: str, amount: float) -> None:
    method = payment_method(user, payment_id)
    if amount > 0 and method["source"] == "gift_card" and method["balance"] + 1e-9 < amount:
        raise ToolError(f"gift card {payment_id} has a balance of {method['balance']}, less than {amount}")
    if amount > 0 and method["source"] == "certificate" and method["amount"] + 1e-9 < amount:
        raise ToolError(f"certificate {payment_id} is worth {method['amount']}, less than {amount}")


def move_money(db: Store, user_id: str, payment_id: str, amount: float) -> None:
    """Charges (amount > 0) or refunds (amount < 0) a saved method; call after _check_can_pay."""
    user = db.edit("users", user_id)
    method = user["payment_methods"].get(payment_id)
    if method is None:  # a used certificate being refunded comes back as a fresh certificate
        user["payment_methods"][payment_id] = {
            "source": "certificate",
            "payment_id": payment_id,
            "amount": money(-amount),
            "issued_for": None,
        }
    elif method["source"] == "gift_card":
        method["balance"] = money(method["balance"] - amount)
    elif method["source"] == "certificate":
        if amount > 0:  # single use: whatever is left is forfeited
            del user["payment_methods"][payment_id]
        else:
            method["amount"] = money(method["amount"] - amount)


def segments_in_order(db: Store, refs: list[FlightRef]) -> list[tuple[dict[str, Any], str]]:
    if not refs:
        raise ToolError("flights must list at least one flight as {flight_number, date}")
    seen: set[tuple[str, str]] = set()
    segments = []
    for ref in refs:
        day = parse_date(ref.date, "flight date")
        if (ref.flight_number, day) in seen:
            raise ToolError(f"flight {ref.flight_number} on {day} is listed twice")
        seen.add((ref.flight_number, day))
        flight_day(db, ref.flight_number, day)
        segments.append((get_flight(db, ref.flight_number), day))
    for (prev, prev_day), (nxt, nxt_day) in zip(segments, segments[1:], strict=False):
        if prev["destination"] != nxt["origin"]:
            raise ToolError(
                f"flights do not connect: {prev['flight_number']} arrives at {prev['destination']} but "
                f"{nxt['flight_number']} leaves from {nxt['origin']}"
            )
        arrives = datetime.fromisoformat(f"{prev_day}T{prev['arrival_time']}:00")
        if flight_departure(nxt, nxt_day) <= arrives:
            raise ToolError(
                f"{nxt['flight_number']} on {nxt_day} leaves before {prev['flight_number']} on {prev_day} arrives"
            )
    return segments


def check_itinerary(
    segments: list[tuple[dict[str, Any], str]], origin: str, destination: str, trip_type: str
) -> None:
    stops = [segments[0][0]["origin"]] + [f["destination"] for f, _ in segments]
    if stops[0] != origin:
        raise ToolError(f"the first flight must leave from {origin}, found {stops[0]}")
    if trip_type == "one_way" and (stops[-1] != destination or destination in stops[1:-1]):
        raise ToolError(f"a one-way trip must end at {destination}; the flights go {' -> '.join(stops)}")
    if trip_type == "round_trip" and (stops[-1] != origin or destination not in stops[1:-1]):
        raise ToolError(
            f"a round trip must go to {destination} and back to {origin}; the flights go {' -> '.join(stops)}"
        )


def check_seats(db: Store, segments: list[tuple[dict[str, Any], str]], cabin: str, count: int) -> None:
    for flight, day in segments:
        info = flight_day(db, flight["flight_number"], day)
        if info["status"] != BOOKABLE:
            raise ToolError(
                f"flight {flight['flight_number']} on {day} is {info['status']} and cannot be booked"
            )
        if info["available_seats"][cabin] < count:
            raise ToolError(
                f"flight {flight['flight_number']} on {day} has {info['available_seats'][cabin]} {cabin} seats, "
                f"{count} needed"
            )


def adjust_seats(db: Store, flight_number: str, day: str, cabin: str, delta: int) -> None:
    db.edit("flight_dates", flight_date_key(flight_number, day))["available_seats"][cabin] += delta


def is_flown(db: Store, segment: dict[str, Any]) -> bool:
    return flight_day(db, segment["flight_number"], segment["date"])["status"] in FLOWN


def new_id(db: Store, table: str, prefix: str, alphabet: str, length: int, salt: str) -> str:
    """A fresh id derived from the state, so replaying the same calls gives the same ids."""
    counter = db.count(table)
    while True:
        digest = hashlib.sha256(f"{salt}|{counter}".encode()).digest()
        candidate = prefix + "".join(alphabet[b % len(alphabet)] for b in digest[:length])
        if not db.has(table, candidate):
            return candidate
        counter += 1


def clean_passengers(values: list[PassengerInput]) -> list[dict[str, str]]:
    people = []
    for p in values:
        if not p.first_name.strip() or not p.last_name.strip():
            raise ToolError("every passenger needs a first_name and a last_name")
        people.append(
            {
                "first_name": p.first_name.strip(),
                "last_name": p.last_name.strip(),
                "date_of_birth": parse_date(p.date_of_birth, "date_of_birth"),
            }
        )
    return people


def reprice(
    db: Store, record: dict[str, Any], segments: list[dict[str, Any]], cabin: str, payment_id: str
) -> float:
    """Charges (or refunds) the fare difference for ``segments`` in ``cabin``; returns the difference."""
    count = len(record["passengers"])
    difference = money(
        (sum(s["price"] for s in segments) - sum(s["price"] for s in record["flights"])) * count
    )
    user = get_user(db, record["user_id"])
    check_can_pay(user, payment_id, difference)
    if user["payment_methods"][payment_id]["source"] == "certificate" and difference < 0:
        raise ToolError(
            "a refund of a fare difference cannot go to a travel certificate; use a credit card or gift card"
        )
    for old in record["flights"]:
        adjust_seats(db, old["flight_number"], old["date"], record["cabin"], count)
    for new in segments:
        adjust_seats(db, new["flight_number"], new["date"], cabin, -count)
    if abs(difference) > 0.005:
        move_money(db, record["user_id"], payment_id, difference)
    stored = db.edit("reservations", record["reservation_id"])
    stored["cabin"], stored["flights"] = cabin, segments
    if abs(difference) > 0.005:
        stored["payment_history"].append({"payment_id": payment_id, "amount": difference})
    return difference
