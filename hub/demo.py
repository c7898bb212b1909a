"""Demo data: a realistic, deterministic Northwind Outfitters hub (DESIGN §9, ``hub demo``).

``seed_demo`` fills an empty database with one operator, its departments, its partners
(suppliers, a vendor, distributors), one OAuth client per organization plus the operator's
administration client (``hub:admin``), and customers with their partner assignments,
legacy references, interactions, purchases and feedback, and support cases escalated from
complaints and bug reports (some assigned to a supplier about its products), with notes.

The operator's slug is ``operator``, as ``hub init`` names it, so that the README's
commands (``hub clients create --org operator ...``) run on the demo as written. Every
seeded customer field is stamped as the operator's (:mod:`hub.provenance`): a department's
or partner's contribution that would change one becomes a proposed change, as it would for
data the operator loaded itself.

Every row comes from one ``random.Random(seed)`` and a fixed reference time, so the same
seed gives the same rows on every run and every machine; only the OAuth client ids and
secrets, which ``create_client`` draws from the OS, differ. Customers and their relations
go in with bulk Core inserts, a chunk at a time, so that 10,000 customers seed in seconds.
"""

from __future__ import annotations

import copy
import random
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType
from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from hub import provenance
from hub.customers import CustomerFields
from hub.models import (
    Customer,
    CustomerPartner,
    ExternalRef,
    Feedback,
    Interaction,
    Organization,
    OrgKind,
    Purchase,
)
from hub.models.case import Case, CaseNote
from hub.oauth.clients import create_client
from hub.vault import email_index, phone_index

# The reference "now" of the demo world: fixed so the data does not drift with the clock.
NOW = datetime(2026, 6, 1, tzinfo=UTC)
DEMO_SCOPES = ["customers:read", "customers:write", "feedback:read", "feedback:write"]
# The operator's administration client: the data scopes and the hub's administration.
ADMIN_SCOPES = [*DEMO_SCOPES, "hub:admin"]
OPERATOR = "operator"
LEGACY_SOURCE = "legacy-crm"
# The customer fields a contribution can set (and so precedence can guard), plus the
# consent time that recordConsent stamps: the seeded ones are the operator's.
_STAMPED = frozenset({*(f.name for f in dataclass_fields(CustomerFields)), "consent_given_at"})
# Rows per executemany: large enough to amortise round trips, small enough to keep memory
# and SQLite's statement journal modest.
CHUNK = 1000

Row = dict[str, Any]


