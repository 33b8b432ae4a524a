"""A seeded synthetic business, for demos, tests and benchmarks.

The generator tells one coherent story about "Northwind", a European online shop, so that the
analytics built on top of it have something real to find:

* **Customers** sign up over ``years`` before ``as_of`` at a slowly growing rate. Each has a
  segment (businesses buy more, more often), a region and country, an acquisition channel and a
  latent *lifetime*: a share are one-timers, the others stay for an exponentially distributed
  time (longer for referrals and businesses) and then silently stop buying. Cohorts therefore
  decay month after month.
* **Orders**: most customers buy at sign-up; while alive they keep ordering as a Poisson process
  whose rate is gamma-distributed across customers (many one-timers, a few heavy buyers) and
  modulated by a calendar with a November/December peak. Orders have 1..k lines drawn from a
  catalogue of ~120 products in 8 categories with their own price levels; a few orders are
  cancelled and a few are returned (more often for apparel), a return being one extra line with a
  negative quantity. Some orders are placed as a guest (no customer id).
* **Tickets** come from what happened: late or damaged deliveries, returns, defective products,
  billing mistakes and account questions, each theme with its own trend. Deliveries go badly
  wrong during a ~3.5 week window ending four months before ``as_of`` (see :func:`spike_window`):
  delivery tickets are six times as likely then, and answers slow down under the backlog.
* **Surveys** (relationship NPS, post-purchase CSAT, support CES) are answered by customers whose
  scores drop after a delivery problem, a return or a defect; comments, when given, match the
  score and name the reason.
* **Reviews and posts** about Northwind come from orders (unhappy customers write more and lower,
  so delivery reviews pile up during the spike); two competitors, Contoso and Fabrikam, get
  reviews with their own weaknesses.

Everything is drawn with ``numpy.random.default_rng(seed)`` and vectorised (loops run over
themes, categories and survey waves, never over rows), so the same seed gives the same tables and
one million customers take seconds (about 15 s and 3 GB peak on a small VM). The repeat-order
rate is calibrated so that the data has about :data:`LINES_PER_CUSTOMER` (10) order lines per
customer whatever ``years`` is (so a very short span gets very busy customers): 1M customers
give ~10M order lines, ~3.9M orders, ~0.3M tickets, ~0.55M survey responses and ~0.2M reviews
and posts. No timestamp reaches ``as_of``; timestamps are naive UTC, whole seconds.
"""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bool = npt.NDArray[np.bool_]

DEFAULT_AS_OF: Final = dt.date(2026, 1, 1)
LINES_PER_CUSTOMER: Final = 10.0
SOURCE: Final = "demo"
BRANDS: Final = ("Northwind", "Contoso", "Fabrikam")  # ours first, then the competitors
# The delivery-problem spike: [as_of - END - LENGTH, as_of - END) in days.
SPIKE_END_DAYS_BEFORE: Final = 120
SPIKE_LENGTH_DAYS: Final = 24
SPIKE_FACTOR: Final = 6.0

_TEXT: Final = pa.string()
_TS: Final = pa.timestamp("us")
_DEC: Final = pa.decimal128(18, 4)
_INT: Final = pa.int32()
_BOOL: Final = pa.bool_()

SCHEMAS: Final[Mapping[str, pa.Schema]] = {
    "customers": pa.schema(
        [
            ("customer_id", _TEXT),
            ("name", _TEXT),
            ("email", _TEXT),
            ("segment", _TEXT),
            ("region", _TEXT),
            ("country", _TEXT),
            ("acquisition_channel", _TEXT),
            ("first_seen_at", _TS),
            ("attributes", _TEXT),
            ("source", _TEXT),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", _TEXT),
            ("customer_id", _TEXT),
            ("ordered_at", _TS),
            ("status", _TEXT),
            ("channel", _TEXT),
            ("currency", _TEXT),
            ("country", _TEXT),
            ("total_amount", _DEC),
            ("source", _TEXT),
        ]
    ),
    "order_lines": pa.schema(
        [
            ("order_id", _TEXT),
            ("line_no", _INT),
            ("product_id", _TEXT),
            ("product_name", _TEXT),
            ("category", _TEXT),
            ("quantity", _DEC),
            ("unit_price", _DEC),
            ("amount", _DEC),
            ("source", _TEXT),
        ]
    ),
    "survey_responses": pa.schema(
        [
            ("source", _TEXT),
            ("response_id", _TEXT),
            ("question_id", _TEXT),
            ("survey_id", _TEXT),
            ("kind", _TEXT),
            ("scale_min", _INT),
            ("scale_max", _INT),
            ("score", _DEC),
            ("comment", _TEXT),
            ("channel", _TEXT),
            ("touchpoint", _TEXT),
            ("customer_id", _TEXT),
            ("responded_at", _TS),
        ]
    ),
    "tickets": pa.schema(
        [
            ("source", _TEXT),
            ("ticket_id", _TEXT),
            ("customer_id", _TEXT),
            ("opened_at", _TS),
            ("first_response_at", _TS),
            ("resolved_at", _TS),
            ("channel", _TEXT),
            ("category", _TEXT),
            ("priority", _TEXT),
            ("status", _TEXT),
            ("agent_id", _TEXT),
            ("is_complaint", _BOOL),
            ("reopens", _INT),
            ("subject", _TEXT),
            ("body", _TEXT),
        ]
    ),
    "reviews": pa.schema(
        [
            ("source", _TEXT),
            ("review_id", _TEXT),
            ("kind", _TEXT),
            ("url", _TEXT),
            ("author", _TEXT),
            ("rating", _DEC),
            ("title", _TEXT),
            ("text", _TEXT),
            ("posted_at", _TS),
            ("brand", _TEXT),
            ("is_competitor", _BOOL),
            ("language", _TEXT),
            ("customer_id", _TEXT),
            ("order_id", _TEXT),
        ]
    ),
    "employees": pa.schema(
        [
            ("employee_id", _TEXT),
            ("name", _TEXT),
            ("email", _TEXT),
            ("team", _TEXT),
            ("role", _TEXT),
            ("source", _TEXT),
        ]
    ),
    "subscriptions": pa.schema(
        [
            ("subscription_id", _TEXT),
            ("customer_id", _TEXT),
            ("plan", _TEXT),
            ("mrr", _DEC),
            ("started_at", _TS),
            ("ended_at", _TS),
            ("source", _TEXT),
        ]
    ),
    "survey_invitations": pa.schema(
        [
            ("invitation_id", _TEXT),
            ("survey_id", _TEXT),
            ("customer_id", _TEXT),
            ("channel", _TEXT),
            ("sent_at", _TS),
            ("source", _TEXT),
        ]
    ),
}

# --- people and places -------------------------------------------------------------------------

FIRST_NAMES: Final = (
    "Anna", "Lukas", "Sofia", "Mateo", "Emma", "Noah", "Mia", "Leon", "Julia", "Elias",
    "Laura", "Hugo", "Clara", "Luca", "Sara", "Jonas", "Marta", "Oliver", "Eva", "Pablo",
    "Lea", "Finn", "Alice", "Tomas", "Nina", "Jan", "Ines", "Felix", "Chloe", "Marco",
    "Hanna", "David", "Elena", "Louis", "Maria", "Emil", "Zoe", "Pedro", "Lina", "Adam",
    "Giulia", "Max", "Ella", "Diego", "Ida", "Theo", "Paula", "Nils", "Aino", "Liam",
)  # fmt: skip
LAST_NAMES: Final = (
    "Schmidt", "Garcia", "Rossi", "Martin", "Jansen", "Virtanen", "Novak", "Silva", "Muller",
    "Bernard", "Ferrari", "Lopez", "Peeters", "Murphy", "Weber", "Costa", "Dubois", "Bauer",
    "Romano", "Fernandez", "De Vries", "Korhonen", "Horvat", "Santos", "Fischer", "Moreau",
    "Ricci", "Gonzalez", "Maes", "Kelly", "Wagner", "Pereira", "Laurent", "Hofer", "Greco",
    "Sanchez", "Bakker", "Tamm", "Kovac", "Oliveira", "Becker", "Lefebvre", "Bruno", "Ruiz",
    "Willems", "Byrne", "Hoffmann", "Ferreira", "Roux", "Berg",
)  # fmt: skip
EMAIL_DOMAINS: Final = ("example.com", "example.org", "example.net")

SEGMENTS: Final = ("consumer", "small_business", "enterprise")
_SEGMENT_P: Final = (0.80, 0.15, 0.05)
_SEGMENT_RATE: Final = (1.0, 1.6, 2.5)  # businesses reorder more often ...
_SEGMENT_LIFE: Final = (1.0, 1.3, 1.8)  # ... stay longer ...
_SEGMENT_EXTRA_LINES: Final = (1.2, 2.0, 3.0)  # ... put more on each order ...
_SEGMENT_EXTRA_QTY: Final = (0.25, 1.5, 6.0)  # ... and buy in bulk

REGIONS: Final = ("North", "South", "East", "West", "Central")
_REGION_P: Final = (0.07, 0.25, 0.10, 0.28, 0.30)
# Euro-area countries only, since everything is sold in EUR; weights ~ population (millions).
_COUNTRIES: Final[tuple[tuple[tuple[str, float], ...], ...]] = (
    (("FI", 5.6), ("EE", 1.4), ("LV", 1.9), ("LT", 2.9)),
    (("ES", 48.0), ("IT", 59.0), ("PT", 10.4), ("GR", 10.4)),
    (("SK", 5.4), ("SI", 2.1), ("HR", 3.9)),
    (("FR", 68.0), ("NL", 17.9), ("BE", 11.8), ("IE", 5.3), ("LU", 0.7)),
    (("DE", 84.0), ("AT", 9.1)),
)
_COUNTRY_CODES: Final = tuple(code for region in _COUNTRIES for code, _ in region)

ACQUISITION_CHANNELS: Final = ("organic", "paid_search", "social", "referral", "email")
_CHANNEL_P: Final = (0.30, 0.25, 0.20, 0.12, 0.13)
_CHANNEL_ONE_TIMER: Final = (0.30, 0.40, 0.45, 0.20, 0.30)
_CHANNEL_LIFETIME_DAYS: Final = (330.0, 240.0, 200.0, 450.0, 300.0)
_ACQUISITION_GROWTH: Final = 0.6  # the last day sees 60 % more sign-ups than the first

# JSON attributes: a plan and a newsletter flag; businesses favour the bigger plans.
_PLANS: Final = ("basic", "plus", "premium")
_PLAN_P_BY_SEGMENT: Final = ((0.65, 0.27, 0.08), (0.30, 0.45, 0.25), (0.10, 0.35, 0.55))
_ATTRIBUTES_NULL_P: Final = 0.15

