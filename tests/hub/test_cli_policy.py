"""`hub policy`: validate, preview, publish, list, diff, export and roll back the sharing
policy at a shell, in-process (typer's runner), on a throw-away SQLite file."""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub import sharing
from hub.cli import app as cli
from hub.db import Database, make_engine
from hub.federation.state import catalog_with
from hub.federation.store import shape_of
from hub.models import Customer, CustomerPartner, Organization, OrgKind
from hub.models.subgraph import Subgraph

DEFAULT = sharing.default_source()
NO_COMPANY = DEFAULT.replace(
    "      visible: [id, kind, name, company, city, region, country, segment, lifecycle_stage,",
    "      visible: [id, kind, name, city, region, country, segment, lifecycle_stage,",
)
BREAKS_GUARDRAILS = """\
rules:
  - name: r
    subjects: [{kind: distributor}]
    resource: Customer
    read: {visible: [id, traits]}
"""
INVALID = """\
rules:
  - name: r
    subjects: [{kind: operator}]
    resource: Customer
    read:
      visible: [name, hat_size]
"""


def env_for(root: Path) -> dict[str, str]:
    return {
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'cli.db'}",
        "HUB_SECRET_KEY_FILE": str(root / "secret.key"),
        "HUB_LOG_JSON": "false",
        "COLUMNS": "80",  # what a pipe gets: the output must not depend on the terminal
    }


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database prepared by `hub init` once; each test works on a copy."""
    root = tmp_path_factory.mktemp("hub-init")
    result = CliRunner().invoke(cli, ["init", "--operator-slug", "northwind"], env=env_for(root))
    assert result.exit_code == 0, result.output
    return root


@pytest.fixture
def env(prepared: Path, tmp_path: Path) -> dict[str, str]:
    for path in prepared.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return env_for(tmp_path)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def said(self) -> str:
        """stderr with its line wrapping undone."""
        return " ".join(self.stderr.split())


def hub(env: dict[str, str], *args: str, input: str | None = None) -> Run:
    result = CliRunner().invoke(cli, ["policy", *args], env=env, input=input)
    return Run(result.exit_code, result.stdout, result.stderr)


def write(tmp_path: Path, name: str, source: str) -> str:
    path = tmp_path / name
    path.write_text(source)
    return str(path)


def versions(env: dict[str, str]) -> list[dict[str, Any]]:
    run = hub(env, "list", "--json")
    assert run.code == 0, run.stderr
    listed: list[dict[str, Any]] = json.loads(run.stdout)
    return listed


def add_distributor_with_customers(env: dict[str, str]) -> None:
    """Organization ``acme`` with two assigned customers, one consenting."""

    async def add() -> None:
        database = Database(make_engine(env["HUB_DATABASE_URL"]))
        try:
            async with database.transaction() as session:
                acme = Organization(slug="acme", name="Acme", kind=OrgKind.DISTRIBUTOR)
                shared = Customer(name="Shared", company="S", consent_share_with_partners=True)
                private = Customer(name="Private", company="P")
                session.add_all([acme, shared, private])
                await session.flush()
                session.add_all(
                    [
                        CustomerPartner(customer_id=c.id, organization_id=acme.id, role="reseller")
                        for c in (shared, private)
                    ]
                )
        finally:
            await database.dispose()

    asyncio.run(add())


# --- validate ---------------------------------------------------------------------------


def test_validate_a_valid_source(env: dict[str, str], tmp_path: Path) -> None:
    document, _ = sharing.check_source(NO_COMPANY)
    assert document is not None
    run = hub(env, "validate", write(tmp_path, "policy.yaml", NO_COMPANY))
    assert (run.code, run.said) == (0, f"valid: {len(document.rules)} rules")
    assert versions(env)[0]["number"] == 1  # validating publishes nothing


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (INVALID, "6:23: validation: unknown field 'hat_size' on Customer"),
        (
            "rules:\n  - name: r\n    subjects: [{kind: distributor}\n    resource: Customer\n",
            "4:5: syntax: invalid YAML: expected ',' or ']', but got '<scalar>'",
        ),
        ('{"rules": [}', "1:12: syntax: invalid JSON: Expecting value"),
    ],
    ids=["unknown-field", "yaml-syntax", "json-syntax"],
)
def test_validate_names_line_and_column(
    env: dict[str, str], tmp_path: Path, source: str, problem: str
) -> None:
    name = "policy.json" if source.startswith("{") else "policy.yaml"
    run = hub(env, "validate", write(tmp_path, name, source))
    assert (run.code, run.said) == (1, problem)
    from_stdin = hub(env, "validate", "-", input=source)
    assert (from_stdin.code, from_stdin.said) == (1, problem)


UNKNOWN_SUBJECTS = [
    pytest.param(
        "distributer",
        "role: support",
        "3:23: validation: unknown kind 'distributer' (did you mean 'distributor'?): the "
        "subject matches nobody (known: department, distributor, operator, supplier, vendor)",
        id="kind",
    ),
    pytest.param(
        "department",
        "role: suport",
        "3:41: validation: unknown role 'suport' (did you mean 'support'?): the subject "
        "matches nobody (known: admin, analyst, marketing, member, policy_editor, sales, "
        "support)",
        id="role",
    ),
]


@pytest.mark.parametrize(("kind", "role", "problem"), UNKNOWN_SUBJECTS)
def test_subjects_naming_an_unknown_kind_or_role_are_refused(
    env: dict[str, str], tmp_path: Path, kind: str, role: str, problem: str
) -> None:
    source = (
        "rules:\n  - name: r\n"
        f"    subjects: [{{kind: {kind}, {role}}}]\n"
        "    resource: Customer\n    read: {visible: [id]}\n"
    )
    path = write(tmp_path, "policy.yaml", source)
    run = hub(env, "validate", path)
    assert (run.code, run.said) == (1, problem)
    run = hub(env, "publish", path, "--reason", "typo")
    assert (run.code, run.said) == (2, f"{problem} error: the policy is not valid")
    assert [v["number"] for v in versions(env)] == [1]


# An organization not registered yet: the rule is kept for when it is (a warning only).
ORGANIZATION_RULE = (
    "\n  - name: SLUG-feedback\n"
    "    subjects: [{org: SLUG}]\n"
    "    resource: Feedback\n"
    "    rows: {customer.consent_share_with_partners: {eq: true}}\n"
    "    read: {visible: [id]}\n"
)
LINE = DEFAULT[: DEFAULT.index("\nexpect:\n")].count("\n") + 3  # the rule's subjects


def naming(slug: str) -> str:
    """The default policy plus a rule for organization ``slug``."""
    rule = ORGANIZATION_RULE.replace("SLUG", slug)
    return DEFAULT.replace("\nexpect:\n", f"{rule}\nexpect:\n")


def test_subjects_naming_an_unknown_organization_warn(env: dict[str, str], tmp_path: Path) -> None:
    document, _ = sharing.check_source(naming("globex"))
    assert document is not None
    rules = len(document.rules)
    warning = (
        f"{LINE}:22: warning: no organization 'globex' in the hub: the subject matches "
        "nobody until it is registered"
    )
    path = write(tmp_path, "globex.yaml", naming("globex"))
    run = hub(env, "validate", path)
    assert (run.code, run.said) == (0, f"{warning} valid: {rules} rules")
    run = hub(env, "publish", path, "--reason", "globex joins soon")
    assert (run.code, run.said) == (0, f"{warning} published version 2")
    # The operator registered by `hub init` is known: no warning.
    known = write(tmp_path, "northwind.yaml", naming("northwind"))
    run = hub(env, "validate", known)
    assert (run.code, run.said) == (0, f"valid: {rules} rules")


def test_validate_without_a_database_says_slugs_were_not_checked(
    env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "hub.db"
    path = write(tmp_path, "globex.yaml", naming("globex"))
    run = hub({**env, "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"}, "validate", path)
    assert run.code == 0
    assert run.said.startswith(f"warning: organization slugs not checked: no database at {missing}")
    assert not missing.parent.exists()  # validating created nothing


LOYALTY_SDL = """
extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