@dataclass(frozen=True)
class DemoCredential:
    """The client credentials of one demo organization (the secret is shown only once);
    ``role`` is ``"admin"`` for the operator's administration client."""

    org: str
    kind: str
    client_id: str
    client_secret: str
    scopes: list[str]
    role: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Its entry in ``demo-credentials.json`` (``role`` only on the admin client)."""
        row: dict[str, Any] = {
            "org": self.org,
            "kind": self.kind,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scopes": self.scopes,
        }
        if self.role is not None:
            row["role"] = self.role
        return row


class DemoAlreadySeededError(Exception):
    """The database already holds the demo organizations; the message says what to do."""


# --- The world: organizations, countries, products -------------------------------------

ALL_REGIONS = ["NA", "EMEA", "LATAM", "APAC"]
PRODUCT_LINES = ["apparel", "footwear", "shelter", "packs", "sleep", "cooking", "electronics"]


@dataclass(frozen=True)
class _OrgSpec:
    slug: str
    name: str
    kind: OrgKind
    attributes: dict[str, Any]


_ORGS = (
    _OrgSpec(OPERATOR, "Northwind Outfitters", OrgKind.OPERATOR,
             {"hq_country": "US", "regions": ALL_REGIONS, "product_lines": PRODUCT_LINES}),
    # A department's `roles` say what the sharing policy lets it see (policies/defaults).
    _OrgSpec("sales", "Northwind Sales", OrgKind.DEPARTMENT,
             {"cost_center": "CC-110", "roles": ["sales"]}),
    _OrgSpec("marketing", "Northwind Marketing", OrgKind.DEPARTMENT,
             {"cost_center": "CC-120", "roles": ["marketing"]}),
    _OrgSpec("support", "Northwind Customer Support", OrgKind.DEPARTMENT,
             {"cost_center": "CC-130", "roles": ["support"]}),
    _OrgSpec("technical-support", "Northwind Technical Support", OrgKind.DEPARTMENT,
             {"cost_center": "CC-140", "roles": ["support"]}),
    _OrgSpec("alpine-textiles", "Alpine Textiles GmbH", OrgKind.SUPPLIER,
             {"regions": ["EMEA"], "hq_country": "AT",
              "product_lines": ["apparel", "sleep", "shelter"],
              "certifications": ["bluesign", "OEKO-TEX"]}),
    _OrgSpec("pacific-components", "Pacific Components Ltd.", OrgKind.SUPPLIER,
             {"regions": ["APAC", "NA"], "hq_country": "TW",
              "product_lines": ["electronics", "cooking"], "certifications": ["ISO 9001"]}),
    _OrgSpec("brightdesk-crm", "BrightDesk CRM Inc.", OrgKind.VENDOR,
             {"regions": ALL_REGIONS, "hq_country": "US", "product_lines": [],
              "services": ["helpdesk", "live_chat", "crm_hosting"]}),
    _OrgSpec("acme-distribution", "Acme Distribution LLC", OrgKind.DISTRIBUTOR,
             {"regions": ["NA", "APAC"], "hq_country": "US", "product_lines": PRODUCT_LINES,
              "channels": ["retail", "e-commerce"], "tier": "gold"}),
    _OrgSpec("eurotrade-partners", "EuroTrade Partners B.V.", OrgKind.DISTRIBUTOR,
             {"regions": ["EMEA"], "hq_country": "NL",
              "product_lines": ["apparel", "footwear", "packs", "shelter", "sleep"],
              "channels": ["retail", "wholesale"], "tier": "silver"}),
    _OrgSpec("andes-retail", "Andes Retail S.A.", OrgKind.DISTRIBUTOR,
             {"regions": ["LATAM"], "hq_country": "CL",
              "product_lines": ["apparel", "footwear", "packs", "cooking"],
              "channels": ["retail"], "tier": "silver"}),
)  # fmt: skip
# Which distributor sells where; customers are assigned to the one covering their region.
_DISTRIBUTOR_FOR_REGION = {
    "NA": "acme-distribution",
    "APAC": "acme-distribution",
    "EMEA": "eurotrade-partners",
    "LATAM": "andes-retail",
}
_PARTNER_ROLE = {
    OrgKind.DISTRIBUTOR: "reseller",
    OrgKind.VENDOR: "service_partner",
    OrgKind.SUPPLIER: "supplier",
}


@dataclass(frozen=True)
class _Country:
    code: str
    region: str
    currency: str
    language: str
    cultures: tuple[str, ...]
    cities: tuple[str, ...]
    legal_suffix: str
    weight: int


_COUNTRIES = (
    _Country("US", "NA", "USD", "en", ("anglo",) * 4 + ("latino", "chinese"),
             ("New York", "Chicago", "Seattle", "Austin", "Denver", "Boston"), "Inc.", 22),
    _Country("CA", "NA", "CAD", "en", ("anglo", "anglo", "french"),
             ("Toronto", "Vancouver", "Montreal", "Calgary"), "Ltd.", 7),
    _Country("GB", "EMEA", "GBP", "en", ("anglo",) * 3 + ("indian",),
             ("London", "Manchester", "Edinburgh", "Bristol"), "Ltd", 7),
    _Country("DE", "EMEA", "EUR", "de", ("german",), ("Berlin", "Munich", "Hamburg", "Cologne"),
             "GmbH", 7),
    _Country("FR", "EMEA", "EUR", "fr", ("french",), ("Paris", "Lyon", "Grenoble", "Marseille"),
             "SAS", 5),
    _Country("ES", "EMEA", "EUR", "es", ("spanish",), ("Madrid", "Barcelona", "Valencia"),
             "S.L.", 3),
    _Country("IT", "EMEA", "EUR", "it", ("italian",), ("Milan", "Rome", "Turin", "Bologna"),
             "S.r.l.", 3),
    _Country("NL", "EMEA", "EUR", "nl", ("dutch",), ("Amsterdam", "Rotterdam", "Utrecht"),
             "B.V.", 2),
    _Country("SE", "EMEA", "SEK", "sv", ("swedish",), ("Stockholm", "Gothenburg", "Malmö"),
             "AB", 2),
    _Country("PL", "EMEA", "PLN", "pl", ("polish",), ("Warsaw", "Kraków", "Wrocław"),
             "Sp. z o.o.", 2),
    _Country("AE", "EMEA", "AED", "ar", ("arabic", "arabic", "indian"), ("Dubai", "Abu Dhabi"),
             "LLC", 1),
    _Country("ZA", "EMEA", "ZAR", "en", ("south_african",), ("Cape Town", "Johannesburg"),
             "(Pty) Ltd", 1),
    _Country("NG", "EMEA", "NGN", "en", ("nigerian",), ("Lagos", "Abuja"), "Ltd", 1),
    _Country("MX", "LATAM", "MXN", "es", ("latino",), ("Mexico City", "Guadalajara", "Monterrey"),
             "S.A. de C.V.", 5),
    _Country("BR", "LATAM", "BRL", "pt", ("brazilian",),
             ("São Paulo", "Rio de Janeiro", "Curitiba"), "Ltda.", 5),
    _Country("AR", "LATAM", "ARS", "es", ("latino", "italian"), ("Buenos Aires", "Córdoba"),
             "S.R.L.", 2),
    _Country("CL", "LATAM", "CLP", "es", ("latino",), ("Santiago", "Valparaíso"), "SpA", 2),
    _Country("CO", "LATAM", "COP", "es", ("latino",), ("Bogotá", "Medellín"), "S.A.S.", 1),
    _Country("PE", "LATAM", "PEN", "es", ("latino",), ("Lima", "Cusco"), "S.A.C.", 1),
    _Country("JP", "APAC", "JPY", "ja", ("japanese",), ("Tokyo", "Osaka", "Sapporo"), "K.K.", 6),
    _Country("AU", "APAC", "AUD", "en", ("anglo",) * 3 + ("chinese",),
             ("Sydney", "Melbourne", "Brisbane", "Perth"), "Pty Ltd", 5),
    _Country("IN", "APAC", "INR", "en", ("indian",), ("Mumbai", "Bengaluru", "Delhi", "Pune"),
             "Pvt Ltd", 4),
    _Country("SG", "APAC", "SGD", "en", ("chinese", "chinese", "indian"), ("Singapore",),
             "Pte Ltd", 2),
    _Country("KR", "APAC", "KRW", "ko", ("korean",), ("Seoul", "Busan"), "Co., Ltd.", 2),
    _Country("CN", "APAC", "CNY", "zh", ("chinese",), ("Shanghai", "Shenzhen", "Chengdu"),
             "Co., Ltd.", 2),
)  # fmt: skip
_COUNTRY_WEIGHTS = [country.weight for country in _COUNTRIES]
# North American numbers start with the city's area code, as a reader from there expects.
_AREA_CODES = {
    "New York": ("212", "646", "917"), "Chicago": ("312", "773"), "Seattle": ("206",),
    "Austin": ("512", "737"), "Denver": ("303", "720"), "Boston": ("617", "857"),
    "Toronto": ("416", "647"), "Vancouver": ("604", "778"), "Montreal": ("514", "438"),
    "Calgary": ("403", "587"),
}  # fmt: skip

# Units of local currency per US dollar (rounded mid-2020s rates: realistic, not live).
_FX = {
    "USD": 1.0, "CAD": 1.37, "GBP": 0.79, "EUR": 0.92, "SEK": 10.5, "PLN": 3.95,
    "AED": 3.67, "ZAR": 18.2, "NGN": 1500.0, "MXN": 17.5, "BRL": 5.2, "ARS": 1000.0,
    "CLP": 930.0, "COP": 4000.0, "PEN": 3.75, "JPY": 150.0, "AUD": 1.52, "INR": 83.0,
    "SGD": 1.34, "KRW": 1350.0, "CNY": 7.2,
}  # fmt: skip
# ISO 4217 currencies without minor units: their prices carry no cents.
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "CLP"})

_GIVEN_FAMILY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "anglo": (
        ("James", "Olivia", "Liam", "Emma", "Noah", "Ava", "William", "Sophia", "Benjamin",
         "Grace", "Henry", "Charlotte", "Jack", "Amelia", "Ethan", "Chloe"),
        ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
         "Anderson", "Taylor", "Thompson", "O'Brien", "Campbell", "Walker", "Murphy", "Clarke"),
    ),
    "french": (
        ("Louis", "Camille", "Hugo", "Léa", "Gabriel", "Chloé", "Arthur", "Manon", "Jules",
         "Inès", "Théo", "Zoé"),
        ("Martin", "Bernard", "Dubois", "Robert", "Richard", "Petit", "Durand", "Leroy",
         "Moreau", "Lefèvre", "Fontaine", "Girard"),
    ),
    "german": (
        ("Lukas", "Anna", "Felix", "Lena", "Jonas", "Marie", "Maximilian", "Sophie", "Paul",
         "Hannah", "Jürgen", "Sabine"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Hoffmann", "Schäfer", "Koch", "Groß"),
    ),
    "spanish": (
        ("Alejandro", "Lucía", "Pablo", "María", "Daniel", "Paula", "Javier", "Carmen",
         "Sergio", "Elena", "Álvaro", "Marta"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
         "Pérez", "Gómez", "Jiménez", "Ruiz", "Navarro"),
    ),
    "latino": (
        ("Santiago", "Valentina", "Mateo", "Sofía", "Sebastián", "Camila", "Diego", "Isabella",
         "Matías", "Daniela", "Nicolás", "Fernanda"),
        ("Hernández", "Ramírez", "Torres", "Flores", "Rojas", "Vargas", "Castro", "Morales",
         "Ortiz", "Mendoza", "Quispe", "Gutiérrez"),
    ),
    "italian": (
        ("Francesco", "Giulia", "Alessandro", "Chiara", "Lorenzo", "Sofia", "Matteo", "Aurora",
         "Andrea", "Martina"),
        ("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
         "Marino", "Greco"),
    ),
    "dutch": (
        ("Daan", "Emma", "Sem", "Julia", "Lars", "Tess", "Bram", "Sanne", "Ruben", "Fleur"),
        ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser", "Smit", "Meijer",
         "de Boer", "Mulder"),
    ),
    "swedish": (
        ("Erik", "Elsa", "Oskar", "Maja", "Axel", "Astrid", "Nils", "Ingrid", "Gustav",
         "Linnéa"),
        ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson",
         "Persson", "Lindqvist", "Björk"),
    ),
    "polish": (
        ("Jakub", "Zuzanna", "Kacper", "Julia", "Szymon", "Maja", "Michał", "Aleksandra",
         "Piotr", "Katarzyna"),
        ("Nowak", "Wójcik", "Kowalczyk", "Woźniak", "Mazur", "Krawczyk", "Kaczmarek", "Zając",
         "Król", "Wieczorek"),
    ),
    "arabic": (
        ("Omar", "Fatima", "Ahmed", "Layla", "Yousef", "Aisha", "Khalid", "Mariam", "Hassan",
         "Noor"),
        ("Al-Mansouri", "Al-Hashimi", "Haddad", "Khoury", "Nasser", "Al-Farsi", "Saleh",
         "Rahman", "Aziz", "Hamdan"),
    ),
    "south_african": (
        ("Thabo", "Naledi", "Sipho", "Lerato", "Pieter", "Anika", "Johan", "Zanele", "Ruan",
         "Ayesha"),
        ("Nkosi", "Dlamini", "Mokoena", "van der Merwe", "Botha", "Naidoo", "Pretorius",
         "Khumalo", "Smit", "Petersen"),
    ),
    "nigerian": (
        ("Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Emeka", "Funmilayo", "Tunde", "Chiamaka",
         "Ibrahim", "Amaka"),
        ("Okafor", "Adeyemi", "Okonkwo", "Balogun", "Eze", "Nwosu", "Adebayo", "Ogunleye",
         "Bello", "Obi"),
    ),
    "brazilian": (
        ("João", "Ana", "Pedro", "Beatriz", "Lucas", "Mariana", "Gabriel", "Larissa", "Rafael",
         "Juliana", "Thiago", "Fernanda"),
        ("Silva", "Santos", "Oliveira", "Souza", "Costa", "Pereira", "Almeida", "Ferreira",
         "Carvalho", "Gonçalves", "Ribeiro", "Araújo"),
    ),
    "japanese": (
        ("Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Yuto", "Sakura", "Takumi", "Mei"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
         "Kobayashi", "Kato"),
    ),
    "indian": (
        ("Aarav", "Priya", "Vivaan", "Ananya", "Arjun", "Diya", "Rohan", "Kavya", "Vikram",
         "Meera", "Rahul", "Sneha"),
        ("Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Singh", "Mehta", "Rao",
         "Chatterjee", "Kapoor", "Menon"),
    ),
    "chinese": (
        ("Wei", "Fang", "Jie", "Li Na", "Hao", "Xiu Ying", "Jun", "Mei Ling", "Yang", "Lan"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Huang", "Zhao", "Wu", "Tan", "Lim"),
    ),
    "korean": (
        ("Min-jun", "Seo-yeon", "Ji-ho", "Ha-eun", "Do-yun", "Ji-woo", "Hyun-woo", "Soo-ah"),
        ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon"),
    ),
}  # fmt: skip

_COMPANY_STEMS = (
    "Summit", "Trailhead", "Blue Ridge", "Northstar", "Granite Peak", "Riverbend",
    "Silver Birch", "Highland", "Evergreen", "Coastal", "Red Rock", "Timberline", "Lakeside",
    "Horizon", "Wildflower", "Glacier",
)  # fmt: skip
_COMPANY_TRADES = (
    "Outdoor Supply", "Adventure Tours", "Mountain Guides", "Sports", "Expeditions",
    "Camping", "Outfitters", "Ski School", "Rescue Services", "Field Research", "Trekking",
    "Hospitality Group", "Youth Camps", "Logistics",
)  # fmt: skip
_TITLES = (
    "Purchasing Manager", "Head of Procurement", "Operations Director", "Store Manager",
    "Category Buyer", "Owner", "Facilities Coordinator", "Expedition Leader",
    "Program Coordinator", "Office Manager", "Chief Executive Officer", "Logistics Lead",
)  # fmt: skip
_COMPANY_MAILBOXES = ("orders", "purchasing", "procurement", "info", "accounts")
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_CONSENT_SOURCES = ("web_signup", "checkout", "in_store_form", "phone_call", "trade_show")


@dataclass(frozen=True)
class _Product:
    sku: str
    name: str
    line: str
    usd: Decimal


_PRODUCTS = (
    _Product("NW-TENT-2P", "Trailhead 2P Tent", "shelter", Decimal("249.00")),
    _Product("NW-TENT-4P", "Basecamp 4P Tent", "shelter", Decimal("429.00")),
    _Product("NW-PACK-45", "Ridgeline 45L Backpack", "packs", Decimal("189.00")),
    _Product("NW-PACK-22", "Summit 22L Daypack", "packs", Decimal("89.00")),
    _Product("NW-JKT-SHELL", "Stormfront Shell Jacket", "apparel", Decimal("279.00")),
    _Product("NW-JKT-DOWN", "Cirrus Down Jacket", "apparel", Decimal("229.00")),
    _Product("NW-BOOT-HIKE", "Switchback Hiking Boots", "footwear", Decimal("169.00")),
    _Product("NW-SHOE-TRAIL", "Scree Trail Runners", "footwear", Decimal("139.00")),
    _Product("NW-BAG-0C", "Polar 0°C Sleeping Bag", "sleep", Decimal("199.00")),
    _Product("NW-STOVE-1", "Ember Camp Stove", "cooking", Decimal("79.00")),
    _Product("NW-LAMP-400", "Lumen 400 Headlamp", "electronics", Decimal("39.00")),
    _Product("NW-GPS-X2", "Waypoint X2 GPS", "electronics", Decimal("349.00")),
)

# Per product line: (what goes wrong, its tag), (what people like), (what they ask for).
_LINE_TEXT: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...], tuple[str, ...]]] = {
    "apparel": (
        (("a zipper that split after two weeks", "quality"),
         ("a seam that leaks in rain", "quality"),
         ("sleeves far shorter than the size chart says", "sizing")),
        ("stayed dry through a full day of rain", "packs down to almost nothing",
         "the hood fits over a helmet"),
        ("a tall fit", "recycled fabric options", "pit zips"),
    ),
    "footwear": (
        (("soles that delaminated on the first long hike", "quality"),
         ("a fit half a size smaller than last year's model", "sizing"),
         ("laces that fray within a month", "quality")),
        ("no blisters even on day three", "grippy on wet rock", "needed no breaking in"),
        ("wide sizes", "a vegan version", "replaceable insoles"),
    ),
    "shelter": (
        (("a pole section that cracked in light wind", "quality"),
         ("a missing stake bag", "packaging"),
         ("a rain fly that wets through at the seams", "quality")),
        ("pitched in five minutes in the dark", "held up in a mountain storm",
         "roomy for two with gear"),
        ("a footprint in the box", "color-coded poles", "a lighter fly"),
    ),
    "packs": (
        (("a hip-belt buckle that snapped", "quality"),
         ("stitching coming loose on a strap", "quality"),
         ("a torso length that does not match the label", "sizing")),
        ("carries 15 kg comfortably", "the back panel breathes well",
         "pockets exactly where needed"),
        ("a rain cover included", "a women's fit", "more color choices"),
    ),
    "sleep": (
        (("down clumping after the first wash", "quality"), ("a stuck zipper", "quality"),
         ("a temperature rating that feels optimistic", "expectations")),
        ("warm at minus five", "compresses small", "the draft collar works"),
        ("a long version", "a left-hand zip", "a washable liner"),
    ),
    "cooking": (
        (("a piezo igniter that stopped working", "quality"), ("a warped pot support", "quality"),
         ("a missing windscreen", "packaging")),
        ("boils a liter in three minutes", "stable on uneven ground", "simmers well"),
        ("a bundled pot set", "a wind-resistant burner", "a carry case"),
    ),
    "electronics": (
        (("a battery that drains overnight", "battery"),
         ("a firmware update that fails halfway", "firmware"),
         ("a charging port that stopped working", "quality")),
        ("the battery lasts a whole weekend", "bright enough for night trail runs",
         "the maps are spot on"),
        ("USB-C charging", "offline map downloads in the app", "a red-light mode"),
    ),
}  # fmt: skip

_TRIPS = ("a week in the Dolomites", "the West Highland Way", "a Patagonia trek",
          "a rainy Scout camp", "a Kilimanjaro climb", "a family trip to the lakes",
          "the Camino de Santiago", "a winter night in the Rockies")  # fmt: skip
_FEEDBACK_CLOSERS = {
    "complaint": ("I expect a replacement.", "Delivery also took {days} days.",
                  "Support was friendly, though.", "Not what I expect at this price.", ""),
    "praise": ("Will buy again.", "Recommended it to my hiking group.",
               "Thanks to the {city} store team!", ""),
    "suggestion": ("I would pay a little more for it.", "Several friends asked the same.", ""),
    "bug": ("Tried twice, same result.", "Happens on both Android and iOS.",
            "Order number is in my account.", ""),
    "question": ("Thanks in advance.", "I need it before {trip}.", ""),
}  # fmt: skip
_TAGS_FOR_KIND = {
    "complaint": "complaint",
    "praise": "positive",
    "suggestion": "product-idea",
    "bug": "defect",
    "question": "pre-sales",
}
# Score ranges per (scale, kind), inside the scale's bounds (hub.models.activity.SCALES):
# praise scores high and complaints low, as in real surveys.
_SCORE_RANGES = {
    "csat": {"praise": (4, 5), "complaint": (1, 2), "suggestion": (3, 4), "bug": (1, 3),
             "question": (3, 5)},
    "nps": {"praise": (9, 10), "complaint": (0, 5), "suggestion": (6, 8), "bug": (2, 6),
            "question": (6, 9)},
}  # fmt: skip

# (who logs it, channels, direction, summary template); "partner" means an assigned partner.
_INTERACTIONS = (
    ("sales", ("phone", "email"), "outbound", "Quote sent for {qty} x {product}"),
    ("sales", ("in_person",), "inbound", "Visited the {city} showroom to see the {product}"),
    ("sales", ("phone",), "outbound", "Discovery call about outfitting a {trip_kind} group"),
    ("marketing", ("marketing",), "outbound", "Spring adventure newsletter; clicked {product}"),
    ("marketing", ("marketing", "email"), "outbound", "Abandoned-cart reminder for the {product}"),
    ("marketing", ("social",), "inbound", "Asked about the {product} under our {trip_kind} post"),
    ("support", ("chat", "email"), "inbound", "Asked about the return policy for the {product}"),
    ("support", ("phone", "chat"), "inbound", "Order status enquiry; tracking link resent"),
    ("support", ("email",), "outbound", "Exchange approved for the {product} (arrived damaged)"),
    ("technical-support", ("chat", "phone"), "inbound", "Troubleshooting the {product}: {defect}"),
    ("technical-support", ("email",), "outbound", "Warranty claim on the {product} approved"),
    ("partner", ("in_person",), "inbound", "In-store consultation on the {product}"),
    ("partner", ("phone", "email"), "outbound", "Account review; reorder of the {product} planned"),
    ("partner", ("website",), "inbound", "Web order of the {product} through the partner shop"),
)  # fmt: skip
_TRIP_KINDS = ("hiking club", "school expedition", "ski touring", "trail running", "scouting")
# Staff notes; the ones about orders only make sense for customers who bought something.
_NOTES_ANY = (
    "Prefers email; do not call before 10:00 local time.",
    "Interested in the {product}; follow up next season.",
    "Met at the {city} trade fair; asked for the winter catalogue.",
)
_NOTES_BUYER = (
    "VIP: escalate complaints to the support lead.",
    "Disputed an invoice in {year}; settled with a goodwill credit.",
    "Returned two items last year; check sizing before shipping.",
)
_NOTE_COMPANY = "Volume discount of {pct}% agreed by sales."
_LOYALTY_TIERS = ((Decimal(2000), "platinum"), (Decimal(800), "gold"), (Decimal(300), "silver"),
                  (Decimal(1), "bronze"), (Decimal(0), "none"))  # fmt: skip
_STAGE_WEIGHTS = {"lead": 12, "prospect": 13, "customer": 60, "churned": 15}
# Per lifecycle stage: (interactions, purchases, feedback) count choices; drawing uniformly
# averages about 3 interactions, 2 purchases and 2 feedback items per customer overall.
_COUNTS = {
    "lead": ((1, 2), (0,), (0, 0, 1)),
    "prospect": ((2, 3, 4), (0,), (0, 1, 2)),
    "customer": ((2, 3, 4, 5), (1, 2, 3, 4, 4), (1, 2, 3, 4)),
    "churned": ((2, 3, 4), (1, 2, 3), (1, 2, 3)),
}

# --- Generation ---------------------------------------------------------------------


def _ascii(text: str) -> str:
    """Lowercase ASCII letters of a name, for email local parts (Müller -> mueller)."""
    for special, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("ł", "l")):
        text = text.lower().replace(special, plain)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and (c.isalnum() or c == "-"))


def _price(product: _Product, currency: str) -> Decimal:
    """The product's shelf price in ``currency``: three significant digits, .99 endings."""
    local = product.usd * Decimal(str(_FX[currency]))
    step = Decimal(10) ** max(0, len(str(int(local))) - 3)
    rounded = (local / step).quantize(Decimal(1)) * step
    if currency not in _ZERO_DECIMAL and step == 1:
        rounded -= Decimal("0.01")
    return rounded.quantize(Decimal("0.01"))