# --- catalogue and orders ----------------------------------------------------------------------

CATEGORIES: Final = (
    "Electronics", "Home & Kitchen", "Apparel", "Beauty",
    "Sports & Outdoors", "Toys & Games", "Books", "Garden",
)  # fmt: skip
_CATEGORY_PRICE_EUR: Final = (120.0, 45.0, 35.0, 18.0, 55.0, 25.0, 14.0, 40.0)
_CATEGORY_RETURN_P: Final = (0.07, 0.04, 0.14, 0.03, 0.05, 0.03, 0.02, 0.03)
_CATEGORY_DEFECT: Final = (1.8, 1.2, 0.8, 0.6, 1.0, 1.0, 0.3, 1.0)
_PRODUCT_NOUNS: Final[tuple[tuple[str, ...], ...]] = (
    ("Wireless Headphones", "Bluetooth Speaker", "Smartwatch", "Power Bank", "Webcam",
     "USB-C Hub", "E-Reader", "Mechanical Keyboard"),
    ("Coffee Grinder", "Chef's Knife", "Blender", "Cast Iron Pan", "Kettle", "Toaster",
     "Food Storage Set", "Table Lamp"),
    ("Rain Jacket", "Wool Sweater", "Running Shoes", "Denim Jeans", "Linen Shirt", "Scarf",
     "Winter Boots", "Hoodie"),
    ("Face Cream", "Shampoo", "Hair Dryer", "Perfume", "Lip Balm Set", "Sun Cream",
     "Beard Trimmer", "Body Lotion"),
    ("Yoga Mat", "Camping Tent", "Hiking Backpack", "Bike Helmet", "Water Bottle",
     "Sleeping Bag", "Dumbbell Set", "Trekking Poles"),
    ("Building Blocks Set", "Board Game", "Puzzle", "Plush Bear", "Remote Control Car",
     "Card Game", "Wooden Train", "Science Kit"),
    ("Cookbook", "Travel Guide", "Crime Novel", "Children's Book", "Photo Book",
     "Language Course", "Biography", "Notebook"),
    ("Garden Hose", "Pruning Shears", "Plant Pot Set", "Bird Feeder", "Solar Lights",
     "Seed Collection", "Watering Can", "Garden Gloves"),
)  # fmt: skip
_PRODUCT_LINES: Final = (
    "Aurora", "Nordic", "Classic", "Urban", "Alpine", "Essential", "Pro", "Coastal",
    "Summit", "Studio", "Harbor", "Lumen", "Terra", "Vista", "Atlas", "Breeze",
)  # fmt: skip
_PRODUCTS_PER_CATEGORY: Final = 15

# Month-of-year demand (Jan..Dec), normalised to mean 1 where used: the Q4 peak.
_SEASON: Final = (0.85, 0.78, 0.88, 0.92, 0.95, 0.90, 0.88, 0.92, 0.98, 1.05, 1.38, 1.51)
_SIGNUP_ORDER_P: Final = 0.93
_GAMMA_SHAPE: Final = 0.7  # < 1: heavy-tailed purchase rates across customers
_GUEST_P: Final = 0.03
_TOTAL_NULL_P: Final = 0.01
_CANCEL_P: Final = 0.04
_DISCOUNT_P: Final = 0.12

ORDER_STATUSES: Final = ("completed", "returned", "cancelled", "shipped", "processing")
ORDER_CHANNELS: Final = ("web", "app", "store")
_ORDER_CHANNEL_P: Final = (0.55, 0.35, 0.10)
_COMPLETED, _RETURNED, _CANCELLED, _SHIPPED, _PROCESSING = range(5)
_STORE = 2

# --- tickets -----------------------------------------------------------------------------------

TICKET_THEMES: Final = ("delivery", "billing", "product_quality", "returns", "account")
_DELIVERY, _BILLING, _QUALITY, _RETURNS, _ACCOUNT = range(5)
TICKET_CHANNELS: Final = ("email", "chat", "phone", "web")
_TICKET_CHANNEL_P: Final = (
    (0.35, 0.35, 0.20, 0.10),
    (0.50, 0.20, 0.20, 0.10),
    (0.45, 0.25, 0.10, 0.20),
    (0.40, 0.30, 0.10, 0.20),
    (0.30, 0.30, 0.10, 0.30),
)
_FIRST_RESPONSE_FACTOR: Final = (1.0, 0.15, 0.03, 1.3)  # by channel: phone is answered live
PRIORITIES: Final = ("low", "normal", "high", "urgent")
_PRIORITY_P: Final = (
    (0.05, 0.55, 0.30, 0.10),
    (0.10, 0.55, 0.30, 0.05),
    (0.10, 0.60, 0.25, 0.05),
    (0.20, 0.65, 0.15, 0.00),
    (0.35, 0.55, 0.08, 0.02),
)
TICKET_STATUSES: Final = ("open", "pending", "solved", "closed")
_OPEN, _PENDING, _SOLVED, _CLOSED = range(4)
_URGENT = PRIORITIES.index("urgent")
_COMPLAINT_P: Final = (0.95, 0.80, 0.95, 0.60, 0.15)
_RESOLVE_HOURS: Final = (30.0, 20.0, 48.0, 60.0, 6.0)
# Per-order probabilities of a ticket, before the time-dependent factors below.
_DELIVERY_P: Final = 0.018
_PEAK_DELIVERY_FACTOR: Final = 1.4  # November/December congestion
_RETURN_TICKET_P: Final = 0.40
_QUALITY_P: Final = 0.010
_QUALITY_BATCH_DAYS: Final = 180  # a bad Home & Kitchen batch in the last six months ...
_QUALITY_BATCH_FACTOR: Final = 3.0
_BILLING_P: Final = 0.006
_BILLING_WINDOW_DAYS: Final = (330, 288)  # ... and a payment-provider migration before that
_BILLING_FACTOR: Final = 4.0
_ACCOUNT_PER_YEAR: Final = 0.1  # account questions fall as the app improves: x1.6 -> x0.6

# (subject, body) templates; {order} {product} {amount} {days} {first} are filled per ticket.
_TICKET_TEMPLATES: Final[tuple[tuple[tuple[str, str], ...], ...]] = (
    (
        ("Where is my order {order}?",
         "Hi, I ordered the {product} {days} days ago (order {order}) and it still has not "
         "arrived. The tracking page has not changed since it left the warehouse. Can you tell "
         "me where my parcel is? Thanks, {first}"),
        ("Parcel arrived damaged",
         "Hello, my order {order} was finally delivered after {days} days but the box was crushed "
         "and the {product} inside is damaged. I would like a replacement as soon as possible. "
         "Regards, {first}"),
        ("Tracking says delivered but nothing arrived",
         "The tracking for order {order} says the parcel was delivered, but nothing is at my "
         "door and my neighbours have not seen it either. Please check with the courier. {first}"),
        ("Delivery late again",
         "This is not the first time my delivery is late. Order {order} was promised within "
         "3 days and it has now been {days} days. I paid {amount} EUR and I still have no "
         "{product}. Very disappointing."),
        ("Wrong item delivered",
         "The parcel for order {order} arrived today with the wrong item. I ordered the {product} "
         "but the box contained something else entirely. How do I get the right one? {first}"),
    ),
    (
        ("Charged twice for order {order}",
         "Hi, I was charged twice for order {order}: two payments of {amount} EUR show on my "
         "card statement. Please refund the duplicate payment. {first}"),
        ("Invoice amount is wrong",
         "The invoice for order {order} shows {amount} EUR, but the checkout showed a lower "
         "price because of my discount code. Can you send a corrected invoice?"),
        ("Refund not received",
         "I returned my {product} two weeks ago and was told the refund would take 5 days. "
         "I still have not received the {amount} EUR. When will it arrive? {first}"),
        ("Payment failed but money taken",
         "My payment for order {order} failed at checkout, but {amount} EUR has been taken "
         "from my account anyway. Please check what happened."),
    ),
    (
        ("{product} broke after {days} days",
         "My {product} broke after only {days} days of normal use. I expected much better "
         "quality for {amount} EUR. Order {order}. What are my options under warranty?"),
        ("Poor quality {product}",
         "The {product} I received looks nothing like the photos. The material feels cheap and "
         "the finish is already coming off. Order {order}. {first}"),
        ("Defective item in order {order}",
         "The {product} from order {order} arrived defective: a part is missing and it cannot "
         "be used as intended. Please send a replacement or refund me."),
        ("Item stopped working",
         "Very disappointed with the {product}. It stopped working within a week. Is this a "
         "known issue with this product? Regards, {first}"),
    ),
    (
        ("Return request for order {order}",
         "Hi, I would like to return the {product} from order {order}. It is not what I "
         "needed. Can you send me a return label? {first}"),
        ("Return label not working",
         "The return label you sent for order {order} is not accepted at the drop-off point. "
         "Can you send me a new one?"),
        ("Status of my return",
         "I sent back the {product} {days} days ago but the return still shows as not "
         "received. Can you check the status of order {order}? {first}"),
        ("Exchange instead of refund",
         "I would like to exchange the {product} from order {order} for a different size or "
         "colour instead of getting a refund. How does that work?"),
    ),
    (
        ("Cannot log in",
         "Hi, I cannot log in to my account. The password reset email never arrives. "
         "Can you help? {first}"),
        ("Change my email address",
         "Please change the email address on my account, I no longer use the old one. "
         "Thanks, {first}"),
        ("Delete my account",
         "I would like my account and my personal data deleted. Please confirm when this is "
         "done. {first}"),
        ("Newsletter keeps coming",
         "I unsubscribed from the newsletter {days} days ago but I still get emails every "
         "week. Please remove me from the list."),
    ),
)  # fmt: skip

# --- surveys -----------------------------------------------------------------------------------

SURVEY_KINDS: Final = ("nps", "csat", "ces")
_NPS, _CSAT, _CES = range(3)
_SURVEY_IDS: Final = ("relationship-nps", "post-purchase-csat", "support-ces")
_SCALES: Final = ((0, 10), (1, 5), (1, 7))
SURVEY_CHANNELS: Final = ("email", "web", "in_app")
TOUCHPOINTS: Final = ("purchase", "delivery", "support", "relationship")
_NPS_WAVE_DAYS: Final = 91.3  # quarterly relationship survey
_NPS_RESPONSE_P: Final = (0.08, 0.025)  # alive, churned
_CSAT_P: Final = 0.08
_CES_P: Final = 0.30
_COMMENT_P: Final = (0.45, 0.30, 0.35)
_NEGATIVE_EXTRA_COMMENT_P: Final = 0.15

