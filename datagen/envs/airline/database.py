"""The airline database: record models and a seeded generator.

Every date and time in this domain is in one clock (US Eastern), and the world stands still at
``CURRENT_TIME``: flight statuses, the 24-hour windows of the policy and new bookings are all
measured against it, so a replay gives the same state every time.

Seed disjointness: the generator draws last names, reservation ids and flight numbers only from
the half of their space that "belongs" to the seed's parity (``owned_by_seed``). User ids and emails
embed the last name, so the training seed (0) and the evaluation seed (1) share no user, passenger
name, email, reservation or flight number; only the airports are common.
"""

from __future__ import annotations

import math
import random
import zlib
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from faker import Faker
from pydantic import BaseModel, ConfigDict, Field

from datagen.envs.references import References

CURRENT_TIME = "2026-05-15T15:00:00"
FIRST_DATE = date(2026, 5, 1)
NUM_DATES = 30
CABINS = ("basic_economy", "economy", "business")
Cabin = Literal["basic_economy", "economy", "business"]
Membership = Literal["regular", "silver", "gold"]
FlightStatus = Literal["available", "delayed", "cancelled", "flying", "landed"]

NUM_USERS = 320
NUM_RESERVATIONS = 1100
MIN_LAYOVER_MINUTES = 60

# (code, city, latitude, longitude)
AIRPORTS: tuple[tuple[str, str, float, float], ...] = (
    ("ATL", "Atlanta", 33.64, -84.43),
    ("BOS", "Boston", 42.36, -71.01),
    ("ORD", "Chicago", 41.97, -87.91),
    ("DFW", "Dallas-Fort Worth", 32.90, -97.04),
    ("DEN", "Denver", 39.86, -104.67),
    ("JFK", "New York", 40.64, -73.78),
    ("LAX", "Los Angeles", 33.94, -118.41),
    ("LAS", "Las Vegas", 36.08, -115.15),
    ("MIA", "Miami", 25.79, -80.29),
    ("MSP", "Minneapolis", 44.88, -93.22),
    ("PHX", "Phoenix", 33.43, -112.01),
    ("SEA", "Seattle", 47.45, -122.31),
    ("SFO", "San Francisco", 37.62, -122.38),
    ("IAH", "Houston", 29.98, -95.34),
    ("DTW", "Detroit", 42.21, -83.35),
    ("CLT", "Charlotte", 35.21, -80.94),
    ("PHL", "Philadelphia", 39.87, -75.24),
    ("EWR", "Newark", 40.69, -74.17),
    ("MCO", "Orlando", 28.43, -81.31),
    ("SLC", "Salt Lake City", 40.79, -111.98),
)


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreditCard(_Record):
    source: Literal["credit_card"]
    payment_id: str
    brand: Literal["visa", "mastercard", "amex"]
    last_four: str


class GiftCard(_Record):
    source: Literal["gift_card"]
    payment_id: str
    balance: float


class Certificate(_Record):
    source: Literal["certificate"]
    payment_id: str
    amount: float
    issued_for: str | None = None  # the reservation a goodwill certificate compensated, if any


PaymentMethod = Annotated[CreditCard | GiftCard | Certificate, Field(discriminator="source")]


class Passenger(_Record):
    first_name: str
    last_name: str
    date_of_birth: str


class User(_Record):
    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    date_of_birth: str
    membership: Membership
    payment_methods: dict[str, PaymentMethod]
    saved_passengers: list[Passenger]


class Airport(_Record):
    code: str
    city: str


class CabinNumbers(_Record):
    basic_economy: float
    economy: float
    business: float


class Flight(_Record):
    """A scheduled route, flown at the same times every day."""

    flight_number: str
    origin: str
    destination: str
    departure_time: str  # HH:MM
    arrival_time: str  # HH:MM on the same day


class FlightDate(_Record):
    """One flight on one date; keyed ``flight_date_key(flight_number, date)``.

    Kept apart from ``Flight`` so that selling a seat copies and rehashes one small record rather
    than a month of schedule.
    """

    flight_number: str
    date: str
    status: FlightStatus
    available_seats: CabinNumbers
    prices: CabinNumbers


class ReservedFlight(_Record):
    flight_number: str
    date: str
    origin: str
    destination: str
    price: float  # per passenger, in the reservation's cabin, when it was booked