@dataclass
class _Batch:
    """The rows of one chunk of customers, per table, in foreign-key order."""

    customers: list[Row] = field(default_factory=list)
    partners: list[Row] = field(default_factory=list)
    refs: list[Row] = field(default_factory=list)
    interactions: list[Row] = field(default_factory=list)
    purchases: list[Row] = field(default_factory=list)
    feedback: list[Row] = field(default_factory=list)

    def tables(self) -> list[tuple[Table, list[Row]]]:
        return [
            (_table(Customer), self.customers),
            (_table(CustomerPartner), self.partners),
            (_table(ExternalRef), self.refs),
            (_table(Interaction), self.interactions),
            (_table(Purchase), self.purchases),
            (_table(Feedback), self.feedback),
        ]


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


@dataclass(frozen=True)
class _Context:
    """What one customer's relations draw on: where they live and who serves them."""

    customer_id: uuid.UUID
    country: _Country
    city: str
    culture: str
    language: str
    is_company: bool
    start: datetime
    end: datetime
    partners: tuple[Organization, ...]

    @property
    def distributor(self) -> Organization | None:
        return next((o for o in self.partners if o.kind == OrgKind.DISTRIBUTOR), None)


class _Generator:
    """Draws customers and their relations from one seeded random stream."""

    def __init__(self, rng: random.Random, orgs: dict[str, Organization]) -> None:
        self.rng = rng
        self.orgs = orgs
        self.emails: set[str] = set()
        self.legacy_number = 100
        self.prices = {
            (p.sku, c.currency): _price(p, c.currency) for p in _PRODUCTS for c in _COUNTRIES
        }

    def uuid(self) -> uuid.UUID:
        # From the seeded stream, not the OS, so that ids repeat with the seed.
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def moment(self, start: datetime, end: datetime) -> datetime:
        seconds = max(1, int((end - start).total_seconds()))
        return start + timedelta(seconds=self.rng.randrange(seconds))

    def customer(self, batch: _Batch) -> None:
        rng = self.rng
        country = rng.choices(_COUNTRIES, weights=_COUNTRY_WEIGHTS)[0]
        city = rng.choice(country.cities)
        culture = rng.choice(country.cultures)
        language = country.language
        # French Canadians live in Quebec and speak French, whatever the country default.
        if culture == "french" and country.code == "CA":
            city, language = "Montreal", "fr"
        customer_id = self.uuid()
        created = self.moment(NOW - timedelta(days=730), NOW - timedelta(days=1))
        stage = rng.choices(list(_STAGE_WEIGHTS), weights=list(_STAGE_WEIGHTS.values()))[0]
        # A churned customer's activity stops at the churn date.
        end = self.moment(created, NOW) if stage == "churned" else NOW
        is_company = rng.random() < 0.2
        partners = self.assign(country, is_company)
        ctx = _Context(
            customer_id, country, city, culture, language, is_company, created, end, partners
        )

        n_interactions, n_purchases, n_feedback = (rng.choice(c) for c in _COUNTS[stage])
        sales = [self.purchase(ctx, batch) for _ in range(n_purchases)]
        bought = [product for product, _ in sales]
        usd_spent = sum((usd for _, usd in sales), start=Decimal("0.00"))
        touched = [self.interaction(ctx, batch) for _ in range(n_interactions)]
        touched += [self.feedback(ctx, batch, bought) for _ in range(n_feedback)]
        for org in partners:
            batch.partners.append(
                {
                    "id": self.uuid(),
                    "customer_id": customer_id,
                    "organization_id": org.id,
                    "role": _PARTNER_ROLE[OrgKind(org.kind)],
                    "since": self.moment(created, end),
                }
            )
        # Older customers were migrated from the legacy CRM and keep its number.
        if created < NOW - timedelta(days=365) and rng.random() < 0.7:
            self.legacy_number += rng.randint(1, 9)
            batch.refs.append(
                {
                    "id": self.uuid(),
                    "source": LEGACY_SOURCE,
                    "external_id": f"LC-{self.legacy_number:06d}",
                    "customer_id": customer_id,
                    "created_at": created,
                }
            )
        row = self.identity(ctx)
        row.update(self.profile(ctx, stage, usd_spent, bought))
        if row["consent_given_at"] is not None:
            touched.append(row["consent_given_at"])
        row["updated_at"] = max([created, *touched])
        row["provenance"] = _seeded_provenance(row, created)
        batch.customers.append(row)

    def assign(self, country: _Country, is_company: bool) -> tuple[Organization, ...]:
        rng, chosen = self.rng, []
        if rng.random() < 0.65:
            chosen.append(self.orgs[_DISTRIBUTOR_FOR_REGION[country.region]])
        if rng.random() < 0.12:
            chosen.append(self.orgs["brightdesk-crm"])
        # Suppliers serve business customers directly (custom apparel, component kits).
        if is_company and rng.random() < 0.3:
            supplier = "alpine-textiles" if country.region == "EMEA" else "pacific-components"
            chosen.append(self.orgs[supplier])
        return tuple(chosen[:2])

    def identity(self, ctx: _Context) -> Row:
        rng, country = self.rng, ctx.country
        given_names, family_names = _GIVEN_FAMILY[ctx.culture]
        given, family = rng.choice(given_names), rng.choice(family_names)
        company: str | None
        if ctx.is_company:
            base = family if rng.random() < 0.4 else rng.choice(_COMPANY_STEMS)
            trade = f"{base} {rng.choice(_COMPANY_TRADES)}"
            name = company = f"{trade} {country.legal_suffix}"
            title = None
            local = f"{rng.choice(_COMPANY_MAILBOXES)}.{_ascii(trade.replace(' ', ''))}"
            segment = rng.choices(("smb", "mid_market", "enterprise"), weights=(5, 3, 2))[0]
        else:
            name = f"{given} {family}"
            works = rng.random() < 0.3
            base = rng.choice(_COMPANY_STEMS)
            company = (
                f"{base} {rng.choice(_COMPANY_TRADES)} {country.legal_suffix}" if works else None
            )
            title = rng.choice(_TITLES) if works else None
            first, last = _ascii(given.replace(" ", "")), _ascii(family.replace(" ", ""))
            local = rng.choice((f"{first}.{last}", f"{first}{last}", f"{first[0]}.{last}",
                                f"{first}_{last}", f"{last}.{first}"))  # fmt: skip
            segment = rng.choice(("smb", "mid_market")) if works else "consumer"
        email = self.email(local) if rng.random() < 0.97 else None
        phone = self.phone(country.code, ctx.city) if rng.random() < 0.9 else None
        return {
            "id": ctx.customer_id,
            "kind": "company" if ctx.is_company else "person",
            "name": name,
            "email": email,
            "phone": phone,
            "email_index": email_index(email),
            "phone_index": phone_index(phone),
            "company": company,
            "title": title,
            "city": ctx.city,
            "region": country.region,
            "country": country.code,
            "segment": segment,
            "version": 1,
            "created_at": ctx.start,
        }

    def email(self, local: str) -> str:
        domain = self.rng.choice(_EMAIL_DOMAINS)
        address, n = f"{local}@{domain}", 1
        # Two Emma Smiths get distinct addresses, as a real mail provider would insist.
        while address in self.emails:
            n += 1
            address = f"{local}{n}@{domain}"
        self.emails.add(address)
        return address

    def phone(self, country: str, city: str) -> str | None:
        if city in _AREA_CODES:
            prefix, length = "+1" + self.rng.choice(_AREA_CODES[city]), 12
        else:
            # Elsewhere a landline's area code would have to match the city (the example
            # numbers are all in capitals); a mobile prefix never contradicts the address.
            example = phonenumbers.example_number_for_type(country, PhoneNumberType.MOBILE)
            if example is None:
                return None
            e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
            # Keep the country code and the first three national digits (a real mobile
            # prefix); the subscriber digits after them vary.
            prefix, length = e164[: 4 + len(str(example.country_code))], len(e164)
        # Random subscriber digits are not all allocated: keep those the plan accepts.
        for _ in range(50):
            digits = "".join(self.rng.choices("0123456789", k=length - len(prefix)))
            number = phonenumbers.parse(prefix + digits)
            if phonenumbers.is_valid_number_for_region(number, country):
                return prefix + digits
        return None

    def profile(
        self, ctx: _Context, stage: str, usd_spent: Decimal, bought: Sequence[_Product]
    ) -> Row:
        rng = self.rng
        share = rng.random() < 0.7
        marketing = rng.random() < 0.5
        consented = share or marketing
        tier = next(name for floor, name in _LOYALTY_TIERS if usd_spent >= floor)
        traits: Row = {"preferred_language": ctx.language, "loyalty_tier": tier}
        if ctx.is_company:
            traits["payment_terms"] = rng.choice(("net30", "net45", "net60", "prepaid"))
        if rng.random() < 0.4:
            notes = _NOTES_ANY + (_NOTES_BUYER if bought else ())
            if ctx.is_company:
                notes += (_NOTE_COMPANY,)
            product = bought[0] if bought else rng.choice(_PRODUCTS)
            traits["internal_notes"] = rng.choice(notes).format(
                year=ctx.start.year, product=product.name, city=ctx.city, pct=rng.randint(5, 12)
            )
        return {
            "lifecycle_stage": stage,
            # In US dollars, the operator's reporting currency, whatever the sale currency.
            "lifetime_value": usd_spent,
            "consent_share_with_partners": share,
            "consent_marketing_opt_in": marketing,
            "consent_given_at": self.moment(ctx.start, ctx.start + timedelta(hours=2))
            if consented
            else None,
            "consent_source": rng.choice(_CONSENT_SOURCES) if consented else None,
            "traits": traits,
        }

    def purchase(self, ctx: _Context, batch: _Batch) -> tuple[_Product, Decimal]:
        """Add one purchase row; return what was bought and its value in US dollars."""
        rng = self.rng
        product = rng.choice(_PRODUCTS)
        quantity = rng.randint(2, 40) if ctx.is_company else rng.choice((1, 1, 1, 1, 2, 3))
        # Businesses buy at a volume discount.
        discount = Decimal(rng.choice((85, 90, 95))) / 100 if ctx.is_company else Decimal(1)
        unit = self.prices[(product.sku, ctx.country.currency)]
        # Sell-through by the customer's distributor, otherwise a direct sale by the operator.
        seller = ctx.distributor if ctx.distributor and rng.random() < 0.6 else None
        when = self.moment(ctx.start, ctx.end)
        batch.purchases.append(
            {
                "id": self.uuid(),
                "customer_id": ctx.customer_id,
                "organization_id": (seller or self.orgs[OPERATOR]).id,
                "sku": product.sku,
                "quantity": quantity,
                "amount": (unit * quantity * discount).quantize(Decimal("0.01")),
                "currency": ctx.country.currency,
                "purchased_at": when,
                "created_at": when,
            }
        )
        return product, (product.usd * quantity * discount).quantize(Decimal("0.01"))

    def interaction(self, ctx: _Context, batch: _Batch) -> datetime:
        rng = self.rng
        candidates = [t for t in _INTERACTIONS if t[0] != "partner" or ctx.partners]
        who, channels, direction, template = rng.choice(candidates)
        org = rng.choice(ctx.partners) if who == "partner" else self.orgs[who]
        product = rng.choice(_PRODUCTS)
        summary = template.format(
            qty=rng.randint(2, 30) if ctx.is_company else rng.randint(1, 3),
            product=product.name,
            city=ctx.city,
            trip_kind=rng.choice(_TRIP_KINDS),
            defect=rng.choice(_LINE_TEXT[product.line][0])[0],
        )
        when = self.moment(ctx.start, ctx.end)
        batch.interactions.append(
            {
                "id": self.uuid(),
                "customer_id": ctx.customer_id,
                "organization_id": org.id,
                "channel": rng.choice(channels),
                "direction": direction,
                "summary": summary,
                "occurred_at": when,
                "created_at": when,
            }
        )
        return when

    def feedback(self, ctx: _Context, batch: _Batch, bought: Sequence[_Product]) -> datetime:
        rng = self.rng
        kind = rng.choices(tuple(_TAGS_FOR_KIND), weights=(25, 30, 20, 10, 15))[0]
        product = rng.choice(bought) if bought and rng.random() < 0.8 else rng.choice(_PRODUCTS)
        text, topic = self.feedback_text(kind, product, ctx.city)
        scale = rng.choices(("csat", "nps", None), weights=(45, 30, 25))[0]
        score = None if scale is None else rng.randint(*_SCORE_RANGES[scale][kind])
        by_partner = bool(ctx.partners) and rng.random() < 0.3
        if by_partner:
            org = rng.choice(ctx.partners)
        else:
            department = {"bug": "technical-support", "suggestion": "marketing"}.get(kind)
            org = self.orgs[department or rng.choice(("support", "support", "sales"))]
        created = self.moment(ctx.start, ctx.end)
        age = NOW - created
        # Older feedback has had time to be worked through; recent feedback is mostly new.
        status_weights = (5, 10, 25, 60) if age > timedelta(days=90) else (50, 30, 15, 5)
        batch.feedback.append(
            {
                "id": self.uuid(),
                "customer_id": ctx.customer_id,
                "organization_id": org.id,
                "channel": rng.choice(("website", "email", "chat", "phone", "social", "in_person")),
                "kind": kind,
                "scale": scale,
                "score": score,
                "text": text,
                "product": product.name,
                "tags": sorted({_TAGS_FOR_KIND[kind], topic, product.line}),
                "status": rng.choices(("new", "triaged", "actioned", "closed"), status_weights)[0],
                "visibility": "partners"
                if rng.random() < (0.7 if by_partner else 0.3)
                else "internal",
                "external_ref": f"{org.slug[:4].upper()}-T{rng.randrange(10_000, 99_999)}"
                if by_partner and rng.random() < 0.5
                else None,
                "created_at": created,
                "updated_at": self.moment(created, min(NOW, created + timedelta(days=30))),
            }
        )
        return created

    def feedback_text(self, kind: str, product: _Product, city: str) -> tuple[str, str]:
        """Compose a feedback text from templates, so that texts differ; return its topic tag."""
        rng = self.rng
        defects, likes, wishes = _LINE_TEXT[product.line]
        name = product.name
        if kind == "complaint":
            defect, topic = rng.choice(defects)
            opening = rng.choice((f"The {name} arrived with {defect}.",
                                  f"Really disappointed with the {name}: {defect}.",
                                  f"Second time I've had {defect} on the {name}."))  # fmt: skip
        elif kind == "praise":
            topic = "quality"
            like = rng.choice(likes)
            opening = rng.choice((f"Love the {name}: {like}.",
                                  f"Took the {name} on {rng.choice(_TRIPS)}: {like}.",
                                  f"Five stars for the {name}; {like}."))  # fmt: skip
        elif kind == "suggestion":
            topic = "assortment"
            wish = rng.choice(wishes)
            opening = rng.choice((f"Please offer the {name} with {wish}.",
                                  f"The {name} would be perfect with {wish}."))  # fmt: skip
        elif kind == "bug":
            topic = "website" if product.line != "electronics" else "firmware"
            defect = rng.choice(defects)[0]
            opening = rng.choice((f"Checkout fails when I add the {name} with a voucher.",
                                  f"The {name} page shows the wrong stock for {city}.",
                                  f"Reporting {defect} on the {name}."))  # fmt: skip
        else:
            topic = "product-info"
            opening = rng.choice((f"Is the {name} suitable for {rng.choice(_TRIPS)}?",
                                  f"How should I clean the {name} without damaging it?",
                                  f"When will the {name} be back in stock in {city}?"))  # fmt: skip
        closer = rng.choice(_FEEDBACK_CLOSERS[kind]).format(
            days=rng.randint(8, 21), city=city, trip=rng.choice(_TRIPS)
        )
        return (f"{opening} {closer}" if closer else opening), topic