# Comments by (tone, reason); reasons: what went wrong, or "generic" / "support".
_COMMENTS: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("negative", "generic"): (
        "Prices have gone up and the service has not improved.",
        "Not worth the money any more.",
        "The website is slow and checkout failed twice.",
        "Customer service took too long to answer my question.",
    ),
    ("negative", "delivery"): (
        "My last order arrived a week late and nobody told me why.",
        "The parcel came damaged and it took ages to sort out.",
        "Delivery was a mess, the tracking never updated.",
        "Still waiting for a delivery that was promised days ago.",
    ),
    ("negative", "returns"): (
        "Returning an item was far more complicated than it should be.",
        "The refund for my return took weeks.",
        "The return label did not work and I had to call twice.",
    ),
    ("negative", "quality"): (
        "The product broke after a few days, poor quality.",
        "Quality has gone down a lot, the item looked cheap.",
        "The item was defective and I had to send it back.",
    ),
    ("negative", "support"): (
        "I had to explain my problem three times to different agents.",
        "It took days to get a real answer.",
        "My ticket was closed without the issue being fixed.",
    ),
    ("neutral", "generic"): (
        "It was fine, nothing special.",
        "Good products, but the website could be easier to use.",
        "Average experience overall.",
        "Decent prices, but shipping costs are a bit high.",
    ),
    ("neutral", "support"): (
        "The agent was polite but it took a while to solve.",
        "Problem solved in the end, after a couple of emails.",
    ),
    ("positive", "generic"): (
        "Great service, my order arrived the next day.",
        "Very happy with the quality of the products.",
        "Easy to order and good prices.",
        "I recommend Northwind to all my friends.",
        "Fast, simple and reliable, thank you!",
    ),
    ("positive", "support"): (
        "The agent solved my problem in minutes.",
        "Quick and friendly help, thank you.",
        "Very easy, one message and it was sorted.",
    ),
}
_TONES: Final = ("negative", "neutral", "positive")
_REASONS: Final = ("generic", "delivery", "returns", "quality", "support")

# --- reviews and posts -------------------------------------------------------------------------

PLATFORMS: Final = ("trustpilot", "google", "x")
_X = 2
REVIEW_THEMES: Final = (
    "positive", "delivery", "product_quality", "returns", "billing", "service", "price",
)  # fmt: skip
_R_POSITIVE, _R_DELIVERY, _R_QUALITY, _R_RETURNS, _R_BILLING, _R_SERVICE, _R_PRICE = range(7)
_RATING_P: Final = (  # P(rating = 1..5) per theme
    (0.00, 0.00, 0.02, 0.30, 0.68),
    (0.60, 0.30, 0.10, 0.00, 0.00),
    (0.55, 0.35, 0.10, 0.00, 0.00),
    (0.20, 0.40, 0.40, 0.00, 0.00),
    (0.60, 0.30, 0.10, 0.00, 0.00),
    (0.30, 0.45, 0.25, 0.00, 0.00),
    (0.00, 0.15, 0.55, 0.30, 0.00),
)
# Theme mix of reviews not caused by a specific order: each competitor has its weak spot.
_BRAND_THEME_P: Final = (
    (0.85, 0.04, 0.00, 0.00, 0.00, 0.05, 0.06),
    (0.65, 0.04, 0.04, 0.00, 0.12, 0.06, 0.09),
    (0.55, 0.08, 0.22, 0.05, 0.00, 0.06, 0.04),
)
_REVIEW_P: Final = {"base": 0.02, "delivery": 0.25, "quality": 0.15, "returned": 0.05}
_REVIEW_LINKED_P: Final = 0.35  # platform lets us match the reviewer to a customer
_DELIVERY_POST_P: Final = 0.15
_ORDER_POST_P: Final = 0.004
_COMPETITOR_REVIEWS_PER_CUSTOMER: Final = 0.02
_COMPETITOR_POSTS_PER_CUSTOMER: Final = 0.006

# (title, text) review templates per theme; {brand} {product} {days} are filled per review.
_REVIEW_TEMPLATES: Final[tuple[tuple[tuple[str, str], ...], ...]] = (
    (
        ("Great experience",
         "Ordered a {product} and it arrived quickly and well packed. Exactly as described. "
         "Will buy from {brand} again."),
        ("Excellent quality", "Really happy with my {product}. Solid quality and a fair price."),
        ("Highly recommended",
         "Easy ordering, friendly support and good prices. {brand} is my go-to shop now."),
        ("Very satisfied",
         "Another order from {brand} and again everything went smoothly. The {product} is great."),
    ),
    (
        ("Still waiting for my order",
         "Ordered a {product} from {brand} {days} days ago and it still has not been delivered. "
         "Tracking has not updated in a week and support only sends copy-paste answers."),
        ("Parcel arrived damaged",
         "The delivery took {days} days and then the box was crushed and the {product} inside "
         "was broken. Not ordering again."),
        ("Delivery is a disaster",
         "Another late delivery. {brand} used to be reliable but shipping has become a disaster "
         "lately. {days} days for a {product}."),
        ("Marked delivered, never arrived",
         "The courier marked my parcel as delivered but it never came. {brand} told me to wait "
         "another {days} days."),
    ),
    (
        ("Poor quality",
         "The {product} fell apart after {days} days. Looks nothing like the pictures."),
        ("Cheap materials",
         "The {product} feels cheap and flimsy. I expected much better from {brand} at this "
         "price."),
        ("Broke within a week",
         "My {product} broke within a week of normal use. Quality control seems to be missing."),
    ),
    (
        ("Returns are a hassle",
         "Sending back the {product} was a hassle. The label did not work and the refund took "
         "{days} days."),
        ("Slow refund",
         "Returned an item to {brand} and waited {days} days for my money. The products are "
         "fine, the returns process is not."),
    ),
    (
        ("Charged twice",
         "{brand} charged my card twice for one order and it took {days} days to get the money "
         "back."),
        ("Hidden fees",
         "Extra fees appeared at checkout that were not mentioned before. Not transparent "
         "at all."),
    ),
    (
        ("Support does not answer",
         "Contacted {brand} support three times about my {product} and never got a useful "
         "answer."),
        ("Slow customer service",
         "Nice products but customer service is slow. I waited {days} days for a reply."),
    ),
    (
        ("Getting expensive",
         "Good products but {brand} has become quite expensive. The {product} is cheaper "
         "elsewhere."),
        ("Okay but pricey",
         "The {product} is fine, but the prices at {brand} keep going up."),
    ),
)  # fmt: skip
_POST_TEMPLATES: Final[tuple[tuple[str, ...], ...]] = (
    (
        "Just got my {product} from @{brand}, love it!",
        "Shout out to @{brand} support for sorting out my order in minutes.",
        "Third order from @{brand} this year, never disappointed.",
    ),
    (
        "@{brand} my order is {days} days late and the tracking has not moved. What is going on?",
        "@{brand} parcel arrived crushed, {product} broken. Great.",
        "Anyone else waiting forever for a @{brand} delivery? {days} days and counting.",
    ),
    ("@{brand} my new {product} already broke after {days} days. Not impressed.",),
    ("@{brand} still waiting for the refund on my return, {days} days now.",),
    ("@{brand} why was I charged twice? Still waiting for my money back.",),
    ("@{brand} is anyone actually answering support emails? {days} days without a reply.",),
    (
        "@{brand} any discounts coming for Black Friday?",
        "Thinking about ordering a {product} from @{brand}. Worth the price?",
    ),
)

# --- employees ---------------------------------------------------------------------------------

TEAMS: Final = ("support", "success", "sales")
ROLES: Final = ("agent", "lead", "manager")
_CUSTOMERS_PER_AGENT: Final = (4_000, 20_000, 25_000)  # per team
_AGENTS_PER_LEAD: Final = 12


# ================================================================================================
# Public API