class Payment(_Record):
    payment_id: str
    amount: float  # positive: charged; negative: refunded


class Reservation(_Record):
    reservation_id: str
    user_id: str
    origin: str
    destination: str
    trip_type: Literal["one_way", "round_trip"]
    cabin: Cabin
    flights: list[ReservedFlight]
    passengers: list[Passenger]
    payment_history: list[Payment]
    created_at: str
    total_baggages: int
    nonfree_baggages: int
    insurance: bool
    status: Literal["active", "cancelled"]


class AirlineDB(_Record):
    users: dict[str, User]
    airports: dict[str, Airport]
    flights: dict[str, Flight]
    flight_dates: dict[str, FlightDate]
    reservations: dict[str, Reservation]


# Which table each id parameter of the tools points into (Phase 1 fills arguments from the data).
REFERENCES = References(
    user_table="users",
    tables={"users": "user_id", "flights": "flight_number", "reservations": "reservation_id"},
    maps={"payment_methods": "payment_id"},
)


# -- rules shared by the generator, the tools and the checks ------------------------------------
FREE_BAGS_PER_PASSENGER: dict[str, dict[str, int]] = {
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 4},
}
EXTRA_BAG_FEE = 40
INSURANCE_PER_PASSENGER = 25


def free_bags(membership: str, cabin: str, passengers: int) -> int:
    return FREE_BAGS_PER_PASSENGER[membership][cabin] * passengers


def owned_by_seed(text: str, seed: int) -> bool:
    """Whether ``text`` lies in the half of its space that seeds of this parity draw from."""
    return zlib.crc32(text.encode()) % 2 == seed % 2


def flight_date_key(flight_number: str, day: str) -> str:
    return f"{flight_number}@{day}"


def all_dates() -> list[str]:
    return [(FIRST_DATE + timedelta(days=i)).isoformat() for i in range(NUM_DATES)]