# --- Support cases ----------------------------------------------------------------

# Notes a case's thread draws on: the escalating department's, the assignee's, and the
# one that resolves it.
_OPENING_NOTES = (
    "Escalated from the customer's feedback; customer told we are on it.",
    "Called the customer back; photos of the issue are on file.",
    "Customer confirmed the order number; replacement on hold until diagnosed.",
)
_SUPPLIER_NOTES = (
    "Checking the production batch of this unit with our QA team.",
    "We have seen this on a handful of units; root cause analysis started.",
    "Requested the serial number to trace the lot.",
)
_RESOLVED_NOTES = (
    "Replacement shipped; batch defect confirmed and fixed at the line.",
    "Fault traced to a supplier component; corrective action in place.",
    "Customer confirmed the fix; closing on our side.",
)


@dataclass
class _CaseCandidates:
    """Complaints and bug reports the seeding saw, to escalate some into cases: the
    feedback rows with whether their customer shares with partners."""

    rows: list[tuple[Row, bool]] = field(default_factory=list)

    def collect(self, batch: _Batch) -> None:
        shares = {c["id"]: bool(c["consent_share_with_partners"]) for c in batch.customers}
        self.rows.extend(
            (row, shares.get(row["customer_id"], False))
            for row in batch.feedback
            if row["kind"] in ("complaint", "bug")
        )