def spike_window(as_of: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The half-open ``[start, end)`` window of the delivery-problem spike.

    It lasts ``SPIKE_LENGTH_DAYS`` (about 3.5 weeks) and ends ``SPIKE_END_DAYS_BEFORE`` (about
    four months) before ``as_of``; delivery tickets opened inside it are ``SPIKE_FACTOR`` times
    as likely as usual.
    """
    end = (as_of or DEFAULT_AS_OF) - dt.timedelta(days=SPIKE_END_DAYS_BEFORE)
    return end - dt.timedelta(days=SPIKE_LENGTH_DAYS), end


def generate(
    customers: int = 5_000,
    *,
    seed: int = 7,
    as_of: dt.date | None = None,
    years: float = 2.5,
) -> dict[str, pa.Table]:
    """Generate the demo business: one Arrow table per canonical table (see ``SCHEMAS``).

    ``customers`` sign up over ``years`` before ``as_of`` (default 2026-01-01; midnight UTC,
    exclusive). Sizes scale linearly: per customer about ``LINES_PER_CUSTOMER`` = 10 order
    lines (the calibration target), 3.9 orders, 0.3 tickets, 0.55 survey responses and 0.2
    reviews or posts, plus one support agent per 4,000 customers. The same arguments always
    give the same tables; nothing reads the clock.
    """
    if customers < 0:
        raise ValueError(f"customers must be >= 0, got {customers}")
    if not years > 0:
        raise ValueError(f"years must be > 0, got {years}")
    clock = _Clock.spanning(as_of or DEFAULT_AS_OF, years)
    rng = np.random.default_rng(seed)
    products = _draw_products(rng)
    people = _draw_customers(rng, customers, clock)
    orders = _draw_orders(rng, people, products, clock)
    staff = _draw_employees(rng, customers)
    tickets = _draw_tickets(rng, people, orders, products, staff, clock)
    seen = _Experience.of(people, orders, tickets)
    responses = _draw_responses(rng, people, orders, tickets, seen, clock)
    reviews = _draw_reviews(rng, people, orders, products, tickets, seen, clock)
    ids = _Ids.numbering(customers, orders.size)
    # A separate stream, so adding these tables left every other table as it was.
    extra = np.random.default_rng([seed, 1])
    return {
        "customers": _customers_table(people, ids, clock),
        "orders": _orders_table(orders, people, ids, clock),
        "order_lines": _order_lines_table(orders, products, ids),
        "survey_responses": _responses_table(responses, ids, clock),
        "tickets": _tickets_table(tickets, orders, people, products, staff, ids, clock),
        "reviews": _reviews_table(reviews, products, ids, clock),
        "employees": _employees_table(staff),
        "subscriptions": _subscriptions_table(extra, people, ids, clock),
        "survey_invitations": _invitations_table(extra, responses, people, ids, clock),
    }


# ================================================================================================
# Time


@dataclass(frozen=True, slots=True)
class _Clock:
    """Model time is float days since ``start`` (midnight); everything happens before ``days``."""

    start: dt.date
    days: int

    @classmethod
    def spanning(cls, as_of: dt.date, years: float) -> _Clock:
        days = max(1, round(years * 365.25))
        return cls(as_of - dt.timedelta(days=days), days)

    @property
    def as_of(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days)

    def offset(self, day: dt.date) -> float:
        return float((day - self.start).days)

    def micros(self, t: F64) -> I64:
        """Whole-second epoch microseconds (nan stays a sentinel; mask it separately)."""
        epoch_s = (self.start - dt.date(1970, 1, 1)).days * 86_400
        seconds = np.floor(np.nan_to_num(t) * 86_400).astype(np.int64)
        # Float rounding must never land a time on as_of itself.
        seconds = np.minimum(seconds, self.days * 86_400 - 1)
        return (seconds + epoch_s) * 1_000_000

    def month(self, t: F64) -> I64:
        """Calendar month, 0 = January."""
        days = np.datetime64(self.start, "D") + np.floor(t).astype("timedelta64[D]")
        return days.astype("datetime64[M]").astype(np.int64) % 12

    def season(self, t: F64) -> F64:
        season: F64 = np.asarray(_SEASON, dtype=np.float64) / np.mean(_SEASON)
        return season[self.month(t)]


# ================================================================================================
# Customers


@dataclass(frozen=True, slots=True)
class _People:
    acquired: F64  # days since clock start, sorted: customer k is the k-th to sign up
    lifetime: F64  # days of activity after sign-up; 0 for one-timers
    segment: I64
    region: I64
    country: I64  # index into the flattened _COUNTRIES
    channel: I64
    first_name: I64
    last_name: I64
    attributes: I64  # plan * 2 + newsletter, or -1 for no attributes
    rate: F64  # relative repeat-order rate
    buys_at_signup: Bool

    @property
    def size(self) -> int:
        return len(self.acquired)


def _choice(rng: np.random.Generator, p: Sequence[float], size: int) -> I64:
    """Indices 0..len(p)-1 drawn with probabilities ``p`` (normalised)."""
    cdf = np.cumsum(np.asarray(p, dtype=np.float64))
    draws = np.searchsorted(cdf / cdf[-1], rng.random(size), side="right")
    return np.minimum(draws, len(p) - 1).astype(np.int64)


def _choice_by(rng: np.random.Generator, table: Sequence[Sequence[float]], group: I64) -> I64:
    """Like :func:`_choice`, with the probability row picked by each element's ``group``."""
    out = np.empty(len(group), dtype=np.int64)
    for g, p in enumerate(table):
        rows = np.flatnonzero(group == g)
        out[rows] = _choice(rng, p, len(rows))
    return out


def _draw_customers(rng: np.random.Generator, n: int, clock: _Clock) -> _People:
    # Inverse CDF of a sign-up density rising linearly by _ACQUISITION_GROWTH over the span.
    g = _ACQUISITION_GROWTH
    acquired = np.sort((np.sqrt(1 + g * (2 + g) * rng.random(n)) - 1) / g * clock.days)
    segment = _choice(rng, _SEGMENT_P, n)
    region = _choice(rng, _REGION_P, n)
    first_country = np.cumsum([0] + [len(c) for c in _COUNTRIES])[:-1]
    weights = [[w for _, w in countries] for countries in _COUNTRIES]
    country = first_country[region] + _choice_by(rng, weights, region)
    channel = _choice(rng, _CHANNEL_P, n)
    one_timer = rng.random(n) < np.asarray(_CHANNEL_ONE_TIMER)[channel]
    mean_life = np.asarray(_CHANNEL_LIFETIME_DAYS)[channel] * np.asarray(_SEGMENT_LIFE)[segment]
    lifetime = np.where(one_timer, 0.0, rng.exponential(mean_life))
    plan = _choice_by(rng, _PLAN_P_BY_SEGMENT, segment)
    attributes = np.where(rng.random(n) < _ATTRIBUTES_NULL_P, -1, plan * 2 + (rng.random(n) < 0.4))
    return _People(
        acquired=acquired,
        lifetime=lifetime,
        segment=segment,
        region=region,
        country=country,
        channel=channel,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        attributes=attributes.astype(np.int64),
        rate=rng.gamma(_GAMMA_SHAPE, 1 / _GAMMA_SHAPE, n) * np.asarray(_SEGMENT_RATE)[segment],
        buys_at_signup=rng.random(n) < _SIGNUP_ORDER_P,
    )


# ================================================================================================
# Products and orders


@dataclass(frozen=True, slots=True)
class _Products:
    name: tuple[str, ...]
    category: I64
    cents: I64  # list price
    cdf: F64  # popularity

    def draw(self, rng: np.random.Generator, size: int) -> I64:
        picks = np.searchsorted(self.cdf, rng.random(size), side="right")
        return np.minimum(picks, len(self.name) - 1).astype(np.int64)


def _draw_products(rng: np.random.Generator) -> _Products:
    names: list[str] = []
    categories: list[int] = []
    for c, nouns in enumerate(_PRODUCT_NOUNS):  # a handful of categories: a loop is fine
        combos = rng.choice(len(_PRODUCT_LINES) * len(nouns), _PRODUCTS_PER_CATEGORY, False)
        names += [f"{_PRODUCT_LINES[k // len(nouns)]} {nouns[k % len(nouns)]}" for k in combos]
        categories += [c] * _PRODUCTS_PER_CATEGORY
    category = np.asarray(categories, dtype=np.int64)
    level = np.asarray(_CATEGORY_PRICE_EUR)[category] * rng.lognormal(0.0, 0.45, len(names))
    cents = np.maximum(np.round(level) * 100 - 1, 299).astype(np.int64)  # charm prices: 44.99
    # Zipf-like popularity in a random order, so bestsellers are spread over categories.
    weight = 1.0 / rng.permutation(np.arange(1, len(names) + 1)) ** 0.9
    return _Products(tuple(names), category, cents, np.cumsum(weight) / weight.sum())


@dataclass(frozen=True, slots=True)
class _Orders:
    customer: I64  # the person ordering (also for guest orders, whose id is not exported)
    guest: Bool
    at: F64
    status: I64
    channel: I64
    line_start: I64  # lines of order i are line_start[i]:line_start[i + 1]
    product: I64  # per line
    quantity: I64
    unit_cents: I64
    total_cents: I64  # per order
    total_null: Bool

    @property
    def size(self) -> int:
        return len(self.at)

    @property
    def first_product(self) -> I64:
        return self.product[self.line_start[:-1]]


def _draw_orders(rng: np.random.Generator, people: _People, products: _Products, clock: _Clock) -> _Orders:
    customer, at = _order_times(rng, people, clock)
    n = len(at)
    segment = people.segment[customer]
    first_product = products.draw(rng, n)
    channel = _choice(rng, _ORDER_CHANNEL_P, n)
    status = _order_status(rng, at, channel, products.category[first_product], clock)
    returned = status == _RETURNED
    # A return is one extra line that takes back the whole first line.
    lines = 1 + rng.poisson(np.asarray(_SEGMENT_EXTRA_LINES)[segment]) + returned
    start = np.concatenate([[0], np.cumsum(lines)]).astype(np.int64)
    order_of_line = np.repeat(np.arange(n), lines)
    product = products.draw(rng, int(start[-1]))
    product[start[:-1]] = first_product
    quantity = 1 + rng.poisson(np.asarray(_SEGMENT_EXTRA_QTY)[segment[order_of_line]])
    del order_of_line
    cents = products.cents[product]
    discount = np.asarray([1.0, 0.9, 0.85, 0.8])[
        (rng.random(len(product)) < _DISCOUNT_P) * rng.integers(1, 4, len(product))
    ]
    cents = np.round(cents * discount).astype(np.int64)
    first, last = start[:-1][returned], start[1:][returned] - 1
    product[last], cents[last], quantity[last] = product[first], cents[first], -quantity[first]
    total = np.add.reduceat(quantity * cents, start[:-1]) if n else np.zeros(0, np.int64)
    return _Orders(
        customer=customer,
        guest=rng.random(n) < _GUEST_P,
        at=at,
        status=status,
        channel=channel,
        line_start=start,
        product=product,
        quantity=quantity.astype(np.int64),
        unit_cents=cents,
        total_cents=total.astype(np.int64),
        total_null=rng.random(n) < _TOTAL_NULL_P,
    )


def _order_times(rng: np.random.Generator, people: _People, clock: _Clock) -> tuple[I64, F64]:
    """Who orders when: a sign-up order, then a seasonal Poisson process until churn.

    The process rate is scaled so that the expected number of order lines is
    ``LINES_PER_CUSTOMER`` per customer, whatever the span and the lifetimes drawn.
    """
    n = people.size
    signup = np.flatnonzero(people.buys_at_signup)
    # Within half an hour of signing up, without crossing the end of the span.
    signup_at = people.acquired[signup] + rng.random(len(signup)) * np.minimum(
        0.02, clock.days - people.acquired[signup]
    )
    duration = np.minimum(people.acquired + people.lifetime, clock.days) - people.acquired
    lines_per_order = 1 + np.asarray(_SEGMENT_EXTRA_LINES)[people.segment] + 0.06
    wanted = LINES_PER_CUSTOMER * n - lines_per_order[signup].sum()
    exposure = float((people.rate * duration * lines_per_order).sum())
    scale = max(wanted, 0.0) / exposure if exposure > 0 else 0.0
    # Thinning: draw at the peak seasonal rate, keep each candidate with season/peak.
    peak = float(np.max(clock.season(np.arange(0, 366, dtype=np.float64))))
    counts = rng.poisson(scale * people.rate * duration * peak)
    who = np.repeat(np.arange(n), counts)
    at = people.acquired[who] + rng.random(len(who)) * duration[who]
    keep = rng.random(len(who)) * peak < clock.season(at)
    customer = np.concatenate([signup, who[keep]]).astype(np.int64)
    at = np.concatenate([signup_at, at[keep]])
    order = np.argsort(at, kind="stable")  # order ids follow time
    return customer[order], at[order]


def _order_status(rng: np.random.Generator, at: F64, channel: I64, category: I64, clock: _Clock) -> I64:
    u = rng.random(len(at))
    return_p = np.asarray(_CATEGORY_RETURN_P)[category]
    status = np.where(u < _CANCEL_P, _CANCELLED, _COMPLETED)
    status = np.where((u >= _CANCEL_P) & (u < _CANCEL_P + return_p), _RETURNED, status)
    # Recent parcels are still on their way; store purchases are complete at once.
    in_transit = (at > clock.days - 4) & (channel != _STORE) & (status != _CANCELLED)
    status = np.where(in_transit, _SHIPPED, status)
    status = np.where(in_transit & (at > clock.days - 1), _PROCESSING, status)
    return status.astype(np.int64)


# ================================================================================================
# Employees


@dataclass(frozen=True, slots=True)
class _Staff:
    team: I64
    role: I64
    first_name: I64
    last_name: I64

    @property
    def support_desk(self) -> I64:
        """Who answers tickets: support agents and leads."""
        return np.flatnonzero((self.team == 0) & (self.role < 2)).astype(np.int64)


def _draw_employees(rng: np.random.Generator, customers: int) -> _Staff:
    teams: list[int] = []
    roles: list[int] = []
    for team, per_agent in enumerate(_CUSTOMERS_PER_AGENT):
        agents = max(6 if team == 0 else 2, round(customers / per_agent))
        leads = max(1, agents // _AGENTS_PER_LEAD)
        teams += [team] * (agents + leads + 1)
        roles += [0] * agents + [1] * leads + [2]
    n = len(teams)
    return _Staff(
        team=np.asarray(teams, dtype=np.int64),
        role=np.asarray(roles, dtype=np.int64),
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
    )


# ================================================================================================
# Tickets


@dataclass(frozen=True, slots=True)
class _Tickets:
    theme: I64
    order: I64  # -1 for account tickets
    person: I64
    opened: F64
    first_response: F64  # nan: not answered yet
    resolved: F64  # nan: not resolved yet
    channel: I64
    priority: I64
    status: I64
    agent: I64  # -1: nobody yet
    complaint: Bool
    reopens: I64
    days: I64  # the "{days}" of the text
    template: I64

    @property
    def size(self) -> int:
        return len(self.opened)

    def exported_customer(self, orders: _Orders) -> Bool:
        """Tickets about guest orders cannot be matched to a customer."""
        guest = np.zeros(self.size, dtype=np.bool_)
        linked = self.order >= 0
        guest[linked] = orders.guest[self.order[linked]]
        return ~guest


def _draw_tickets(
    rng: np.random.Generator,
    people: _People,
    orders: _Orders,
    products: _Products,
    staff: _Staff,
    clock: _Clock,
) -> _Tickets:
    parts = [
        _delivery_tickets(rng, orders, clock),
        _billing_tickets(rng, orders, clock),
        _quality_tickets(rng, orders, products, clock),
        _return_tickets(rng, orders),
    ]
    theme = np.concatenate([np.full(len(o), k, np.int64) for k, (o, _) in enumerate(parts)])
    order = np.concatenate([o for o, _ in parts])
    opened = np.concatenate([t for _, t in parts])
    account_person, account_opened = _account_tickets(rng, people, clock)
    theme = np.concatenate([theme, np.full(len(account_person), _ACCOUNT, np.int64)])
    person = np.concatenate([orders.customer[order], account_person])
    order = np.concatenate([order, np.full(len(account_person), -1, np.int64)])
    opened = np.concatenate([opened, account_opened])
    keep = np.flatnonzero(opened < clock.days)
    keep = keep[np.argsort(opened[keep], kind="stable")]
    theme, order, person, opened = theme[keep], order[keep], person[keep], opened[keep]
    # Order tickets quote how long ago they ordered; account ones an arbitrary 5-30 days.
    days = rng.integers(5, 31, len(order)).astype(np.int64)
    linked = order >= 0
    days[linked] = np.maximum(2, np.floor(opened[linked] - orders.at[order[linked]]))
    return _ticket_handling(rng, theme, order, person, opened, days, staff, clock)


def _order_tickets(rng: np.random.Generator, p: F64, opened: F64) -> tuple[I64, F64]:
    """Orders (indices) that get a ticket with probability ``p``, and when it is opened."""
    hit = np.flatnonzero(rng.random(len(p)) < p).astype(np.int64)
    return hit, opened[hit]


def _delivery_tickets(rng: np.random.Generator, orders: _Orders, clock: _Clock) -> tuple[I64, F64]:
    opened = orders.at + 2 + rng.exponential(4.0, orders.size)
    shipped = (orders.channel != _STORE) & (orders.status != _CANCELLED)
    start, end = (clock.offset(d) for d in spike_window(clock.as_of))
    factor = np.where((opened >= start) & (opened < end), SPIKE_FACTOR, 1.0)
    factor *= np.where(clock.month(orders.at) >= 10, _PEAK_DELIVERY_FACTOR, 1.0)
    return _order_tickets(rng, shipped * _DELIVERY_P * factor, opened)


def _billing_tickets(rng: np.random.Generator, orders: _Orders, clock: _Clock) -> tuple[I64, F64]:
    opened = orders.at + 1 + rng.exponential(5.0, orders.size)
    since, until = (clock.days - d for d in _BILLING_WINDOW_DAYS)
    factor = np.where((orders.at >= since) & (orders.at < until), _BILLING_FACTOR, 1.0)
    return _order_tickets(rng, _BILLING_P * factor, opened)


def _quality_tickets(
    rng: np.random.Generator, orders: _Orders, products: _Products, clock: _Clock
) -> tuple[I64, F64]:
    opened = orders.at + 5 + rng.exponential(15.0, orders.size)
    category = products.category[orders.first_product]
    factor = np.asarray(_CATEGORY_DEFECT)[category]
    bad_batch = (category == CATEGORIES.index("Home & Kitchen")) & (
        orders.at >= clock.days - _QUALITY_BATCH_DAYS
    )
    factor = np.where(bad_batch, factor * _QUALITY_BATCH_FACTOR, factor)
    return _order_tickets(rng, (orders.status != _CANCELLED) * _QUALITY_P * factor, opened)


def _return_tickets(rng: np.random.Generator, orders: _Orders) -> tuple[I64, F64]:
    opened = orders.at + 4 + rng.exponential(6.0, orders.size)
    return _order_tickets(rng, (orders.status == _RETURNED) * _RETURN_TICKET_P, opened)


def _account_tickets(rng: np.random.Generator, people: _People, clock: _Clock) -> tuple[I64, F64]:
    """Account questions over each customer's whole tenure, falling over time (thinning)."""
    tenure = clock.days - people.acquired
    counts = rng.poisson(_ACCOUNT_PER_YEAR * 1.6 / 365.25 * tenure)
    who = np.repeat(np.arange(people.size), counts).astype(np.int64)
    at = people.acquired[who] + rng.random(len(who)) * tenure[who]
    keep = rng.random(len(who)) * 1.6 < 1.6 - at / clock.days
    return who[keep], at[keep]


def _ticket_handling(
    rng: np.random.Generator,
    theme: I64,
    order: I64,
    person: I64,
    opened: F64,
    days: I64,
    staff: _Staff,
    clock: _Clock,
) -> _Tickets:
    """How the desk handles each ticket: channel, priority, response and resolution times."""
    n = len(theme)
    channel = _choice_by(rng, _TICKET_CHANNEL_P, theme)
    priority = _choice_by(rng, _PRIORITY_P, theme)
    complaint = rng.random(n) < np.asarray(_COMPLAINT_P)[theme]
    reopens = rng.poisson(0.05 + 0.15 * complaint).astype(np.int64)
    start, end = (clock.offset(d) for d in spike_window(clock.as_of))
    backlog = np.where((opened >= start) & (opened < end + 14), 4.0, 1.0)  # swamped desk
    hours = rng.lognormal(np.log(3.0), 1.0, n) * np.asarray(_FIRST_RESPONSE_FACTOR)[channel]
    hours *= backlog * np.where(priority == _URGENT, 0.5, 1.0)
    first_response = opened + hours / 24
    work = rng.lognormal(np.log(np.asarray(_RESOLVE_HOURS)[theme]), 0.9)
    work += reopens * rng.lognormal(np.log(24.0), 0.8, n)
    resolved = first_response + work / 24
    answered = first_response < clock.days
    done = resolved < clock.days
    # Solved tickets close automatically after a week; some answered ones wait on the agent.
    status = np.where(done, np.where(resolved < clock.days - 7, _CLOSED, _SOLVED), _PENDING)
    status = np.where(answered, status, _OPEN)
    status = np.where(~done & answered & (rng.random(n) < 0.3), _OPEN, status)
    desk = staff.support_desk
    agent = np.where(answered, desk[rng.integers(0, len(desk), n)], -1)
    return _Tickets(
        theme=theme,
        order=order,
        person=person,
        opened=opened,
        first_response=np.where(answered, first_response, np.nan),
        resolved=np.where(done, resolved, np.nan),
        channel=channel,
        priority=priority,
        status=status.astype(np.int64),
        agent=agent.astype(np.int64),
        complaint=complaint,
        reopens=reopens,
        days=days,
        template=_pick_template(rng, theme, [len(t) for t in _TICKET_TEMPLATES]),
    )


def _pick_template(rng: np.random.Generator, group: I64, counts: Sequence[int]) -> I64:
    """A global template index: uniform among the ``counts[g]`` templates of each group."""
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    sizes = np.asarray(counts, dtype=np.int64)[group]
    return offsets[group] + np.floor(rng.random(len(group)) * sizes).astype(np.int64)


# ================================================================================================
# Surveys


@dataclass(frozen=True, slots=True)
class _Experience:
    """What went wrong: per order, and per customer the first time it happened (inf: never)."""

    delivery: Bool  # per order: a delivery ticket
    quality: Bool
    billing: Bool
    returned: Bool
    delivery_opened: F64  # per order: when the delivery ticket was opened (inf: none)
    first_delivery: F64  # per customer
    first_quality: F64
    first_return: F64

    @classmethod
    def of(cls, people: _People, orders: _Orders, tickets: _Tickets) -> _Experience:
        flags = []
        for theme in (_DELIVERY, _QUALITY, _BILLING):
            flag = np.zeros(orders.size, dtype=np.bool_)
            flag[tickets.order[tickets.theme == theme]] = True
            flags.append(flag)
        delivery_opened = np.full(orders.size, np.inf)
        is_delivery = tickets.theme == _DELIVERY
        delivery_opened[tickets.order[is_delivery]] = tickets.opened[is_delivery]
        returned = orders.status == _RETURNED
        return cls(
            delivery=flags[0],
            quality=flags[1],
            billing=flags[2],
            returned=returned,
            delivery_opened=delivery_opened,
            first_delivery=_first(people.size, orders.customer, delivery_opened),
            first_quality=_first(people.size, orders.customer, np.where(flags[1], orders.at, np.inf)),
            first_return=_first(people.size, orders.customer, np.where(returned, orders.at, np.inf)),
        )


def _first(n: int, who: I64, at: F64) -> F64:
    """Per customer, the earliest finite ``at``."""
    first = np.full(n, np.inf)
    hit = np.isfinite(at)
    np.minimum.at(first, who[hit], at[hit])
    return first


@dataclass(frozen=True, slots=True)
class _Responses:
    kind: I64
    person: I64
    at: F64
    score: I64
    channel: I64
    touchpoint: I64
    comment: I64  # index into the flattened _COMMENTS, -1 for none

    @property
    def size(self) -> int:
        return len(self.at)


@dataclass(frozen=True, slots=True)
class _Answers:
    """Answers of one survey before channel and comment: who, when, score and its reason."""

    person: I64
    at: F64
    score: I64
    reason: I64  # index into _REASONS
    touchpoint: I64


def _draw_responses(
    rng: np.random.Generator,
    people: _People,
    orders: _Orders,
    tickets: _Tickets,
    seen: _Experience,
    clock: _Clock,
) -> _Responses:
    surveys = [
        _nps_answers(rng, people, seen, clock),
        _csat_answers(rng, orders, seen, clock),
        _ces_answers(rng, tickets, orders, clock),
    ]
    kind = np.concatenate([np.full(len(a.at), k, np.int64) for k, a in enumerate(surveys)])
    at = np.concatenate([a.at for a in surveys])
    order = np.argsort(at, kind="stable")
    kind, at = kind[order], at[order]
    score = np.concatenate([a.score for a in surveys])[order]
    reason = np.concatenate([a.reason for a in surveys])[order]
    return _Responses(
        kind=kind,
        person=np.concatenate([a.person for a in surveys])[order],
        at=at,
        score=score,
        channel=_choice(rng, (0.5, 0.2, 0.3), len(at)),
        touchpoint=np.concatenate([a.touchpoint for a in surveys])[order],
        comment=_comments(rng, kind, score, reason),
    )


def _scores(rng: np.random.Generator, mean: F64, sd: float, kind: int) -> I64:
    low, high = _SCALES[kind]
    latent = mean + rng.normal(0.0, sd, len(mean))
    return np.clip(np.round(latent), low, high).astype(np.int64)


def _reason(delivery: Bool, returned: Bool, quality: Bool) -> I64:
    """The comment reason, the worst experience first."""
    reason = np.where(returned, _REASONS.index("returns"), _REASONS.index("generic"))
    reason = np.where(quality, _REASONS.index("quality"), reason)
    return np.where(delivery, _REASONS.index("delivery"), reason).astype(np.int64)


def _nps_answers(rng: np.random.Generator, people: _People, seen: _Experience, clock: _Clock) -> _Answers:
    """Quarterly relationship survey of everyone signed up; churned customers answer less."""
    who_parts: list[I64] = []
    at_parts: list[F64] = []
    for wave in np.arange(30.0, clock.days, _NPS_WAVE_DAYS):  # a handful of waves
        churned = people.acquired + people.lifetime < wave
        p = np.where(churned, _NPS_RESPONSE_P[1], _NPS_RESPONSE_P[0])
        who = np.flatnonzero((people.acquired < wave - 14) & (rng.random(people.size) < p))
        who_parts.append(who.astype(np.int64))
        at_parts.append(wave + rng.exponential(4.0, len(who)))
    who, at = np.concatenate([np.zeros(0, np.int64), *who_parts]), np.concatenate([[], *at_parts])
    keep = at < clock.days
    who, at = who[keep], at[keep]
    delivery = seen.first_delivery[who] < at
    returned = seen.first_return[who] < at
    quality = seen.first_quality[who] < at
    churned = people.acquired[who] + people.lifetime[who] < at
    mean = 8.4 - 3.2 * delivery - 2.0 * returned - 2.6 * quality - 0.6 * churned
    mean += 0.4 * (people.segment[who] == SEGMENTS.index("enterprise"))
    touchpoint = np.full(len(who), TOUCHPOINTS.index("relationship"), np.int64)
    score = _scores(rng, mean, 1.6, _NPS)
    return _Answers(who, at, score, _reason(delivery, returned, quality), touchpoint)


def _csat_answers(rng: np.random.Generator, orders: _Orders, seen: _Experience, clock: _Clock) -> _Answers:
    """Post-purchase survey a few days after a sample of delivered orders."""
    delivered = (orders.status == _COMPLETED) | (orders.status == _RETURNED)
    hit = np.flatnonzero(delivered & ~orders.guest & (rng.random(orders.size) < _CSAT_P))
    at = orders.at[hit] + 3 + rng.exponential(4.0, len(hit))
    hit, at = hit[at < clock.days], at[at < clock.days]
    d, r, q = seen.delivery[hit], seen.returned[hit], seen.quality[hit]
    mean = 4.3 - 2.0 * d - 1.0 * r - 1.8 * q - 0.8 * seen.billing[hit]
    # Earlier trouble lingers: a customer burnt before rates the next order lower too.
    customer, ordered = orders.customer[hit], orders.at[hit]
    mean -= 0.6 * (seen.first_delivery[customer] < ordered) + 0.5 * (seen.first_return[customer] < ordered)
    by_post = (orders.channel[hit] != _STORE) & (rng.random(len(hit)) < 0.6)
    touchpoint = np.where(by_post, TOUCHPOINTS.index("delivery"), TOUCHPOINTS.index("purchase"))
    score = _scores(rng, mean, 0.7, _CSAT)
    return _Answers(customer, at, score, _reason(d, r, q), touchpoint.astype(np.int64))


def _ces_answers(rng: np.random.Generator, tickets: _Tickets, orders: _Orders, clock: _Clock) -> _Answers:
    """Effort score after a resolved ticket: long resolutions and reopens feel hard."""
    resolved = np.isfinite(tickets.resolved) & tickets.exported_customer(orders)
    hit = np.flatnonzero(resolved & (rng.random(tickets.size) < _CES_P))
    at = tickets.resolved[hit] + 0.3 + rng.exponential(1.5, len(hit))
    hit, at = hit[at < clock.days], at[at < clock.days]
    took = tickets.resolved[hit] - tickets.opened[hit]
    mean = 6.0 - 0.6 * np.log1p(took) - 1.0 * tickets.reopens[hit] - 0.4 * tickets.complaint[hit]
    reason = np.full(len(hit), _REASONS.index("support"), np.int64)
    touchpoint = np.full(len(hit), TOUCHPOINTS.index("support"), np.int64)
    return _Answers(tickets.person[hit], at, _scores(rng, mean, 1.0, _CES), reason, touchpoint)


def _comments(rng: np.random.Generator, kind: I64, score: I64, reason: I64) -> I64:
    """Which comment each response carries (-1: none), matching its tone and reason."""
    cuts = np.asarray([(6, 8), (2, 3), (3, 5)])[kind]  # detractor/passive bounds per kind
    tone = (score > cuts[:, 0]).astype(np.int64) + (score > cuts[:, 1])
    # Only unhappy comments name what went wrong; support surveys talk about support.
    support = reason == _REASONS.index("support")
    reason = np.where(tone == 0, reason, np.where(support, reason, _REASONS.index("generic")))
    pools = list(_COMMENTS)
    pool_of = np.full((len(_TONES), len(_REASONS)), -1, np.int64)
    for p, (t, r) in enumerate(pools):
        pool_of[_TONES.index(t), _REASONS.index(r)] = p
    pool = pool_of[tone, reason]
    chosen = _pick_template(rng, pool, [len(_COMMENTS[k]) for k in pools])
    p_comment = np.asarray(_COMMENT_P)[kind] + _NEGATIVE_EXTRA_COMMENT_P * (tone == 0)
    return np.where(rng.random(len(kind)) < p_comment, chosen, -1).astype(np.int64)


# ================================================================================================
# Reviews and posts


@dataclass(frozen=True, slots=True)
class _Mentions:
    """Who wrote about which brand, where, when and about what."""

    platform: I64
    brand: I64
    theme: I64
    at: F64
    first_name: I64
    last_name: I64
    customer: I64  # -1: not matched to a customer
    order: I64  # -1: not matched to an order
    product: I64
    days: I64

    @property
    def size(self) -> int:
        return len(self.at)


@dataclass(frozen=True, slots=True)
class _Reviews:
    about: _Mentions
    rating: I64  # 1..5; 0 for posts
    template: I64  # into the flattened review templates, or post templates for posts
    handle: I64  # the number in an X handle

    @property
    def size(self) -> int:
        return self.about.size


def _draw_reviews(
    rng: np.random.Generator,
    people: _People,
    orders: _Orders,
    products: _Products,
    tickets: _Tickets,
    seen: _Experience,
    clock: _Clock,
) -> _Reviews:
    parts = [
        _order_reviews(rng, orders, seen, people),
        _delivery_posts(rng, tickets, orders, people),
        _order_posts(rng, orders, people),
        *(_competitor_reviews(rng, brand, people.size, products, clock) for brand in range(1, len(BRANDS))),
    ]
    at = np.concatenate([p.at for p in parts])
    keep = np.flatnonzero(at < clock.days)
    keep = keep[np.argsort(at[keep], kind="stable")]
    about = _Mentions(
        **{
            name: np.concatenate([getattr(p, name) for p in parts])[keep]
            for name in _Mentions.__dataclass_fields__
        }
    )
    post = about.platform == _X
    review_template = _pick_template(rng, about.theme, [len(t) for t in _REVIEW_TEMPLATES])
    post_template = _pick_template(rng, about.theme, [len(t) for t in _POST_TEMPLATES])
    return _Reviews(
        about=about,
        rating=np.where(post, 0, _choice_by(rng, _RATING_P, about.theme) + 1),
        template=np.where(post, post_template, review_template),
        handle=rng.integers(1, 100, about.size),
    )


def _order_reviews(
    rng: np.random.Generator, orders: _Orders, seen: _Experience, people: _People
) -> _Mentions:
    """Northwind reviews prompted by an order: unhappy customers write more often."""
    p = _REVIEW_P["base"] + _REVIEW_P["delivery"] * seen.delivery
    p += _REVIEW_P["quality"] * seen.quality + _REVIEW_P["returned"] * seen.returned
    hit = np.flatnonzero((orders.status <= _CANCELLED) & (rng.random(orders.size) < p))
    theme = _choice(rng, _BRAND_THEME_P[0], len(hit))
    theme = np.where(seen.returned[hit], _R_RETURNS, theme)
    theme = np.where(seen.billing[hit], _R_BILLING, theme)
    theme = np.where(seen.quality[hit], _R_QUALITY, theme)
    theme = np.where(seen.delivery[hit], _R_DELIVERY, theme)
    since = np.where(seen.delivery[hit], seen.delivery_opened[hit], orders.at[hit] + 3)
    at = since + 0.5 + rng.exponential(3.0, len(hit))
    platform = rng.integers(0, 2, len(hit))  # trustpilot or google
    return _brand_texts(rng, hit, theme.astype(np.int64), at, platform, orders, people)


def _delivery_posts(
    rng: np.random.Generator, tickets: _Tickets, orders: _Orders, people: _People
) -> _Mentions:
    """Angry posts on X within hours of a delivery ticket: they spike with the tickets."""
    delivery = np.flatnonzero(tickets.theme == _DELIVERY)
    chosen = delivery[rng.random(len(delivery)) < _DELIVERY_POST_P]
    at = tickets.opened[chosen] + rng.exponential(0.5, len(chosen))
    theme = np.full(len(chosen), _R_DELIVERY, np.int64)
    platform = np.full(len(chosen), _X, np.int64)
    return _brand_texts(rng, tickets.order[chosen], theme, at, platform, orders, people)


def _order_posts(rng: np.random.Generator, orders: _Orders, people: _People) -> _Mentions:
    hit = np.flatnonzero(rng.random(orders.size) < _ORDER_POST_P)
    theme = np.where(rng.random(len(hit)) < 0.7, _R_POSITIVE, _R_PRICE).astype(np.int64)
    at = orders.at[hit] + 2 + rng.exponential(3.0, len(hit))
    platform = np.full(len(hit), _X, np.int64)
    return _brand_texts(rng, hit, theme, at, platform, orders, people)


def _brand_texts(
    rng: np.random.Generator,
    order: I64,
    theme: I64,
    at: F64,
    platform: I64,
    orders: _Orders,
    people: _People,
) -> _Mentions:
    """Northwind reviews or posts about given orders, some matched back to the customer."""
    n = len(order)
    person = orders.customer[order]
    # Delivery complaints count the days since ordering; slow refunds and replies take a while.
    days = np.where(
        theme == _R_DELIVERY,
        np.maximum(3, np.floor(at - orders.at[order])),
        rng.integers(7, 22, n),
    ).astype(np.int64)
    matched = (platform != _X) & ~orders.guest[order] & (rng.random(n) < _REVIEW_LINKED_P)
    return _Mentions(
        platform=platform.astype(np.int64),
        brand=np.zeros(n, np.int64),
        theme=theme,
        at=at,
        first_name=people.first_name[person],
        last_name=people.last_name[person],
        customer=np.where(matched, person, -1),
        order=np.where(matched, order, -1),
        product=orders.first_product[order],
        days=days,
    )


def _competitor_reviews(
    rng: np.random.Generator, brand: int, customers: int, products: _Products, clock: _Clock
) -> _Mentions:
    """Reviews and posts about a competitor, spread over the span, with its own weak spots."""
    reviews = rng.poisson(_COMPETITOR_REVIEWS_PER_CUSTOMER * customers)
    posts = rng.poisson(_COMPETITOR_POSTS_PER_CUSTOMER * customers)
    n = reviews + posts
    platform = np.concatenate([rng.integers(0, 2, reviews), np.full(posts, _X)])
    return _Mentions(
        platform=platform.astype(np.int64),
        brand=np.full(n, brand, np.int64),
        theme=_choice(rng, _BRAND_THEME_P[brand], n),
        at=rng.random(n) * clock.days,
        first_name=rng.integers(0, len(FIRST_NAMES), n),
        last_name=rng.integers(0, len(LAST_NAMES), n),
        customer=np.full(n, -1, np.int64),
        order=np.full(n, -1, np.int64),
        product=products.draw(rng, n),  # competitors sell the same kind of things
        days=rng.integers(3, 22, n),
    )


# ================================================================================================
# Arrow building blocks


def _const(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, _TEXT), n)


def _take(labels: Sequence[str], idx: I64, null: Bool | None = None) -> pa.Array:
    return pa.array(labels, _TEXT).take(pa.array(idx, pa.int64(), mask=null))


def _ts(clock: _Clock, t: F64, valid: Bool | None = None) -> pa.Array:
    return pa.array(clock.micros(t), _TS, mask=None if valid is None else ~valid)


def _int32(values: I64) -> pa.Array:
    return pa.array(values.astype(np.int32), _INT)


def _decimal(scaled: I64, valid: Bool | None = None, scale: int = 4) -> pa.Array:
    """decimal128(18, scale) straight from integers scaled by 10**scale, exactly."""
    words = np.empty((len(scaled), 2), dtype=np.int64)
    words[:, 0] = scaled
    words[:, 1] = scaled >> 63  # sign extension into the high word
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    nulls = 0 if valid is None else int(len(valid) - np.count_nonzero(valid))
    return pa.Array.from_buffers(
        pa.decimal128(18, scale), len(scaled), [bitmap, pa.py_buffer(words)], null_count=nulls
    )


def _ids(prefix: str, numbers: I64, width: int) -> pa.Array:
    """``prefix`` + zero-padded ``numbers``, built as raw Arrow buffers (no per-row Python)."""
    n, head = len(numbers), np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars = np.empty((n, len(head) + width), dtype=np.uint8)
    chars[:, : len(head)] = head
    rest = numbers.astype(np.int64).copy()
    for col in range(len(head) + width - 1, len(head) - 1, -1):
        chars[:, col] = ord("0") + rest % 10
        rest //= 10
    offsets = np.arange(n + 1, dtype=np.int32) * chars.shape[1]
    return pa.Array.from_buffers(_TEXT, n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _width(count: int, minimum: int) -> int:
    return max(minimum, len(str(count)))


def _render(templates: Sequence[str], which: I64, fields: Mapping[str, pa.Array]) -> pa.Array:
    """Row i is ``templates[which[i]]`` with ``{name}`` filled from ``fields[name][i]``.

    ``which < 0`` gives null. Rows are grouped by template so each template is filled with one
    vectorised string join.
    """
    parts: list[pa.Array] = []
    rows: list[npt.NDArray[np.intp]] = []
    for t, template in enumerate(templates):
        mine = np.flatnonzero(which == t)
        if len(mine) == 0:
            continue
        picks = pa.array(mine, pa.int64())
        pieces: list[object] = []
        for literal, name, _, _ in string.Formatter().parse(template):
            pieces += [literal] if literal else []
            pieces += [fields[name].take(picks)] if name else []
        if all(isinstance(piece, str) for piece in pieces):
            parts.append(_const("".join(str(p) for p in pieces), len(mine)))
        else:
            parts.append(pc.binary_join_element_wise(*pieces, ""))
        rows.append(mine)
    rows.append(np.flatnonzero(which < 0))
    parts.append(pa.nulls(len(rows[-1]), _TEXT))
    where = np.empty(len(which), dtype=np.int64)
    where[np.concatenate(rows)] = np.arange(len(which))
    return pa.concat_arrays(parts).take(pa.array(where, pa.int64()))


def _money_text(cents: I64) -> pa.Array:
    return _decimal(cents, scale=2).cast(_TEXT)


def _names(first: I64, last: I64) -> pa.Array:
    return pc.binary_join_element_wise(_take(FIRST_NAMES, first), _take(LAST_NAMES, last), " ")


def _email_local(first: I64, last: I64) -> pa.Array:
    """``first.last``, lower case and without spaces (De Vries -> devries)."""
    firsts = [f.lower() for f in FIRST_NAMES]
    lasts = [name.lower().replace(" ", "") for name in LAST_NAMES]
    return pc.binary_join_element_wise(_take(firsts, first), _take(lasts, last), ".")


# ================================================================================================
# Tables


@dataclass(frozen=True, slots=True)
class _Ids:
    """The exported ids of customers and orders, built once and taken by index."""

    customers: pa.Array
    orders: pa.Array

    @classmethod
    def numbering(cls, customers: int, orders: int) -> _Ids:
        return cls(
            _ids("C", np.arange(1, customers + 1, dtype=np.int64), _width(customers, 6)),
            _ids("O", np.arange(1, orders + 1, dtype=np.int64), _width(orders, 8)),
        )

    def customer(self, idx: I64, null: Bool | None = None) -> pa.Array:
        return self.customers.take(pa.array(idx, pa.int64(), mask=null))

    def order(self, idx: I64, null: Bool | None = None) -> pa.Array:
        return self.orders.take(pa.array(idx, pa.int64(), mask=null))


def _table(name: str, columns: Sequence[pa.Array]) -> pa.Table:
    return pa.Table.from_arrays(list(columns), schema=SCHEMAS[name])


def _customers_table(people: _People, ids: _Ids, clock: _Clock) -> pa.Table:
    n = people.size
    number = pc.cast(pa.array(np.arange(1, n + 1)), _TEXT)
    domain = _take(EMAIL_DOMAINS, np.arange(n) % len(EMAIL_DOMAINS))
    email = pc.binary_join_element_wise(
        _email_local(people.first_name, people.last_name), number, "@", domain, ""
    )
    plans = [f'{{"plan": "{p}", "newsletter": {b}}}' for p in _PLANS for b in ("false", "true")]
    return _table(
        "customers",
        [
            ids.customers,
            _names(people.first_name, people.last_name),
            email,
            _take(SEGMENTS, people.segment),
            _take(REGIONS, people.region),
            _take(_COUNTRY_CODES, people.country),
            _take(ACQUISITION_CHANNELS, people.channel),
            _ts(clock, people.acquired),
            _take(plans, people.attributes, people.attributes < 0),
            _const(SOURCE, n),
        ],
    )


def _orders_table(orders: _Orders, people: _People, ids: _Ids, clock: _Clock) -> pa.Table:
    n = orders.size
    return _table(
        "orders",
        [
            ids.orders,
            ids.customer(orders.customer, orders.guest),
            _ts(clock, orders.at),
            _take(ORDER_STATUSES, orders.status),
            _take(ORDER_CHANNELS, orders.channel),
            _const("EUR", n),
            _take(_COUNTRY_CODES, people.country[orders.customer]),
            _decimal(orders.total_cents * 100, ~orders.total_null),
            _const(SOURCE, n),
        ],
    )


def _order_lines_table(orders: _Orders, products: _Products, ids: _Ids) -> pa.Table:
    n = len(orders.product)
    order_of_line = np.repeat(np.arange(orders.size), np.diff(orders.line_start))
    line_no = np.arange(n) - orders.line_start[order_of_line] + 1
    product_ids = _ids("P", np.arange(1, len(products.name) + 1, dtype=np.int64), 4)
    cents = orders.unit_cents
    return _table(
        "order_lines",
        [
            ids.order(order_of_line),
            _int32(line_no),
            product_ids.take(pa.array(orders.product)),
            _take(products.name, orders.product),
            _take(CATEGORIES, products.category[orders.product]),
            _decimal(orders.quantity * 10_000),
            _decimal(cents * 100),
            _decimal(orders.quantity * cents * 100),
            _const(SOURCE, n),
        ],
    )


# Subscriptions: the customer's plan (from the attributes) is a membership with a monthly fee.
_PLAN_MRR_CENTS: Final = (900, 1900, 3900)
_UPGRADE_P: Final = 0.15  # share of long-lived members who move up a plan halfway
# Invitations not answered, per answered one: response rates of about 29%, 25% and 40%.
_UNANSWERED_PER_ANSWER: Final = (2.5, 3.0, 1.5)


def _subscriptions_table(rng: np.random.Generator, people: _People, ids: _Ids, clock: _Clock) -> pa.Table:
    """Members (customers with a plan) subscribe at sign-up and cancel a month after their last
    activity; some upgrade halfway, which ends one subscription and starts a dearer one."""
    member = np.flatnonzero(people.attributes >= 0)
    plan = people.attributes[member] // 2
    start = people.acquired[member]
    end = start + people.lifetime[member] + 30.0
    upgrade = (
        (plan < len(_PLANS) - 1) & (people.lifetime[member] > 120) & (rng.random(len(member)) < _UPGRADE_P)
    )
    switch = start + (end - start) / 2
    who = np.concatenate([member, member[upgrade]])
    plans = np.concatenate([plan, plan[upgrade] + 1])
    starts = np.concatenate([start, switch[upgrade]])
    ends = np.concatenate([np.where(upgrade, switch, end), end[upgrade]])
    keep = starts < clock.days
    who, plans, starts, ends = who[keep], plans[keep], starts[keep], ends[keep]
    n = len(who)
    return _table(
        "subscriptions",
        [
            _ids("S", np.arange(1, n + 1, dtype=np.int64), _width(n, 7)),
            ids.customer(who),
            _take(_PLANS, plans),
            _decimal(np.asarray(_PLAN_MRR_CENTS, dtype=np.int64)[plans] * 100),
            _ts(clock, starts),
            _ts(clock, ends, ends < clock.days),
            _const(SOURCE, n),
        ],
    )


def _invitations_table(
    rng: np.random.Generator, responses: _Responses, people: _People, ids: _Ids, clock: _Clock
) -> pa.Table:
    """Every answer had an invitation (sent shortly before); other customers signed up by then
    were invited at the same moment and did not answer."""
    sent = np.maximum(responses.at - rng.exponential(1.0, responses.size), 0.0)
    extra = rng.poisson(np.asarray(_UNANSWERED_PER_ANSWER)[responses.kind])
    source = np.repeat(np.arange(responses.size), extra)
    signed_up = np.searchsorted(people.acquired, sent[source], side="left")  # customers acquired before
    other = np.floor(rng.random(len(source)) * np.maximum(signed_up, 1)).astype(np.int64)
    other = np.minimum(other, max(people.size - 1, 0))
    kind = np.concatenate([responses.kind, responses.kind[source]])
    who = np.concatenate([responses.person, other])
    at = np.concatenate([sent, sent[source]])
    order = np.argsort(at, kind="stable")
    kind, who, at = kind[order], who[order], at[order]
    n = len(at)
    return _table(
        "survey_invitations",
        [
            _ids("I", np.arange(1, n + 1, dtype=np.int64), _width(n, 8)),
            _take(_SURVEY_IDS, kind),
            ids.customer(who),
            _take(SURVEY_CHANNELS, np.concatenate([responses.channel, responses.channel[source]])[order]),
            _ts(clock, at),
            _const(SOURCE, n),
        ],
    )


def _responses_table(responses: _Responses, ids: _Ids, clock: _Clock) -> pa.Table:
    n = responses.size
    kind = responses.kind
    comments = [text for pool in _COMMENTS.values() for text in pool]
    scales = np.asarray(_SCALES, dtype=np.int64)[kind]
    return _table(
        "survey_responses",
        [
            _const(SOURCE, n),
            _ids("R", np.arange(1, n + 1, dtype=np.int64), _width(n, 8)),
            _take(SURVEY_KINDS, kind),
            _take(_SURVEY_IDS, kind),
            _take(SURVEY_KINDS, kind),
            _int32(scales[:, 0]),
            _int32(scales[:, 1]),
            _decimal(responses.score * 10_000),
            _take(comments, responses.comment, responses.comment < 0),
            _take(SURVEY_CHANNELS, responses.channel),
            _take(TOUCHPOINTS, responses.touchpoint),
            ids.customer(responses.person),
            _ts(clock, responses.at),
        ],
    )


def _tickets_table(
    tickets: _Tickets,
    orders: _Orders,
    people: _People,
    products: _Products,
    staff: _Staff,
    ids: _Ids,
    clock: _Clock,
) -> pa.Table:
    n = tickets.size
    no_order = tickets.order < 0
    order = np.where(no_order, 0, tickets.order)
    fields = {
        "order": ids.order(order, no_order),
        "product": _take(products.name, orders.first_product[order], no_order),
        "amount": _money_text(orders.total_cents[order]),
        "days": pc.cast(pa.array(tickets.days), _TEXT),
        "first": _take(FIRST_NAMES, people.first_name[tickets.person]),
    }
    subjects = [s for theme in _TICKET_TEMPLATES for s, _ in theme]
    bodies = [b for theme in _TICKET_TEMPLATES for _, b in theme]
    return _table(
        "tickets",
        [
            _const(SOURCE, n),
            _ids("T", np.arange(1, n + 1, dtype=np.int64), _width(n, 7)),
            ids.customer(tickets.person, ~tickets.exported_customer(orders)),
            _ts(clock, tickets.opened),
            _ts(clock, tickets.first_response, np.isfinite(tickets.first_response)),
            _ts(clock, tickets.resolved, np.isfinite(tickets.resolved)),
            _take(TICKET_CHANNELS, tickets.channel),
            _take(TICKET_THEMES, tickets.theme),
            _take(PRIORITIES, tickets.priority),
            _take(TICKET_STATUSES, tickets.status),
            _employee_ids(staff).take(pa.array(tickets.agent, pa.int64(), mask=tickets.agent < 0)),
            pa.array(tickets.complaint, _BOOL),
            _int32(tickets.reopens),
            _render(subjects, tickets.template, fields),
            _render(bodies, tickets.template, fields),
        ],
    )


def _reviews_table(reviews: _Reviews, products: _Products, ids: _Ids, clock: _Clock) -> pa.Table:
    about = reviews.about
    n = about.size
    post = about.platform == _X
    fields = {
        "brand": _take(BRANDS, about.brand),
        "product": _take(products.name, about.product),
        "days": pc.cast(pa.array(about.days), _TEXT),
    }
    titles = [t for theme in _REVIEW_TEMPLATES for t, _ in theme]
    texts = [x for theme in _REVIEW_TEMPLATES for _, x in theme]
    posts = [x for theme in _POST_TEMPLATES for x in theme]
    as_review = np.where(post, -1, reviews.template)
    review_id = _review_ids(about.platform)
    author, url = _authors_and_urls(reviews, review_id)
    return _table(
        "reviews",
        [
            _take(PLATFORMS, about.platform),
            review_id,
            _take(("review", "post"), post.astype(np.int64)),
            url,
            author,
            _decimal(reviews.rating * 10_000, ~post),
            _render(titles, as_review, fields),
            pc.coalesce(
                _render(texts, as_review, fields),
                _render(posts, np.where(post, reviews.template, -1), fields),
            ),
            _ts(clock, about.at),
            _take(BRANDS, about.brand),
            pa.array(about.brand > 0, _BOOL),
            _const("en", n),
            ids.customer(np.maximum(about.customer, 0), about.customer < 0),
            ids.order(np.maximum(about.order, 0), about.order < 0),
        ],
    )


def _review_ids(platform: I64) -> pa.Array:
    """Platform-style ids: TP00000001, GR00000001, and long numeric X status ids."""
    n = len(platform)
    number = np.arange(1, n + 1, dtype=np.int64)
    width = _width(n, 8)
    x_ids = _ids("", 1_745_000_000_000_000_000 + number * 104_729, 19)
    return pc.if_else(
        pa.array(platform == _X),
        x_ids,
        pc.if_else(pa.array(platform == 0), _ids("TP", number, width), _ids("GR", number, width)),
    )


def _authors_and_urls(reviews: _Reviews, review_id: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Reviewers sign "Anna S."; posters have handles like anna_schmidt42."""
    about = reviews.about
    initials = [f"{name[0]}." for name in LAST_NAMES]
    signed = pc.binary_join_element_wise(
        _take(FIRST_NAMES, about.first_name), _take(initials, about.last_name), " "
    )
    handle = pc.binary_join_element_wise(
        pc.replace_substring(_email_local(about.first_name, about.last_name), ".", "_"),
        pc.cast(pa.array(reviews.handle), _TEXT),
        "",
    )
    post = pa.array(about.platform == _X)
    bases = ("https://www.trustpilot.com/reviews/", "https://www.google.com/maps/reviews/", "")
    url = pc.if_else(
        post,
        pc.binary_join_element_wise("https://x.com/", handle, "/status/", review_id, ""),
        pc.binary_join_element_wise(_take(bases, about.platform), review_id, ""),
    )
    return pc.if_else(post, handle, signed), url


def _employee_ids(staff: _Staff) -> pa.Array:
    n = len(staff.team)
    return _ids("E", np.arange(1, n + 1, dtype=np.int64), _width(n, 5))


def _employees_table(staff: _Staff) -> pa.Table:
    n = len(staff.team)
    # Namesakes get a number, as mail servers do: anna.schmidt, anna.schmidt2, ...
    key = staff.first_name * len(LAST_NAMES) + staff.last_name
    order = np.argsort(key, kind="stable")
    group_start = np.searchsorted(key[order], key[order])
    occurrence = np.empty(n, np.int64)
    occurrence[order] = np.arange(n) - group_start
    suffix = pc.if_else(
        pa.array(occurrence > 0), pc.cast(pa.array(occurrence + 1), _TEXT), pa.scalar("", _TEXT)
    )
    email = pc.binary_join_element_wise(
        _email_local(staff.first_name, staff.last_name), suffix, "@northwind.example", ""
    )
    return _table(
        "employees",
        [
            _employee_ids(staff),
            _names(staff.first_name, staff.last_name),
            email,
            _take(TEAMS, staff.team),
            _take(ROLES, staff.role),
            _const(SOURCE, n),
        ],
    )
