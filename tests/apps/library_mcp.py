"""A small library desk as an MCP server, written with fastmcp and nothing of apigen-mt: members look
up books, borrow and return them. It stands for a team's own tool server: its whole state is one JSON
file (``--db``), read and written on every call, so restoring a copy of the file restores the state,
and the file's content is also a resource (``library://state``). The policy is a prompt.

    python tests/apps/library_mcp.py --db state.json          # stdio
    python tests/apps/library_mcp.py --db state.json --init   # write the initial state and exit

``slow`` and ``crash`` exist to test what a client does with a server that stalls or dies.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ToolError

mcp = FastMCP("library")
DB = Path("library.json")
MAX_LOANS = 2

POLICY = """# Library desk policy

You help library members with their loans.

**R1.** Identify the member by e-mail with `find_member` before looking at or changing their loans.
**R2.** A member may hold at most two loans at a time; a third borrow is refused.
**R3.** Confirm the book (title and id) with the member before you borrow or return it.
"""


def initial_state() -> dict[str, Any]:
    members = {
        "M1": {"member_id": "M1", "name": "Ada Park", "email": "ada@example.org"},
        "M2": {"member_id": "M2", "name": "Ben Osei", "email": "ben@example.org"},
        "M3": {"member_id": "M3", "name": "Chloe Ruiz", "email": "chloe@example.org"},
    }
    titles = ["Dune", "Emma", "Ulysses", "Beloved", "Kindred", "Solaris"]
    books = {f"B{i}": {"book_id": f"B{i}", "title": t, "available": i != 3} for i, t in enumerate(titles, 1)}
    loans = {"L1": {"loan_id": "L1", "book_id": "B3", "member_id": "M2"}}
    counters = {"loans": {"name": "loans", "next": 2}}
    return {"members": members, "books": books, "loans": loans, "counters": counters}


def load() -> dict[str, Any]:
    return json.loads(DB.read_text())


def save(state: dict[str, Any]) -> None:
    DB.write_text(json.dumps(state, indent=1, sort_keys=True))


@mcp.tool(annotations={"readOnlyHint": True})
def find_member(email: str) -> dict[str, Any]:
    """Find a member by e-mail address.

    Args:
        email: the member's e-mail address
    """
    found = [m for m in load()["members"].values() if m["email"] == email.strip().lower()]
    if not found:
        raise ToolError(f"no member has the e-mail {email!r}")
    return found[0]


@mcp.tool(annotations={"readOnlyHint": True})
def list_books(available_only: bool = False) -> list[dict[str, Any]]:
    """List the library's books.

    Args:
        available_only: only the books on the shelf
    """
    return [b for b in load()["books"].values() if b["available"] or not available_only]


@mcp.tool(annotations={"readOnlyHint": True})
def member_loans(member_id: str) -> list[dict[str, Any]]:
    """The loans a member holds.

    Args:
        member_id: the member's id (M...)
    """
    state = load()
    if member_id not in state["members"]:
        raise ToolError(f"no member {member_id!r}")
    return [loan for loan in state["loans"].values() if loan["member_id"] == member_id]


@mcp.tool(annotations={"readOnlyHint": False})
def borrow_book(member_id: str, book_id: str) -> dict[str, Any]:
    """Lend a book on the shelf to a member.

    Args:
        member_id: the member's id (M...)
        book_id: the book's id (B...)
    """
    state = load()
    if member_id not in state["members"]:
        raise ToolError(f"no member {member_id!r}")
    book = state["books"].get(book_id)
    if book is None:
        raise ToolError(f"no book {book_id!r}")
    if not book["available"]:
        raise ToolError(f"{book['title']} ({book_id}) is on loan")
    if sum(loan["member_id"] == member_id for loan in state["loans"].values()) >= MAX_LOANS:
        raise ToolError(f"member {member_id} already holds {MAX_LOANS} loans")
    counter = state["counters"]["loans"]
    loan_id, counter["next"] = f"L{counter['next']}", counter["next"] + 1
    state["loans"][loan_id] = {"loan_id": loan_id, "book_id": book_id, "member_id": member_id}
    book["available"] = False
    save(state)
    return state["loans"][loan_id]


@mcp.tool(annotations={"readOnlyHint": False})
def return_book(loan_id: str) -> dict[str, Any]:
    """Take a borrowed book back.

    Args:
        loan_id: the loan's id (L...)
    """
    state = load()
    loan = state["loans"].pop(loan_id, None)
    if loan is None:
        raise ToolError(f"no loan {loan_id!r}")
    state["books"][loan["book_id"]]["available"] = True
    save(state)
    return {"returned": loan["book_id"], "loan_id": loan_id}


@mcp.tool(annotations={"readOnlyHint": True})
def query_table(table: str) -> list[dict[str, Any]]:
    """All rows of one table, as a database server's query tool answers.

    Args:
        table: members, books, loans or counters
    """
    state = load()
    if table not in state:
        raise ToolError(f"no table {table!r}; tables are {sorted(state)}")
    return list(state[table].values())


@mcp.tool(annotations={"readOnlyHint": True})
def slow(seconds: float) -> str:
    """Wait before answering (tests a client's timeout).

    Args:
        seconds: how long to wait
    """
    time.sleep(seconds)
    return "done"


@mcp.tool(annotations={"readOnlyHint": True})
def crash() -> str:
    """End the server process at once (tests a client whose server dies)."""
    os._exit(3)


@mcp.resource("library://state", mime_type="application/json")
def state_resource() -> str:
    """The whole state: {members, books, loans}, each keyed by id."""
    return DB.read_text()


@mcp.prompt(name="policy")
def policy() -> str:
    """The policy the desk agent follows."""
    return POLICY


def main() -> None:
    global DB
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--init", action="store_true", help="write the initial state to --db and exit")
    args = parser.parse_args()
    DB = args.db
    if args.init:
        save(initial_state())
        return
    mcp.run(show_banner=False, log_level="warning")


if __name__ == "__main__":
    main()