def _cases(
    rng: random.Random, orgs: dict[str, Organization], seen: _CaseCandidates, count: int
) -> tuple[list[Row], list[Row]]:
    """``count`` cases escalated from the feedback ``seen`` (about two in five assigned to
    the supplier of the product, when the customer shares with partners), and their
    notes. Drawn from their own random stream so the rest of the demo stays the same."""
    supplier_of = {
        product: org
        for org in orgs.values()
        if org.kind == OrgKind.SUPPLIER
        for product in org.attributes.get("products", [])
    }
    eligible = [(r, s) for r, s in seen.rows if s and r["product"] in supplier_of]
    others = [(r, s) for r, s in seen.rows if not (s and r["product"] in supplier_of)]
    to_supplier = min(len(eligible), (count * 2 + 4) // 5)
    chosen = [(r, True) for r, _ in rng.sample(eligible, to_supplier)]
    chosen += [(r, False) for r, _ in rng.sample(others, min(len(others), count - to_supplier))]
    cases: list[Row] = []
    notes: list[Row] = []
    for feedback, by_supplier in sorted(chosen, key=lambda c: c[0]["created_at"]):
        department = orgs["technical-support" if feedback["kind"] == "bug" else "support"]
        assignee = supplier_of[feedback["product"]] if by_supplier else department
        weights = (20, 35, 30, 15) if by_supplier else (35, 10, 30, 25)
        status = rng.choices(("open", "waiting_on_partner", "resolved", "closed"), weights)[0]
        case_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = min(NOW, feedback["created_at"] + timedelta(hours=rng.randint(1, 72)))
        thread = [(department, rng.choice(_OPENING_NOTES))]
        if by_supplier:
            thread.append((assignee, rng.choice(_SUPPLIER_NOTES)))
        if status in ("resolved", "closed"):
            thread.append((assignee, rng.choice(_RESOLVED_NOTES)))
        at = created
        for author, text in thread:
            at = min(NOW, at + timedelta(hours=rng.randint(1, 96)))
            notes.append(
                {
                    "id": uuid.UUID(int=rng.getrandbits(128), version=4),
                    "case_id": case_id,
                    "customer_id": feedback["customer_id"],
                    "organization_id": author.id,
                    "text": text,
                    "created_at": at,
                }
            )
        cases.append(
            {
                "id": case_id,
                "customer_id": feedback["customer_id"],
                "organization_id": assignee.id,
                "opened_by_id": department.id,
                "feedback_id": feedback["id"],
                "product": feedback["product"],
                "subject": f"{feedback['kind'].capitalize()}: {feedback['product']}",
                "description": feedback["text"],
                "priority": rng.choices(("low", "normal", "high", "urgent"), (15, 50, 25, 10))[0],
                "status": status,
                "version": 1 if status == "open" else 2,
                "created_at": created,
                "updated_at": at,
            }
        )
    return cases, notes


# --- Seeding ----------------------------------------------------------------------


def _quiet(_: str) -> None:
    pass


def _seeded_provenance(row: Row, created: datetime) -> dict[str, Any]:
    """The operator's stamp on every field seeded with a value. Customers older than a
    year came from the legacy CRM (``source``); no OAuth client wrote any of them."""
    source = LEGACY_SOURCE if created <= NOW - timedelta(days=365) else None
    stamp = provenance.stamp_for(OPERATOR, OrgKind.OPERATOR.value, None, created, source=source)
    return provenance.stamp_all(
        sorted(name for name in _STAMPED if row.get(name) is not None), stamp
    )


async def _insert(session: AsyncSession, batch: _Batch) -> None:
    for table, rows in batch.tables():
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(table), rows[start : start + CHUNK])