type Customer @key(fields: "id") {
  id: ID!
  loyaltyTier: String
}
"""
LOYALTY_RULE = (
    "\n  - name: sales-loyalty\n"
    "    subjects: [{kind: department, role: sales}]\n"
    "    resource: Customer\n"
    "    read: {visible: [id, loyaltyTier]}\n"
)
WITH_LOYALTY = DEFAULT.replace("\nexpect:\n", f"{LOYALTY_RULE}\nexpect:\n")


def register_loyalty(env: dict[str, str]) -> None:
    """A subgraph ``loyalty`` whose SDL (adding ``Customer.loyaltyTier``) was accepted,
    as ``hub subgraphs add`` leaves it (no service needed: validating never calls it)."""

    async def add() -> None:
        database = Database(make_engine(env["HUB_DATABASE_URL"]))
        try:
            async with database.transaction() as session:
                session.add(
                    Subgraph(
                        name="loyalty",
                        url="https://loyalty.example.com/graphql",
                        status="ok",
                        sdl=LOYALTY_SDL,
                    )
                )
        finally:
            await database.dispose()

    asyncio.run(add())


def test_validate_knows_the_fields_of_registered_subgraphs(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write(tmp_path, "loyalty.yaml", WITH_LOYALTY)
    before = WITH_LOYALTY[: WITH_LOYALTY.index("loyaltyTier]")]
    line, column = before.count("\n") + 1, len(before) - before.rindex("\n")
    unknown = f"{line}:{column}: validation: unknown field 'loyaltyTier' on Customer"
    # Before the subgraph is registered, the field is unknown (as publish says too).
    run = hub(env, "validate", path)
    assert (run.code, run.said) == (1, unknown)
    register_loyalty(env)
    document, _ = sharing.check_source(
        WITH_LOYALTY, catalog=catalog_with([shape_of("loyalty", LOYALTY_SDL)])
    )
    assert document is not None
    run = hub(env, "validate", path)
    assert (run.code, run.said) == (0, f"valid: {len(document.rules)} rules")
    # A row condition on it is refused offline as at publish.
    rows = WITH_LOYALTY.replace(
        "    read: {visible: [id, loyaltyTier]}",
        "    rows: {loyaltyTier: {eq: gold}}\n    read: {visible: [id, loyaltyTier]}",
    )
    run = hub(env, "validate", write(tmp_path, "rows.yaml", rows))
    assert run.code == 1
    assert "'loyaltyTier' comes from the subgraph 'loyalty', not the database" in run.said
    # Without the database, the hub's own fields only, and a warning says why.
    missing = tmp_path / "nowhere" / "hub.db"
    run = hub({**env, "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{missing}"}, "validate", path)
    assert (run.code, run.said) == (
        1,
        f"{unknown} warning: fields of registered subgraphs not known: no database at {missing}",
    )


def test_validate_a_missing_file(env: dict[str, str], tmp_path: Path) -> None:
    run = hub(env, "validate", str(tmp_path / "nope.yaml"))
    assert run.code == 2
    assert "cannot read" in run.said and "nope.yaml" in run.said


# --- publish, list, export, diff, rollback ---------------------------------------------


def test_publish_list_export_and_rollback(env: dict[str, str], tmp_path: Path) -> None:
    run = hub(env, "publish", write(tmp_path, "v2.yaml", NO_COMPANY), "--reason", "no company")
    assert (run.code, run.said) == (0, "published version 2")

    listed = versions(env)
    assert [(v["number"], v["action"], v["restores"]) for v in listed] == [
        (2, "publish", None),
        (1, "install", None),
    ]
    assert listed[0]["author"].startswith("cli:")
    assert listed[0]["reason"] == "no company"
    assert listed[0]["sha256"] == hashlib.sha256(NO_COMPANY.encode()).hexdigest()
    assert listed[1]["author"] == "hub init"

    assert hub(env, "export").stdout == NO_COMPANY  # the version in force, exactly
    assert hub(env, "export", "1").stdout == DEFAULT

    run = hub(env, "rollback", "1", "--reason", "company is back")
    assert (run.code, run.said) == (0, "rolled back: version 3 restores version 1")
    listed = versions(env)
    assert (listed[0]["number"], listed[0]["action"], listed[0]["restores"]) == (3, "rollback", 1)
    assert listed[0]["sha256"] == listed[2]["sha256"]
    assert hub(env, "export").stdout == DEFAULT

    table = hub(env, "list")
    assert table.code == 0
    assert "rollback of 1" in table.stdout and "company is back" in table.stdout


def test_publish_from_stdin_and_json(env: dict[str, str], tmp_path: Path) -> None:
    assert hub(env, "publish", "-", "--reason", "piped", input=NO_COMPANY).code == 0
    assert hub(env, "export", "2").stdout == NO_COMPANY
    source = json.dumps(
        {
            "rules": [
                {
                    "name": "operator-only",
                    "subjects": [{"kind": "operator"}],
                    "resource": "Customer",
                    "read": {"visible": ["id", "name"]},
                }
            ]
        }
    )
    run = hub(env, "publish", write(tmp_path, "p.json", source), "--reason", "json")
    assert (run.code, run.said) == (0, "published version 3")
    assert hub(env, "export").stdout == source


def test_a_refused_publish_exits_2_with_its_problems(env: dict[str, str], tmp_path: Path) -> None:
    run = hub(env, "publish", write(tmp_path, "bad.yaml", BREAKS_GUARDRAILS), "--reason", "x")
    assert run.code == 2
    assert run.stdout == ""
    assert run.said == (
        "2:5: guardrail: rule 'r' lets {kind: distributor} read Customer rows without "
        "requiring consent_share_with_partners eq true (guardrail 'partners need consent') "
        "2:5: guardrail: rule 'r' lets {kind: distributor} see Customer.traits (visible), "
        "which must stay hidden (guardrail 'partners need consent') "
        "error: the policy breaks guardrails or expectations"
    )

    run = hub(env, "publish", write(tmp_path, "invalid.yaml", INVALID), "--reason", "x")
    assert run.code == 2
    assert run.said == (
        "6:23: validation: unknown field 'hat_size' on Customer error: the policy is not valid"
    )

    run = hub(env, "publish", write(tmp_path, "v2.yaml", NO_COMPANY), "--reason", "  ")
    assert (run.code, run.said) == (2, "input: reason is empty error: a reason is required")
    run = hub(env, "publish", str(tmp_path / "v2.yaml"))
    assert run.code == 2
    assert "--reason" in run.said  # required
    assert [v["number"] for v in versions(env)] == [1]


def test_missing_versions_exit_2(env: dict[str, str]) -> None:
    for args in (
        ("rollback", "9", "--reason", "x"),
        ("export", "9"),
        ("diff", "1", "9"),
    ):
        run = hub(env, *args)
        assert (run.code, run.said) == (2, "error: no policy version 9"), args
    assert [v["number"] for v in versions(env)] == [1]


def test_diff_lists_rule_changes_then_the_source_diff(env: dict[str, str], tmp_path: Path) -> None:
    assert hub(env, "publish", write(tmp_path, "v2.yaml", NO_COMPANY), "--reason", "x").code == 0
    run = hub(env, "diff", "1", "2")
    assert run.code == 0
    lines = run.stdout.splitlines()
    assert lines[:3] == [
        "changed  distributors-assigned-customers",
        "         read.visible: -company",
        "--- version 1",
    ]
    assert hub(env, "diff", "2", "2").stdout.splitlines()[-1] == "(identical sources)"


def test_diff_prints_a_unified_diff_that_applies(env: dict[str, str], tmp_path: Path) -> None:
    # The source diff is for review and for `patch`: long lines must not be wrapped.
    assert hub(env, "publish", write(tmp_path, "v2.yaml", NO_COMPANY), "--reason", "x").code == 0
    expected = "".join(
        difflib.unified_diff(
            DEFAULT.splitlines(keepends=True),
            NO_COMPANY.splitlines(keepends=True),
            fromfile="version 1",
            tofile="version 2",
        )
    )
    printed = hub(env, "diff", "1", "2").stdout
    assert printed[printed.index("--- version 1") :].rstrip("\n") == expected.rstrip("\n")


# --- preview ----------------------------------------------------------------------------


def test_preview_json(env: dict[str, str], tmp_path: Path) -> None:
    add_distributor_with_customers(env)
    run = hub(env, "preview", "--json", write(tmp_path, "v2.yaml", NO_COMPANY))
    assert run.code == 0, run.stderr
    payload = json.loads(run.stdout)
    assert payload["problems"] == []
    changed = {
        (org["organization"], org["kind"], r["resource"]): r
        for org in payload["organizations"]
        for r in org["resources"]
        if r["fields_gained"] or r["fields_lost"] or r["rows_gained"] or r["rows_lost"]
    }
    assert changed == {
        ("acme", "distributor", "Customer"): {
            "resource": "Customer",
            "fields_gained": [],
            "fields_lost": ["company"],
            "rows_gained": 0,
            "rows_lost": 0,
        }
    }
    assert {org["organization"] for org in payload["organizations"]} == {"acme", "northwind"}

    # Making consent optional would show acme its non-consenting customer: refused.
    lax = NO_COMPANY.replace("        - consent_share_with_partners: {eq: true}\n", "", 1)
    run = hub(env, "preview", "--json", write(tmp_path, "lax.yaml", lax))
    assert run.code == 1
    payload = json.loads(run.stdout)
    assert [(p["kind"], p["rule"]) for p in payload["problems"]] == [
        ("guardrail", "distributors-assigned-customers")
    ]

    run = hub(env, "preview", "--json", write(tmp_path, "invalid.yaml", INVALID))
    assert run.code == 1
    assert json.loads(run.stdout) == {
        "problems": [
            {
                "kind": "validation",
                "message": "unknown field 'hat_size' on Customer",
                "line": 6,
                "column": 23,
                "rule": None,
            }
        ],
        "organizations": [],
    }
    assert [v["number"] for v in versions(env)] == [1]  # previews publish nothing


def test_preview_table(env: dict[str, str], tmp_path: Path) -> None:
    add_distributor_with_customers(env)
    run = hub(env, "preview", write(tmp_path, "v2.yaml", NO_COMPANY))
    assert run.code == 0
    rows = [line.split("│") for line in run.stdout.splitlines() if "│" in line]
    cells = [
        " ".join(cell.strip() for cell in column).strip() for column in zip(*rows, strict=True)
    ]
    # organization, resource, fields gained, fields lost, rows +, rows - (cells wrap).
    assert cells[1:7] == ["acme (distributor)", "Customer", "", "company", "0", "0"]
    same = hub(env, "preview", write(tmp_path, "same.yaml", DEFAULT))
    assert (same.code, " ".join(same.stdout.split())) == (0, "no change for any organization")