# -- generator ---------------------------------------------------------------------------------
def _distance_km(a: tuple[str, str, float, float], b: tuple[str, str, float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[2], a[3], b[2], b[3]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371 * math.asin(math.sqrt(h))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _minutes(hhmm: str) -> int:
    hours, mins = hhmm.split(":")
    return int(hours) * 60 + int(mins)


def flight_departure(flight: dict[str, Any], day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{flight['departure_time']}:00")


def _day_status(rng: random.Random, day: str, dep: int, arr: int) -> str:
    now = datetime.fromisoformat(CURRENT_TIME)
    departs = datetime.fromisoformat(f"{day}T{_hhmm(dep)}:00")
    arrives = datetime.fromisoformat(f"{day}T{_hhmm(arr)}:00")
    roll = rng.random()
    if arrives <= now:
        return "cancelled" if roll < 0.03 else "landed"
    if departs <= now:
        return "flying"
    if departs - now <= timedelta(days=2):
        return "cancelled" if roll < 0.06 else "delayed" if roll < 0.16 else "available"
    return "available"


def _build_flights(
    rng: random.Random, seed: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    numbers = (
        f"BW{n:04d}" for n in range(100 + 37 * (seed // 2 % 50), 10000) if owned_by_seed(f"BW{n:04d}", seed)
    )
    flights: dict[str, dict[str, Any]] = {}
    flight_dates: dict[str, dict[str, Any]] = {}
    for a in AIRPORTS:
        for b in AIRPORTS:
            if a is b or rng.random() > 0.45:
                continue
            km = _distance_km(a, b)
            duration = int(45 + km / 13.5)  # minutes: taxi + climb, then ~810 km/h
            base_fare = 55 + 0.09 * km
            for _ in range(rng.choice((1, 1, 2, 2, 3))):
                dep = rng.randrange(5 * 60, 24 * 60 - duration - 15, 5)
                arr = dep + duration - duration % 5
                number = next(numbers)
                for day in all_dates():
                    factor = rng.uniform(0.8, 1.25)
                    economy = round(base_fare * factor)
                    flight_dates[flight_date_key(number, day)] = {
                        "flight_number": number,
                        "date": day,
                        "status": _day_status(rng, day, dep, arr),
                        "available_seats": {
                            "basic_economy": rng.randint(0, 20),
                            "economy": rng.randint(0, 30),
                            "business": rng.randint(0, 12),
                        },
                        "prices": {
                            "basic_economy": round(economy * rng.uniform(0.6, 0.75)),
                            "economy": economy,
                            "business": round(economy * rng.uniform(2.2, 3.2)),
                        },
                    }
                flights[number] = {
                    "flight_number": number,
                    "origin": a[0],
                    "destination": b[0],
                    "departure_time": _hhmm(dep),
                    "arrival_time": _hhmm(arr),
                }
    return flights, flight_dates


def _draw_last_name(fake: Faker, seed: int) -> str:
    while True:
        name = fake.last_name()
        if owned_by_seed(name, seed):
            return name


def _draw_id(rng: random.Random, seed: int, alphabet: str, length: int, taken: set[str]) -> str:
    while True:
        candidate = "".join(rng.choice(alphabet) for _ in range(length))
        if candidate not in taken and owned_by_seed(candidate, seed):
            taken.add(candidate)
            return candidate


def _dob(rng: random.Random, youngest: int, oldest: int) -> str:
    born = date(2026 - rng.randint(youngest, oldest), 1, 1) + timedelta(days=rng.randrange(365))
    return born.isoformat()


def _build_users(fake: Faker, rng: random.Random, seed: int) -> dict[str, dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    pay_ids: set[str] = set()
    while len(users) < NUM_USERS:
        first, last = fake.first_name(), _draw_last_name(fake, seed)
        user_id = f"{first.lower()}_{last.lower()}_{rng.randrange(1000, 10000)}".replace("'", "").replace(
            " ", ""
        )
        if user_id in users:
            continue
        methods: dict[str, Any] = {}
        for slot in range(rng.choice((1, 1, 2, 2, 3, 4))):
            kind = (
                "credit_card"
                if slot == 0
                else rng.choices(("credit_card", "gift_card", "certificate"), weights=(3, 4, 3))[0]
            )
            pid = f"{kind}_{_draw_id(rng, seed, '0123456789', 7, pay_ids)}"
            if kind == "credit_card":
                methods[pid] = {
                    "source": kind,
                    "payment_id": pid,
                    "brand": rng.choice(("visa", "mastercard", "amex")),
                    "last_four": f"{rng.randrange(10000):04d}",
                }
            elif kind == "gift_card":
                methods[pid] = {"source": kind, "payment_id": pid, "balance": float(rng.randrange(0, 400))}
            else:
                methods[pid] = {
                    "source": kind,
                    "payment_id": pid,
                    "amount": float(rng.choice((50, 100, 150, 200, 250))),
                    "issued_for": None,
                }
        companions = [
            {
                "first_name": fake.first_name(),
                "last_name": rng.choice((last, last, _draw_last_name(fake, seed))),
                "date_of_birth": _dob(rng, 2, 80),
            }
            for _ in range(rng.choice((0, 1, 1, 2, 3)))
        ]
        users[user_id] = {
            "user_id": user_id,
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}{rng.randrange(100)}@{rng.choice(('example.com', 'example.net', 'example.org'))}".replace(
                "'", ""
            ).replace(" ", ""),
            "phone": f"+1-{rng.randrange(200, 999)}-555-{rng.randrange(10000):04d}",
            "date_of_birth": _dob(rng, 19, 85),
            "membership": rng.choices(("regular", "silver", "gold"), weights=(5, 3, 2))[0],
            "payment_methods": methods,
            "saved_passengers": companions,
        }
    return users


def _itineraries(flights: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Direct flights and same-day one-stop connections, as lists of flight numbers."""
    by_origin: dict[str, list[dict[str, Any]]] = {}
    for f in flights.values():
        by_origin.setdefault(f["origin"], []).append(f)
    routes = [[f["flight_number"]] for f in flights.values()]
    for first in flights.values():
        for second in by_origin.get(first["destination"], []):
            layover = _minutes(second["departure_time"]) - _minutes(first["arrival_time"])
            if second["destination"] != first["origin"] and layover >= MIN_LAYOVER_MINUTES:
                routes.append([first["flight_number"], second["flight_number"]])
    return routes


def _return_leg(
    routes_from: dict[tuple[str, str], list[list[str]]], origin: str, destination: str, rng: random.Random
) -> list[str] | None:
    options = routes_from.get((destination, origin))
    return rng.choice(options) if options else None


def _build_reservations(
    rng: random.Random,
    seed: int,
    users: dict[str, dict[str, Any]],
    flights: dict[str, dict[str, Any]],
    flight_dates: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    itineraries = _itineraries(flights)
    by_pair: dict[tuple[str, str], list[list[str]]] = {}
    for legs in itineraries:
        by_pair.setdefault((flights[legs[0]]["origin"], flights[legs[-1]]["destination"]), []).append(legs)
    dates = all_dates()
    now = datetime.fromisoformat(CURRENT_TIME)
    reservations: dict[str, dict[str, Any]] = {}
    taken: set[str] = set()
    user_ids = sorted(users)
    while len(reservations) < NUM_RESERVATIONS:
        user = users[rng.choice(user_ids)]
        outbound = rng.choices(itineraries, weights=[4 if len(i) == 1 else 1 for i in itineraries])[0]
        origin, destination = flights[outbound[0]]["origin"], flights[outbound[-1]]["destination"]
        out_day = rng.randrange(NUM_DATES - 3)
        segments = [(n, dates[out_day]) for n in outbound]
        trip_type = "one_way"
        back = _return_leg(by_pair, origin, destination, rng) if rng.random() < 0.45 else None
        if back is not None:
            trip_type = "round_trip"
            back_day = min(NUM_DATES - 1, out_day + rng.randint(1, 6))
            segments += [(n, dates[back_day]) for n in back]
        cabin = rng.choices(CABINS, weights=(3, 5, 2))[0]
        people = [{k: user[k] for k in ("first_name", "last_name", "date_of_birth")}]
        people += rng.sample(user["saved_passengers"], rng.randint(0, len(user["saved_passengers"])))
        first_departure = flight_departure(flights[segments[0][0]], segments[0][1])
        booked = first_departure - timedelta(days=rng.randint(1, 50), minutes=rng.randrange(1440))
        if (
            rng.random() < 0.06 and first_departure > now
        ):  # a few fresh bookings, so the 24-hour rules have cases
            booked = now - timedelta(minutes=rng.randrange(30, 1380))
        booked = min(booked, now - timedelta(minutes=15))
        reserved = [
            {
                "flight_number": n,
                "date": d,
                "origin": flights[n]["origin"],
                "destination": flights[n]["destination"],
                "price": flight_dates[flight_date_key(n, d)]["prices"][cabin],
            }
            for n, d in segments
        ]
        insurance = rng.random() < 0.35
        allowance = free_bags(user["membership"], cabin, len(people))
        total_bags = rng.randint(0, 2 * len(people))
        nonfree = max(0, total_bags - allowance)
        fare = sum(f["price"] for f in reserved) * len(people)
        total = fare + nonfree * EXTRA_BAG_FEE + (INSURANCE_PER_PASSENGER * len(people) if insurance else 0)
        cards = [m for m in user["payment_methods"].values() if m["source"] == "credit_card"]
        gift_cards = [m for m in user["payment_methods"].values() if m["source"] == "gift_card"]
        payers = gift_cards if gift_cards and rng.random() < 0.25 else cards  # every user has a credit card
        reservation_id = _draw_id(rng, seed, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 6, taken)
        status = "cancelled" if rng.random() < 0.08 else "active"
        history = [{"payment_id": rng.choice(payers)["payment_id"], "amount": float(total)}]
        if status == "cancelled":
            history.append({"payment_id": history[0]["payment_id"], "amount": -float(total)})
        reservations[reservation_id] = {
            "reservation_id": reservation_id,
            "user_id": user["user_id"],
            "origin": origin,
            "destination": destination,
            "trip_type": trip_type,
            "cabin": cabin,
            "flights": reserved,
            "passengers": people,
            "payment_history": history,
            "created_at": booked.isoformat(timespec="seconds"),
            "total_baggages": total_bags,
            "nonfree_baggages": nonfree,
            "insurance": insurance,
            "status": status,
        }
    return reservations


def build_database(seed: int) -> dict[str, Any]:
    """The whole airline database for ``seed`` as JSON-able tables (same seed, same bytes)."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    flights, flight_dates = _build_flights(rng, seed)
    users = _build_users(fake, rng, seed)
    reservations = _build_reservations(rng, seed, users, flights, flight_dates)
    airports = {code: {"code": code, "city": city} for code, city, _, _ in AIRPORTS}
    return {
        "users": users,
        "airports": airports,
        "flights": flights,
        "flight_dates": flight_dates,
        "reservations": reservations,
    }