def _attributes(spec: _OrgSpec) -> dict[str, Any]:
    # A copy: the specs share lists that a caller editing attributes must not alter.
    attributes = copy.deepcopy(spec.attributes)
    if spec.kind is OrgKind.SUPPLIER:
        # The products a supplier makes: the sharing policy shows it their feedback.
        lines = set(attributes["product_lines"])
        attributes["products"] = [p.name for p in _PRODUCTS if p.line in lines]
    return attributes


async def seed_demo(
    session: AsyncSession,
    *,
    customers: int = 1000,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
) -> list[DemoCredential]:
    """Seed the demo world into an empty database, inside the caller's transaction.

    Adds the organizations, one OAuth client each (scopes ``DEMO_SCOPES``), the operator's
    administration client (``ADMIN_SCOPES``, role ``admin``) and ``customers`` customers
    with their relations; flushes but never commits. Returns the credentials in a fixed
    order, each organization's first and the admin client last: the secrets exist nowhere
    else.

    Example::

        async with sessions() as session, session.begin():
            credentials = await seed_demo(session, customers=200, progress=print)
    """
    if customers < 0:
        raise ValueError(f"customers must be zero or more, not {customers}")
    report = progress or _quiet
    existing = await session.execute(select(Organization).where(Organization.slug == OPERATOR))
    if existing.first() is not None:
        raise DemoAlreadySeededError(
            f"this database already holds an operator organization (slug {OPERATOR!r}); "
            "seed a new, empty database instead"
        )
    rng = random.Random(seed)
    orgs = {
        spec.slug: Organization(
            id=uuid.UUID(int=rng.getrandbits(128), version=4),
            slug=spec.slug,
            name=spec.name,
            kind=spec.kind.value,
            attributes=_attributes(spec),
            created_at=NOW - timedelta(days=1100 - 7 * index),
        )
        for index, spec in enumerate(_ORGS)
    }
    session.add_all(orgs.values())
    await session.flush()
    report(f"organizations: {len(orgs)}")

    credentials = []
    for org in orgs.values():
        client, secret = await create_client(
            session, organization=org, name=f"{org.name} (demo)", scopes=DEMO_SCOPES
        )
        credentials.append(
            DemoCredential(org.slug, org.kind, client.client_id, secret, list(client.scopes))
        )
    operator = orgs[OPERATOR]
    client, secret = await create_client(
        session, organization=operator, name=f"{operator.name} administration (demo)",
        scopes=ADMIN_SCOPES,
    )  # fmt: skip
    credentials.append(
        DemoCredential(
            operator.slug, operator.kind, client.client_id, secret, list(client.scopes), "admin"
        )
    )
    report(f"oauth clients: {len(credentials)}")

    generator = _Generator(rng, orgs)
    seen = _CaseCandidates()
    for start in range(0, customers, CHUNK):
        batch = _Batch()
        end = min(start + CHUNK, customers)
        for _ in range(start, end):
            generator.customer(batch)
        seen.collect(batch)
        await _insert(session, batch)
        report(f"customers: {end}/{customers}")
    # A few dozen cases per thousand customers.
    cases, notes = _cases(random.Random(f"{seed}:cases"), orgs, seen, customers // 25)
    for table, rows in ((_table(Case), cases), (_table(CaseNote), notes)):
        for start in range(0, len(rows), CHUNK):
            await session.execute(insert(table), rows[start : start + CHUNK])
    return credentials
