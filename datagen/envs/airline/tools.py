"""Airline tools. Each validates everything it needs before changing anything.

The tools enforce what the booking system itself cannot do (unknown ids, sold-out seats, flown
segments, payment balances, itineraries that do not connect). What the *agent* must decide by
policy (eligibility for a refund, basic economy restrictions, compensation limits, ...) is left to
the policy checks in ``checks.py``, so an agent that breaks a rule is caught rather than silently
stopped.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from datagen.envs.airline.booking import (
    AirportInfo,
    CancellationResult,
    CertificateIssued,
    Connection,
    FlightOption,
    FlightRef,
    PassengerInput,
    PaymentSplit,
    ReservationSummary,
    Transfer,
    UserDetails,
    UserIdentity,
    active_reservation,
    adjust_seats,
    bookable_options,
    check_can_pay,
    check_itinerary,
    check_seats,
    clean_passengers,
    flight_day,
    flight_option,
    get_flight,
    get_reservation,
    get_user,
    is_flown,
    money,
    move_money,
    new_id,
    parse_date,
    reprice,
    segments_in_order,
)
from datagen.envs.airline.database import (
    CURRENT_TIME,
    EXTRA_BAG_FEE,
    INSURANCE_PER_PASSENGER,
    MIN_LAYOVER_MINUTES,
    Cabin,
    Reservation,
)
from datagen.envs.store import Store
from datagen.envs.tools import Money, ToolError, tool


# -- identity ----------------------------------------------------------------------------------
@tool("read")
def verify_user(db: Store, user_id: str, date_of_birth: str) -> UserIdentity:
    """Authenticate a user by user id and date of birth.

    Args:
        user_id: The user's id, such as "maria_lopez_1234".
        date_of_birth: The date of birth the user states, as YYYY-MM-DD.
    """
    user = get_user(db, user_id)
    if user["date_of_birth"] != parse_date(date_of_birth, "date_of_birth"):
        raise ToolError(
            f"the date of birth does not match the records for {user_id}; the user is not verified"
        )
    return {
        "user_id": user_id,
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "membership": user["membership"],
    }


@tool("read")
def find_user_by_email(db: Store, email: str, last_name: str) -> UserIdentity:
    """Authenticate a user by email address and last name, and return their user id.

    Args:
        email: The email address on the account.
        last_name: The user's last name.
    """
    wanted = email.strip().lower()
    for user in db.scan("users", lambda r: r["email"] == wanted):
        if user["last_name"].lower() == last_name.strip().lower():
            return {
                "user_id": user["user_id"],
                "first_name": user["first_name"],
                "last_name": user["last_name"],
                "membership": user["membership"],
            }
    raise ToolError("no user has that email address and last name; the user is not verified")


# -- read --------------------------------------------------------------------------------------
@tool("read")
def get_user_details(db: Store, user_id: str) -> UserDetails:
    """Get a user's profile: contact details, membership tier, saved payment methods and passengers.

    Args:
        user_id: The user's id.
    """
    user = get_user(db, user_id)
    return {
        "user_id": user_id,
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "email": user["email"],
        "phone": user["phone"],
        "date_of_birth": user["date_of_birth"],
        "membership": user["membership"],
        "payment_methods": list(user["payment_methods"].values()),
        "saved_passengers": user["saved_passengers"],
    }


@tool("read")
def list_user_reservations(db: Store, user_id: str) -> list[ReservationSummary]:
    """List a user's reservations (active and cancelled), oldest booking first.

    Args:
        user_id: The user's id.
    """
    get_user(db, user_id)
    rows = sorted(
        db.find("reservations", user_id=user_id), key=lambda r: (r["created_at"], r["reservation_id"])
    )
    return [
        {
            "reservation_id": r["reservation_id"],
            "origin": r["origin"],
            "destination": r["destination"],
            "trip_type": r["trip_type"],
            "cabin": r["cabin"],
            "first_flight_date": r["flights"][0]["date"],
            "status": r["status"],
        }
        for r in rows
    ]


@tool("read")
def get_reservation_details(db: Store, reservation_id: str) -> Reservation:
    """Get everything about a reservation: flights, passengers, cabin, bags, insurance, payments.

    Args:
        reservation_id: The 6-character reservation id.
    """
    return get_reservation(db, reservation_id)  # type: ignore[return-value]


@tool("read")
def list_airports(db: Store) -> list[AirportInfo]:
    """List the airports the airline serves, with their three-letter codes and cities."""
    return [{"code": a["code"], "city": a["city"]} for a in db.scan("airports", lambda r: True)]


@tool("read")
def get_flight_status(db: Store, flight_number: str, date: str) -> FlightOption:
    """Get a flight's status, seats left and fares on one date.

    Args:
        flight_number: The flight number, such as "BW0123".
        date: The date, as YYYY-MM-DD.
    """
    day = parse_date(date, "date")
    return flight_option(get_flight(db, flight_number), flight_day(db, flight_number, day))


@tool("read")
def search_direct_flights(db: Store, origin: str, destination: str, date: str) -> list[FlightOption]:
    """Search bookable nonstop flights between two airports on a date.

    Args:
        origin: Three-letter code of the departure airport, such as "JFK".
        destination: Three-letter code of the arrival airport, such as "LAX".
        date: The travel date, as YYYY-MM-DD.
    """
    day = parse_date(date, "date")
    found = bookable_options(db, day, lambda f: f["origin"] == origin and f["destination"] == destination)
    return sorted(found, key=lambda f: (f["departure_time"], f["flight_number"]))


@tool("read")
def search_onestop_flights(db: Store, origin: str, destination: str, date: str) -> list[Connection]:
    """Search bookable one-stop connections (same day, at least 60 minutes to connect) between two airports.

    Args:
        origin: Three-letter code of the departure airport.
        destination: Three-letter code of the final arrival airport.
        date: The travel date, as YYYY-MM-DD.
    """
    day = parse_date(date, "date")
    firsts = bookable_options(db, day, lambda f: f["origin"] == origin and f["destination"] != destination)
    seconds = bookable_options(db, day, lambda f: f["destination"] == destination and f["origin"] != origin)
    options: list[Connection] = []
    for a in firsts:
        for b in seconds:
            hours_a, mins_a = map(int, a["arrival_time"].split(":"))
            hours_b, mins_b = map(int, b["departure_time"].split(":"))
            layover = (hours_b * 60 + mins_b) - (hours_a * 60 + mins_a)
            if b["origin"] == a["destination"] and layover >= MIN_LAYOVER_MINUTES:
                options.append({"flights": [a, b], "layover_minutes": layover})
    options.sort(key=lambda c: (c["flights"][0]["departure_time"], c["flights"][1]["departure_time"]))
    return options


# -- write -------------------------------------------------------------------------------------
@tool("write")
def book_reservation(
    db: Store,
    user_id: str,
    origin: str,
    destination: str,
    trip_type: Literal["one_way", "round_trip"],
    cabin: Cabin,
    flights: list[FlightRef],
    passengers: list[PassengerInput],
    payment_methods: list[PaymentSplit],
    total_baggages: int,
    nonfree_baggages: int,
    insurance: bool,
) -> Reservation:
    """Book a new reservation and charge it to the user's saved payment methods.

    Args:
        user_id: The user who books and pays.
        origin: Airport code where the trip starts.
        destination: Airport code of the trip's destination (for a round trip, the turnaround point).
        trip_type: "one_way" or "round_trip".
        cabin: "basic_economy", "economy" or "business"; the same for every flight.
        flights: Every flight in travel order, each as {"flight_number", "date"}.
        passengers: Each traveller as {"first_name", "last_name", "date_of_birth"}.
        payment_methods: How the total is split, each as {"payment_id", "amount"}; amounts must add up to the total.
        total_baggages: Checked bags for the whole reservation.
        nonfree_baggages: How many of those bags are beyond the free allowance and paid for.
        insurance: Whether to buy travel insurance for every passenger.
    """
    user = get_user(db, user_id)
    for code in (origin, destination):
        if not db.has("airports", code):
            raise ToolError(f"unknown airport {code!r}; use list_airports for the codes")
    people = clean_passengers(passengers)
    if not 1 <= len(people) <= 9:
        raise ToolError(f"a reservation holds 1 to 9 passengers, got {len(people)}")
    segments = segments_in_order(db, flights)
    check_itinerary(segments, origin, destination, trip_type)
    check_seats(db, segments, cabin, len(people))
    if not 0 <= nonfree_baggages <= total_baggages:
        raise ToolError(
            f"need 0 <= nonfree_baggages <= total_baggages, got {nonfree_baggages} and {total_baggages}"
        )
    reserved = [
        {
            "flight_number": f["flight_number"],
            "date": day,
            "origin": f["origin"],
            "destination": f["destination"],
            "price": flight_day(db, f["flight_number"], day)["prices"][cabin],
        }
        for f, day in segments
    ]
    total = money(
        sum(s["price"] for s in reserved) * len(people)
        + nonfree_baggages * EXTRA_BAG_FEE
        + (INSURANCE_PER_PASSENGER * len(people) if insurance else 0)
    )
    ids = [p.payment_id for p in payment_methods]
    if not payment_methods or len(set(ids)) != len(ids):
        raise ToolError("payment_methods must list each payment method once, with the amount it pays")
    for split in payment_methods:
        if split.amount <= 0:
            raise ToolError(f"payment amounts must be positive, got {split.amount} for {split.payment_id}")
        check_can_pay(user, split.payment_id, split.amount)
    paid = money(sum(p.amount for p in payment_methods))
    if abs(paid - total) > 0.005:
        raise ToolError(f"the payments add up to {paid} but the total price is {total}")
    for split in payment_methods:
        move_money(db, user_id, split.payment_id, split.amount)
    for flight, day in segments:
        adjust_seats(db, flight["flight_number"], day, cabin, -len(people))
    reservation_id = new_id(
        db,
        "reservations",
        "",
        "ABCDEFGHJKLMNPQRSTUVWXYZ23456789",
        6,
        f"{user_id}|{[(f['flight_number'], d) for f, d in segments]}",
    )
    record = {
        "reservation_id": reservation_id,
        "user_id": user_id,
        "origin": origin,
        "destination": destination,
        "trip_type": trip_type,
        "cabin": cabin,
        "flights": reserved,
        "passengers": people,
        "payment_history": [{"payment_id": p.payment_id, "amount": money(p.amount)} for p in payment_methods],
        "created_at": CURRENT_TIME,
        "total_baggages": total_baggages,
        "nonfree_baggages": nonfree_baggages,
        "insurance": insurance,
        "status": "active",
    }
    db.insert("reservations", reservation_id, record)
    return record  # type: ignore[return-value]


@tool("write")
def cancel_reservation(
    db: Store,
    reservation_id: str,
    reason: Literal["change_of_plans", "airline_cancelled_flight", "health", "weather", "other"],
) -> CancellationResult:
    """Cancel a whole reservation and refund what was paid to the original payment methods.

    Args:
        reservation_id: The reservation to cancel.
        reason: Why the user cancels: "change_of_plans", "airline_cancelled_flight", "health", "weather" or "other".
    """
    record = active_reservation(db, reservation_id)
    flown = [s["flight_number"] for s in record["flights"] if is_flown(db, s)]
    if flown:
        raise ToolError(
            f"reservation {reservation_id} has flights already flown ({', '.join(flown)}); it cannot be cancelled"
        )
    net: dict[str, float] = {}
    for payment in record["payment_history"]:
        net[payment["payment_id"]] = net.get(payment["payment_id"], 0.0) + payment["amount"]
    refunds = [{"payment_id": pid, "amount": money(-amount)} for pid, amount in net.items() if amount > 0.005]
    for refund in refunds:
        move_money(db, record["user_id"], refund["payment_id"], refund["amount"])
    for segment in record["flights"]:
        adjust_seats(
            db, segment["flight_number"], segment["date"], record["cabin"], len(record["passengers"])
        )
    stored = db.edit("reservations", reservation_id)
    stored["status"] = "cancelled"
    stored["payment_history"].extend(refunds)
    return {
        "reservation_id": reservation_id,
        "status": "cancelled",
        "refunds": refunds,
        "refund_total": money(-sum(r["amount"] for r in refunds)),
    }


@tool("write")
def update_reservation_cabin(db: Store, reservation_id: str, cabin: Cabin, payment_id: str) -> Reservation:
    """Move every flight of a reservation to another cabin, charging or refunding the fare difference.

    Args:
        reservation_id: The reservation to change.
        cabin: The new cabin for all flights: "basic_economy", "economy" or "business".
        payment_id: The saved payment method that pays the difference or receives the refund.
    """
    record = active_reservation(db, reservation_id)
    if cabin == record["cabin"]:
        raise ToolError(f"reservation {reservation_id} is already in {cabin}")
    flown = [s["flight_number"] for s in record["flights"] if is_flown(db, s)]
    if flown:
        raise ToolError(f"flights already flown ({', '.join(flown)}); the cabin can no longer be changed")
    segments = []
    for s in record["flights"]:
        info = flight_day(db, s["flight_number"], s["date"])
        if info["available_seats"][cabin] < len(record["passengers"]):
            raise ToolError(f"flight {s['flight_number']} on {s['date']} has too few {cabin} seats left")
        segments.append({**s, "price": info["prices"][cabin]})
    reprice(db, record, segments, cabin, payment_id)
    return get_reservation(db, reservation_id)  # type: ignore[return-value]


@tool("write")
def update_reservation_flights(
    db: Store, reservation_id: str, cabin: Cabin, flights: list[FlightRef], payment_id: str
) -> Reservation:
    """Replace a reservation's flights (same origin, destination and trip type), charging or refunding the difference.

    Args:
        reservation_id: The reservation to change.
        cabin: The cabin for the new itinerary (normally the current one).
        flights: The complete new itinerary in travel order, each as {"flight_number", "date"}; list unchanged flights too.
        payment_id: The saved payment method that pays the difference or receives the refund.
    """
    record = active_reservation(db, reservation_id)
    new = segments_in_order(db, flights)
    check_itinerary(new, record["origin"], record["destination"], record["trip_type"])
    kept = {(s["flight_number"], s["date"]): s for s in record["flights"]}
    wanted = {(f["flight_number"], day) for f, day in new}
    for s in record["flights"]:
        if (s["flight_number"], s["date"]) not in wanted and is_flown(db, s):
            raise ToolError(
                f"flight {s['flight_number']} on {s['date']} has already flown and must stay in the itinerary"
            )
    segments = []
    for f, day in new:
        old = kept.get((f["flight_number"], day))
        if old is not None and cabin == record["cabin"]:
            segments.append(old)  # an unchanged flight keeps the fare it was bought at
            continue
        check_seats(db, [(f, day)], cabin, len(record["passengers"]))
        segments.append(
            {
                "flight_number": f["flight_number"],
                "date": day,
                "origin": f["origin"],
                "destination": f["destination"],
                "price": flight_day(db, f["flight_number"], day)["prices"][cabin],
            }
        )
    if segments == record["flights"]:
        raise ToolError("the new itinerary is the same as the current one")
    reprice(db, record, segments, cabin, payment_id)
    return get_reservation(db, reservation_id)  # type: ignore[return-value]


@tool("write")
def update_reservation_passengers(
    db: Store, reservation_id: str, passengers: list[PassengerInput]
) -> Reservation:
    """Replace the passenger details of a reservation; the number of passengers cannot change.

    Args:
        reservation_id: The reservation to change.
        passengers: Every passenger, in order, as {"first_name", "last_name", "date_of_birth"}.
    """
    record = active_reservation(db, reservation_id)
    people = clean_passengers(passengers)
    if len(people) != len(record["passengers"]):
        raise ToolError(
            f"reservation {reservation_id} has {len(record['passengers'])} passengers; the count cannot change "
            f"(got {len(people)})"
        )
    if people == record["passengers"]:
        raise ToolError("the passenger details are the same as the current ones")
    db.edit("reservations", reservation_id)["passengers"] = people
    return get_reservation(db, reservation_id)  # type: ignore[return-value]


@tool("write")
def update_reservation_baggages(
    db: Store, reservation_id: str, total_baggages: int, nonfree_baggages: int, payment_id: str | None = None
) -> Reservation:
    """Add checked bags to a reservation; each newly paid bag is charged the extra-bag fee.

    Args:
        reservation_id: The reservation to change.
        total_baggages: The new total number of checked bags (cannot go down).
        nonfree_baggages: The new number of bags beyond the free allowance (cannot go down).
        payment_id: The saved payment method for the fee; needed only if new paid bags are added.
    """
    record = active_reservation(db, reservation_id)
    if total_baggages < record["total_baggages"] or nonfree_baggages < record["nonfree_baggages"]:
        raise ToolError(
            f"bags can only be added: the reservation has {record['total_baggages']} bags "
            f"({record['nonfree_baggages']} paid), got {total_baggages} ({nonfree_baggages} paid)"
        )
    if nonfree_baggages > total_baggages:
        raise ToolError("nonfree_baggages cannot exceed total_baggages")
    if (total_baggages, nonfree_baggages) == (record["total_baggages"], record["nonfree_baggages"]):
        raise ToolError("the bag counts are the same as the current ones")
    fee = money((nonfree_baggages - record["nonfree_baggages"]) * EXTRA_BAG_FEE)
    if fee > 0:
        if payment_id is None:
            raise ToolError(f"adding paid bags costs {fee}; give a payment_id")
        check_can_pay(get_user(db, record["user_id"]), payment_id, fee)
        move_money(db, record["user_id"], payment_id, fee)
    stored = db.edit("reservations", reservation_id)
    stored["total_baggages"], stored["nonfree_baggages"] = total_baggages, nonfree_baggages
    if fee > 0:
        stored["payment_history"].append({"payment_id": payment_id, "amount": fee})
    return get_reservation(db, reservation_id)  # type: ignore[return-value]


@tool("write")
def add_travel_insurance(db: Store, reservation_id: str, payment_id: str) -> Reservation:
    """Add travel insurance for every passenger of a reservation, charged per passenger.

    Args:
        reservation_id: The reservation to insure.
        payment_id: The saved payment method that pays for the insurance.
    """
    record = active_reservation(db, reservation_id)
    if record["insurance"]:
        raise ToolError(f"reservation {reservation_id} already has travel insurance")
    fee = money(INSURANCE_PER_PASSENGER * len(record["passengers"]))
    check_can_pay(get_user(db, record["user_id"]), payment_id, fee)
    move_money(db, record["user_id"], payment_id, fee)
    stored = db.edit("reservations", reservation_id)
    stored["insurance"] = True
    stored["payment_history"].append({"payment_id": payment_id, "amount": fee})
    return get_reservation(db, reservation_id)  # type: ignore[return-value]


@tool("write")
def send_certificate(
    db: Store,
    user_id: str,
    reservation_id: str,
    amount: Money,
    reason: Literal["cancelled_flight", "delayed_flight"],
) -> CertificateIssued:
    """Issue a goodwill travel certificate to a user as compensation for a disrupted reservation.

    Args:
        user_id: The user who receives the certificate.
        reservation_id: The user's reservation whose flight was cancelled or delayed.
        amount: The certificate's value in dollars.
        reason: "cancelled_flight" or "delayed_flight".
    """
    get_user(db, user_id)
    record = get_reservation(db, reservation_id)
    if record["user_id"] != user_id:
        raise ToolError(f"reservation {reservation_id} does not belong to {user_id}")
    if not 0 < amount <= 1000:
        raise ToolError(f"a certificate is worth more than 0 and at most 1000 dollars, got {amount}")
    user = db.edit("users", user_id)
    salt = f"{user_id}|{reservation_id}|{len(user['payment_methods'])}"
    payment_id = "certificate_" + str(int(hashlib.sha256(salt.encode()).hexdigest(), 16) % 10**7).zfill(7)
    while payment_id in user["payment_methods"]:  # practically never; keeps ids unique per user
        payment_id += "0"
    user["payment_methods"][payment_id] = {
        "source": "certificate",
        "payment_id": payment_id,
        "amount": money(amount),
        "issued_for": reservation_id,
    }
    return {
        "user_id": user_id,
        "reservation_id": reservation_id,
        "payment_id": payment_id,
        "amount": money(amount),
    }


@tool("read")
def transfer_to_human_agent(db: Store, summary: str) -> Transfer:
    """Hand the conversation to a human agent; use only when the request is outside what you may do.

    Args:
        summary: A short summary of the user's request and why it needs a human.
    """
    if not summary.strip():
        raise ToolError("give a short summary of the issue for the human agent")
    return {"transferred": True, "summary": summary.strip()}
